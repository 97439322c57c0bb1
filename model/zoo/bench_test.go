package zoo_test

import (
	"context"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// BenchmarkInference runs the 224×224 MobileNetV2 and ResNet-18 end to end
// on one thread; -benchmem shows steady-state inference allocates nothing.
func BenchmarkInference(b *testing.B) {
	for _, name := range []string{"mobilenetv2", "resnet18"} {
		b.Run(name, func(b *testing.B) {
			g, err := zoo.Build(name, 1)
			if err != nil {
				b.Fatal(err)
			}
			net, err := model.Compile(g, model.Options{})
			if err != nil {
				b.Fatal(err)
			}
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
		})
	}
}
