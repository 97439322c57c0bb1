package partition

import (
	"errors"
	"fmt"
	"sort"

	"github.com/edgesplit/edgesplit/model"
)

// ErrRange is returned (wrapped) for a cut position or node range outside the
// graph.
var ErrRange = errors.New("partition: position out of range")

// Segment returns the piece of g made of nodes [from, to) of its canonical
// topological order, as a standalone graph. g must be simplified (see
// model.Simplify: nodes sorted, shapes inferred).
//
// The segment's inputs are the tensors it reads that are produced outside it
// (or are graph inputs): graph inputs first in their order, then the rest in
// the order g produces them. Its outputs are the tensors it produces that are
// read by a node after the segment or are graph outputs, in production order.
// Initializers are shared with g, not copied: treat them as read-only.
func Segment(g *model.Graph, from, to int) (*model.Graph, error) {
	n := len(g.Nodes)
	if from < 0 || to > n || from > to {
		return nil, fmt.Errorf("%w: segment [%d,%d) of a %d-node graph", ErrRange, from, to, n)
	}
	idx := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	seg, err := SegmentNodes(g, idx)
	if err != nil {
		return nil, err
	}
	seg.Name = fmt.Sprintf("%s[%d:%d]", g.Name, from, to)
	return seg, nil
}

// SegmentNodes is Segment for any set of node indices (ascending, no
// repeats): the piece a DAG cut puts on one side, which need not be a range of
// the canonical order. A tensor is an output when a node outside the set
// reads it, or when it is a graph output.
func SegmentNodes(g *model.Graph, idx []int) (*model.Graph, error) {
	n := len(g.Nodes)
	in := make([]bool, n)
	for j, i := range idx {
		if i < 0 || i >= n || (j > 0 && i <= idx[j-1]) {
			return nil, fmt.Errorf("%w: node set must be ascending indices in [0,%d), got %v", ErrRange, n, idx)
		}
		in[i] = true
	}
	producer := g.Producers()
	// readOutside marks tensors read by a node outside the set.
	readOutside := make(map[string]bool)
	for i, nd := range g.Nodes {
		if in[i] {
			continue
		}
		for _, t := range nd.Inputs {
			if t != "" {
				readOutside[t] = true
			}
		}
	}
	for _, o := range g.Outputs {
		readOutside[o.Name] = true
	}
	seg := model.NewGraph(g.Name)
	seg.OpsetVersion = g.OpsetVersion
	seg.Nodes = make([]*model.Node, 0, len(idx))
	seen := make(map[string]bool)
	for _, i := range idx {
		nd := g.Nodes[i]
		seg.Nodes = append(seg.Nodes, nd)
		for _, t := range nd.Inputs {
			if t == "" || seen[t] {
				continue
			}
			seen[t] = true
			if w, ok := g.Initializers[t]; ok {
				seg.Initializers[t] = w
				seg.Shapes[t] = w.Shape().Clone()
				continue
			}
			if p, ok := producer[t]; ok && in[p] {
				continue // produced inside the segment
			}
			shape, err := shapeOf(g, t)
			if err != nil {
				return nil, err
			}
			seg.Inputs = append(seg.Inputs, model.ValueInfo{Name: t, Shape: shape})
		}
	}
	for _, i := range idx {
		for _, out := range g.Nodes[i].Outputs {
			if out == "" {
				continue
			}
			shape, err := shapeOf(g, out)
			if err != nil {
				return nil, err
			}
			seg.Shapes[out] = shape
			if readOutside[out] {
				seg.Outputs = append(seg.Outputs, model.ValueInfo{Name: out, Shape: shape})
			}
		}
	}
	rank := make(map[string]int, len(g.Inputs))
	for i, gi := range g.Inputs {
		rank[gi.Name] = i - len(g.Inputs)
	}
	for name, p := range producer {
		rank[name] = p
	}
	sort.SliceStable(seg.Inputs, func(a, b int) bool {
		return rank[seg.Inputs[a].Name] < rank[seg.Inputs[b].Name]
	})
	for _, vi := range seg.Inputs {
		seg.Shapes[vi.Name] = vi.Shape
	}
	return seg, nil
}

// lastUses maps each tensor to the index of the last node that reads it;
// graph outputs count as read at len(g.Nodes).
func lastUses(g *model.Graph) map[string]int {
	last := make(map[string]int)
	for i, nd := range g.Nodes {
		for _, in := range nd.Inputs {
			if in != "" {
				last[in] = i
			}
		}
	}
	for _, o := range g.Outputs {
		last[o.Name] = len(g.Nodes)
	}
	return last
}

func shapeOf(g *model.Graph, name string) ([]int, error) {
	if s, ok := g.Shapes[name]; ok {
		return append([]int(nil), s...), nil
	}
	for _, in := range g.Inputs {
		if in.Name == name {
			return append([]int(nil), in.Shape...), nil
		}
	}
	return nil, fmt.Errorf("partition: tensor %q has no inferred shape (simplify the graph first)", name)
}

// Boundary returns the tensors that cross position k: produced before k (or
// graph inputs) and read at or after k (or graph outputs), sorted by the
// position that produces them (graph inputs first, in input order).
func Boundary(g *model.Graph, k int) ([]string, error) {
	if k < 0 || k > len(g.Nodes) {
		return nil, fmt.Errorf("%w: cut %d of a %d-node graph", ErrRange, k, len(g.Nodes))
	}
	return boundaryAt(g, k, g.Producers(), lastUses(g)), nil
}

func boundaryAt(g *model.Graph, k int, producer map[string]int, lastUse map[string]int) []string {
	var out []string
	for _, in := range g.Inputs {
		if l, ok := lastUse[in.Name]; ok && l >= k {
			out = append(out, in.Name)
		}
	}
	for i := 0; i < k; i++ {
		for _, o := range g.Nodes[i].Outputs {
			if o == "" {
				continue
			}
			if l, ok := lastUse[o]; ok && l >= k && producer[o] == i {
				out = append(out, o)
			}
		}
	}
	return out
}

// Cuts lists every position K in 0..len(g.Nodes) with its boundary tensors and
// their float32 byte size. g must be simplified.
func Cuts(g *model.Graph) ([]Cut, error) {
	producer := g.Producers()
	lastUse := lastUses(g)
	cuts := make([]Cut, 0, len(g.Nodes)+1)
	for k := 0; k <= len(g.Nodes); k++ {
		b := boundaryAt(g, k, producer, lastUse)
		var bytes int64
		for _, name := range b {
			s, err := shapeOf(g, name)
			if err != nil {
				return nil, err
			}
			bytes += 4 * numel(s)
		}
		cuts = append(cuts, Cut{K: k, Boundary: b, Bytes: bytes})
	}
	return cuts, nil
}

// SingleTensorCuts returns the positions whose boundary is exactly one tensor.
func SingleTensorCuts(cuts []Cut) []int {
	var ks []int
	for _, c := range cuts {
		if c.Single() {
			ks = append(ks, c.K)
		}
	}
	return ks
}

func numel(s []int) int64 {
	n := int64(1)
	for _, d := range s {
		n *= int64(d)
	}
	return n
}

// Split is a model cut at K into a head (nodes [0,K)) and a tail (nodes
// [K,N)), each a standalone graph.
type Split struct {
	K    int
	Head *model.Graph
	Tail *model.Graph
	// Boundary lists every tensor crossing K (see Boundary).
	Boundary []string
}

// SplitAt cuts the simplified graph g at position k.
func SplitAt(g *model.Graph, k int) (*Split, error) {
	b, err := Boundary(g, k)
	if err != nil {
		return nil, err
	}
	head, err := Segment(g, 0, k)
	if err != nil {
		return nil, err
	}
	tail, err := Segment(g, k, len(g.Nodes))
	if err != nil {
		return nil, err
	}
	return &Split{K: k, Head: head, Tail: tail, Boundary: b}, nil
}
