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
// The segment's inputs are the tensors it reads that are produced before
// from (or are graph inputs), in order of first use; its outputs are the
// tensors it produces that are read at or after to, or are graph outputs, in
// production order. Initializers are shared with g, not copied: treat them as
// read-only.
func Segment(g *model.Graph, from, to int) (*model.Graph, error) {
	n := len(g.Nodes)
	if from < 0 || to > n || from > to {
		return nil, fmt.Errorf("%w: segment [%d,%d) of a %d-node graph", ErrRange, from, to, n)
	}
	producer := g.Producers()
	lastUse := lastUses(g)
	seg := model.NewGraph(fmt.Sprintf("%s[%d:%d]", g.Name, from, to))
	seg.OpsetVersion = g.OpsetVersion
	seg.Nodes = make([]*model.Node, 0, to-from)
	seen := make(map[string]bool)
	for i := from; i < to; i++ {
		nd := g.Nodes[i]
		seg.Nodes = append(seg.Nodes, nd)
		for _, in := range nd.Inputs {
			if in == "" || seen[in] {
				continue
			}
			seen[in] = true
			if w, ok := g.Initializers[in]; ok {
				seg.Initializers[in] = w
				seg.Shapes[in] = w.Shape().Clone()
				continue
			}
			if p, ok := producer[in]; ok && p >= from {
				continue // produced inside the segment
			}
			shape, err := shapeOf(g, in)
			if err != nil {
				return nil, err
			}
			seg.Inputs = append(seg.Inputs, model.ValueInfo{Name: in, Shape: shape})
		}
	}
	for i := from; i < to; i++ {
		for _, out := range g.Nodes[i].Outputs {
			if out == "" {
				continue
			}
			shape, err := shapeOf(g, out)
			if err != nil {
				return nil, err
			}
			seg.Shapes[out] = shape
			if lastUse[out] >= to {
				seg.Outputs = append(seg.Outputs, model.ValueInfo{Name: out, Shape: shape})
			}
		}
	}
	// Inputs in a deterministic order: graph inputs in their original order,
	// then inner tensors in the order the graph produces them.
	rank := make(map[string]int, len(g.Inputs))
	for i, in := range g.Inputs {
		rank[in.Name] = i - len(g.Inputs)
	}
	for name, p := range producer {
		rank[name] = p
	}
	sort.SliceStable(seg.Inputs, func(a, b int) bool {
		return rank[seg.Inputs[a].Name] < rank[seg.Inputs[b].Name]
	})
	for _, in := range seg.Inputs {
		seg.Shapes[in.Name] = in.Shape
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
