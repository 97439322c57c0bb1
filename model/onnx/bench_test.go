package onnx

import (
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
)

// benchGraph is a chain of 1×1 convolutions holding about 4 MB of float32
// weights, so decode and encode time is dominated by tensor data.
func benchGraph() *model.Graph {
	g := model.NewGraph("bench")
	g.Inputs = []model.ValueInfo{{Name: "x0", Shape: []int{1, 256, 7, 7}}}
	prev := "x0"
	for i := 0; i < 16; i++ {
		w := "w" + string(rune('a'+i))
		g.Initializers[w] = tensor.New(tensor.WithShape(256, 256, 1, 1), tensor.WithBacking(make([]float32, 256*256)))
		out := "x" + string(rune('a'+i))
		g.Nodes = append(g.Nodes, &model.Node{Name: "conv" + out, Op: "Conv", Inputs: []string{prev, w}, Outputs: []string{out}})
		prev = out
	}
	g.Outputs = []model.ValueInfo{{Name: prev}}
	return g
}

// BenchmarkDecode reports decode throughput; the copy of the same bytes is
// measured in the same run as a reference (ratio = decode time / copy time).
func BenchmarkDecode(b *testing.B) {
	data, err := Encode(benchGraph())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy-reference", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, len(data))
		for b.Loop() {
			copy(buf, data)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	g := benchGraph()
	data, _ := Encode(g)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Encode(g); err != nil {
			b.Fatal(err)
		}
	}
}
