package model

import (
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
)

func TestReduce(t *testing.T) {
	rng := rand.New(rand.NewSource(50))
	x := randDense(rng, 2, 3, 4)
	xd := x.Float32s()
	at := func(a, b, c int) float64 { return float64(xd[(a*3+b)*4+c]) }
	// Reduce over axes {0, 2}, keepdims → [1 3 1].
	ref := func(f func(acc, v float64) float64, init float64, fin func(acc float64, n int) float64) []float32 {
		r := make([]float32, 3)
		for b := 0; b < 3; b++ {
			acc := init
			for a := 0; a < 2; a++ {
				for c := 0; c < 4; c++ {
					acc = f(acc, at(a, b, c))
				}
			}
			r[b] = float32(fin(acc, 8))
		}
		return r
	}
	id := func(acc float64, _ int) float64 { return acc }
	sum := func(acc, v float64) float64 { return acc + v }
	cases := []struct {
		op   string
		want []float32
	}{
		{"ReduceMean", ref(sum, 0, func(a float64, n int) float64 { return a / float64(n) })},
		{"ReduceSum", ref(sum, 0, id)},
		{"ReduceMax", ref(math.Max, math.Inf(-1), id)},
		{"ReduceMin", ref(math.Min, math.Inf(1), id)},
		{"ReduceL2", ref(func(a, v float64) float64 { return a + v*v }, 0, func(a float64, _ int) float64 { return math.Sqrt(a) })},
		{"ReduceLogSumExp", ref(func(a, v float64) float64 { return a + math.Exp(v) }, 0, func(a float64, _ int) float64 { return math.Log(a) })},
	}
	for _, c := range cases {
		for _, opset := range []int64{13, 18} {
			consts := map[string]*tensor.Dense{}
			ins := []string{"x"}
			at := attrs{}
			if opset >= 18 || (c.op == "ReduceSum" && opset >= 13) {
				consts["axes"] = denseI([]int{2}, []int64{0, -1})
				ins = append(ins, "axes")
			} else {
				at["axes"] = aInts(0, -1)
			}
			got, shape := runNode(t, c.op, opset, at, ins, map[string]*tensor.Dense{"x": x}, consts)
			checkShape(t, shape, []int{1, 3, 1})
			assertClose(t, c.op, got, c.want, 1e-5)
		}
	}
	got, shape := runNode(t, "ReduceMean", 13, attrs{"keepdims": aInt(0)}, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
	checkShape(t, shape, []int{})
	var s float64
	for _, v := range xd {
		s += float64(v)
	}
	assertClose(t, "mean all", got, []float32{float32(s / 24)}, 1e-5)
}

func TestSplitAndSpaceDepth(t *testing.T) {
	rng := rand.New(rand.NewSource(51))
	x := randDense(rng, 1, 8, 2, 3)
	xd := x.Float32s()
	g, feed := oneNode("Split", 13, attrs{"axis": aInt(1)}, []string{"x", "split"}, map[string]*tensor.Dense{"x": x},
		map[string]*tensor.Dense{"split": denseI([]int{3}, []int64{2, 5, 1})}, 3)
	outs := runBoth(t, g, feed...)
	assertClose(t, "split0", outs[0], xd[:12], 0)
	assertClose(t, "split1", outs[1], xd[12:42], 0)
	assertClose(t, "split2", outs[2], xd[42:], 0)
	// An omitted middle output still gets a buffer.
	g.Nodes[0].Outputs[1] = ""
	g.Outputs = []ValueInfo{{Name: "y0"}, {Name: "y2"}}
	outs = runBoth(t, g, feed...)
	assertClose(t, "split0 (omitted middle)", outs[0], xd[:12], 0)
	assertClose(t, "split2 (omitted middle)", outs[1], xd[42:], 0)

	// DepthToSpace DCR with b=2: y[0, c, h*2+i, w*2+j] = x[0, (i*2+j)*2 + c, h, w].
	got, shape := runNode(t, "DepthToSpace", 13, attrs{"blocksize": aInt(2)}, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
	checkShape(t, shape, []int{1, 2, 4, 6})
	for c := 0; c < 2; c++ {
		for h := 0; h < 2; h++ {
			for i := 0; i < 2; i++ {
				for w := 0; w < 3; w++ {
					for j := 0; j < 2; j++ {
						want := xd[(((i*2+j)*2+c)*2+h)*3+w]
						if g := got[((c*4)+h*2+i)*6+w*2+j]; g != want {
							t.Fatalf("DepthToSpace[%d,%d,%d] = %v, want %v", c, h*2+i, w*2+j, g, want)
						}
					}
				}
			}
		}
	}
	// SpaceToDepth inverts DepthToSpace (DCR).
	y := denseF([]int{1, 2, 4, 6}, got)
	back, shape := runNode(t, "SpaceToDepth", 13, attrs{"blocksize": aInt(2)}, []string{"y"}, map[string]*tensor.Dense{"y": y}, nil)
	checkShape(t, shape, []int{1, 8, 2, 3})
	assertClose(t, "space-depth round trip", back, xd, 0)
}

func TestNormalizations(t *testing.T) {
	rng := rand.New(rand.NewSource(52))
	x := randDense(rng, 2, 3, 2, 2)
	xd := x.Float32s()
	// InstanceNormalization.
	sc, bi := randDense(rng, 3), randDense(rng, 3)
	got, _ := runNode(t, "InstanceNormalization", 13, nil, []string{"x", "s", "b"}, map[string]*tensor.Dense{"x": x},
		map[string]*tensor.Dense{"s": sc, "b": bi})
	want := make([]float32, len(xd))
	for p := 0; p < 6; p++ {
		v := xd[p*4 : p*4+4]
		var m, q float64
		for _, e := range v {
			m += float64(e) / 4
		}
		for _, e := range v {
			q += (float64(e) - m) * (float64(e) - m) / 4
		}
		for k, e := range v {
			want[p*4+k] = float32((float64(e)-m)/math.Sqrt(q+1e-5)*float64(sc.Float32s()[p%3]) + float64(bi.Float32s()[p%3]))
		}
	}
	assertClose(t, "instancenorm", got, want, 1e-5)
	// LayerNormalization over the last two axes with per-element scale.
	ls := randDense(rng, 2, 2)
	got, _ = runNode(t, "LayerNormalization", 17, attrs{"axis": aInt(-2)}, []string{"x", "s"}, map[string]*tensor.Dense{"x": x},
		map[string]*tensor.Dense{"s": ls})
	for p := 0; p < 6; p++ {
		v := xd[p*4 : p*4+4]
		var m, q float64
		for _, e := range v {
			m += float64(e) / 4
		}
		for _, e := range v {
			q += (float64(e) - m) * (float64(e) - m) / 4
		}
		for k, e := range v {
			want[p*4+k] = float32((float64(e) - m) / math.Sqrt(q+1e-5) * float64(ls.Float32s()[k]))
		}
	}
	assertClose(t, "layernorm", got, want, 1e-5)
	// LRN size 3 across the 3 channels.
	got, _ = runNode(t, "LRN", 13, attrs{"size": aInt(3), "alpha": aFloat(0.5), "beta": aFloat(0.75), "bias": aFloat(2)}, []string{"x"},
		map[string]*tensor.Dense{"x": x}, nil)
	for b := 0; b < 2; b++ {
		for c := 0; c < 3; c++ {
			for i := 0; i < 4; i++ {
				var s float64
				for cc := max(0, c-1); cc <= min(2, c+1); cc++ {
					v := float64(xd[(b*3+cc)*4+i])
					s += v * v
				}
				want[(b*3+c)*4+i] = float32(float64(xd[(b*3+c)*4+i]) / math.Pow(2+0.5/3*s, 0.75))
			}
		}
	}
	assertClose(t, "lrn", got, want, 1e-5)
}

func TestFoldLogic(t *testing.T) {
	// Where(Equal(shape, 0), input dims, shape) — an exporter's idiom for
	// Reshape with zeros — folds to a constant.
	g := NewGraph("where")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{2, 3, 4}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.Initializers["target"] = denseI([]int{2}, []int64{0, -1})
	g.Initializers["zero"] = denseI(nil, []int64{0})
	g.Nodes = []*Node{
		nd("Shape", "shape", []string{"x"}, []string{"s"}, nil),
		nd("Slice", "first2", []string{"s", "st", "en"}, []string{"s2"}, nil),
		nd("Equal", "eq", []string{"target", "zero"}, []string{"isz"}, nil),
		nd("Where", "where", []string{"isz", "s2", "target"}, []string{"shp"}, nil),
		nd("Not", "not", []string{"isz"}, []string{"nz"}, nil),
		nd("Reshape", "reshape", []string{"x", "shp"}, []string{"y"}, nil),
	}
	g.Initializers["st"] = denseI([]int{1}, []int64{0})
	g.Initializers["en"] = denseI([]int{1}, []int64{2})
	sg, err := Simplify(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sg.Nodes) != 1 || sg.Nodes[0].Op != "Reshape" {
		t.Fatalf("ops %v", opsOf(sg))
	}
	if got := sg.Initializers["shp"].Data(); !equalInts(ints(got.([]int64)), []int{2, -1}) {
		t.Fatalf("folded shape %v", got)
	}
	if s := sg.Shapes["y"]; !equalInts(s, []int{2, 12}) {
		t.Fatalf("y shape %v", s)
	}
}

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-90); x <= 89; x += 0.000731 {
		got, want := exp32(x), float32(math.Exp(float64(x)))
		if want == 0 || math.IsInf(float64(want), 0) || want < 0x1p-126 {
			if got != want && !(want < 0x1p-126 && got == 0) {
				t.Fatalf("exp32(%v) = %v, want %v", x, got, want)
			}
			continue
		}
		d := math.Abs(float64(got)-float64(want)) / float64(want)
		worst = math.Max(worst, d)
	}
	if worst > 2.5e-7 {
		t.Errorf("exp32: max relative error %.3g, want ≤ 2.5e-7 (2 ulp)", worst)
	}
	t.Logf("exp32: max relative error %.3g on [-87.3, 88.7]", worst)
	for _, tc := range []struct{ x, want float32 }{
		{0, 1}, {float32(math.Inf(-1)), 0}, {float32(math.Inf(1)), float32(math.Inf(1))}, {-100, 0}, {100, float32(math.Inf(1))},
	} {
		if got := exp32(tc.x); got != tc.want {
			t.Errorf("exp32(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	if v := exp32(float32(math.NaN())); v == v {
		t.Errorf("exp32(NaN) = %v", v)
	}
}

// TestPowSquareIsExact checks that Pow(x, 2), run as x·x, gives what
// math.Pow gives, bit for bit, including ±0, ±Inf, NaN and values whose
// square overflows or underflows.
func TestPowSquareIsExact(t *testing.T) {
	xs := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		1e20, -1e20, 1e-23, -1e-23, 3, -3, 1.1754944e-38, 0.1}
	rng := rand.New(rand.NewSource(2))
	for range 1000 {
		xs = append(xs, float32(rng.NormFloat64()*math.Pow(10, float64(rng.Intn(40)-20))))
	}
	g := NewGraph("pow2")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{len(xs)}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.Initializers["two"] = denseF([]int{1}, []float32{2})
	g.Nodes = []*Node{nd("Pow", "p", []string{"x", "two"}, []string{"y"}, nil)}
	y := runOnce(t, g, Options{}, denseF([]int{len(xs)}, xs))[0]
	for i, x := range xs {
		want := float32(math.Pow(float64(x), 2))
		if math.Float32bits(y[i]) != math.Float32bits(want) && !(want != want && y[i] != y[i]) {
			t.Fatalf("Pow(%v, 2) = %v, math.Pow %v", x, y[i], want)
		}
	}
}

// TestSoftmaxRows checks Softmax along contiguous rows against float64
// arithmetic, with a NaN row (all NaN), a row with −Inf entries, signed
// zeros, and a 6625-class row like PP-OCR's CTC head.
func TestSoftmaxRows(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	rng := rand.New(rand.NewSource(5))
	long := make([]float32, 6625)
	for i := range long {
		long[i] = float32(rng.NormFloat64() * 8)
	}
	rows := [][]float32{{1, 2, 3, 4}, {1, nan, 3, 4}, {-inf, 0, -inf, 2}, {float32(math.Copysign(0, -1)), 0, 0, 0}, long}
	for _, r := range rows {
		g := NewGraph("softmax")
		g.OpsetVersion = 13
		g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, len(r)}}}
		g.Outputs = []ValueInfo{{Name: "y"}}
		g.Nodes = []*Node{nd("Softmax", "s", []string{"x"}, []string{"y"}, attrs{"axis": aInt(-1)})}
		y := runOnce(t, g, Options{}, denseF([]int{1, len(r)}, r))[0]
		m := math.Inf(-1)
		hasNaN := false
		for _, v := range r {
			m = math.Max(m, float64(v))
			hasNaN = hasNaN || v != v
		}
		var s float64
		for _, v := range r {
			s += math.Exp(float64(v) - m)
		}
		for i, v := range r {
			want := math.Exp(float64(v)-m) / s
			if hasNaN {
				if y[i] == y[i] {
					t.Fatalf("row with NaN: y[%d] = %v, want NaN", i, y[i])
				}
				continue
			}
			if d := math.Abs(float64(y[i]) - want); d > 1e-6*math.Max(1e-3, want) && d > 1e-9 {
				t.Fatalf("len %d: y[%d] = %v, want %v", len(r), i, y[i], want)
			}
		}
	}
}

// The opset 18–19 forms: Split by num_outputs (uneven: the last part is
// the smaller) and AveragePool with dilations.
func TestOpset18Forms(t *testing.T) {
	rng := rand.New(rand.NewSource(52))
	x := randDense(rng, 1, 7, 2, 2)
	xd := x.Float32s()
	g, feed := oneNode("Split", 18, attrs{"axis": aInt(1), "num_outputs": aInt(2)}, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil, 2)
	outs := runBoth(t, g, feed...)
	assertClose(t, "split0 (num_outputs)", outs[0], xd[:16], 0)
	assertClose(t, "split1 (num_outputs)", outs[1], xd[16:], 0)

	p := randDense(rng, 1, 1, 5, 5)
	pd := p.Float32s()
	got, shape := runNode(t, "AveragePool", 19, attrs{"kernel_shape": aInts(2, 2), "dilations": aInts(2, 2)}, []string{"x"}, map[string]*tensor.Dense{"x": p}, nil)
	checkShape(t, shape, []int{1, 1, 3, 3})
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			want := (pd[i*5+j] + pd[i*5+j+2] + pd[(i+2)*5+j] + pd[(i+2)*5+j+2]) / 4
			if d := got[i*3+j] - want; d > 1e-6 || d < -1e-6 {
				t.Fatalf("dilated AveragePool[%d,%d] = %v, want %v", i, j, got[i*3+j], want)
			}
		}
	}
}
