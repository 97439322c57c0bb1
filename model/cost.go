package model

import "gorgonia.org/tensor"

// NodeCost returns the multiply-accumulates and the weight elements (float32
// constants read by the node) of node i of a simplified graph (g.Shapes must
// be filled, as Simplify and InferShapes do). Element-wise and data-movement
// ops count one MAC per output element they compute (0 for pure copies);
// pooling counts one per window tap.
func NodeCost(g *Graph, i int) (macs, params int64) {
	if g == nil || i < 0 || i >= len(g.Nodes) {
		return 0, 0
	}
	n := g.Nodes[i]
	shape := func(name string) []int { return g.Shapes[name] }
	numel := func(name string) int64 {
		s, ok := g.Shapes[name]
		if !ok {
			return 0
		}
		p := int64(1)
		for _, d := range s {
			p *= int64(d)
		}
		return p
	}
	for k, in := range n.Inputs {
		if in == "" {
			continue
		}
		if t, ok := g.Initializers[in]; ok {
			if k == 0 && n.Op != "Gemm" && n.Op != "MatMul" {
				continue
			}
			if t.Dtype() == tensor.Float32 {
				params += numel(in)
			}
		}
	}
	out := numel(n.Outputs[0])
	switch n.Op {
	case "Conv":
		w := shape(n.Input(1))
		if len(w) >= 3 {
			per := int64(1)
			for _, d := range w[1:] {
				per *= int64(d)
			}
			macs = out * per
		}
	case "ConvTranspose":
		w := shape(n.Input(1))
		if len(w) >= 3 {
			per := int64(1)
			for _, d := range w[1:] {
				per *= int64(d)
			}
			macs = numel(n.Inputs[0]) * per
		}
	case "Gemm", "MatMul":
		a := shape(n.Inputs[0])
		if len(a) > 0 {
			k := int64(a[len(a)-1])
			if n.Op == "Gemm" && n.AttrInt("transA", 0) != 0 {
				k = int64(a[0])
			}
			macs = out * k
		}
	case "MaxPool", "AveragePool":
		k := int64(1)
		for _, d := range n.AttrInts("kernel_shape") {
			k *= d
		}
		macs = out * k
	case "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin":
		macs = numel(n.Inputs[0])
	case "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast",
		"Transpose", "Slice", "Gather", "Concat", "Expand", "Tile", "Pad":
		macs = 0
	default:
		macs = out
	}
	return macs, params
}
