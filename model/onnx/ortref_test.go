//go:build cgo

package onnx_test

import (
	"context"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/internal/ortref"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx"
)

// TestORTRunsExport checks, in ONNX Runtime itself, that what Encode writes
// runs and gives the reference output: the PP-OCR classifier as imported,
// after the engine's Simplify (BatchNorm folded, shape arithmetic folded),
// and split into a head and a tail at every single-tensor boundary K.
// Needs cgo and scripts/fetch-models.sh (skips without the library).
func TestORTRunsExport(t *testing.T) {
	path := cachedModel(t, ppocrModel)
	ortref.InitTest(t)
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := readNpy(t, "testdata/ppocr/x.npy")
	want := readNpy(t, "testdata/ppocr/out0.npy").Data().([]float32)
	g.Inputs[0].Shape = append([]int(nil), x.Shape()...)
	sg, err := model.Simplify(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	// runORT runs an encoded graph with one input and one output.
	runORT := func(what string, pg *model.Graph, in []float32) []float32 {
		t.Helper()
		data, err := onnx.Encode(pg)
		if err != nil {
			t.Fatalf("%s: Encode: %v", what, err)
		}
		it := tensor.New(tensor.WithShape(sg.Shapes[pg.Inputs[0].Name]...), tensor.WithBacking(in))
		outs, err := ortref.Run(data, []string{pg.Inputs[0].Name}, []*tensor.Dense{it},
			[]string{pg.Outputs[0].Name}, [][]int{sg.Shapes[pg.Outputs[0].Name]}, 1)
		if err != nil {
			t.Fatalf("%s: in ONNX Runtime: %v", what, err)
		}
		return outs[0].Data().([]float32)
	}
	xs := x.Data().([]float32)
	for _, tc := range []struct {
		name string
		g    *model.Graph
	}{{"imported", g}, {"simplified", sg}} {
		got := runORT(tc.name, tc.g, xs)
		abs, scaled := maxDiffs(got, want)
		t.Logf("%s graph in ONNX Runtime: max|diff| %.3g, scaled %.3g vs reference", tc.name, abs, scaled)
		if scaled > 1e-5 {
			t.Errorf("%s: differs by %.3g", tc.name, scaled)
		}
	}
	// Heads and tails at every single-tensor boundary of the simplified graph.
	net, err := model.Compile(sg, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := net.NewExtractor()
	if _, err := ex.Run(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	produced := sg.Producers()
	cuts := 0
	for k := 1; k < len(sg.Nodes); k++ {
		// Boundary: tensors produced before k and consumed at or after k.
		var boundary []string
		seen := map[string]bool{}
		for _, n := range sg.Nodes[k:] {
			for _, in := range n.Inputs {
				if p, ok := produced[in]; ok && p < k && !seen[in] {
					seen[in] = true
					boundary = append(boundary, in)
				}
			}
		}
		if len(boundary) != 1 {
			continue
		}
		b := boundary[0]
		head := &model.Graph{Name: "head", Inputs: sg.Inputs, Outputs: []model.ValueInfo{{Name: b, Shape: sg.Shapes[b]}},
			Nodes: sg.Nodes[:k], Initializers: sg.Initializers, Shapes: sg.Shapes, OpsetVersion: sg.OpsetVersion}
		tail := &model.Graph{Name: "tail", Inputs: []model.ValueInfo{{Name: b, Shape: sg.Shapes[b]}}, Outputs: sg.Outputs,
			Nodes: sg.Nodes[k:], Initializers: sg.Initializers, Shapes: sg.Shapes, OpsetVersion: sg.OpsetVersion}
		mid := runORT("head", head, xs)
		got := runORT("tail", tail, mid)
		_, scaled := maxDiffs(got, want)
		if scaled > 1e-5 {
			t.Errorf("cut %d at %q: head+tail in ONNX Runtime differ by %.3g", k, b, scaled)
		}
		cuts++
	}
	t.Logf("%d head/tail pairs exported and chained in ONNX Runtime", cuts)
}

// TestORTRunsExportPPOCRv4 checks that the PP-OCRv4 recogniser and
// detector, as imported and after Simplify, export to ONNX files that ONNX
// Runtime accepts and runs to its own reference outputs (within 1e-5
// scaled) — before opset 13 that needs Resize's empty roi/scales written
// back as tensors.
func TestORTRunsExportPPOCRv4(t *testing.T) {
	for _, tc := range []struct{ file, dir string }{{ppocrRecModel, "testdata/ppocr_rec"}, {ppocrDetModel, "testdata/ppocr_det"}} {
		path := cachedModel(t, tc.file)
		ortref.InitTest(t)
		g, err := onnx.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		x := readNpy(t, filepath.Join(tc.dir, "x.npy"))
		want := readNpy(t, filepath.Join(tc.dir, "out0.npy")).Data().([]float32)
		g.Inputs[0].Shape = append([]int(nil), x.Shape()...)
		sg, err := model.Simplify(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []struct {
			name string
			g    *model.Graph
		}{{"imported", g}, {"simplified", sg}} {
			data, err := onnx.Encode(v.g)
			if err != nil {
				t.Fatalf("%s %s: Encode: %v", tc.file, v.name, err)
			}
			outs, err := ortref.Run(data, []string{g.Inputs[0].Name}, []*tensor.Dense{x},
				[]string{g.Outputs[0].Name}, [][]int{sg.Shapes[g.Outputs[0].Name]}, 1)
			if err != nil {
				t.Fatalf("%s %s: in ONNX Runtime: %v", tc.file, v.name, err)
			}
			abs, scaled := maxDiffs(outs[0].Data().([]float32), want)
			t.Logf("%s, %s graph in ONNX Runtime: max|diff| %.3g, scaled %.3g vs reference", tc.file, v.name, abs, scaled)
			if scaled > 1e-5 {
				t.Errorf("%s %s: differs by %.3g", tc.file, v.name, scaled)
			}
		}
	}
}
