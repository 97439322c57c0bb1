package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model/train"
)

// TestTrainGenerateLM trains gpt-tiny briefly through the CLI on a fortune
// file made of the README's paragraphs, then continues a prompt and measures
// the held-out perplexity with `generate`, which must agree with the card
// `train` wrote.
func TestTrainGenerateLM(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	corpus := t.TempDir()
	var entries []string
	for _, p := range strings.Split(string(b), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			entries = append(entries, p)
		}
	}
	if err := os.WriteFile(filepath.Join(corpus, "readme"), []byte(strings.Join(entries, "\n%\n")+"\n%\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "gpt.onnx")
	o, err := runCLI(t, "train", "--arch", "gpt-tiny", "--corpus", corpus, "--epochs", "1", "--limit", "6000", "--out", out)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, o)
	}
	for _, w := range []string{"held-out perplexity", "wrote " + out} {
		if !strings.Contains(o, w) {
			t.Errorf("train output lacks %q:\n%s", w, o)
		}
	}
	cb, err := os.ReadFile(train.LMCardPath(out))
	if err != nil {
		t.Fatal(err)
	}
	var card train.LMCard
	if err := json.Unmarshal(cb, &card); err != nil {
		t.Fatal(err)
	}
	if card.Arch != "gpt-tiny" || card.Corpus != corpus || card.TrainTokens != 6000 || card.HoldEvery != 20 || !(card.HeldPerplexity > 1) {
		t.Errorf("card %+v", card)
	}
	o, err = runCLI(t, "generate", "--model", out, "--prompt", "edgesplit ", "-n", "30", "--perplexity-corpus", corpus)
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, o)
	}
	lines := strings.SplitN(o, "\n", 2)
	if want := fmt.Sprintf("held-out perplexity %.3f over %d tokens", card.HeldPerplexity, card.HeldScored); !strings.HasPrefix(lines[0], want) {
		t.Errorf("generate's first line %q, want %q… (the card's)", lines[0], want)
	}
	// The prompt, then one character per generated token (a newline among them).
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "edgesplit ") || len([]rune(strings.TrimSuffix(lines[1], "\n"))) != len("edgesplit ")+30 {
		t.Errorf("generate output %q: want the prompt, then 30 characters", o)
	}
	for _, bad := range [][]string{
		{"generate", "--model", "lenet5", "--prompt", "x"},
		{"generate", "--model", out, "--prompt", "x", "-n", "-3"},
		{"generate", "--model", out, "--perplexity-corpus", filepath.Join(corpus, "none")},
		{"train", "--arch", "gpt-tiny", "--corpus", filepath.Join(corpus, "none"), "--out", filepath.Join(t.TempDir(), "x.onnx")},
	} {
		if o, err := runCLI(t, bad...); err == nil {
			t.Errorf("edgesplit %s: no error\n%s", strings.Join(bad, " "), o)
		}
	}
}

func TestGenerateFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--prompt", "x"}, "generate needs --model"},
		{[]string{"generate", "--model", "gpt-tiny", "--prompt", "x", "--cut", "1"}, "--cut applies to a generation on an edge node"},
		{[]string{"generate", "--model", "gpt-tiny", "--prompt", "x", "--result", "r.json"}, "--result applies to a generation on an edge node"},
		{[]string{"generate", "--node", "127.0.0.1:1"}, "--node needs --prompt"},
		{[]string{"generate", "--node", "127.0.0.1:1", "--prompt", "x", "--decode-cut", "2"}, "--decode-cut needs --cut"},
		{[]string{"generate", "--model", "gpt-tiny", "--prompt", "x", "--decode-cut", "2"}, "--decode-cut applies to a generation on an edge node"},
		{[]string{"generate", "--node", "127.0.0.1:1", "--prompt", "x", "--perplexity-corpus", "."}, "does not apply with --node"},
		{[]string{"generate", "--node", "ftp://x", "--prompt", "x"}, "want http:// or https://"},
	} {
		o, err := runCLI(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("edgesplit %s: %v (want an error containing %q)\n%s", strings.Join(tc.args, " "), err, tc.want, o)
		}
	}
}

func TestReadEvents(t *testing.T) {
	type ev struct{ name, data string }
	for _, tc := range []struct {
		name, stream string
		want         []ev
		err          string
	}{
		{"two events", "event: token\ndata: {\"a\":1}\n\nevent: done\ndata: {}\n\n", []ev{{"token", `{"a":1}`}, {"done", "{}"}}, ""},
		{"multi-line data, comments, default name", ": hi\ndata: a\ndata: b\n\n", []ev{{"message", "a\nb"}}, ""},
		{"unterminated last event is dropped", "event: token\ndata: x", nil, ""},
		{"stop ends cleanly", "event: done\ndata: 1\n\nevent: token\ndata: 2\n\n", []ev{{"done", "1"}}, ""},
		{"oversized line", "data: " + strings.Repeat("x", maxEventBytes+1) + "\n\n", nil, "event stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []ev
			err := readEvents(strings.NewReader(tc.stream), func(name string, data []byte) error {
				got = append(got, ev{name, string(data)})
				if name == "done" {
					return errStopEvents
				}
				return nil
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
}
