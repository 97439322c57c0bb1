package partition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// ErrExit is wrapped by every error about a graph's exits or an exit plan
// that does not fit the graph.
var ErrExit = errors.New("partition: exit")

// Exit is one exit of a multi-exit graph (BranchyNet, Edgent, SPINN): a
// graph output holding class scores that a request may be answered from.
// The nodes [0, End) of the canonical order compute it, since End is its
// producer's position + 1 and a prefix of a topological order holds all of
// a node's ancestors; running that prefix and nothing more is the graph
// right-sized at this exit (Edgent's "exit point").
type Exit struct {
	// Name is the output tensor's name.
	Name string
	// Output is its index in the graph's Outputs.
	Output int
	// End is the prefix that computes it: its producer's index + 1.
	End int
	// Probs is true when the producer is a Softmax: the output holds
	// probabilities as it is (otherwise confidence applies a softmax).
	Probs bool
	// Bytes is the output's float32 size.
	Bytes int64
}

// Exits lists the outputs of the simplified graph g as exits, ordered by
// End (the earliest first; outputs with the same End keep their order), so
// that the last one is the graph's final exit. A single-output graph has one
// exit. It fails (wrapping ErrExit) for an output no node produces.
func Exits(g *model.Graph) ([]Exit, error) {
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: graph %s has no outputs", ErrExit, g.Name)
	}
	producer := g.Producers()
	exits := make([]Exit, 0, len(g.Outputs))
	for i, o := range g.Outputs {
		p, ok := producer[o.Name]
		if !ok {
			return nil, fmt.Errorf("%w: output %q of %s is not produced by a node", ErrExit, o.Name, g.Name)
		}
		shape, err := shapeOf(g, o.Name)
		if err != nil {
			return nil, err
		}
		exits = append(exits, Exit{Name: o.Name, Output: i, End: p + 1, Probs: g.Nodes[p].Op == "Softmax", Bytes: 4 * numel(shape)})
	}
	sort.SliceStable(exits, func(a, b int) bool { return exits[a].End < exits[b].End })
	return exits, nil
}

// PrefixCut is a cut of a graph right-sized at an exit (nodes [0, End)):
// Cut's boundary holds the tensors produced before K (or graph inputs) and
// read by a node in [K, End), and ResultBytes is the float32 size of what
// the piece [K, End) produces that is read after it or is a graph output
// (what a cloud running that piece sends back; see SegmentNodes).
type PrefixCut struct {
	Cut
	ResultBytes int64
}

// PrefixCuts lists the cuts K = 0..end of the simplified graph g
// right-sized at end (an Exit's End). At K == end nothing crosses: the
// boundary is empty and so is the result.
func PrefixCuts(g *model.Graph, end int) ([]PrefixCut, error) {
	n := len(g.Nodes)
	if end < 1 || end > n {
		return nil, fmt.Errorf("%w: prefix end %d of a %d-node graph", ErrRange, end, n)
	}
	producer := g.Producers()
	// lastRead[t] is the last reader of t within [0, end); readLater marks
	// tensors read at or after end, and graph outputs.
	lastRead := make(map[string]int)
	readLater := make(map[string]bool)
	for i, nd := range g.Nodes {
		for _, t := range nd.Inputs {
			if t == "" || g.IsInitializer(t) {
				continue
			}
			if i < end {
				lastRead[t] = i
			} else {
				readLater[t] = true
			}
		}
	}
	for _, o := range g.Outputs {
		readLater[o.Name] = true
	}
	size := func(t string) (int64, error) {
		s, err := shapeOf(g, t)
		if err != nil {
			return 0, err
		}
		return 4 * numel(s), nil
	}
	cuts := make([]PrefixCut, 0, end+1)
	for k := 0; k <= end; k++ {
		c := PrefixCut{Cut: Cut{K: k}}
		for _, in := range g.Inputs {
			if l, ok := lastRead[in.Name]; ok && l >= k && k < end {
				c.Boundary = append(c.Boundary, in.Name)
			}
		}
		for i := 0; i < k; i++ {
			for _, o := range g.Nodes[i].Outputs {
				if o == "" || producer[o] != i {
					continue
				}
				if l, ok := lastRead[o]; ok && l >= k {
					c.Boundary = append(c.Boundary, o)
				}
			}
		}
		for _, t := range c.Boundary {
			b, err := size(t)
			if err != nil {
				return nil, err
			}
			c.Bytes += b
		}
		for i := k; i < end; i++ {
			for _, o := range g.Nodes[i].Outputs {
				if o == "" || producer[o] != i {
					continue
				}
				if readLater[o] {
					b, err := size(o)
					if err != nil {
						return nil, err
					}
					c.ResultBytes += b
				}
			}
		}
		cuts = append(cuts, c)
	}
	return cuts, nil
}

// Confidence returns the class an exit's output picks (its argmax) and the
// exit's confidence: the largest softmax probability (BranchyNet and SPINN's
// measure). probs says the output already holds probabilities (Exit.Probs);
// otherwise a softmax is applied to it first. It fails, wrapping ErrExit,
// for an empty output or one holding NaN.
func Confidence(t *tensor.Dense, probs bool) (class int, conf float32, err error) {
	if t == nil {
		return 0, 0, fmt.Errorf("%w: no output tensor", ErrExit)
	}
	if t.Dtype() != tensor.Float32 || t.Shape().TotalSize() == 0 {
		return 0, 0, fmt.Errorf("%w: output is not a non-empty float32 tensor", ErrExit)
	}
	v, ok := t.Data().([]float32)
	if !ok || len(v) == 0 {
		return 0, 0, fmt.Errorf("%w: output is not a non-empty float32 tensor", ErrExit)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) {
			return 0, 0, fmt.Errorf("%w: output holds NaN", ErrExit)
		}
		if x > v[class] {
			class = i
		}
	}
	if probs {
		return class, v[class], nil
	}
	// max softmax probability = 1 / Σ exp(x_i - x_max)
	var sum float64
	for _, x := range v {
		sum += math.Exp(float64(x - v[class]))
	}
	return class, float32(1 / sum), nil
}

// ExitRunner runs a multi-exit graph the way an edge runs an early-exit
// plan, in one process (benchmarks, tests, the CLI): the head [0, K) in
// stages, one per exit inside it before the terminal exit, stopping at the
// first whose confidence reaches the threshold; otherwise the tail
// [K, End of the terminal exit), which an edge sends to a cloud; the answer
// is then the terminal exit's. An ExitRunner is not safe for concurrent
// use; the compiled pieces are (Pieces).
type ExitRunner struct {
	g        *model.Graph
	exits    []Exit
	k, term  int
	stages   []*Piece // edge stages; stage i ends at exits[i].End except the last
	stageExt []int    // exit checked after stage i, or -1
	tail     *Piece   // nil when K == End of the terminal exit
	exs      []*model.Extractor
	tailEx   *model.Extractor
	values   map[string]*tensor.Dense
}

// ExitOutcome is what one ExitRunner.Run answered.
type ExitOutcome struct {
	// Exit indexes the runner's exits: the exit that answered.
	Exit int
	// Class and Confidence are that exit's argmax and max probability.
	Class      int
	Confidence float32
	// OnEdge is true when the head answered (an early exit taken, or the
	// terminal exit reached with nothing left for the tail).
	OnEdge bool
	// Output is the answering exit's tensor (owned by the runner, valid
	// until the next Run).
	Output *tensor.Dense
	// Boundary holds the tensors the tail read (nil when OnEdge).
	Boundary []*tensor.Dense
	// Head and Tail are the wall-clock times of the two parts.
	Head, Tail time.Duration
}

// NewExitRunner compiles the simplified multi-exit graph g for cut k and
// terminal exit term (an index into exits, which must come from Exits(g)):
// k must lie in 0..exits[term].End.
func NewExitRunner(g *model.Graph, exits []Exit, k, term int, opts model.Options) (*ExitRunner, error) {
	if term < 0 || term >= len(exits) {
		return nil, fmt.Errorf("%w: terminal exit %d of %d", ErrExit, term, len(exits))
	}
	end := exits[term].End
	if end > len(g.Nodes) || exits[term].Output >= len(g.Outputs) || g.Outputs[exits[term].Output].Name != exits[term].Name {
		return nil, fmt.Errorf("%w: exit %q does not belong to graph %s", ErrExit, exits[term].Name, g.Name)
	}
	if k < 0 || k > end {
		return nil, fmt.Errorf("%w: cut %d outside 0..%d (exit %s)", ErrRange, k, end, exits[term].Name)
	}
	r := &ExitRunner{g: g, exits: exits, k: k, term: term, values: make(map[string]*tensor.Dense)}
	from := 0
	addStage := func(to, exit int) error {
		if to <= from {
			if exit >= 0 && len(r.stageExt) > 0 && r.stageExt[len(r.stageExt)-1] < 0 {
				r.stageExt[len(r.stageExt)-1] = exit
			}
			return nil
		}
		p, err := CompilePiece(g, from, to, opts)
		if err != nil {
			return err
		}
		r.stages = append(r.stages, p)
		r.stageExt = append(r.stageExt, exit)
		r.exs = append(r.exs, p.Net.NewExtractor())
		from = to
		return nil
	}
	for i := 0; i < term; i++ {
		if exits[i].End <= k {
			if err := addStage(exits[i].End, i); err != nil {
				return nil, err
			}
		}
	}
	last := -1
	if k == end {
		last = term
	}
	if err := addStage(k, last); err != nil {
		return nil, err
	}
	if k < end {
		t, err := CompilePiece(g, k, end, opts)
		if err != nil {
			return nil, err
		}
		r.tail = t
		r.tailEx = t.Net.NewExtractor()
	}
	return r, nil
}

// EdgeExits is the number of exits before the terminal one that the head
// computes (those Run may stop at).
func (r *ExitRunner) EdgeExits() int {
	n := 0
	for i := 0; i < r.term; i++ {
		if r.exits[i].End <= r.k {
			n++
		}
	}
	return n
}

// Run runs one request: inputs in the graph's input order; each of the
// first early exits computed by the head answers when its confidence is ≥
// threshold (early 0, or a threshold over 1, never stops early).
func (r *ExitRunner) Run(ctx context.Context, early int, threshold float64, inputs ...*tensor.Dense) (ExitOutcome, error) {
	if len(inputs) != len(r.g.Inputs) {
		return ExitOutcome{}, fmt.Errorf("partition: got %d inputs, the model has %d", len(inputs), len(r.g.Inputs))
	}
	clear(r.values)
	for i, in := range r.g.Inputs {
		r.values[in.Name] = inputs[i]
	}
	start := time.Now()
	for i, st := range r.stages {
		if err := runPiece(ctx, st, r.exs[i], r.values); err != nil {
			return ExitOutcome{}, err
		}
		e := r.stageExt[i]
		if e < 0 || e != r.term && e >= early {
			continue
		}
		out := r.values[r.exits[e].Name]
		class, conf, err := Confidence(out, r.exits[e].Probs)
		if err != nil {
			return ExitOutcome{}, fmt.Errorf("exit %s: %w", r.exits[e].Name, err)
		}
		if e == r.term || float64(conf) >= threshold {
			return ExitOutcome{Exit: e, Class: class, Confidence: conf, OnEdge: true, Output: out, Head: time.Since(start)}, nil
		}
	}
	head := time.Since(start)
	if r.tail == nil {
		return ExitOutcome{}, fmt.Errorf("%w: terminal exit %s not produced", ErrExit, r.exits[r.term].Name)
	}
	bnd := make([]*tensor.Dense, len(r.tail.Graph.Inputs))
	for i, vi := range r.tail.Graph.Inputs {
		t, ok := r.values[vi.Name]
		if !ok {
			return ExitOutcome{}, fmt.Errorf("partition: boundary tensor %q missing", vi.Name)
		}
		bnd[i] = t
	}
	tstart := time.Now()
	if err := runPiece(ctx, r.tail, r.tailEx, r.values); err != nil {
		return ExitOutcome{}, err
	}
	out := r.values[r.exits[r.term].Name]
	class, conf, err := Confidence(out, r.exits[r.term].Probs)
	if err != nil {
		return ExitOutcome{}, fmt.Errorf("exit %s: %w", r.exits[r.term].Name, err)
	}
	return ExitOutcome{Exit: r.term, Class: class, Confidence: conf, Output: out, Boundary: bnd, Head: head, Tail: time.Since(tstart)}, nil
}

func runPiece(ctx context.Context, p *Piece, ex *model.Extractor, values map[string]*tensor.Dense) error {
	in := make([]*tensor.Dense, len(p.Graph.Inputs))
	for i, vi := range p.Graph.Inputs {
		t, ok := values[vi.Name]
		if !ok {
			return fmt.Errorf("partition: tensor %q missing for nodes [%d,%d)", vi.Name, p.From, p.To)
		}
		in[i] = t
	}
	out, err := ex.Run(ctx, in...)
	if err != nil {
		return fmt.Errorf("partition: nodes [%d,%d): %w", p.From, p.To, err)
	}
	for i, vo := range p.Graph.Outputs {
		values[vo.Name] = out[i]
	}
	return nil
}
