package partition

import (
	"context"
	"fmt"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// Piece is a compiled segment of a model: nodes [From, To) of the source
// graph, ready to run. A Piece is safe for concurrent use; each goroutine runs
// it through its own Extractor (NewExtractor).
type Piece struct {
	From, To int
	Graph    *model.Graph // the standalone segment graph
	Net      *model.Net   // nil when the segment has no nodes
}

// CompilePiece cuts nodes [from, to) out of the simplified graph g and
// compiles them.
func CompilePiece(g *model.Graph, from, to int, opts model.Options) (*Piece, error) {
	seg, err := Segment(g, from, to)
	if err != nil {
		return nil, err
	}
	p := &Piece{From: from, To: to, Graph: seg}
	if len(seg.Nodes) == 0 {
		return p, nil
	}
	p.Net, err = model.Compile(seg, opts)
	if err != nil {
		return nil, fmt.Errorf("partition: compile nodes [%d,%d): %w", from, to, err)
	}
	return p, nil
}

// Runner runs a model split at K: the head on the given inputs, then the tail
// on the boundary tensors. It exists to run both halves in one process (tests,
// the CLI's infer --cut, local fallback); across machines the node package
// runs each Piece where the scheduler put it. A Runner is not safe for
// concurrent use.
type Runner struct {
	g          *model.Graph
	head, tail *Piece
	headEx     *model.Extractor
	tailEx     *model.Extractor
	values     map[string]*tensor.Dense
	tailIn     []*tensor.Dense
}

// NewRunner simplifies nothing: g must already be simplified (model.Simplify).
func NewRunner(g *model.Graph, k int, opts model.Options) (*Runner, error) {
	if k < 0 || k > len(g.Nodes) {
		return nil, fmt.Errorf("%w: cut %d of a %d-node graph", ErrRange, k, len(g.Nodes))
	}
	head, err := CompilePiece(g, 0, k, opts)
	if err != nil {
		return nil, err
	}
	tail, err := CompilePiece(g, k, len(g.Nodes), opts)
	if err != nil {
		return nil, err
	}
	r := &Runner{g: g, head: head, tail: tail, values: make(map[string]*tensor.Dense)}
	if head.Net != nil {
		r.headEx = head.Net.NewExtractor()
	}
	if tail.Net != nil {
		r.tailEx = tail.Net.NewExtractor()
	}
	r.tailIn = make([]*tensor.Dense, len(tail.Graph.Inputs))
	return r, nil
}

// Head and Tail return the two compiled pieces.
func (r *Runner) Head() *Piece { return r.head }

// Tail returns the compiled tail piece.
func (r *Runner) Tail() *Piece { return r.tail }

// Run feeds inputs (in the order of the graph's inputs) to the head, passes
// every boundary tensor to the tail, and returns the graph outputs in order,
// plus the boundary tensors the tail read (in the tail's input order). The
// returned tensors are owned by the Runner and valid until its next Run.
func (r *Runner) Run(ctx context.Context, inputs ...*tensor.Dense) (outputs, boundary []*tensor.Dense, err error) {
	if len(inputs) != len(r.g.Inputs) {
		return nil, nil, fmt.Errorf("partition: got %d inputs, the model has %d", len(inputs), len(r.g.Inputs))
	}
	clear(r.values)
	for i, in := range r.g.Inputs {
		r.values[in.Name] = inputs[i]
	}
	if r.headEx != nil {
		hin := make([]*tensor.Dense, len(r.head.Graph.Inputs))
		for i, in := range r.head.Graph.Inputs {
			hin[i] = r.values[in.Name]
		}
		hout, err := r.headEx.Run(ctx, hin...)
		if err != nil {
			return nil, nil, fmt.Errorf("partition: head [0,%d): %w", r.head.To, err)
		}
		for i, o := range r.head.Graph.Outputs {
			r.values[o.Name] = hout[i]
		}
	}
	for i, in := range r.tail.Graph.Inputs {
		t, ok := r.values[in.Name]
		if !ok {
			return nil, nil, fmt.Errorf("partition: boundary tensor %q missing", in.Name)
		}
		r.tailIn[i] = t
	}
	if r.tailEx != nil {
		tout, err := r.tailEx.Run(ctx, r.tailIn...)
		if err != nil {
			return nil, nil, fmt.Errorf("partition: tail [%d,%d): %w", r.tail.From, r.tail.To, err)
		}
		for i, o := range r.tail.Graph.Outputs {
			r.values[o.Name] = tout[i]
		}
	}
	outputs = make([]*tensor.Dense, len(r.g.Outputs))
	for i, o := range r.g.Outputs {
		t, ok := r.values[o.Name]
		if !ok {
			return nil, nil, fmt.Errorf("partition: graph output %q was not produced", o.Name)
		}
		outputs[i] = t
	}
	return outputs, r.tailIn, nil
}
