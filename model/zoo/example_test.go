package zoo_test

import (
	"fmt"

	"github.com/edgesplit/edgesplit/model/zoo"
)

func ExampleBuild() {
	g, err := zoo.Build("lenet-exits", 1)
	if err != nil {
		panic(err)
	}
	for _, o := range g.Outputs {
		fmt.Println(o.Name, o.Shape)
	}
	fmt.Println(zoo.ParamCount(g), "parameters")
	// Output:
	// exit1 [1 10]
	// exit2 [1 10]
	// probs [1 10]
	// 70086 parameters
}

func ExampleSeedCNNTrained() {
	g, sc, err := zoo.SeedCNNTrained()
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Inputs[0].Name, g.Inputs[0].Shape, "→", g.Outputs[0].Name)
	fmt.Println(sc.Arch, "on", sc.Dataset, "labels", sc.Labels[0], "…", sc.Labels[9], "accuracy ≥ 98.5 %:", sc.Accuracy >= 0.985)
	// Output:
	// input [1 1 28 28] → probs
	// seed-cnn on mnist labels 0 … 9 accuracy ≥ 98.5 %: true
}
