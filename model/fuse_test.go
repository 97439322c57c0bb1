package model

import (
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
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

// TestScalarChainFusion checks runs of scalar arithmetic and gates, as
// PP-LCNetV3's learnable affine blocks write them (Mul, Add, HardSwish as
// Add/Clip/Mul/Div, Mul, Add), plus Sub and Div with the scalar on either
// side: fused into one step (the Conv's, when it feeds them), bit-identical
// to the nodes one by one — on values including ±0, ±Inf and NaN — and to a
// cut inside the chain.
func TestScalarChainFusion(t *testing.T) {
	rng := rand.New(rand.NewSource(31))
	sc := func(v float32) *tensor.Dense { return denseF([]int{1}, []float32{v}) }
	build := func(conv, affine bool) *Graph {
		g := NewGraph("affine-chain")
		g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, 4, 9, 9}}}
		g.Outputs = []ValueInfo{{Name: "y"}}
		for k, v := range map[string]float32{"s1": 1.7, "b1": -0.3, "three": 3, "zero": 0, "six": 6, "s2": 0.9, "b2": 0.25, "c": 2.5, "d": 3, "e": -1.5} {
			g.Initializers[k] = sc(v)
		}
		src := "x"
		if conv {
			g.Initializers["w"] = randDense(rng, 4, 4, 3, 3)
			g.Nodes = append(g.Nodes, nd("Conv", "conv", []string{"x", "w"}, []string{"cv"}, attrs{"pads": aInts(1, 1, 1, 1)}))
			src = "cv"
		}
		t2, t8 := "t2", "t8"
		if affine {
			g.Nodes = append(g.Nodes,
				nd("Mul", "m1", []string{"s1", src}, []string{"t1"}, nil),
				nd("Add", "a1", []string{"t1", "b1"}, []string{"t2"}, nil))
		} else {
			t2 = src
		}
		g.Nodes = append(g.Nodes,
			nd("Add", "h1", []string{t2, "three"}, []string{"t3"}, nil),
			nd("Clip", "h2", []string{"t3", "zero", "six"}, []string{"t4"}, nil),
			nd("Mul", "h3", []string{t2, "t4"}, []string{"t5"}, nil),
			nd("Div", "h4", []string{"t5", "six"}, []string{"t6"}, nil))
		if affine {
			g.Nodes = append(g.Nodes,
				nd("Mul", "m2", []string{"s2", "t6"}, []string{"t7"}, nil),
				nd("Add", "a2", []string{"t7", "b2"}, []string{"t8"}, nil))
		} else {
			t8 = "t6"
		}
		g.Nodes = append(g.Nodes,
			nd("Sub", "s", []string{"c", t8}, []string{"t9"}, nil),
			nd("Div", "d1", []string{"t9", "d"}, []string{"t10"}, nil),
			nd("Div", "d2", []string{"e", "t10"}, []string{"t11"}, nil),
			nd("Sub", "s2n", []string{"t11", "e"}, []string{"y"}, nil),
		)
		return g
	}
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -3, 3, -2.5, 1e-30, 7}
	for _, tc := range [][2]bool{{false, true}, {true, true}, {false, false}, {true, false}} {
		conv, affine := tc[0], tc[1]
		g := build(conv, affine)
		net, err := Compile(g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// One step: the chain alone, or the Conv with the chain after it.
		if len(net.steps) != 1 {
			t.Errorf("conv=%v: %d steps, want 1", conv, len(net.steps))
		}
		x := randDense(rng, 1, 4, 9, 9)
		xs := x.Float32s()
		for i := range xs {
			xs[i] *= 6
		}
		copy(xs, special)
		fused := runOnce(t, g, Options{}, x)[0]
		plain := runOnce(t, g, Options{NoFusion: true}, x)[0]
		for i := range plain {
			if math.Float32bits(fused[i]) != math.Float32bits(plain[i]) {
				t.Fatalf("conv=%v affine=%v: fused y[%d] = %v (x %v), node by node %v", conv, affine, i, fused[i], xs[i], plain[i])
			}
		}
	}
	// An intermediate that is also a graph output, or read elsewhere,
	// splits the chain there and keeps the result.
	g := build(false, true)
	g.Outputs = append(g.Outputs, ValueInfo{Name: "t6"})
	net, err := Compile(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(net.steps) != 2 {
		t.Errorf("chain with a tapped middle: %d steps, want 2", len(net.steps))
	}
	x := randDense(rng, 1, 4, 9, 9)
	a, b := runOnce(t, g, Options{}, x), runOnce(t, g, Options{NoFusion: true}, x)
	for k := range a {
		for i := range a[k] {
			if math.Float32bits(a[k][i]) != math.Float32bits(b[k][i]) {
				t.Fatalf("tapped chain: output %d differs at %d: %v vs %v", k, i, a[k][i], b[k][i])
			}
		}
	}
}
