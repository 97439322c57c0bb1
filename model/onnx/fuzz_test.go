package onnx

import (
	"testing"

	"github.com/edgesplit/edgesplit/model"
)

// FuzzDecode feeds arbitrary bytes to Decode (seeded with small real models
// from ONNX's test data in testdata/fuzz/FuzzDecode and the sample graph).
// Decode must return an error or a graph, never panic; a graph it returns
// must survive Encode and decode again to the same graph.
func FuzzDecode(f *testing.F) {
	if data, err := Encode(sampleGraph()); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Decode(data, WithMaxBytes(1<<20), quiet)
		if err != nil {
			return
		}
		enc, err := Encode(g)
		if err != nil {
			t.Fatalf("Encode of a decoded graph: %v", err)
		}
		h, err := Decode(enc, quiet)
		if err != nil {
			t.Fatalf("Decode of an encoded graph: %v", err)
		}
		pruneUnused(g)
		if g.Name == "" {
			h.Name = ""
		}
		if g.OpsetVersion <= 0 {
			h.OpsetVersion = g.OpsetVersion
		}
		if d := graphDiff(g, h); d != "" {
			t.Fatalf("Decode(Encode(g)) differs: %s", d)
		}
	})
}

// pruneUnused drops initializers no node or output reads (Encode omits them).
func pruneUnused(g *model.Graph) {
	used := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, o := range g.Outputs {
		used[o.Name] = true
	}
	for k := range g.Initializers {
		if !used[k] {
			delete(g.Initializers, k)
		}
	}
}
