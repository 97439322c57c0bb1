package train

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
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"gorgonia.org/tensor"
)

// docsText returns the paragraphs of this repository's README and docs: real
// English text that every checkout has (the fortunes corpus is the one
// `edgesplit train --arch gpt-tiny` reads; see fortunes below).
func docsText(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	var entries []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range strings.Split(string(b), "\n\n") {
			if p = strings.TrimSpace(p); p != "" {
				entries = append(entries, p)
			}
		}
	}
	if len(entries) < 100 {
		t.Fatalf("%d paragraphs in the docs", len(entries))
	}
	return entries
}

// fortunes reads the Debian fortunes corpus; it skips when the package is
// missing, except under CI (EDGESPLIT_REQUIRE_ORT, which .ci/run sets after
// installing it).
func fortunes(t *testing.T) []string {
	t.Helper()
	entries, err := lm.ReadCorpus(lm.DefaultCorpus)
	if err != nil {
		if os.Getenv("EDGESPLIT_REQUIRE_ORT") != "" {
			t.Fatalf("the fortunes corpus (Debian package fortunes): %v", err)
		}
		t.Skipf("the fortunes corpus (Debian package fortunes): %v", err)
	}
	return entries
}

// unigramPerplexity is the held-out perplexity of the best context-free
// model: each token's training frequency (add-one smoothed). A language
// model that learned nothing from the context cannot beat it.
func unigramPerplexity(train, held []int) float64 {
	counts := make([]float64, lm.VocabSize)
	for _, t := range train {
		counts[t]++
	}
	total := float64(len(train) + lm.VocabSize)
	var nll float64
	for _, t := range held {
		nll -= math.Log((counts[t] + 1) / total)
	}
	return math.Exp(nll / float64(len(held)))
}

// TestRunLMShort trains gpt-tiny for two short epochs on the docs' text and
// checks that it learns from the context (the loss falls; the held-out
// perplexity, measured on the engine, is below 0.8 × the unigram model's,
// which knows each character's frequency and nothing else), that its card
// adds up, and that the saved ONNX file reloads to the same perplexity.
func TestRunLMShort(t *testing.T) {
	entries := docsText(t)
	limit, epochs := 40000, 2
	if !testing.Short() {
		limit, epochs = 120000, 2
	}
	cfg := LMConfig{Entries: entries, HoldEvery: 10, Limit: limit, Epochs: epochs, Seed: 3, LRDecay: 0.8}
	res, err := RunLM(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Card
	trainText, heldText, _ := lm.Split(entries, 10)
	trainToks, heldToks := lm.Stream(trainText)[:limit], lm.Stream(heldText)
	uni := unigramPerplexity(trainToks, heldToks)
	t.Logf("gpt-tiny, %d epochs on %d tokens: loss %.3f → %.3f, held-out perplexity %.2f (unigram %.2f, uniform %d) over %d tokens, %.0f windows/s",
		epochs, c.TrainTokens, res.Epochs[0].Loss, res.Epochs[len(res.Epochs)-1].Loss, c.HeldPerplexity, uni, lm.VocabSize, c.HeldScored,
		res.Epochs[len(res.Epochs)-1].ImagesPerSec)
	if !(res.Epochs[1].Loss < res.Epochs[0].Loss) {
		t.Errorf("loss %v then %v: want falling", res.Epochs[0].Loss, res.Epochs[1].Loss)
	}
	if !(c.HeldPerplexity < 0.8*uni) {
		t.Errorf("held-out perplexity %.2f, want below 0.8 × the unigram model's %.2f", c.HeldPerplexity, uni)
	}
	if int64(c.Params) != zoo.ParamCount(zoo.GPTTiny(1)) || c.Context != zoo.GPTTinyConfig.Context || c.TrainTokens != limit ||
		c.HeldTokens != len(heldToks) || c.HeldScored != len(lm.Windows(len(heldToks), c.Context))*c.Context || c.Epochs != epochs {
		t.Errorf("card %+v does not add up (params %d, %d held-out tokens)", c, zoo.ParamCount(zoo.GPTTiny(1)), len(heldToks))
	}

	path := filepath.Join(t.TempDir(), "gpt.onnx")
	if err := res.Save(path); err != nil {
		t.Fatal(err)
	}
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lm.New(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ppl, _, err := m.Perplexity(context.Background(), heldToks)
	if err != nil {
		t.Fatal(err)
	}
	if ppl != c.HeldPerplexity {
		t.Errorf("reloaded model: perplexity %v, card %v", ppl, c.HeldPerplexity)
	}
	if _, err := os.Stat(LMCardPath(path)); err != nil {
		t.Errorf("card not written: %v", err)
	}
}

// TestLMSplitsBitIdentical cuts a gpt-tiny at every position whose boundary
// is a single tensor (between the blocks, around the head) and checks that
// head then tail gives exactly the unsplit engine's probabilities: the
// causal mask is a constant of the pieces, not a boundary tensor.
func TestLMSplitsBitIdentical(t *testing.T) {
	g, err := model.Simplify(zoo.GPTTiny(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, zoo.GPTTinyConfig.Context*lm.VocabSize)
	for p, id := range lm.Encode("Every cut of a causal model must agree with the whole, bit for bit.")[:zoo.GPTTinyConfig.Context] {
		x[p*lm.VocabSize+id] = 1
	}
	in := func() *tensor.Dense {
		return tensor.New(tensor.WithShape(1, zoo.GPTTinyConfig.Context, lm.VocabSize), tensor.WithBacking(slices.Clone(x)))
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ref, err := net.NewExtractor().Run(context.Background(), in())
	if err != nil {
		t.Fatal(err)
	}
	want := ref[0].Data().([]float32)
	cuts, err := partition.Cuts(g)
	if err != nil {
		t.Fatal(err)
	}
	ks := partition.SingleTensorCuts(cuts)
	if len(ks) < zoo.GPTTinyConfig.Depth+2 {
		t.Fatalf("%d single-tensor cuts: %v", len(ks), ks)
	}
	for _, c := range cuts {
		for _, b := range c.Boundary {
			if b == zoo.CausalMaskName {
				t.Fatalf("cut %d carries the causal mask", c.K)
			}
		}
	}
	for _, k := range ks {
		r, err := partition.NewRunner(g, k, model.Options{})
		if err != nil {
			t.Fatalf("cut %d: %v", k, err)
		}
		out, _, err := r.Run(context.Background(), in())
		if err != nil {
			t.Fatalf("cut %d: %v", k, err)
		}
		if got := out[0].Data().([]float32); !slices.Equal(got, want) {
			t.Fatalf("cut %d of %d: probabilities differ from the unsplit run", k, len(g.Nodes))
		}
	}
	t.Logf("%d cuts of %d nodes, each bit-identical", len(ks), len(g.Nodes))
}

func TestRunLMErrors(t *testing.T) {
	ctx := context.Background()
	text := []string{"a b c d e f g h i j k l m n o p q r s t u v w x y z " + strings.Repeat("x", 200), "b", "c"}
	for name, c := range map[string]struct {
		cfg  LMConfig
		is   error
		want string
	}{
		"image model":  {LMConfig{Arch: "seed-cnn", Entries: text}, ErrUnsupported, "language model"},
		"unknown arch": {LMConfig{Arch: "gpt-huge", Entries: text}, nil, "gpt-huge"},
		"short text":   {LMConfig{Entries: []string{"tiny", "text", "here"}, HoldEvery: 2}, lm.ErrNoText, "tokens"},
		"bad split":    {LMConfig{Entries: text, HoldEvery: 1}, nil, "hold out"},
		"bad decay":    {LMConfig{Entries: text, LRDecay: 2}, nil, "decay"},
		"bad epochs":   {LMConfig{Entries: text, Epochs: -1}, nil, "epochs"},
		"no corpus":    {LMConfig{Corpus: filepath.Join(t.TempDir(), "none")}, os.ErrNotExist, "corpus"},
	} {
		_, err := RunLM(ctx, c.cfg)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: RunLM error %v, want one saying %q", name, err, c.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := RunLM(cctx, LMConfig{Entries: docsText(t), Limit: 5000}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if !IsLM("gpt-tiny") || IsLM("vit-tiny") {
		t.Error("IsLM")
	}
	if got := LMCardPath("dir.v1/m.onnx"); got != "dir.v1/m.lm.json" {
		t.Errorf("LMCardPath = %q", got)
	}
	if got := LMCardPath("dir.v1/m"); got != "dir.v1/m.lm.json" {
		t.Errorf("LMCardPath = %q", got)
	}
}
