package model

import (
	"math"
	"math/rand"
	"testing"
)

// hardSwishGraph: conv → x·clip(x+3,0,6)/6 (or x·HardSigmoid(x)) → relu,
// optionally with x also read elsewhere so it cannot fold into the conv.
func hardSwishGraph(rng *rand.Rand, form string, shareX bool) *Graph {
	g := NewGraph("hswish-" + form)
	g.OpsetVersion = 13
	g.Inputs = []ValueInfo{{Name: "in", Shape: []int{1, 3, 5, 5}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.Initializers["w"] = randDense(rng, 4, 3, 3, 3)
	g.Initializers["three"] = denseF(nil, []float32{3})
	g.Initializers["zero"] = denseF(nil, []float32{0})
	g.Initializers["six"] = denseF(nil, []float32{6})
	g.Initializers["sixth"] = denseF([]int{1}, []float32{1.0 / 6})
	g.Nodes = []*Node{nd("Conv", "conv", []string{"in", "w"}, []string{"x"}, attrs{"pads": aInts(1, 1, 1, 1)})}
	switch form {
	case "div", "mul":
		last := nd("Div", "div", []string{"m", "six"}, []string{"h"}, nil)
		if form == "mul" {
			last = nd("Mul", "mul6", []string{"m", "sixth"}, []string{"h"}, nil)
		}
		g.Nodes = append(g.Nodes,
			nd("Add", "add3", []string{"three", "x"}, []string{"a"}, nil),
			nd("Clip", "clip", []string{"a", "zero", "six"}, []string{"c"}, nil),
			nd("Mul", "mul", []string{"c", "x"}, []string{"m"}, nil),
			last)
	case "hardsigmoid":
		g.Nodes = append(g.Nodes,
			nd("HardSigmoid", "hs", []string{"x"}, []string{"s"}, attrs{"alpha": aFloat(1.0 / 6)}),
			nd("Mul", "mul", []string{"x", "s"}, []string{"h"}, nil))
	case "silu":
		g.Nodes = append(g.Nodes,
			nd("Sigmoid", "sig", []string{"x"}, []string{"s"}, nil),
			nd("Mul", "mul", []string{"s", "x"}, []string{"h"}, nil))
	}
	g.Nodes = append(g.Nodes, nd("Relu", "relu", []string{"h"}, []string{"r"}, nil))
	if shareX {
		g.Nodes = append(g.Nodes, nd("Add", "res", []string{"r", "x"}, []string{"y"}, nil))
	} else {
		g.Nodes = append(g.Nodes, nd("Identity", "out", []string{"r"}, []string{"y"}, nil))
	}
	return g
}

func TestActivationChainFusion(t *testing.T) {
	rng := rand.New(rand.NewSource(30))
	for _, form := range []string{"div", "mul", "hardsigmoid", "silu"} {
		for _, share := range []bool{false, true} {
			g := hardSwishGraph(rng, form, share)
			net, err := Compile(g, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Steps: conv (with the chain in its epilogue) + relu [+ add]
			// when x feeds only the chain; conv + chain + relu [+ add]
			// otherwise.
			want := 2
			if share {
				want = 4
			}
			if len(net.steps) != want {
				t.Errorf("%s share=%v: %d steps, want %d", form, share, len(net.steps), want)
			}
			in := randDense(rng, 1, 3, 5, 5)
			got := runBoth(t, g, in)[0]
			// The fused chain is bit-identical to the nodes run one by one.
			plain := runOnce(t, g, Options{NoFusion: true}, in)[0]
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(plain[i]) {
					t.Fatalf("%s share=%v: fused %v != unfused %v at %d", form, share, got[i], plain[i], i)
				}
			}
			x, _, _ := refConv2D(in.Float32s(), 1, 3, 5, 5, g.Initializers["w"].Float32s(), 4, 3, 3, nil, 1, 1, 1, 1, 1, 1, 1, 1, 1)
			ref := make([]float32, len(x))
			for i, v := range x {
				h := float64(v) * math.Max(0, math.Min(6, float64(v)+3)) / 6
				if form == "silu" {
					h = float64(v) / (1 + math.Exp(-float64(v)))
				}
				r := math.Max(h, 0)
				if share {
					r += float64(v)
				}
				ref[i] = float32(r)
			}
			assertClose(t, form, got, ref, 1e-5)
		}
	}
}

// TestConvAffineActivationFusionIsExact checks that a Conv with a fused
// HardSigmoid or HardSwish gives, bit for bit, what the Conv then the
// standalone activation node give (a graph cut between the two runs them
// apart), on the kernel families that fuse epilogues: pointwise with a
// 240-row output (12-row SGEMM tiles), one column (edge tile), im2col, and
// depthwise 3×3 and 5×5, at 1 and 2 threads.
func TestConvAffineActivationFusionIsExact(t *testing.T) {
	rng := rand.New(rand.NewSource(194))
	cases := []struct {
		name                   string
		inC, outC, h, w, k, gp int
	}{
		{"pointwise-240x1", 60, 240, 1, 1, 1, 1},
		{"pointwise-240", 64, 240, 6, 24, 1, 1},
		{"im2col-3x3", 16, 36, 9, 13, 3, 1},
		{"depthwise-3x3", 48, 48, 12, 40, 3, 48},
		{"depthwise-5x5", 48, 48, 12, 40, 5, 48},
	}
	acts := []struct {
		op string
		at attrs
	}{
		{"HardSigmoid", attrs{"alpha": aFloat(1.0 / 6), "beta": aFloat(0.5)}},
		{"HardSigmoid", nil},
		{"HardSwish", nil},
	}
	for _, tc := range cases {
		for _, a := range acts {
			g := NewGraph(tc.name + "-" + a.op)
			g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, tc.inC, tc.h, tc.w}}}
			g.Outputs = []ValueInfo{{Name: "y"}}
			g.Initializers["w"] = randDense(rng, tc.outC, tc.inC/tc.gp, tc.k, tc.k)
			g.Initializers["b"] = randDense(rng, tc.outC)
			p := int64(tc.k / 2)
			g.Nodes = []*Node{
				nd("Conv", "conv", []string{"x", "w", "b"}, []string{"c"}, attrs{"group": aInt(int64(tc.gp)), "pads": aInts(p, p, p, p)}),
				nd(a.op, "act", []string{"c"}, []string{"y"}, a.at),
			}
			x := randDense(rng, 1, tc.inC, tc.h, tc.w)
			for _, threads := range []int{1, 2} {
				fused := runOnce(t, g, Options{Threads: threads}, x)[0]
				apart := runOnce(t, g, Options{Threads: threads, NoFusion: true}, x)[0]
				for i := range apart {
					if math.Float32bits(fused[i]) != math.Float32bits(apart[i]) {
						t.Fatalf("%s, %d threads: fused y[%d] = %v, Conv then %s %v", g.Name, threads, i, fused[i], a.op, apart[i])
					}
				}
			}
		}
	}
}
