package onnx

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
)

// sampleGraph is a small CNN head with every attribute kind, a scalar and an
// int64 initializer, and a symbolic batch dimension.
func sampleGraph() *model.Graph {
	g := model.NewGraph("sample")
	g.OpsetVersion = 13
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: []int{-1, 3, 8, 8}}}
	g.Outputs = []model.ValueInfo{{Name: "y", Shape: []int{-1, 4}}}
	w := make([]float32, 4*3*3*3)
	for i := range w {
		w[i] = float32(i%7) * 0.125
	}
	g.Initializers["w"] = tensor.New(tensor.WithShape(4, 3, 3, 3), tensor.WithBacking(w))
	g.Initializers["b"] = tensor.New(tensor.WithShape(4), tensor.WithBacking([]float32{0.5, -0.5, 1, -1}))
	g.Initializers["shape"] = tensor.New(tensor.WithShape(2), tensor.WithBacking([]int64{-1, 4}))
	g.Initializers["lo"] = tensor.New(tensor.WithShape(), tensor.WithBacking([]float32{0}))
	g.Nodes = []*model.Node{
		{Name: "conv", Op: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"c"}, Attrs: map[string]model.Attribute{
			"kernel_shape": {Kind: model.AttrInts, Ints: []int64{3, 3}},
			"pads":         {Kind: model.AttrInts, Ints: []int64{1, 1, 1, 1}},
			"auto_pad":     {Kind: model.AttrString, String: "NOTSET"},
			"group":        {Kind: model.AttrInt, Int: 1},
		}},
		{Name: "clip", Op: "Clip", Inputs: []string{"c", "lo", ""}, Outputs: []string{"r"}},
		{Name: "lrelu", Op: "LeakyRelu", Inputs: []string{"r"}, Outputs: []string{"l"}, Attrs: map[string]model.Attribute{
			"alpha": {Kind: model.AttrFloat, Float: 0.1},
		}},
		{Name: "gap", Op: "GlobalAveragePool", Inputs: []string{"l"}, Outputs: []string{"p"}},
		{Name: "cos", Op: "ConstantOfShape", Inputs: []string{"shape"}, Outputs: []string{"unused"}, Attrs: map[string]model.Attribute{
			"value": {Kind: model.AttrTensor, Tensor: tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{2}))},
		}},
		{Name: "scales", Op: "Identity", Inputs: []string{"p"}, Outputs: []string{"q"}, Attrs: map[string]model.Attribute{
			"fake_floats": {Kind: model.AttrFloats, Floats: []float32{1, 2.5}},
		}},
		{Name: "reshape", Op: "Reshape", Inputs: []string{"q", "shape"}, Outputs: []string{"y"}},
	}
	return g
}

// graphDiff describes the first difference between two graphs (ignoring
// Shapes), or "" when they are equal.
func graphDiff(a, b *model.Graph) string {
	if a.Name != b.Name || a.OpsetVersion != b.OpsetVersion {
		return fmt.Sprintf("name/opset %q/%d vs %q/%d", a.Name, a.OpsetVersion, b.Name, b.OpsetVersion)
	}
	if !reflect.DeepEqual(a.Inputs, b.Inputs) {
		return fmt.Sprintf("inputs %v vs %v", a.Inputs, b.Inputs)
	}
	if !reflect.DeepEqual(a.Outputs, b.Outputs) {
		return fmt.Sprintf("outputs %v vs %v", a.Outputs, b.Outputs)
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Sprintf("%d nodes vs %d", len(a.Nodes), len(b.Nodes))
	}
	for i := range a.Nodes {
		x, y := a.Nodes[i], b.Nodes[i]
		if x.Name != y.Name || x.Op != y.Op || !reflect.DeepEqual(x.Inputs, y.Inputs) || !reflect.DeepEqual(x.Outputs, y.Outputs) {
			return fmt.Sprintf("node %d: %+v vs %+v", i, *x, *y)
		}
		if len(x.Attrs) != len(y.Attrs) {
			return fmt.Sprintf("node %d: attrs %v vs %v", i, x.Attrs, y.Attrs)
		}
		for k, av := range x.Attrs {
			bv, ok := y.Attrs[k]
			if !ok {
				return fmt.Sprintf("node %d: attr %q missing", i, k)
			}
			if av.Kind == model.AttrTensor {
				if d := denseDiff(av.Tensor, bv.Tensor); d != "" {
					return fmt.Sprintf("node %d attr %q: %s", i, k, d)
				}
				av.Tensor, bv.Tensor = nil, nil
			}
			if !same(av, bv) {
				return fmt.Sprintf("node %d attr %q: %+v vs %+v", i, k, av, bv)
			}
		}
	}
	var an, bn []string
	for k := range a.Initializers {
		an = append(an, k)
	}
	for k := range b.Initializers {
		bn = append(bn, k)
	}
	sort.Strings(an)
	sort.Strings(bn)
	if !reflect.DeepEqual(an, bn) {
		return fmt.Sprintf("initializers %v vs %v", an, bn)
	}
	for _, k := range an {
		if d := denseDiff(a.Initializers[k], b.Initializers[k]); d != "" {
			return fmt.Sprintf("initializer %q: %s", k, d)
		}
	}
	return ""
}

func denseDiff(a, b *tensor.Dense) string {
	if (a == nil) != (b == nil) {
		return "nil vs non-nil"
	}
	if a == nil {
		return ""
	}
	if a.IsScalar() != b.IsScalar() || !a.Shape().Eq(b.Shape()) || a.Dtype() != b.Dtype() {
		return fmt.Sprintf("shape/type %v %v vs %v %v", a.Shape(), a.Dtype(), b.Shape(), b.Dtype())
	}
	if !same(a.Data(), b.Data()) {
		return fmt.Sprintf("data %v vs %v", a.Data(), b.Data())
	}
	return ""
}

func TestRoundTrip(t *testing.T) {
	g := sampleGraph()
	data, err := Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if d := graphDiff(g, h); d != "" {
		t.Fatalf("Decode(Encode(g)) differs: %s", d)
	}
	again, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Fatalf("Encode is not deterministic across a round trip (%d vs %d bytes)", len(data), len(again))
	}
}

func TestEncodeDefaultsAndPieces(t *testing.T) {
	g := sampleGraph()
	g.OpsetVersion = 0
	// A piece: the tail after "gap", whose input is the boundary tensor p.
	tail := model.NewGraph("tail")
	tail.Inputs = []model.ValueInfo{{Name: "p", Shape: []int{1, 4, 1, 1}}}
	tail.Outputs = g.Outputs
	tail.Nodes = g.Nodes[5:]
	tail.Initializers["shape"] = g.Initializers["shape"]
	tail.Initializers["w"] = g.Initializers["w"] // unused: must not be written
	data, err := Encode(tail)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if h.OpsetVersion != ExportOpset {
		t.Errorf("opset %d, want %d", h.OpsetVersion, ExportOpset)
	}
	if _, ok := h.Initializers["w"]; ok {
		t.Errorf("unused initializer w was exported")
	}
	if len(h.Nodes) != 2 || h.Inputs[0].Name != "p" {
		t.Errorf("tail decoded as %d nodes, inputs %v", len(h.Nodes), h.Inputs)
	}

	// A piece missing a tensor it needs is refused.
	bad := model.NewGraph("bad")
	bad.Outputs = g.Outputs
	bad.Nodes = g.Nodes[5:]
	if _, err := Encode(bad); err == nil {
		t.Fatal("Encode accepted a piece that reads tensors nothing provides")
	}
	// A float64 initializer cannot be written.
	f64 := sampleGraph()
	f64.Initializers["b"] = tensor.New(tensor.WithShape(4), tensor.WithBacking([]float64{1, 2, 3, 4}))
	if _, err := Encode(f64); err == nil {
		t.Fatal("Encode accepted a float64 initializer")
	}
}

// same is reflect.DeepEqual that also treats NaNs printed alike as equal.
func same(a, b any) bool {
	return reflect.DeepEqual(a, b) || fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}
