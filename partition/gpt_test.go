package partition

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// peakyGPT is a 3-block GPT over lm's vocabulary with a context of 16 whose
// output head is scaled up, so that its next-token distributions have clear
// maxima (greedy decoding is then decided by the model, not by rounding).
func peakyGPT(t *testing.T) *model.Graph {
	t.Helper()
	g, err := zoo.BuildGPT("gpt-peaky", zoo.GPTConfig{Vocab: lm.VocabSize, Context: 16, Dim: 32, Depth: 3, Heads: 4, MLP: 64}, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"head.weight", "tok_embed", "pos_embed"} {
		w := g.Initializers[name].Data().([]float32)
		for i := range w {
			w[i] *= 25
		}
	}
	return g
}

func decoder(t *testing.T, g *model.Graph, cuts ...int) *GPTDecoder {
	t.Helper()
	stages, err := GPTStages(g, cuts, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range stages {
			s.Close()
		}
	})
	d, err := NewGPTDecoder(stages)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGPTStepMatchesFullWindow checks the key/value cache: prefill of a
// prompt, then one step per token, gives at every position the
// probabilities the full graph gives on the whole window (lm.Model), within
// 1e-5.
func TestGPTStepMatchesFullWindow(t *testing.T) {
	ctx := context.Background()
	g := peakyGPT(t)
	m, err := lm.New(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := decoder(t, g)
	toks := lm.Encode("key/value caches!") // 17 tokens: one more than the context
	p, err := d.prefill(ctx, toks[:5])
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for n := 5; n <= 16; n++ {
		want, err := m.Next(ctx, toks[:n])
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			worst = max(worst, math.Abs(float64(p[j]-want[j])))
		}
		if n < 16 {
			if p, err = d.step(ctx, toks[n], n); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("12 positions: max |cached − full window| = %.2g", worst)
	if worst > 1e-5 {
		t.Errorf("cached decoding differs from the full window by %g", worst)
	}
	// The cache is full: one more step is refused, as is a step out of order.
	if _, err := d.stages[0].Step(ctx, d.tokenT, 16); !errors.Is(err, ErrCache) {
		t.Errorf("step past the cache: %v, want ErrCache", err)
	}
	if _, err := d.prefill(ctx, toks[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.stages[0].Step(ctx, d.tokenT, 5); !errors.Is(err, ErrCache) {
		t.Errorf("step at 5 with 3 filled: %v, want ErrCache", err)
	}
}

// TestGPTSplitGeneration generates 120 tokens (7 window jumps at a context
// of 16) unsplit with the cache, split after block 1, after block 2 and
// after both, and without a cache (lm.Model): every run gives the same
// tokens, and per step each cut carries one Dim-wide hidden state.
func TestGPTSplitGeneration(t *testing.T) {
	ctx := context.Background()
	g := peakyGPT(t)
	m, err := lm.New(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := lm.Encode("Split me: ")
	want, err := m.Generate(ctx, prompt, 120, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cuts := range [][]int{nil, {1}, {2}, {1, 2}} {
		d := decoder(t, g, cuts...)
		var emitted []int
		got, err := d.Generate(ctx, prompt, 120, func(tok int) error { emitted = append(emitted, tok); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || !slices.Equal(emitted, want) {
			t.Fatalf("cuts %v: generated %q, without a cache %q", cuts, lm.Decode(got), lm.Decode(want))
		}
		if d.Prefills+d.Steps != 120-1+1 || d.Prefills < 2 {
			t.Errorf("cuts %v: %d prefills and %d steps for 120 tokens", cuts, d.Prefills, d.Steps)
		}
		for i, b := range d.Crossed {
			if min := int64(4 * 32 * d.Steps); b < min || b > min+int64(4*32*16*d.Prefills) {
				t.Errorf("cuts %v: cut %d carried %d bytes for %d steps and %d prefills", cuts, i, b, d.Steps, d.Prefills)
			}
		}
		t.Logf("cuts %v: %d prefills, %d steps, bytes per cut %v (%.0f per generated token)", cuts, d.Prefills, d.Steps, d.Crossed,
			float64(sum(d.Crossed))/120/float64(max(len(d.Crossed), 1)))
	}
}

// TestGPTSplitBitIdentical runs the same prefill and steps unsplit and
// split after every block: the probabilities agree bit for bit (each stage
// runs the unsplit graph's nodes on the same values).
func TestGPTSplitBitIdentical(t *testing.T) {
	ctx := context.Background()
	g := peakyGPT(t)
	whole, split := decoder(t, g), decoder(t, g, 1, 2)
	toks := lm.Encode("bit for bit, cut or not")
	pw, err := whole.prefill(ctx, toks[:4])
	if err != nil {
		t.Fatal(err)
	}
	ps, err := split.prefill(ctx, toks[:4])
	if err != nil {
		t.Fatal(err)
	}
	for n := 4; ; n++ {
		if !slices.Equal(pw, ps) {
			t.Fatalf("after %d tokens: split probabilities differ", n)
		}
		if n == 16 {
			break
		}
		if pw, err = whole.step(ctx, toks[n], n); err != nil {
			t.Fatal(err)
		}
		if ps, err = split.step(ctx, toks[n], n); err != nil {
			t.Fatal(err)
		}
	}
}

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

func TestGPTStagesErrors(t *testing.T) {
	g := peakyGPT(t)
	for _, cuts := range [][]int{{0}, {3}, {2, 1}, {1, 1}, {4}} {
		if _, err := GPTStages(g, cuts, model.Options{}); !errors.Is(err, ErrRange) {
			t.Errorf("cuts %v: %v, want ErrRange", cuts, err)
		}
	}
	if _, err := GPTStages(zoo.SeedCNN(1), nil, model.Options{}); !errors.Is(err, zoo.ErrNotGPT) {
		t.Errorf("a CNN: %v, want ErrNotGPT", err)
	}
	stages, err := GPTStages(g, []int{1}, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range stages {
			s.Close()
		}
	}()
	if _, err := NewGPTDecoder(stages[1:]); !errors.Is(err, ErrRange) {
		t.Errorf("decoder without the first stage: %v", err)
	}
	if _, err := NewGPTDecoder([]*GPTStage{stages[1], stages[0]}); !errors.Is(err, ErrRange) {
		t.Errorf("decoder with stages out of order: %v", err)
	}
	d, _ := NewGPTDecoder(stages)
	ctx := context.Background()
	for name, f := range map[string]func() error{
		"empty prompt": func() error { _, err := d.Generate(ctx, nil, 3, nil); return err },
		"bad token":    func() error { _, err := d.Generate(ctx, []int{lm.VocabSize}, 3, nil); return err },
		"negative n":   func() error { _, err := d.Generate(ctx, []int{1}, -1, nil); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestGPTCacheHandover prefills blocks [1,2) on one side ("the cloud") and
// decodes them on the other ("the edge") from the caches handed over: the
// probabilities are the unsplit model's bit for bit (prefill cut 1, decode
// cut 2).
func TestGPTCacheHandover(t *testing.T) {
	ctx := context.Background()
	g := peakyGPT(t)
	whole := decoder(t, g)
	stage := func(from, to int) *GPTStage {
		s, err := NewGPTStage(g, from, to, model.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	edgeA, edgeB := stage(0, 1), stage(1, 2)
	cloudC1, cloudC2 := stage(1, 2), stage(2, 3)
	c := edgeA.Config()
	toks := lm.Encode("handed over, bit for bit")
	const n = 5
	window := make([]float32, c.Context*c.Vocab)
	for p, id := range toks[:n] {
		window[p*c.Vocab+id] = 1
	}
	x := tensor.New(tensor.WithShape(1, c.Context, c.Vocab), tensor.WithBacking(window))
	h1, err := edgeA.Prefill(ctx, x, n)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := cloudC1.Prefill(ctx, h1, n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cloudC2.Prefill(ctx, h2, n)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := cloudC1.Caches(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := edgeB.LoadCaches(n, kv); err != nil {
		t.Fatal(err)
	}
	if edgeB.Filled() != n {
		t.Fatalf("loaded stage holds %d positions, want %d", edgeB.Filled(), n)
	}
	pw, err := whole.prefill(ctx, toks[:n])
	if err != nil {
		t.Fatal(err)
	}
	got := p.Data().([]float32)[(n-1)*c.Vocab : n*c.Vocab]
	for pos := n; ; pos++ {
		if !slices.Equal(got, pw) {
			t.Fatalf("at position %d the handed-over decode differs from the unsplit model", pos)
		}
		if pos == 14 {
			break
		}
		one := make([]float32, c.Vocab)
		one[toks[pos]] = 1
		y, err := edgeA.Step(ctx, tensor.New(tensor.WithShape(1, 1, c.Vocab), tensor.WithBacking(one)), pos)
		if err == nil {
			y, err = edgeB.Step(ctx, y, pos)
		}
		if err == nil {
			y, err = cloudC2.Step(ctx, y, pos)
		}
		if err != nil {
			t.Fatal(err)
		}
		got = y.Data().([]float32)
		if pw, err = whole.step(ctx, toks[pos], pos); err != nil {
			t.Fatal(err)
		}
	}

	// Bad hand-overs are refused, naming what is wrong.
	if _, err := cloudC1.Caches(n + 20); !errors.Is(err, ErrCache) {
		t.Errorf("Caches past the filled positions: %v", err)
	}
	for name, tc := range map[string]struct {
		n  int
		kv []*tensor.Dense
	}{
		"too few":      {n, kv[:1]},
		"wrong shape":  {n + 1, kv},
		"no tensor":    {n, []*tensor.Dense{nil, kv[1]}},
		"past context": {c.Context + 1, kv},
		"int64":        {n, []*tensor.Dense{tensor.New(tensor.WithShape(kv[0].Shape()...), tensor.Of(tensor.Int64)), kv[1]}},
	} {
		if err := edgeB.LoadCaches(tc.n, tc.kv); !errors.Is(err, ErrCache) {
			t.Errorf("%s: LoadCaches: %v, want ErrCache", name, err)
		}
	}
}
