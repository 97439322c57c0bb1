package model_test

import (
	"context"
	"fmt"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// Example builds a tiny graph — a 1×1 convolution followed by ReLU and
// global average pooling — compiles it, and runs it on one input.
func Example() {
	g := model.NewGraph("tiny")
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: []int{1, 1, 2, 2}}}
	g.Outputs = []model.ValueInfo{{Name: "y"}}
	// Two output channels: 2·x and -x.
	g.Initializers["w"] = tensor.New(tensor.WithShape(2, 1, 1, 1), tensor.WithBacking([]float32{2, -1}))
	g.Nodes = []*model.Node{
		{Name: "conv", Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"c"}},
		{Name: "relu", Op: "Relu", Inputs: []string{"c"}, Outputs: []string{"r"}},
		{Name: "gap", Op: "GlobalAveragePool", Inputs: []string{"r"}, Outputs: []string{"y"}},
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ex := net.NewExtractor() // one per goroutine
	x := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float32{1, -2, 3, -4}))
	outs, err := ex.Run(context.Background(), x)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(net.Outputs()[0].Name, outs[0].Shape(), outs[0].Float32s())
	// Output: y (1, 2, 1, 1) [2 1.5]
}
