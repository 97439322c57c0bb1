package lm

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// ErrNotLM is returned (wrapped) by New for a graph that is not shaped like
// a causal language model.
var ErrNotLM = errors.New("lm: not a language model")

// Model is a causal language model compiled on the engine. It is not safe
// for concurrent use (it owns one extractor and its input buffer).
type Model struct {
	net        *model.Net
	ex         *model.Extractor
	ctx, vocab int
	in         *tensor.Dense
	inData     []float32
	lastFilled int // positions of inData holding a one-hot row
}

// New compiles g with opts. g must have one input and one output, both
// 1×Context×Vocab (zoo.BuildGPT's shape), and Vocab must be VocabSize.
func New(g *model.Graph, opts model.Options) (*Model, error) {
	if g == nil || len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return nil, fmt.Errorf("%w: want one input and one output", ErrNotLM)
	}
	in, out := g.Inputs[0].Shape, g.Outputs[0].Shape
	if len(in) != 3 || in[0] != 1 || len(out) != 3 || out[0] != 1 || in[1] != out[1] || in[2] != out[2] || in[1] <= 0 {
		return nil, fmt.Errorf("%w: input %v and output %v, want both 1×context×vocab", ErrNotLM, in, out)
	}
	if in[2] != VocabSize {
		return nil, fmt.Errorf("%w: vocabulary of %d tokens, want the %d of this package's tokenizer", ErrNotLM, in[2], VocabSize)
	}
	net, err := model.Compile(g, opts)
	if err != nil {
		return nil, err
	}
	m := &Model{net: net, ex: net.NewExtractor(), ctx: in[1], vocab: in[2]}
	m.inData = make([]float32, m.ctx*m.vocab)
	m.in = tensor.New(tensor.WithShape(1, m.ctx, m.vocab), tensor.WithBacking(m.inData))
	return m, nil
}

// Context is the number of positions the model sees at once.
func (m *Model) Context() int { return m.ctx }

// Close releases the compiled net's threads.
func (m *Model) Close() error { return m.net.Close() }

// run feeds ids (at most Context) as positions 0..len−1 (the rest all
// zeros) and returns the 1×Context×Vocab probabilities.
func (m *Model) run(ctx context.Context, ids []int) ([]float32, error) {
	if len(ids) == 0 || len(ids) > m.ctx {
		return nil, fmt.Errorf("lm: %d tokens for a context of %d", len(ids), m.ctx)
	}
	clear(m.inData[:m.lastFilled*m.vocab])
	for t, id := range ids {
		if id < 0 || id >= m.vocab {
			return nil, fmt.Errorf("lm: token %d at position %d, want 0..%d", id, t, m.vocab-1)
		}
		m.inData[t*m.vocab+id] = 1
	}
	m.lastFilled = len(ids)
	outs, err := m.ex.Run(ctx, m.in)
	if err != nil {
		return nil, err
	}
	return outs[0].Data().([]float32), nil
}

// Perplexity returns exp of the mean negative log-likelihood of tokens
// under the model, and the number of tokens scored: the text is cut into
// non-overlapping windows of Context inputs, each scoring the next token at
// every position (a trailing part shorter than a window is left out).
func (m *Model) Perplexity(ctx context.Context, tokens []int) (ppl float64, scored int, err error) {
	var nll float64
	for _, s := range Windows(len(tokens), m.ctx) {
		p, err := m.run(ctx, tokens[s:s+m.ctx])
		if err != nil {
			return 0, 0, err
		}
		for t := 0; t < m.ctx; t++ {
			q := float64(p[t*m.vocab+tokens[s+t+1]])
			nll -= math.Log(max(q, 1e-30))
		}
		scored += m.ctx
	}
	if scored == 0 {
		return 0, 0, fmt.Errorf("lm: %d tokens: %w for one window of %d", len(tokens), ErrNoText, m.ctx+1)
	}
	return math.Exp(nll / float64(scored)), scored, nil
}

// Next returns the probabilities of the token that follows ids, seeing
// ids[Start(len(ids), Context):]; the slice is reused by the next call.
func (m *Model) Next(ctx context.Context, ids []int) ([]float32, error) {
	ids = ids[Start(len(ids), m.ctx):]
	p, err := m.run(ctx, ids)
	if err != nil {
		return nil, err
	}
	t := len(ids) - 1
	return p[t*m.vocab : (t+1)*m.vocab], nil
}

// Generate extends prompt by n tokens under greedy decoding (the most
// probable token each time, the lowest id on a tie; the window rule of
// Start), calling emit, when not
// nil, with each token as it is decided (an error from emit stops the
// generation and is returned). It returns the generated tokens.
func (m *Model) Generate(ctx context.Context, prompt []int, n int, emit func(tok int) error) ([]int, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("lm: empty prompt")
	}
	if n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("lm: %d tokens to generate, want 0..%d", n, 1<<20)
	}
	seq := append(make([]int, 0, len(prompt)+n), prompt...)
	for range n {
		p, err := m.Next(ctx, seq)
		if err != nil {
			return nil, err
		}
		tok := Argmax(p)
		seq = append(seq, tok)
		if emit != nil {
			if err := emit(tok); err != nil {
				return seq[len(prompt):], err
			}
		}
	}
	return seq[len(prompt):], nil
}

// Argmax returns the index of the largest value (the first on a tie).
func Argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// Start is the window rule of this package's generation: the index of the
// first of n known tokens that a model with a context of ctx positions sees
// when it predicts token n. Up to ctx tokens it sees them all; after that
// the window jumps: it keeps the last ctx/2 tokens (at positions 0…) and
// grows again to ctx before the next jump. A key/value cache can follow it
// (one re-prefill of ctx/2 tokens per ctx−ctx/2+1 generated), and Model
// (which recomputes every window) follows the same rule, so the two give
// the same tokens.
func Start(n, ctx int) int {
	if n <= ctx {
		return 0
	}
	keep := max(ctx/2, 1)
	return n - keep - (n-ctx-1)%(ctx-keep+1)
}
