package model

import (
	"context"
	"math"
	"math/rand"
	"testing"
	"time"
)

// benchCNN is a small MobileNet-like CNN: conv3x3 s2 + BN + ReLU6, a
// depthwise-separable block with a residual add, global pooling and a
// classifier, on 1×3×64×64.
func benchCNN(rng *rand.Rand) *Graph {
	g := NewGraph("bench")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, 3, 64, 64}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	init := func(name string, shape ...int) { g.Initializers[name] = randDense(rng, shape...) }
	init("w0", 16, 3, 3, 3)
	for _, p := range []string{"s", "b", "m"} {
		init("bn_"+p, 16)
	}
	v := make([]float32, 16)
	for i := range v {
		v[i] = 0.5 + rng.Float32()
	}
	g.Initializers["bn_v"] = denseF([]int{16}, v)
	init("wd", 16, 1, 3, 3)
	init("bd", 16)
	init("wp", 16, 16, 1, 1)
	init("bp", 16)
	init("wf", 10, 16)
	init("bf", 10)
	g.Nodes = []*Node{
		nd("Conv", "conv0", []string{"x", "w0"}, []string{"c0"}, attrs{"strides": aInts(2, 2), "pads": aInts(1, 1, 1, 1)}),
		nd("BatchNormalization", "bn0", []string{"c0", "bn_s", "bn_b", "bn_m", "bn_v"}, []string{"n0"}, nil),
		nd("Clip", "relu6", []string{"n0"}, []string{"a0"}, attrs{"min": aFloat(0), "max": aFloat(6)}),
		nd("Conv", "dw", []string{"a0", "wd", "bd"}, []string{"d"}, attrs{"group": aInt(16), "pads": aInts(1, 1, 1, 1)}),
		nd("Relu", "dwrelu", []string{"d"}, []string{"dr"}, nil),
		nd("Conv", "pw", []string{"dr", "wp", "bp"}, []string{"p"}, nil),
		nd("Add", "res", []string{"p", "a0"}, []string{"s"}, nil),
		nd("GlobalAveragePool", "gap", []string{"s"}, []string{"gp"}, nil),
		nd("Flatten", "flat", []string{"gp"}, []string{"f"}, nil),
		nd("Gemm", "fc", []string{"f", "wf", "bf"}, []string{"y"}, attrs{"transB": aInt(1)}),
	}
	g.OpsetVersion = 9
	return g
}

// refBenchCNN computes benchCNN with the naive reference helpers.
func refBenchCNN(g *Graph, x []float32) []float32 {
	f := func(n string) []float32 { return g.Initializers[n].Float32s() }
	c0, _, _ := refConv2D(x, 1, 3, 64, 64, f("w0"), 16, 3, 3, nil, 2, 2, 1, 1, 1, 1, 1, 1, 1)
	s, bb, m, v := f("bn_s"), f("bn_b"), f("bn_m"), f("bn_v")
	const hw = 32 * 32
	for i := range c0 {
		ch := i / hw
		r := (float64(c0[i])-float64(m[ch]))/math.Sqrt(float64(v[ch])+1e-5)*float64(s[ch]) + float64(bb[ch])
		c0[i] = float32(math.Min(6, math.Max(0, r)))
	}
	d, _, _ := refConv2D(c0, 1, 16, 32, 32, f("wd"), 16, 3, 3, f("bd"), 1, 1, 1, 1, 1, 1, 1, 1, 16)
	p, _, _ := refConv2D(relu(d), 1, 16, 32, 32, f("wp"), 16, 1, 1, f("bp"), 1, 1, 1, 1, 0, 0, 0, 0, 1)
	gp := make([]float32, 16)
	for ch := 0; ch < 16; ch++ {
		var acc float64
		for i := 0; i < hw; i++ {
			acc += float64(p[ch*hw+i] + c0[ch*hw+i])
		}
		gp[ch] = float32(acc / hw)
	}
	wf, bf := f("wf"), f("bf")
	y := make([]float32, 10)
	for o := range y {
		acc := float64(bf[o])
		for k := 0; k < 16; k++ {
			acc += float64(gp[k]) * float64(wf[o*16+k])
		}
		y[o] = float32(acc)
	}
	return y
}

func TestBenchCNNMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	g := benchCNN(rng)
	x := randDense(rng, 1, 3, 64, 64)
	got := runBoth(t, g, x)
	assertClose(t, "benchCNN", got[0], refBenchCNN(g, x.Float32s()), 1e-4)
}

// BenchmarkRun measures steady-state inference of benchCNN (with -benchmem
// it shows 0 allocs/op) and reports its time as a ratio to the naive
// reference computation measured in the same run (x_naive) and to the same
// net compiled without fusion (x_unfused).
func BenchmarkRun(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	g := benchCNN(rng)
	x := randDense(rng, 1, 3, 64, 64)
	ctx := context.Background()
	timeNet := func(opts Options, n int) time.Duration {
		net, err := Compile(g, opts)
		if err != nil {
			b.Fatal(err)
		}
		ex := net.NewExtractor()
		if _, err := ex.Run(ctx, x); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if _, err := ex.Run(ctx, x); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	net, err := Compile(g, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ex := net.NewExtractor()
	if _, err := ex.Run(ctx, x); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ex.Run(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	const reps = 20
	eng := timeNet(Options{}, reps)
	unf := timeNet(Options{NoFusion: true}, reps)
	t0 := time.Now()
	for i := 0; i < reps; i++ {
		refBenchCNN(g, x.Float32s())
	}
	naive := time.Since(t0)
	b.ReportMetric(float64(eng)/float64(naive), "x_naive")
	b.ReportMetric(float64(eng)/float64(unf), "x_unfused")
}

func TestRunAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, g := range []*Graph{benchCNN(rng), smallCNN(rng)} {
		net, err := Compile(g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ex := net.NewExtractor()
		x := randDense(rng, net.Inputs()[0].Shape...)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(5, func() {
			if _, err := ex.Run(ctx, x); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Run allocates %v times per run, want 0", g.Name, allocs)
		}
	}
}
