package zoo

import (
	"context"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// TestBuildViT builds a ViT of another size, runs it in the engine and
// checks its output is a probability vector; bad configurations fail.
func TestBuildViT(t *testing.T) {
	c := ViTConfig{Channels: 3, Size: 16, Patch: 4, Dim: 24, Depth: 2, Heads: 3, MLP: 48, Classes: 5}
	g, err := BuildViT("vit-small-test", c, 2)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*16*16)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	out, err := net.NewExtractor().Run(context.Background(), tensor.New(tensor.WithShape(1, 3, 16, 16), tensor.WithBacking(x)))
	if err != nil {
		t.Fatal(err)
	}
	p := out[0].Data().([]float32)
	var sum float32
	for _, v := range p {
		sum += v
	}
	if len(p) != 5 || sum < 0.9999 || sum > 1.0001 {
		t.Fatalf("output %v (sum %v), want 5 probabilities", p, sum)
	}
	for _, bad := range []ViTConfig{
		{Channels: 1, Size: 28, Patch: 5, Dim: 64, Depth: 1, Heads: 4, MLP: 64, Classes: 10}, // 28 % 5
		{Channels: 1, Size: 28, Patch: 7, Dim: 64, Depth: 1, Heads: 5, MLP: 64, Classes: 10}, // 64 % 5
		{Channels: 1, Size: 28, Patch: 7, Dim: 64, Depth: 0, Heads: 4, MLP: 64, Classes: 10},
	} {
		if _, err := BuildViT("bad", bad, 1); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}
