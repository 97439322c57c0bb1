package lm_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
)

func TestTokenizerRoundTrip(t *testing.T) {
	tests := []struct {
		in, out string
		ids     []int
	}{
		{" ~", " ~", []int{0, 94}},
		{"A\nb", "A\nb", []int{33, lm.Newline, 66}},
		{"\té", "\uFFFD\uFFFD", []int{lm.Unknown, lm.Unknown}},
		{"", "", []int{}},
	}
	for _, tt := range tests {
		ids := lm.Encode(tt.in)
		if !slices.Equal(ids, tt.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tt.in, ids, tt.ids)
		}
		if got := lm.Decode(ids); got != tt.out {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", tt.in, got, tt.out)
		}
	}
	if got := lm.Decode([]int{-1, lm.VocabSize, 1 << 30}); got != "\uFFFD\uFFFD\uFFFD" {
		t.Errorf("Decode of ids outside the vocabulary = %q", got)
	}
	if zoo.GPTTinyConfig.Vocab != lm.VocabSize {
		t.Errorf("gpt-tiny has %d tokens, the tokenizer %d", zoo.GPTTinyConfig.Vocab, lm.VocabSize)
	}
}

// FuzzTokenizer checks that Encode never panics, yields one in-vocabulary id
// per rune, and that Decode inverts it wherever the text is in the
// vocabulary.
func FuzzTokenizer(f *testing.F) {
	f.Add("Hello,\nworld!")
	f.Add("\x00\xff\té")
	f.Fuzz(func(t *testing.T, s string) {
		ids := lm.Encode(s)
		if len(ids) != len([]rune(s)) {
			t.Fatalf("%d ids for %d runes", len(ids), len([]rune(s)))
		}
		for _, id := range ids {
			if id < 0 || id >= lm.VocabSize {
				t.Fatalf("id %d outside the vocabulary", id)
			}
		}
		if !slices.Contains(ids, lm.Unknown) && lm.Decode(ids) != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, lm.Decode(ids))
		}
	})
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadCorpus(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b":        "second file\n%\n",
		"a":        "\nfirst entry,\r\n  two lines\n\n%\n%\nsecond entry\n%\nthird",
		"a.dat":    "\x00\x00index",
		"a.u8":     "ignored",
		".hidden":  "ignored\n%\n",
		"off/rude": "ignored\n%\n",
	})
	got, err := lm.ReadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"first entry,\n  two lines", "second entry", "third", "second file"}
	if !slices.Equal(got, want) {
		t.Errorf("ReadCorpus = %q, want %q", got, want)
	}

	for name, c := range map[string]struct {
		files map[string]string
		is    error
		msg   string
	}{
		"empty":     {map[string]string{"x": "\n%\n  \n%\n"}, lm.ErrNoText, "no text"},
		"no files":  {map[string]string{"x.dat": "a\n%\nb"}, lm.ErrNoText, "no text"},
		"binary":    {map[string]string{"x": "ok\n%\nbad\x00byte\n"}, nil, "NUL byte"},
		"long line": {map[string]string{"x": strings.Repeat("a", 2<<20)}, nil, "too long"},
	} {
		_, err := lm.ReadCorpus(writeFiles(t, c.files))
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: ReadCorpus error %v, want one saying %q", name, err, c.msg)
		}
	}
	if _, err := lm.ReadCorpus(filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: error %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestSplitStreamWindows(t *testing.T) {
	entries := []string{"a", "b", "c", "d", "e"}
	train, held, err := lm.Split(entries, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train, []string{"b", "d"}) || !slices.Equal(held, []string{"a", "c", "e"}) {
		t.Errorf("Split = %q, %q", train, held)
	}
	for _, every := range []int{-1, 0, 1} {
		if _, _, err := lm.Split(entries, every); err == nil {
			t.Errorf("Split(every %d) accepted", every)
		}
	}
	if _, _, err := lm.Split([]string{"only"}, 2); !errors.Is(err, lm.ErrNoText) {
		t.Errorf("Split of one entry: %v, want ErrNoText", err)
	}
	if got := lm.Decode(lm.Stream([]string{"x", "y"})); got != "x\n%\ny\n%\n" {
		t.Errorf("Stream = %q", got)
	}
	for _, c := range []struct {
		n, ctx int
		want   []int
	}{{10, 3, []int{0, 3, 6}}, {9, 3, []int{0, 3}}, {3, 3, nil}, {4, 3, []int{0}}} {
		if got := lm.Windows(c.n, c.ctx); !slices.Equal(got, c.want) {
			t.Errorf("Windows(%d, %d) = %v, want %v", c.n, c.ctx, got, c.want)
		}
	}
}

// smallGPT is a 2-block GPT over the tokenizer's vocabulary with a context
// of 16, quick to compile and run.
func smallGPT(t *testing.T) *lm.Model {
	t.Helper()
	g, err := zoo.BuildGPT("gpt-test", zoo.GPTConfig{Vocab: lm.VocabSize, Context: 16, Dim: 32, Depth: 2, Heads: 4, MLP: 64}, 5)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lm.New(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestModelIsCausal checks on the engine that the probabilities at position
// t do not depend on any later token, so Next (which zeroes the rows past
// the text) gives what a full window gives at the same position.
func TestModelIsCausal(t *testing.T) {
	ctx := context.Background()
	m := smallGPT(t)
	a := lm.Encode("the quick brown fox jumps")
	b := slices.Clone(a)
	for i := 8; i < len(b); i++ {
		b[i] = (b[i] + 7) % lm.VocabSize
	}
	for n := 1; n <= 8; n++ {
		pa, err := m.Next(ctx, a[:n])
		if err != nil {
			t.Fatal(err)
		}
		pa = slices.Clone(pa)
		pb, err := m.Next(ctx, b[:n])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(pa, pb) {
			t.Fatalf("prefix of %d tokens: probabilities differ with later tokens changed", n)
		}
		var sum float64
		for _, p := range pa {
			sum += float64(p)
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("prefix of %d tokens: probabilities sum to %v", n, sum)
		}
	}
	// A full window scores position 7 the same way as an 8-token prefix
	// (after a longer prefix has been run: no row may be left over).
	long, err := m.Next(ctx, a[:16])
	if err != nil || len(long) != lm.VocabSize {
		t.Fatal(len(long), err)
	}
	p8, _ := m.Next(ctx, a[:8])
	p8 = slices.Clone(p8)
	pb8, _ := m.Next(ctx, b[:8])
	if !slices.Equal(p8, pb8) {
		t.Error("an 8-token prefix after a 16-token one differs")
	}
}

func TestPerplexityAndGenerate(t *testing.T) {
	ctx := context.Background()
	m := smallGPT(t)
	if m.Context() != 16 {
		t.Fatalf("Context = %d", m.Context())
	}
	toks := lm.Encode(strings.Repeat("abcdefgh", 10)) // 80 tokens: 4 windows of 16+1
	ppl, scored, err := m.Perplexity(ctx, toks)
	if err != nil {
		t.Fatal(err)
	}
	if scored != 64 {
		t.Errorf("scored %d tokens, want 64", scored)
	}
	// Untrained weights: close to the uniform perplexity (the vocabulary).
	if !(ppl > lm.VocabSize/3 && ppl < lm.VocabSize*3) {
		t.Errorf("untrained perplexity %v, want near %d", ppl, lm.VocabSize)
	}
	// The perplexity is exp of the mean negative log-probability Next
	// gives each scored token.
	var nll float64
	for _, s := range lm.Windows(len(toks), 16) {
		for p := 1; p <= 16; p++ {
			q, err := m.Next(ctx, toks[s:s+p])
			if err != nil {
				t.Fatal(err)
			}
			nll -= math.Log(float64(q[toks[s+p]]))
		}
	}
	if want := math.Exp(nll / 64); math.Abs(ppl-want) > 1e-6*want {
		t.Errorf("Perplexity = %v, token by token %v", ppl, want)
	}
	if _, _, err := m.Perplexity(ctx, toks[:16]); !errors.Is(err, lm.ErrNoText) {
		t.Errorf("Perplexity of 16 tokens: %v, want ErrNoText", err)
	}

	prompt := lm.Encode("once upon a time, ")
	var emitted []int
	out, err := m.Generate(ctx, prompt, 20, func(tok int) error { emitted = append(emitted, tok); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 20 || !slices.Equal(out, emitted) {
		t.Fatalf("Generate = %v, emitted %v", out, emitted)
	}
	// Greedy: each token is the argmax of Next over everything before it.
	seq := slices.Clone(prompt)
	for i, tok := range out {
		p, err := m.Next(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if lm.Argmax(p) != tok {
			t.Fatalf("token %d: generated %d, argmax %d", i, tok, lm.Argmax(p))
		}
		seq = append(seq, tok)
	}
	again, _ := m.Generate(ctx, prompt, 20, nil)
	if !slices.Equal(out, again) {
		t.Error("Generate is not deterministic")
	}
	stop := errors.New("stop")
	got, err := m.Generate(ctx, prompt, 20, func(int) error {
		return stop
	})
	if !errors.Is(err, stop) || len(got) != 1 {
		t.Errorf("emit error: Generate = %v, %v; want one token and the error", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Generate(cctx, prompt, 5, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	for name, f := range map[string]func() error{
		"empty prompt": func() error { _, err := m.Generate(ctx, nil, 3, nil); return err },
		"negative n":   func() error { _, err := m.Generate(ctx, prompt, -1, nil); return err },
		"bad token":    func() error { _, err := m.Next(ctx, []int{1, lm.VocabSize}); return err },
		"no tokens":    func() error { _, err := m.Next(ctx, nil); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewRejectsOtherGraphs(t *testing.T) {
	other, err := zoo.BuildGPT("gpt-other", zoo.GPTConfig{Vocab: 50, Context: 8, Dim: 16, Depth: 1, Heads: 2, MLP: 32}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*model.Graph{"nil": nil, "cnn": zoo.SeedCNN(1), "vocab 50": other} {
		if m, err := lm.New(g, model.Options{}); !errors.Is(err, lm.ErrNotLM) {
			t.Errorf("%s: New = %v, %v; want ErrNotLM", name, m, err)
		}
	}
}

func TestStart(t *testing.T) {
	// Context 4: windows of 1..4 tokens, then jumps to the last 2 that
	// grow to 4 again.
	want := []int{0, 0, 0, 0, 0, 3, 3, 3, 6, 6, 6, 9}
	for n := 1; n < len(want); n++ {
		if got := lm.Start(n, 4); got != want[n] {
			t.Errorf("Start(%d, 4) = %d, want %d", n, got, want[n])
		}
	}
	for _, c := range []int{1, 2, 3, 16, 64} {
		prev := 0
		for n := 1; n < 10*c+5; n++ {
			s := lm.Start(n, c)
			if w := n - s; w < 1 || w > c || s < prev {
				t.Fatalf("Start(%d, %d) = %d: window %d tokens, previous start %d", n, c, s, w, prev)
			}
			if s != prev && n-s != max(c/2, 1) {
				t.Fatalf("Start(%d, %d) jumps to a window of %d tokens, want %d", n, c, n-s, max(c/2, 1))
			}
			prev = s
		}
	}
}
