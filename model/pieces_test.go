package model

import (
	"context"
	"math"
	"math/rand"
	"sort"
	"testing"

	"gorgonia.org/tensor"
)

// cutGraph splits simplified graph g at K the way partition does: the head
// runs nodes [0, K) and outputs every tensor produced before K (or a graph
// input) that is read at or after K or is a graph output; the tail runs the
// rest from those tensors.
func cutGraph(g *Graph, k int) (head, tail *Graph, boundary []string) {
	producedBefore := map[string]bool{}
	for _, in := range g.Inputs {
		producedBefore[in.Name] = true
	}
	for _, n := range g.Nodes[:k] {
		for _, o := range n.Outputs {
			producedBefore[o] = true
		}
	}
	need := map[string]bool{}
	for _, n := range g.Nodes[k:] {
		for _, in := range n.Inputs {
			if producedBefore[in] {
				need[in] = true
			}
		}
	}
	for _, o := range g.Outputs {
		if producedBefore[o.Name] {
			need[o.Name] = true
		}
	}
	for name := range need {
		boundary = append(boundary, name)
	}
	sort.Strings(boundary)
	mk := func(nodes []*Node, inputs []ValueInfo, outputs []ValueInfo) *Graph {
		p := NewGraph(g.Name)
		p.OpsetVersion = g.OpsetVersion
		p.Nodes = nodes
		p.Inputs = inputs
		p.Outputs = outputs
		used := map[string]bool{}
		for _, n := range nodes {
			for _, in := range n.Inputs {
				used[in] = true
			}
		}
		for _, o := range outputs {
			used[o.Name] = true
		}
		for name, t := range g.Initializers {
			if used[name] {
				p.Initializers[name] = t
			}
		}
		return p
	}
	var bvi []ValueInfo
	for _, b := range boundary {
		bvi = append(bvi, ValueInfo{Name: b, Shape: cloneInts(g.Shapes[b])})
	}
	head = mk(append([]*Node(nil), g.Nodes[:k]...), g.Inputs, bvi)
	// Tail inputs: the boundary minus constants; its outputs: g's.
	var tin []ValueInfo
	for _, b := range bvi {
		if !g.IsInitializer(b.Name) {
			tin = append(tin, b)
		}
	}
	tail = mk(append([]*Node(nil), g.Nodes[k:]...), tin, g.Outputs)
	return head, tail, boundary
}

func run(t *testing.T, g *Graph, inputs ...*tensor.Dense) map[string][]float32 {
	t.Helper()
	if err := InferShapes(g); err != nil {
		t.Fatalf("InferShapes: %v", err)
	}
	net, err := Compile(g, Options{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	outs, err := net.NewExtractor().Run(context.Background(), inputs...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := map[string][]float32{}
	for i, o := range outs {
		r[net.Outputs()[i].Name] = append([]float32(nil), o.Float32s()...)
	}
	return r
}

// TestPiecesAreExact cuts models at every K and checks that running the
// head, then the tail on the head's outputs, gives bit-identical outputs.
func TestPiecesAreExact(t *testing.T) {
	rng := rand.New(rand.NewSource(40))
	models := []*Graph{smallCNN(rng), benchCNN(rng), hardSwishGraph(rng, "div", false), hardSwishGraph(rng, "hardsigmoid", true), hardSwishGraph(rng, "silu", false), randomDAG(rng, 20)}
	for _, g := range models {
		sg, err := Simplify(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		x := randDense(rng, sg.Inputs[0].Shape...)
		full := run(t, sg, x)
		for k := 0; k <= len(sg.Nodes); k++ {
			head, tail, boundary := cutGraph(sg, k)
			hout := run(t, head, x)
			var feed []*tensor.Dense
			for _, in := range tail.Inputs {
				feed = append(feed, denseF(cloneInts(in.Shape), hout[in.Name]))
			}
			tout := run(t, tail, feed...)
			for name, want := range full {
				got := tout[name]
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s cut at %d (boundary %v): output %s[%d] = %v, unsplit %v", g.Name, k, boundary, name, i, got[i], want[i])
					}
				}
			}
		}
	}
}
