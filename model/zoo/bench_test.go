package zoo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// BenchmarkInference runs the 224×224 MobileNetV2 and ResNet-18 end to end
// on one and two threads; -benchmem shows steady-state inference allocates
// nothing at either.
func BenchmarkInference(b *testing.B) {
	for _, name := range []string{"mobilenetv2", "resnet18"} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", name, threads), func(b *testing.B) { benchInference(b, name, threads) })
		}
	}
}

func benchInference(b *testing.B, name string, threads int) {
	g, err := zoo.Build(name, 1)
	if err != nil {
		b.Fatal(err)
	}
	net, err := model.Compile(g, model.Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	in := net.Inputs()[0]
	x := tensor.New(tensor.WithShape(in.Shape...), tensor.WithBacking(make([]float32, tensor.Shape(in.Shape).TotalSize())))
	ex := net.NewExtractor()
	ctx := context.Background()
	if _, err := ex.Run(ctx, x); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ex.Run(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
}
