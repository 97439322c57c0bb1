package partition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// ErrCache is returned (wrapped) when a GPT stage is stepped out of order:
// at a position other than the next free slot of its key/value cache, or
// past the end of it.
var ErrCache = errors.New("partition: key/value cache")

// GPTStage runs blocks [From, To) (0-based: block i is the graph's blk{i+1})
// of a GPT with a key/value cache of Context slots per block, the cache
// kept in the stage: where the stage runs is where its cache lives. The
// first stage also embeds the tokens and the last one applies the output
// head. Prefill runs a window of tokens through the stage's part of the
// full graph and fills its caches; Step runs one new token through its part
// of the decode-step graph (zoo.GPTStep), attending to the cache, and
// appends that token's keys and values. Between stages only the hidden
// state crosses: Context×Dim floats for a prefill, Dim for a step. A
// GPTStage is not safe for concurrent use.
type GPTStage struct {
	From, To int
	cfg      zoo.GPTConfig
	first    bool // embeds the tokens
	last     bool // ends with the probabilities

	prefill, step     *Piece
	prefillEx, stepEx *model.Extractor
	prefillIn         []*tensor.Dense // bound to the prefill piece's inputs
	stepIn            []*tensor.Dense
	prefillHidden     int // index in prefillIn of the hidden state (or tokens)
	stepHidden        int
	keys, values      [][]float32 // per own block: H×dh×C and H×C×dh
	keyT, valueT      []*tensor.Dense
	stepMask          []float32
	stepPos           []float32
	prefillOut        []int // index in the prefill piece's outputs of: result, then k,v per block
	stepOut           []int
	filled            int
}

// GPTStages cuts the GPT g (zoo.BuildGPT's layout, trained or not) after
// the blocks listed in cuts (ascending, each in 1..Depth−1; none: one stage
// with every block) and compiles each stage's part of the full graph and of
// the decode-step graph.
func GPTStages(g *model.Graph, cuts []int, opts model.Options) ([]*GPTStage, error) {
	pg, err := prepareGPT(g)
	if err != nil {
		return nil, err
	}
	bounds := append([]int{0}, cuts...)
	bounds = append(bounds, pg.cfg.Depth)
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] || bounds[i] > pg.cfg.Depth || (i < len(bounds)-1 && bounds[i] >= pg.cfg.Depth) {
			return nil, fmt.Errorf("%w: cuts %v of a %d-block GPT: want ascending block counts in 1..%d", ErrRange, cuts, pg.cfg.Depth, pg.cfg.Depth-1)
		}
	}
	var stages []*GPTStage
	for i := 1; i < len(bounds); i++ {
		s, err := pg.stage(bounds[i-1], bounds[i], opts)
		if err != nil {
			for _, p := range stages {
				p.Close()
			}
			return nil, err
		}
		stages = append(stages, s)
	}
	return stages, nil
}

// NewGPTStage compiles the one stage of the GPT g that runs blocks
// [from, to) (0 ≤ from < to ≤ Depth): what one node of a split generation
// runs.
func NewGPTStage(g *model.Graph, from, to int, opts model.Options) (*GPTStage, error) {
	pg, err := prepareGPT(g)
	if err != nil {
		return nil, err
	}
	if from < 0 || to <= from || to > pg.cfg.Depth {
		return nil, fmt.Errorf("%w: blocks [%d,%d) of a %d-block GPT", ErrRange, from, to, pg.cfg.Depth)
	}
	return pg.stage(from, to, opts)
}

// preparedGPT is a GPT's full graph (with its caches as outputs) and
// decode-step graph, simplified, with where each block starts in both.
type preparedGPT struct {
	cfg        zoo.GPTConfig
	full, step *model.Graph
	fb, sb     []int
}

func prepareGPT(g *model.Graph) (*preparedGPT, error) {
	c, err := zoo.GPTConfigOf(g)
	if err != nil {
		return nil, err
	}
	full, err := zoo.GPTWithCache(g)
	if err != nil {
		return nil, err
	}
	step, err := zoo.GPTStep(g)
	if err != nil {
		return nil, err
	}
	pg := &preparedGPT{cfg: c}
	if pg.full, err = model.Simplify(full, nil); err != nil {
		return nil, fmt.Errorf("partition: GPT with cache: %w", err)
	}
	if pg.step, err = model.Simplify(step, nil); err != nil {
		return nil, fmt.Errorf("partition: GPT step: %w", err)
	}
	if pg.fb, err = blockStarts(pg.full, c.Depth); err != nil {
		return nil, err
	}
	if pg.sb, err = blockStarts(pg.step, c.Depth); err != nil {
		return nil, err
	}
	return pg, nil
}

func (pg *preparedGPT) stage(from, to int, opts model.Options) (*GPTStage, error) {
	return newGPTStage(pg.full, pg.step, pg.cfg, from, to, pg.fb, pg.sb, opts)
}

// blockStarts returns, for b in 0..depth−1, the index in the simplified
// GPT graph g of the first node of block b+1, and at depth the index of the
// final LayerNorm (node "ln"), where the head begins.
func blockStarts(g *model.Graph, depth int) ([]int, error) {
	starts := make([]int, depth+1)
	for b := 0; b <= depth; b++ {
		match := func(n *model.Node) bool { return n.Name == "ln" }
		if b < depth {
			prefix := zoo.BlockPrefix(b + 1)
			match = func(n *model.Node) bool { return strings.HasPrefix(n.Name, prefix) }
		}
		i := slices.IndexFunc(g.Nodes, match)
		if i < 0 || (b > 0 && i <= starts[b-1]) {
			return nil, fmt.Errorf("%w: %s: block %d (of %d) does not start after the one before", zoo.ErrNotGPT, g.Name, b+1, depth)
		}
		starts[b] = i
	}
	return starts, nil
}

func newGPTStage(full, step *model.Graph, c zoo.GPTConfig, from, to int, fb, sb []int, opts model.Options) (*GPTStage, error) {
	s := &GPTStage{From: from, To: to, cfg: c, first: from == 0, last: to == c.Depth}
	// The first stage begins at node 0 (the embedding), the last ends
	// with the graph (the head).
	lo := func(starts []int, n int) int {
		if from == 0 {
			return 0
		}
		return starts[from]
	}
	hi := func(starts []int, n int) int {
		if to == c.Depth {
			return n
		}
		return starts[to]
	}
	var err error
	if s.prefill, err = CompilePiece(full, lo(fb, len(full.Nodes)), hi(fb, len(full.Nodes)), opts); err != nil {
		return nil, err
	}
	if s.step, err = CompilePiece(step, lo(sb, len(step.Nodes)), hi(sb, len(step.Nodes)), opts); err != nil {
		s.prefill.Net.Close()
		return nil, err
	}
	s.prefillEx, s.stepEx = s.prefill.Net.NewExtractor(), s.step.Net.NewExtractor()
	dh := c.Dim / c.Heads
	for b := from + 1; b <= to; b++ {
		k, v := make([]float32, c.Heads*dh*c.Context), make([]float32, c.Heads*c.Context*dh)
		s.keys, s.values = append(s.keys, k), append(s.values, v)
		s.keyT = append(s.keyT, tensor.New(tensor.WithShape(1, c.Heads, dh, c.Context), tensor.WithBacking(k)))
		s.valueT = append(s.valueT, tensor.New(tensor.WithShape(1, c.Heads, c.Context, dh), tensor.WithBacking(v)))
	}
	s.stepMask = make([]float32, c.Context+1)
	s.stepPos = make([]float32, c.Context)
	maskT := tensor.New(tensor.WithShape(1, 1, 1, c.Context+1), tensor.WithBacking(s.stepMask))
	posT := tensor.New(tensor.WithShape(1, 1, c.Context), tensor.WithBacking(s.stepPos))
	// Bind each piece's inputs: the caches and step inputs are the
	// stage's own; exactly one other input is the hidden state (or, for
	// the first stage, the tokens).
	bind := func(p *Piece, step bool) ([]*tensor.Dense, int, error) {
		in := make([]*tensor.Dense, len(p.Graph.Inputs))
		hidden := -1
		for i, vi := range p.Graph.Inputs {
			switch b, kind := cacheInput(vi.Name, from, to); {
			case kind == 'k':
				in[i] = s.keyT[b-from-1]
			case kind == 'v':
				in[i] = s.valueT[b-from-1]
			case step && vi.Name == zoo.StepMaskName:
				in[i] = maskT
			case step && vi.Name == zoo.StepPositionName:
				in[i] = posT
			case hidden < 0:
				hidden = i
			default:
				return nil, 0, fmt.Errorf("%w: stage [%d,%d) needs %q and %q from the previous stage; want one hidden state", zoo.ErrNotGPT, from, to,
					p.Graph.Inputs[hidden].Name, vi.Name)
			}
		}
		if hidden < 0 {
			return nil, 0, fmt.Errorf("%w: stage [%d,%d) takes no hidden state", zoo.ErrNotGPT, from, to)
		}
		return in, hidden, nil
	}
	outs := func(p *Piece, k, v func(int) string) ([]int, error) {
		idx := []int{-1}
		names := []string{}
		for b := from + 1; b <= to; b++ {
			names = append(names, k(b), v(b))
		}
		for i, o := range p.Graph.Outputs {
			if j := slices.Index(names, o.Name); j >= 0 {
				continue
			} else if idx[0] < 0 {
				idx[0] = i
			}
		}
		for _, n := range names {
			j := slices.IndexFunc(p.Graph.Outputs, func(o model.ValueInfo) bool { return o.Name == n })
			if j < 0 {
				return nil, fmt.Errorf("%w: stage [%d,%d) does not output %q", zoo.ErrNotGPT, from, to, n)
			}
			idx = append(idx, j)
		}
		if idx[0] < 0 || len(p.Graph.Outputs) != len(idx) {
			return nil, fmt.Errorf("%w: stage [%d,%d) outputs %d tensors, want the hidden state (or probabilities) and its caches", zoo.ErrNotGPT, from, to, len(p.Graph.Outputs))
		}
		return idx, nil
	}
	if s.prefillIn, s.prefillHidden, err = bind(s.prefill, false); err == nil {
		if s.stepIn, s.stepHidden, err = bind(s.step, true); err == nil {
			if s.prefillOut, err = outs(s.prefill, zoo.PastKeysName, zoo.PastValuesName); err == nil {
				s.stepOut, err = outs(s.step, zoo.StepKeysName, zoo.StepValuesName)
			}
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// cacheInput reports whether name is the key ('k') or value ('v') cache of
// a block b in (from, to].
func cacheInput(name string, from, to int) (b int, kind byte) {
	for b := from + 1; b <= to; b++ {
		switch name {
		case zoo.PastKeysName(b):
			return b, 'k'
		case zoo.PastValuesName(b):
			return b, 'v'
		}
	}
	return 0, 0
}

// Close releases the stage's compiled pieces.
func (s *GPTStage) Close() error {
	var errs []error
	for _, p := range []*Piece{s.prefill, s.step} {
		if p != nil && p.Net != nil {
			errs = append(errs, p.Net.Close())
		}
	}
	return errors.Join(errs...)
}

// Config is the GPT's configuration.
func (s *GPTStage) Config() zoo.GPTConfig { return s.cfg }

// Filled is the number of cache slots holding a token.
func (s *GPTStage) Filled() int { return s.filled }

// Prefill runs the window x — 1×Context×Vocab one-hot tokens for the first
// stage, else the previous stage's hidden state (1×Context×Dim) — of
// which the first n positions hold tokens, replaces the cache by their
// keys and values, and returns the hidden state for the next stage or, for
// the last stage, the 1×Context×Vocab probabilities. The result is owned by
// the stage until its next call.
func (s *GPTStage) Prefill(ctx context.Context, x *tensor.Dense, n int) (*tensor.Dense, error) {
	if n < 1 || n > s.cfg.Context {
		return nil, fmt.Errorf("%w: prefill of %d tokens, want 1..%d", ErrCache, n, s.cfg.Context)
	}
	s.prefillIn[s.prefillHidden] = x
	out, err := s.prefillEx.Run(ctx, s.prefillIn...)
	if err != nil {
		return nil, fmt.Errorf("partition: GPT blocks [%d,%d) prefill: %w", s.From, s.To, err)
	}
	for j := range s.keys {
		copy(s.keys[j], out[s.prefillOut[1+2*j]].Data().([]float32))
		copy(s.values[j], out[s.prefillOut[2+2*j]].Data().([]float32))
	}
	s.filled = n
	return out[s.prefillOut[0]], nil
}

// Step runs one new token at position pos, which must be Filled() (the next
// free slot): x is its 1×1×Vocab one-hot row for the first stage, else the
// previous stage's 1×1×Dim hidden state. It appends the token's keys and
// values to the cache and returns the hidden state for the next stage or,
// for the last stage, the 1×1×Vocab probabilities of the token after it.
func (s *GPTStage) Step(ctx context.Context, x *tensor.Dense, pos int) (*tensor.Dense, error) {
	if pos != s.filled || pos >= s.cfg.Context {
		return nil, fmt.Errorf("%w: step at position %d, the cache holds %d of %d", ErrCache, pos, s.filled, s.cfg.Context)
	}
	inf := float32(math.Inf(-1))
	for i := range s.stepMask[:s.cfg.Context] {
		if i < pos {
			s.stepMask[i] = 0
		} else {
			s.stepMask[i] = inf
		}
	}
	s.stepMask[s.cfg.Context] = 0
	clear(s.stepPos)
	s.stepPos[pos] = 1
	s.stepIn[s.stepHidden] = x
	out, err := s.stepEx.Run(ctx, s.stepIn...)
	if err != nil {
		return nil, fmt.Errorf("partition: GPT blocks [%d,%d) step: %w", s.From, s.To, err)
	}
	c := s.cfg.Context
	dh := s.cfg.Dim / s.cfg.Heads
	for j := range s.keys {
		k := out[s.stepOut[1+2*j]].Data().([]float32) // H×dh×1
		v := out[s.stepOut[2+2*j]].Data().([]float32) // H×1×dh
		for h := 0; h < s.cfg.Heads; h++ {
			for d := 0; d < dh; d++ {
				s.keys[j][(h*dh+d)*c+pos] = k[h*dh+d]
			}
			copy(s.values[j][(h*c+pos)*dh:][:dh], v[h*dh:][:dh])
		}
	}
	s.filled++
	return out[s.stepOut[0]], nil
}

// Caches returns the key/value caches of the stage's blocks for their
// first n positions (n ≤ Filled()): per block From+1..To its keys as a
// 1×Heads×dh×n tensor, then its values as 1×Heads×n×dh — what another
// stage over the same blocks needs to take over decoding with LoadCaches
// (prefilled here, decoded there). The tensors are fresh copies.
func (s *GPTStage) Caches(n int) ([]*tensor.Dense, error) {
	if n < 1 || n > s.filled {
		return nil, fmt.Errorf("%w: caches of %d positions, the stage holds %d", ErrCache, n, s.filled)
	}
	c, h := s.cfg.Context, s.cfg.Heads
	dh := s.cfg.Dim / h
	out := make([]*tensor.Dense, 0, 2*len(s.keys))
	for j := range s.keys {
		k := make([]float32, h*dh*n)
		for r := 0; r < h*dh; r++ {
			copy(k[r*n:(r+1)*n], s.keys[j][r*c:r*c+n])
		}
		v := make([]float32, h*n*dh)
		for hh := 0; hh < h; hh++ {
			copy(v[hh*n*dh:(hh+1)*n*dh], s.values[j][hh*c*dh:hh*c*dh+n*dh])
		}
		out = append(out, tensor.New(tensor.WithShape(1, h, dh, n), tensor.WithBacking(k)),
			tensor.New(tensor.WithShape(1, h, n, dh), tensor.WithBacking(v)))
	}
	return out, nil
}

// LoadCaches replaces the stage's caches by kv, as Caches(n) of a stage
// over the same blocks returned them, as if this stage had prefilled those
// n positions: the next Step is at position n.
func (s *GPTStage) LoadCaches(n int, kv []*tensor.Dense) error {
	c, h := s.cfg.Context, s.cfg.Heads
	dh := s.cfg.Dim / h
	if n < 1 || n > c {
		return fmt.Errorf("%w: caches of %d positions, the context is %d", ErrCache, n, c)
	}
	if len(kv) != 2*len(s.keys) {
		return fmt.Errorf("%w: %d cache tensors for blocks [%d,%d), want %d", ErrCache, len(kv), s.From, s.To, 2*len(s.keys))
	}
	for i, t := range kv {
		want := []int{1, h, dh, n}
		if i%2 == 1 {
			want = []int{1, h, n, dh}
		}
		if t == nil || !slices.Equal([]int(t.Shape()), want) {
			var got []int
			if t != nil {
				got = t.Shape()
			}
			return fmt.Errorf("%w: cache tensor %d (block %d) is %v, want %v", ErrCache, i, s.From+1+i/2, got, want)
		}
		if _, ok := t.Data().([]float32); !ok {
			return fmt.Errorf("%w: cache tensor %d is %v, want float32", ErrCache, i, t.Dtype())
		}
	}
	for j := range s.keys {
		k, v := kv[2*j].Data().([]float32), kv[2*j+1].Data().([]float32)
		for r := 0; r < h*dh; r++ {
			copy(s.keys[j][r*c:r*c+n], k[r*n:(r+1)*n])
		}
		for hh := 0; hh < h; hh++ {
			copy(s.values[j][hh*c*dh:hh*c*dh+n*dh], v[hh*n*dh:(hh+1)*n*dh])
		}
	}
	s.filled = n
	return nil
}

// GPTDecoder generates greedily through a chain of GPT stages in one
// process, under lm.Start's window rule: the prompt (its window) is
// prefilled, then each token steps through the stages, and when the window
// jumps its new start is prefilled again. It gives the tokens lm.Model
// gives (which recomputes every window), and counts what would cross each
// cut. Across machines, node/ runs the stages where the scheduler puts them
// and carries the same hidden states. A GPTDecoder is not safe for
// concurrent use.
type GPTDecoder struct {
	stages  []*GPTStage
	cfg     zoo.GPTConfig
	window  []float32
	windowT *tensor.Dense
	token   []float32
	tokenT  *tensor.Dense
	// Crossed counts the float32 bytes of hidden state handed from each
	// stage to the next (len(stages)−1 entries): only the rows of real
	// tokens for a prefill, Dim values per step.
	Crossed []int64
	// Prefills and Steps count the calls of each kind (per stage).
	Prefills, Steps int
}

// NewGPTDecoder chains stages (from GPTStages, in order).
func NewGPTDecoder(stages []*GPTStage) (*GPTDecoder, error) {
	if len(stages) == 0 || !stages[0].first || !stages[len(stages)-1].last {
		return nil, fmt.Errorf("%w: want stages from the first block to the last", ErrRange)
	}
	for i := 1; i < len(stages); i++ {
		if stages[i].From != stages[i-1].To {
			return nil, fmt.Errorf("%w: stage %d starts at block %d, the one before ends at %d", ErrRange, i, stages[i].From, stages[i-1].To)
		}
	}
	c := stages[0].cfg
	d := &GPTDecoder{stages: stages, cfg: c, Crossed: make([]int64, len(stages)-1)}
	d.window = make([]float32, c.Context*c.Vocab)
	d.windowT = tensor.New(tensor.WithShape(1, c.Context, c.Vocab), tensor.WithBacking(d.window))
	d.token = make([]float32, c.Vocab)
	d.tokenT = tensor.New(tensor.WithShape(1, 1, c.Vocab), tensor.WithBacking(d.token))
	return d, nil
}

func (d *GPTDecoder) prefill(ctx context.Context, ids []int) ([]float32, error) {
	clear(d.window)
	for p, id := range ids {
		d.window[p*d.cfg.Vocab+id] = 1
	}
	x := d.windowT
	var err error
	for i, s := range d.stages {
		if x, err = s.Prefill(ctx, x, len(ids)); err != nil {
			return nil, err
		}
		if i < len(d.Crossed) {
			d.Crossed[i] += int64(4 * len(ids) * d.cfg.Dim)
		}
	}
	d.Prefills++
	row := len(ids) - 1
	return x.Data().([]float32)[row*d.cfg.Vocab : (row+1)*d.cfg.Vocab], nil
}

func (d *GPTDecoder) step(ctx context.Context, id, pos int) ([]float32, error) {
	clear(d.token)
	d.token[id] = 1
	x := d.tokenT
	var err error
	for i, s := range d.stages {
		if x, err = s.Step(ctx, x, pos); err != nil {
			return nil, err
		}
		if i < len(d.Crossed) {
			d.Crossed[i] += int64(4 * d.cfg.Dim)
		}
	}
	d.Steps++
	return x.Data().([]float32), nil
}

// Generate extends prompt by n tokens, greedily (as lm.Model.Generate),
// calling emit, when not nil, with each token as it is decided.
func (d *GPTDecoder) Generate(ctx context.Context, prompt []int, n int, emit func(tok int) error) ([]int, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("partition: empty prompt")
	}
	if n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("partition: %d tokens to generate, want 0..%d", n, 1<<20)
	}
	for i, id := range prompt {
		if id < 0 || id >= d.cfg.Vocab {
			return nil, fmt.Errorf("partition: token %d at position %d, want 0..%d", id, i, d.cfg.Vocab-1)
		}
	}
	seq := append(make([]int, 0, len(prompt)+n), prompt...)
	if n == 0 {
		return nil, nil
	}
	start := lm.Start(len(seq), d.cfg.Context)
	p, err := d.prefill(ctx, seq[start:])
	for err == nil {
		tok := lm.Argmax(p)
		seq = append(seq, tok)
		if emit != nil {
			if err = emit(tok); err != nil {
				break
			}
		}
		if len(seq)-len(prompt) == n {
			break
		}
		if s := lm.Start(len(seq), d.cfg.Context); s != start {
			start = s
			p, err = d.prefill(ctx, seq[start:])
		} else {
			p, err = d.step(ctx, tok, len(seq)-1-start)
		}
	}
	return seq[len(prompt):], err
}
