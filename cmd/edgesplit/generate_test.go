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
