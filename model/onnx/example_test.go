package onnx_test

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx"
)

// Export a small graph (or any piece of one) as ONNX and read it back.
func ExampleEncode() {
	g := model.NewGraph("tiny")
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: []int{-1, 3, 8, 8}}}
	g.Outputs = []model.ValueInfo{{Name: "y"}}
	g.Initializers["w"] = tensor.New(tensor.WithShape(4, 3, 1, 1), tensor.WithBacking(make([]float32, 12)))
	g.Nodes = []*model.Node{
		{Name: "conv", Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"c"}},
		{Name: "relu", Op: "Relu", Inputs: []string{"c"}, Outputs: []string{"y"}},
	}
	data, err := onnx.Encode(g)
	if err != nil {
		panic(err)
	}
	back, err := onnx.Decode(data)
	if err != nil {
		panic(err)
	}
	fmt.Println("opset", back.OpsetVersion, "input", back.Inputs[0].Name, back.Inputs[0].Shape)
	for _, n := range back.Nodes {
		fmt.Println(n.Name, n.Op, n.Inputs, "->", n.Outputs)
	}
	fmt.Println("w", back.Initializers["w"].Shape())
	// Output:
	// opset 13 input x [-1 3 8 8]
	// conv Conv [x w] -> [c]
	// relu Relu [c] -> [y]
	// w (4, 3, 1, 1)
}
