package model

import (
	"context"
	"math/rand"
	"testing"
)

// smallCNN builds conv(3→8,3x3,pad1)+relu → maxpool 2x2 → conv(8→8) → add
// (residual) → flatten → gemm(→10), on a 1×3×8×8 input.
func smallCNN(rng *rand.Rand) *Graph {
	g := NewGraph("small")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, 3, 8, 8}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.Initializers["w1"] = randDense(rng, 8, 3, 3, 3)
	g.Initializers["b1"] = randDense(rng, 8)
	g.Initializers["w2"] = randDense(rng, 8, 8, 3, 3)
	g.Initializers["b2"] = randDense(rng, 8)
	g.Initializers["wf"] = randDense(rng, 10, 128)
	g.Initializers["bf"] = randDense(rng, 10)
	g.Nodes = []*Node{
		nd("Conv", "conv1", []string{"x", "w1", "b1"}, []string{"c1"}, attrs{"pads": aInts(1, 1, 1, 1)}),
		nd("Relu", "relu1", []string{"c1"}, []string{"r1"}, nil),
		nd("MaxPool", "pool", []string{"r1"}, []string{"p1"}, attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}),
		nd("Conv", "conv2", []string{"p1", "w2", "b2"}, []string{"c2"}, attrs{"pads": aInts(1, 1, 1, 1)}),
		nd("Relu", "relu2", []string{"c2"}, []string{"r2"}, nil),
		nd("Add", "add", []string{"r2", "p1"}, []string{"s"}, nil),
		nd("Flatten", "flat", []string{"s"}, []string{"f"}, nil),
		nd("Gemm", "fc", []string{"f", "wf", "bf"}, []string{"y"}, attrs{"transB": aInt(1)}),
	}
	return g
}

// refSmallCNN computes smallCNN with the reference helpers.
func refSmallCNN(g *Graph, x []float32) []float32 {
	w1, b1 := g.Initializers["w1"].Float32s(), g.Initializers["b1"].Float32s()
	w2, b2 := g.Initializers["w2"].Float32s(), g.Initializers["b2"].Float32s()
	wf, bf := g.Initializers["wf"].Float32s(), g.Initializers["bf"].Float32s()
	c1, _, _ := refConv2D(x, 1, 3, 8, 8, w1, 8, 3, 3, b1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	r1 := relu(c1)
	p1 := make([]float32, 8*4*4)
	for c := 0; c < 8; c++ {
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				m := r1[(c*8+2*i)*8+2*j]
				m = max(m, r1[(c*8+2*i)*8+2*j+1], r1[(c*8+2*i+1)*8+2*j], r1[(c*8+2*i+1)*8+2*j+1])
				p1[(c*4+i)*4+j] = m
			}
		}
	}
	c2, _, _ := refConv2D(p1, 1, 8, 4, 4, w2, 8, 3, 3, b2, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	r2 := relu(c2)
	s := make([]float32, len(r2))
	for i := range s {
		s[i] = r2[i] + p1[i]
	}
	// y = s · wfᵀ + bf
	y := make([]float32, 10)
	for o := 0; o < 10; o++ {
		var acc float64
		for k := 0; k < 128; k++ {
			acc += float64(s[k]) * float64(wf[o*128+k])
		}
		y[o] = float32(acc) + bf[o]
	}
	return y
}

func TestSmallCNN(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	g := smallCNN(rng)
	x := randDense(rng, 1, 3, 8, 8)
	want := refSmallCNN(g, x.Float32s())
	got := runBoth(t, g, x)
	assertClose(t, "y", got[0], want, 1e-4)
}

func TestArenaTwoRunsIdentical(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	g := smallCNN(rng)
	net, err := Compile(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := net.NewExtractor()
	x1, x2 := randDense(rng, 1, 3, 8, 8), randDense(rng, 1, 3, 8, 8)
	o1, err := ex.Run(context.Background(), x1)
	if err != nil {
		t.Fatal(err)
	}
	a := append([]float32(nil), o1[0].Float32s()...)
	if _, err := ex.Run(context.Background(), x2); err != nil {
		t.Fatal(err)
	}
	o3, err := ex.Run(context.Background(), x1)
	if err != nil {
		t.Fatal(err)
	}
	b := o3[0].Float32s()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run 3 differs from run 1 at %d: %v vs %v", i, b[i], a[i])
		}
	}
	assertClose(t, "y", a, refSmallCNN(g, x1.Float32s()), 1e-4)
}

func TestThreads(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	g := benchCNN(rng)
	x := randDense(rng, 1, 3, 64, 64)
	one := runOnce(t, g, Options{}, x)
	for _, th := range []int{2, 4} {
		many := runOnce(t, g, Options{Threads: th}, x)
		assertClose(t, "threads", many[0], one[0], 1e-5)
	}
}
