package model

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
)

// oneNode builds a graph holding a single node whose inputs named in
// dynamic are graph inputs (with the shapes of the tensors given) and
// whose other inputs are initializers.
func oneNode(op string, opset int64, at attrs, ins []string, dyn map[string]*tensor.Dense, consts map[string]*tensor.Dense, nOut int) (*Graph, []*tensor.Dense) {
	g := NewGraph(op)
	g.OpsetVersion = opset
	var feed []*tensor.Dense
	for _, name := range ins {
		if t, ok := dyn[name]; ok {
			g.Inputs = append(g.Inputs, ValueInfo{Name: name, Shape: cloneInts(t.Shape())})
			feed = append(feed, t)
		}
	}
	for k, v := range consts {
		g.Initializers[k] = v
	}
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = fmt.Sprintf("y%d", i)
		g.Outputs = append(g.Outputs, ValueInfo{Name: outs[i]})
	}
	g.Nodes = []*Node{nd(op, "n_"+op, ins, outs, at)}
	return g, feed
}

// runNode runs a one-node graph and returns output 0 and its shape.
func runNode(t *testing.T, op string, opset int64, at attrs, ins []string, dyn, consts map[string]*tensor.Dense) ([]float32, []int) {
	t.Helper()
	g, feed := oneNode(op, opset, at, ins, dyn, consts, 1)
	net, err := Compile(g, Options{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	out := runBoth(t, g, feed...)
	return out[0], net.Outputs()[0].Shape
}

func checkShape(t *testing.T, got, want []int) {
	t.Helper()
	if !equalInts(got, want) {
		t.Fatalf("shape %v, want %v", got, want)
	}
}

func TestConv(t *testing.T) {
	type tc struct {
		name                  string
		n, c, h, w, m, kh, kw int
		group                 int
		at                    attrs
		sh, sw, dh, dw        int
		pt, pl, pb, pr        int
		bias                  bool
	}
	cases := []tc{
		{name: "3x3 pad1", n: 1, c: 3, h: 7, w: 6, m: 4, kh: 3, kw: 3, group: 1, at: attrs{"pads": aInts(1, 1, 1, 1)}, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, bias: true},
		{name: "asym pads stride2", n: 2, c: 2, h: 9, w: 8, m: 3, kh: 3, kw: 2, group: 1, at: attrs{"pads": aInts(0, 1, 2, 0), "strides": aInts(2, 3)}, sh: 2, sw: 3, dh: 1, dw: 1, pt: 0, pl: 1, pb: 2, pr: 0},
		{name: "dilation", n: 1, c: 2, h: 10, w: 10, m: 2, kh: 3, kw: 3, group: 1, at: attrs{"dilations": aInts(2, 3), "pads": aInts(2, 1, 1, 2)}, sh: 1, sw: 1, dh: 2, dw: 3, pt: 2, pl: 1, pb: 1, pr: 2, bias: true},
		{name: "groups", n: 1, c: 4, h: 5, w: 5, m: 6, kh: 3, kw: 3, group: 2, at: attrs{"group": aInt(2)}, sh: 1, sw: 1, dh: 1, dw: 1},
		{name: "depthwise s2", n: 1, c: 5, h: 8, w: 7, m: 5, kh: 3, kw: 3, group: 5, at: attrs{"group": aInt(5), "strides": aInts(2, 2), "pads": aInts(1, 1, 1, 1)}, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, bias: true},
		{name: "depthwise multiplier", n: 1, c: 3, h: 6, w: 6, m: 6, kh: 3, kw: 3, group: 3, at: attrs{"group": aInt(3)}, sh: 1, sw: 1, dh: 1, dw: 1},
		{name: "1x1", n: 2, c: 8, h: 4, w: 5, m: 3, kh: 1, kw: 1, group: 1, sh: 1, sw: 1, dh: 1, dw: 1, bias: true},
		{name: "1x1 stride2", n: 1, c: 4, h: 6, w: 6, m: 3, kh: 1, kw: 1, group: 1, at: attrs{"strides": aInts(2, 2)}, sh: 2, sw: 2, dh: 1, dw: 1},
		// SAME_UPPER: in 7, s 2, k 3 → out 4, total pad 2 → 1/1; in 6 → out 3, total 1 → 0/1.
		{name: "SAME_UPPER", n: 1, c: 2, h: 7, w: 6, m: 2, kh: 3, kw: 3, group: 1, at: attrs{"auto_pad": aStr("SAME_UPPER"), "strides": aInts(2, 2)}, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 0, pb: 1, pr: 1},
		{name: "SAME_LOWER", n: 1, c: 2, h: 7, w: 6, m: 2, kh: 3, kw: 3, group: 1, at: attrs{"auto_pad": aStr("SAME_LOWER"), "strides": aInts(2, 2)}, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 0},
		{name: "VALID", n: 1, c: 2, h: 7, w: 6, m: 2, kh: 3, kw: 2, group: 1, at: attrs{"auto_pad": aStr("VALID"), "strides": aInts(2, 1)}, sh: 2, sw: 1, dh: 1, dw: 1},
	}
	rng := rand.New(rand.NewSource(3))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := randDense(rng, c.n, c.c, c.h, c.w)
			w := randDense(rng, c.m, c.c/c.group, c.kh, c.kw)
			consts := map[string]*tensor.Dense{"w": w}
			ins := []string{"x", "w"}
			var bias []float32
			if c.bias {
				b := randDense(rng, c.m)
				consts["b"] = b
				ins = append(ins, "b")
				bias = b.Float32s()
			}
			got, shape := runNode(t, "Conv", 13, c.at, ins, map[string]*tensor.Dense{"x": x}, consts)
			want, oh, ow := refConv2D(x.Float32s(), c.n, c.c, c.h, c.w, w.Float32s(), c.m, c.kh, c.kw, bias,
				c.sh, c.sw, c.dh, c.dw, c.pt, c.pl, c.pb, c.pr, c.group)
			checkShape(t, shape, []int{c.n, c.m, oh, ow})
			assertClose(t, c.name, got, want, 1e-4)
		})
	}
	t.Run("1-D", func(t *testing.T) {
		x := randDense(rng, 1, 2, 9)
		w := randDense(rng, 3, 2, 3)
		got, shape := runNode(t, "Conv", 13, attrs{"pads": aInts(1, 0), "strides": aInts(2)}, []string{"x", "w"},
			map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"w": w})
		want, _, ow := refConv2D(x.Float32s(), 1, 2, 1, 9, w.Float32s(), 3, 1, 3, nil, 1, 2, 1, 1, 0, 1, 0, 0, 1)
		checkShape(t, shape, []int{1, 3, ow})
		assertClose(t, "conv1d", got, want, 1e-4)
	})
}

// refConvTranspose scatters every input pixel through the kernel.
func refConvTranspose(x []float32, n, c, h, w int, wt []float32, m, kh, kw, group int, bias []float32,
	sh, sw, dh, dw, pt, pl, oh, ow int) []float32 {
	y := make([]float32, n*m*oh*ow)
	cg, mg := c/group, m/group
	for b := 0; b < n; b++ {
		for ic := 0; ic < c; ic++ {
			g := ic / cg
			for i := 0; i < h; i++ {
				for j := 0; j < w; j++ {
					v := x[((b*c+ic)*h+i)*w+j]
					for om := 0; om < mg; om++ {
						o := g*mg + om
						for a := 0; a < kh; a++ {
							for bb := 0; bb < kw; bb++ {
								yi, yj := i*sh-pt+a*dh, j*sw-pl+bb*dw
								if yi < 0 || yi >= oh || yj < 0 || yj >= ow {
									continue
								}
								y[((b*m+o)*oh+yi)*ow+yj] += v * wt[((ic*mg+om)*kh+a)*kw+bb]
							}
						}
					}
				}
			}
		}
		if bias != nil {
			for o := 0; o < m; o++ {
				for k := 0; k < oh*ow; k++ {
					y[(b*m+o)*oh*ow+k] += bias[o]
				}
			}
		}
	}
	return y
}

func TestConvTranspose(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	type tc struct {
		name               string
		c, h, w, m, kh, kw int
		group              int
		at                 attrs
		sh, sw, dh, dw     int
		pt, pl, oh, ow     int
	}
	cases := []tc{
		// out = s(in-1) + op + keff - pb - pe
		{name: "stride2", c: 2, h: 3, w: 4, m: 3, kh: 3, kw: 3, group: 1, at: attrs{"strides": aInts(2, 2)}, sh: 2, sw: 2, dh: 1, dw: 1, oh: 7, ow: 9},
		{name: "pads+output_padding", c: 2, h: 3, w: 3, m: 2, kh: 3, kw: 3, group: 1,
			at: attrs{"strides": aInts(2, 2), "pads": aInts(1, 1, 1, 1), "output_padding": aInts(1, 1)}, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, oh: 6, ow: 6},
		{name: "groups dilation", c: 4, h: 3, w: 3, m: 6, kh: 2, kw: 2, group: 2,
			at: attrs{"group": aInt(2), "dilations": aInts(2, 2)}, sh: 1, sw: 1, dh: 2, dw: 2, oh: 5, ow: 5},
		// output_shape 10x8 with s2 k3: full = 2*3+3 = 9 (+op) — total pad = 9-8 = 1 → NOTSET: pb = 1, pe = 0.
		{name: "output_shape", c: 1, h: 4, w: 4, m: 1, kh: 3, kw: 3, group: 1,
			at: attrs{"strides": aInts(2, 2), "output_shape": aInts(9, 8)}, sh: 2, sw: 2, dh: 1, dw: 1, pt: 0, pl: 1, oh: 9, ow: 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := randDense(rng, 1, c.c, c.h, c.w)
			w := randDense(rng, c.c, c.m/c.group, c.kh, c.kw)
			b := randDense(rng, c.m)
			got, shape := runNode(t, "ConvTranspose", 13, c.at, []string{"x", "w", "b"},
				map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"w": w, "b": b})
			checkShape(t, shape, []int{1, c.m, c.oh, c.ow})
			want := refConvTranspose(x.Float32s(), 1, c.c, c.h, c.w, w.Float32s(), c.m, c.kh, c.kw, c.group, b.Float32s(),
				c.sh, c.sw, c.dh, c.dw, c.pt, c.pl, c.oh, c.ow)
			assertClose(t, c.name, got, want, 1e-4)
		})
	}
}

// refPool is a naive 2-D pool over explicit pads and a given output size.
func refPool(x []float32, planes, h, w, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow int, isMax, includePad bool) []float32 {
	y := make([]float32, planes*oh*ow)
	for p := 0; p < planes; p++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				m := math.Inf(-1)
				var s float64
				cnt := 0
				for a := 0; a < kh; a++ {
					for b := 0; b < kw; b++ {
						ih, iw := i*sh-pt+a, j*sw-pl+b
						inPad := ih >= -pt && ih < h+pb && iw >= -pl && iw < w+pr
						if ih < 0 || ih >= h || iw < 0 || iw >= w {
							if includePad && inPad {
								cnt++
							}
							continue
						}
						v := float64(x[(p*h+ih)*w+iw])
						m = math.Max(m, v)
						s += v
						cnt++
					}
				}
				if isMax {
					y[(p*oh+i)*ow+j] = float32(m)
				} else {
					y[(p*oh+i)*ow+j] = float32(s / float64(cnt))
				}
			}
		}
	}
	return y
}

func TestPool(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	type tc struct {
		name           string
		op             string
		h, w           int
		at             attrs
		kh, kw, sh, sw int
		pt, pl, pb, pr int
		oh, ow         int
		includePad     bool
	}
	cases := []tc{
		{name: "max 2x2", op: "MaxPool", h: 6, w: 6, at: attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}, kh: 2, kw: 2, sh: 2, sw: 2, oh: 3, ow: 3},
		{name: "max 2x2 s2 ceil pad", op: "MaxPool", h: 5, w: 5, at: attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2), "pads": aInts(0, 1, 0, 0), "ceil_mode": aInt(1)}, kh: 2, kw: 2, sh: 2, sw: 2, pl: 1, oh: 3, ow: 3},
		{name: "max 3x3 s2 pad1", op: "MaxPool", h: 7, w: 8, at: attrs{"kernel_shape": aInts(3, 3), "strides": aInts(2, 2), "pads": aInts(1, 1, 1, 1)}, kh: 3, kw: 3, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, oh: 4, ow: 4},
		// ceil: (5-3)/2 → ceil((5+0-3)/2)+1 = 2; w: (6-3)/2=1.5 → 3 ... last window start 4 < 6 → 3
		{name: "max ceil", op: "MaxPool", h: 5, w: 6, at: attrs{"kernel_shape": aInts(3, 3), "strides": aInts(2, 2), "ceil_mode": aInt(1)}, kh: 3, kw: 3, sh: 2, sw: 2, pb: 0, pr: 1, oh: 2, ow: 3},
		{name: "avg exclude pad", op: "AveragePool", h: 5, w: 5, at: attrs{"kernel_shape": aInts(3, 3), "pads": aInts(1, 1, 1, 1)}, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, oh: 5, ow: 5},
		{name: "avg include pad", op: "AveragePool", h: 5, w: 5, at: attrs{"kernel_shape": aInts(3, 3), "pads": aInts(1, 1, 1, 1), "count_include_pad": aInt(1)}, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, oh: 5, ow: 5, includePad: true},
		{name: "avg asym pads", op: "AveragePool", h: 6, w: 5, at: attrs{"kernel_shape": aInts(2, 3), "strides": aInts(2, 1), "pads": aInts(0, 2, 1, 0)}, kh: 2, kw: 3, sh: 2, sw: 1, pt: 0, pl: 2, pb: 1, pr: 0, oh: 3, ow: 5},
		{name: "avg ceil", op: "AveragePool", h: 4, w: 4, at: attrs{"kernel_shape": aInts(3, 3), "strides": aInts(2, 2), "ceil_mode": aInt(1)}, kh: 3, kw: 3, sh: 2, sw: 2, pb: 1, pr: 1, oh: 2, ow: 2},
		// SAME_UPPER: in 5, s 2, k 3 → out 3, total 2 → 1/1.
		{name: "max SAME_UPPER", op: "MaxPool", h: 5, w: 4, at: attrs{"kernel_shape": aInts(3, 2), "strides": aInts(2, 2), "auto_pad": aStr("SAME_UPPER")}, kh: 3, kw: 2, sh: 2, sw: 2, pt: 1, pl: 0, pb: 1, pr: 0, oh: 3, ow: 2},
		{name: "avg SAME_LOWER", op: "AveragePool", h: 4, w: 4, at: attrs{"kernel_shape": aInts(2, 2), "auto_pad": aStr("SAME_LOWER")}, kh: 2, kw: 2, sh: 1, sw: 1, pt: 1, pl: 1, oh: 4, ow: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := randDense(rng, 2, 3, c.h, c.w)
			got, shape := runNode(t, c.op, 13, c.at, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
			checkShape(t, shape, []int{2, 3, c.oh, c.ow})
			want := refPool(x.Float32s(), 6, c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.pt, c.pl, c.pb, c.pr, c.oh, c.ow, c.op == "MaxPool", c.includePad)
			assertClose(t, c.name, got, want, 1e-5)
		})
	}
	t.Run("global", func(t *testing.T) {
		x := randDense(rng, 2, 3, 4, 5)
		for _, op := range []string{"GlobalAveragePool", "GlobalMaxPool"} {
			got, shape := runNode(t, op, 13, nil, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
			checkShape(t, shape, []int{2, 3, 1, 1})
			want := refPool(x.Float32s(), 6, 4, 5, 4, 5, 1, 1, 0, 0, 0, 0, 1, 1, op == "GlobalMaxPool", false)
			assertClose(t, op, got, want, 1e-5)
		}
	})
}

// refBroadcast computes f over the numpy broadcast of a and b by index math.
func refBroadcast(a []float32, as []int, b []float32, bs []int, f func(x, y float32) float32) ([]float32, []int) {
	out, _ := broadcastShape(as, bs)
	n := prod(out)
	y := make([]float32, n)
	idx := make([]int, len(out))
	at := func(d []float32, s []int) float32 {
		off, st := 0, 1
		for k := len(s) - 1; k >= 0; k-- {
			i := idx[len(out)-len(s)+k]
			if s[k] == 1 {
				i = 0
			}
			off += i * st
			st *= s[k]
		}
		return d[off]
	}
	for i := 0; i < n; i++ {
		r := i
		for k := len(out) - 1; k >= 0; k-- {
			idx[k] = r % out[k]
			r /= out[k]
		}
		y[i] = f(at(a, as), at(b, bs))
	}
	return y, out
}

func TestBinaryBroadcast(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	ops := map[string]func(x, y float32) float32{
		"Add": func(x, y float32) float32 { return x + y },
		"Sub": func(x, y float32) float32 { return x - y },
		"Mul": func(x, y float32) float32 { return x * y },
		"Div": func(x, y float32) float32 { return x / y },
		"Max": func(x, y float32) float32 { return max(x, y) },
		"Min": func(x, y float32) float32 { return min(x, y) },
		"Pow": func(x, y float32) float32 { return float32(math.Pow(float64(x), float64(y))) },
	}
	shapes := [][2][]int{
		{{2, 3, 4, 5}, {2, 3, 4, 5}},
		{{2, 3, 4, 5}, {}},
		{{2, 3, 4, 5}, {1}},
		{{2, 3, 4, 5}, {5}},
		{{2, 3, 4, 5}, {1, 3, 1, 1}},
		{{2, 3, 4, 5}, {3, 1, 1}},
		{{1, 3, 1, 5}, {2, 1, 4, 1}},
		{{4, 1}, {3}},
		{{3, 1, 2}, {3, 4, 1}},
		{{1}, {2, 3}},
	}
	for name, f := range ops {
		for _, s := range shapes {
			for _, bConst := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %v %v const=%v", name, s[0], s[1], bConst), func(t *testing.T) {
					a, b := randDense(rng, s[0]...), randDense(rng, s[1]...)
					if name == "Pow" {
						ad := a.Float32s()
						for i := range ad {
							ad[i] = abs32(ad[i]) + 0.1
						}
					}
					dyn := map[string]*tensor.Dense{"a": a}
					consts := map[string]*tensor.Dense{}
					if bConst {
						consts["b"] = b
					} else {
						dyn["b"] = b
					}
					got, shape := runNode(t, name, 13, nil, []string{"a", "b"}, dyn, consts)
					want, wshape := refBroadcast(a.Float32s(), s[0], b.Float32s(), s[1], f)
					checkShape(t, shape, wshape)
					assertClose(t, name, got, want, 1e-5)
				})
			}
		}
	}
	t.Run("PRelu", func(t *testing.T) {
		x, s := randDense(rng, 1, 3, 2, 2), randDense(rng, 3, 1, 1)
		got, _ := runNode(t, "PRelu", 13, nil, []string{"x", "s"}, map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"s": s})
		want, _ := refBroadcast(x.Float32s(), []int{1, 3, 2, 2}, s.Float32s(), []int{3, 1, 1}, func(a, b float32) float32 {
			if a < 0 {
				return a * b
			}
			return a
		})
		assertClose(t, "prelu", got, want, 1e-6)
	})
	t.Run("Sum3", func(t *testing.T) {
		a, b, c := randDense(rng, 2, 3), randDense(rng, 3), randDense(rng, 2, 1)
		got, _ := runNode(t, "Sum", 13, nil, []string{"a", "b", "c"}, map[string]*tensor.Dense{"a": a, "b": b, "c": c}, nil)
		ab, _ := refBroadcast(a.Float32s(), []int{2, 3}, b.Float32s(), []int{3}, func(x, y float32) float32 { return x + y })
		want, _ := refBroadcast(ab, []int{2, 3}, c.Float32s(), []int{2, 1}, func(x, y float32) float32 { return x + y })
		assertClose(t, "sum", got, want, 1e-6)
	})
}

func TestActivations(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	x := randDense(rng, 2, 3, 4)
	x.Float32s()[0] = 7 // beyond Relu6's clip
	type tc struct {
		op    string
		opset int64
		at    attrs
		min   *tensor.Dense
		f     func(v float64) float64
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	cases := []tc{
		{op: "Relu", f: func(v float64) float64 { return math.Max(v, 0) }},
		{op: "LeakyRelu", at: attrs{"alpha": aFloat(0.1)}, f: func(v float64) float64 {
			if v < 0 {
				return 0.1 * v
			}
			return v
		}},
		{op: "Sigmoid", f: sig},
		{op: "Tanh", f: math.Tanh},
		{op: "HardSigmoid", at: attrs{"alpha": aFloat(0.3), "beta": aFloat(0.4)}, f: func(v float64) float64 { return math.Max(0, math.Min(1, 0.3*v+0.4)) }},
		{op: "HardSwish", f: func(v float64) float64 { return v * math.Max(0, math.Min(1, v/6+0.5)) }},
		{op: "Clip", opset: 6, at: attrs{"min": aFloat(-0.5), "max": aFloat(6)}, f: func(v float64) float64 { return math.Max(-0.5, math.Min(6, v)) }},
		{op: "Clip", opset: 13, f: func(v float64) float64 { return math.Max(0, math.Min(6, v)) }},
		{op: "Exp", f: math.Exp},
		{op: "Neg", f: func(v float64) float64 { return -v }},
		{op: "Elu", f: func(v float64) float64 {
			if v < 0 {
				return math.Exp(v) - 1
			}
			return v
		}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%d", c.op, c.opset), func(t *testing.T) {
			opset := c.opset
			if opset == 0 {
				opset = 13
			}
			ins := []string{"x"}
			consts := map[string]*tensor.Dense{}
			if c.op == "Clip" && opset >= 11 {
				ins = append(ins, "lo", "hi")
				consts["lo"] = denseF(nil, []float32{0})
				consts["hi"] = denseF(nil, []float32{6})
			}
			got, _ := runNode(t, c.op, opset, c.at, ins, map[string]*tensor.Dense{"x": x}, consts)
			want := make([]float32, len(got))
			for i, v := range x.Float32s() {
				want[i] = float32(c.f(float64(v)))
			}
			assertClose(t, c.op, got, want, 1e-5)
		})
	}
}

func TestGemmMatMul(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	transpose := func(d []float32, r, c int) []float32 {
		o := make([]float32, len(d))
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				o[j*r+i] = d[i*c+j]
			}
		}
		return o
	}
	const m, k, n = 3, 5, 4
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, cs := range [][]int{nil, {}, {n}, {m, 1}, {m, n}} {
				for _, bConst := range []bool{false, true} {
					t.Run(fmt.Sprintf("tA=%v tB=%v C=%v constB=%v", ta, tb, cs, bConst), func(t *testing.T) {
						as, bs := []int{m, k}, []int{k, n}
						if ta {
							as = []int{k, m}
						}
						if tb {
							bs = []int{n, k}
						}
						a, b := randDense(rng, as...), randDense(rng, bs...)
						at := attrs{"alpha": aFloat(0.5), "beta": aFloat(2)}
						if ta {
							at["transA"] = aInt(1)
						}
						if tb {
							at["transB"] = aInt(1)
						}
						ins := []string{"a", "b"}
						dyn := map[string]*tensor.Dense{"a": a}
						consts := map[string]*tensor.Dense{}
						if bConst {
							consts["b"] = b
						} else {
							dyn["b"] = b
						}
						var cv *tensor.Dense
						if cs != nil {
							cv = randDense(rng, cs...)
							consts["c"] = cv
							ins = append(ins, "c")
						}
						got, shape := runNode(t, "Gemm", 13, at, ins, dyn, consts)
						checkShape(t, shape, []int{m, n})
						ad, bd := a.Float32s(), b.Float32s()
						if ta {
							ad = transpose(ad, k, m)
						}
						if tb {
							bd = transpose(bd, n, k)
						}
						want := refMatMul(ad, bd, m, k, n)
						for i := range want {
							want[i] *= 0.5
						}
						if cv != nil {
							cc, _ := refBroadcast(make([]float32, m*n), []int{m, n}, cv.Float32s(), cs, func(_, y float32) float32 { return 2 * y })
							for i := range want {
								want[i] += cc[i]
							}
						}
						assertClose(t, "gemm", got, want, 1e-5)
					})
				}
			}
		}
	}
	mm := []struct{ a, b, out []int }{
		{[]int{3, 4}, []int{4, 5}, []int{3, 5}},
		{[]int{2, 3, 4}, []int{4, 5}, []int{2, 3, 5}},
		{[]int{2, 1, 3, 4}, []int{3, 4, 2}, []int{2, 3, 3, 2}},
		{[]int{4}, []int{2, 4, 3}, []int{2, 3}},
		{[]int{2, 3, 4}, []int{4}, []int{2, 3}},
		{[]int{4}, []int{4}, []int{}},
	}
	for _, c := range mm {
		t.Run(fmt.Sprintf("MatMul %v %v", c.a, c.b), func(t *testing.T) {
			a, b := randDense(rng, c.a...), randDense(rng, c.b...)
			got, shape := runNode(t, "MatMul", 13, nil, []string{"a", "b"}, map[string]*tensor.Dense{"a": a, "b": b}, nil)
			checkShape(t, shape, c.out)
			// Reference: promote, broadcast batch, multiply.
			as, bs := cloneInts(c.a), cloneInts(c.b)
			if len(as) == 1 {
				as = []int{1, as[0]}
			}
			if len(bs) == 1 {
				bs = []int{bs[0], 1}
			}
			M, K, N := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
			batch, _ := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
			nb := prod(batch)
			want := make([]float32, 0, nb*M*N)
			for bi := 0; bi < nb; bi++ {
				idx := make([]int, len(batch))
				r := bi
				for d := len(batch) - 1; d >= 0; d-- {
					idx[d] = r % batch[d]
					r /= batch[d]
				}
				off := func(s []int) int {
					o, st := 0, 1
					for d := len(s) - 1; d >= 0; d-- {
						i := idx[len(batch)-len(s)+d]
						if s[d] == 1 {
							i = 0
						}
						o += i * st
						st *= s[d]
					}
					return o
				}
				ao, bo := off(as[:len(as)-2])*M*K, off(bs[:len(bs)-2])*K*N
				want = append(want, refMatMul(a.Float32s()[ao:ao+M*K], b.Float32s()[bo:bo+K*N], M, K, N)...)
			}
			assertClose(t, "matmul", got, want, 1e-5)
		})
	}
}

func TestSoftmax(t *testing.T) {
	x := denseF([]int{2, 2, 3}, []float32{1, 2, 3, 4, 5, 6, 0, 0, 0, -1, 1, 2})
	soft := func(v []float32) []float32 {
		var s float64
		for _, e := range v {
			s += math.Exp(float64(e))
		}
		r := make([]float32, len(v))
		for i, e := range v {
			r[i] = float32(math.Exp(float64(e)) / s)
		}
		return r
	}
	xs := x.Float32s()
	// opset 11, axis=1: each batch row of 6 is one distribution.
	got, _ := runNode(t, "Softmax", 11, nil, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
	want := append(soft(xs[0:6]), soft(xs[6:12])...)
	assertClose(t, "softmax-11", got, want, 1e-6)
	// opset 13, axis=1: over the middle axis of size 2.
	got, _ = runNode(t, "Softmax", 13, attrs{"axis": aInt(1)}, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
	want = make([]float32, 12)
	for b := 0; b < 2; b++ {
		for j := 0; j < 3; j++ {
			p := soft([]float32{xs[b*6+j], xs[b*6+3+j]})
			want[b*6+j], want[b*6+3+j] = p[0], p[1]
		}
	}
	assertClose(t, "softmax-13", got, want, 1e-6)
	// opset 13 default axis -1.
	got, _ = runNode(t, "Softmax", 13, nil, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
	want = nil
	for r := 0; r < 4; r++ {
		want = append(want, soft(xs[r*3:r*3+3])...)
	}
	assertClose(t, "softmax-13-last", got, want, 1e-6)
}

func TestPad(t *testing.T) {
	x := denseF([]int{3, 2}, []float32{1.0, 1.2, 2.3, 3.4, 4.5, 5.7})
	cases := []struct {
		mode  string
		pads  []int64
		shape []int
		want  []float32
	}{
		{"constant", []int64{0, 2, 0, 0}, []int{3, 4}, []float32{0, 0, 1.0, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7}},
		{"reflect", []int64{0, 2, 0, 0}, []int{3, 4}, []float32{1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7}},
		{"edge", []int64{0, 2, 0, 0}, []int{3, 4}, []float32{1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7}},
		{"reflect", []int64{1, 0, 1, 0}, []int{5, 2}, []float32{2.3, 3.4, 1.0, 1.2, 2.3, 3.4, 4.5, 5.7, 2.3, 3.4}},
		{"constant", []int64{-1, 1, 0, -1}, []int{2, 2}, []float32{0, 2.3, 0, 4.5}},
		{"wrap", []int64{0, 1, 0, 1}, []int{3, 4}, []float32{1.2, 1.0, 1.2, 1.0, 3.4, 2.3, 3.4, 2.3, 5.7, 4.5, 5.7, 4.5}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v", c.mode, c.pads), func(t *testing.T) {
			got, shape := runNode(t, "Pad", 13, attrs{"mode": aStr(c.mode)}, []string{"x", "pads"},
				map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"pads": denseI([]int{4}, c.pads)})
			checkShape(t, shape, c.shape)
			assertClose(t, "pad", got, c.want, 1e-6)
		})
	}
	t.Run("opset2 attribute", func(t *testing.T) {
		got, shape := runNode(t, "Pad", 2, attrs{"pads": aInts(0, 1, 0, 0), "value": aFloat(9)}, []string{"x"},
			map[string]*tensor.Dense{"x": x}, nil)
		checkShape(t, shape, []int{3, 3})
		assertClose(t, "pad2", got, []float32{9, 1.0, 1.2, 9, 2.3, 3.4, 9, 4.5, 5.7}, 1e-6)
	})
}

func TestResize(t *testing.T) {
	x22 := denseF([]int{1, 1, 2, 2}, []float32{1, 2, 3, 4})
	x24 := denseF([]int{1, 1, 2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	sc := func(v ...float32) *tensor.Dense { return denseF([]int{len(v)}, v) }
	cases := []struct {
		name   string
		opset  int64
		x      *tensor.Dense
		at     attrs
		scales *tensor.Dense
		sizes  []int64
		shape  []int
		want   []float32
	}{
		{name: "upsample nearest", opset: 13, x: x22, at: attrs{"mode": aStr("nearest")}, scales: sc(1, 1, 2, 3), shape: []int{1, 1, 4, 6},
			want: []float32{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}},
		{name: "downsample nearest", opset: 13, x: x24, at: attrs{"mode": aStr("nearest")}, scales: sc(1, 1, 0.6, 0.6), shape: []int{1, 1, 1, 2},
			want: []float32{1, 3}},
		{name: "upsample linear half_pixel", opset: 13, x: x22, at: attrs{"mode": aStr("linear")}, scales: sc(1, 1, 2, 2), shape: []int{1, 1, 4, 4},
			want: []float32{1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4}},
		{name: "upsample linear align_corners", opset: 13, x: x22, at: attrs{"mode": aStr("linear"), "coordinate_transformation_mode": aStr("align_corners")}, scales: sc(1, 1, 2, 2), shape: []int{1, 1, 4, 4},
			want: []float32{1, 1.3333333, 1.6666667, 2, 1.6666666, 2, 2.3333333, 2.6666667, 2.3333333, 2.6666667, 3, 3.3333333, 3, 3.3333333, 3.6666667, 4}},
		{name: "downsample linear", opset: 13, x: x24, at: attrs{"mode": aStr("linear")}, scales: sc(1, 1, 0.6, 0.6), shape: []int{1, 1, 1, 2},
			want: []float32{2.6666665, 4.3333331}},
		{name: "downsample linear align_corners", opset: 13, x: x24, at: attrs{"mode": aStr("linear"), "coordinate_transformation_mode": aStr("align_corners")}, scales: sc(1, 1, 0.6, 0.6), shape: []int{1, 1, 1, 2},
			want: []float32{1, 3.142857}},
		{name: "sizes nearest asymmetric floor", opset: 13, x: x22, at: attrs{"mode": aStr("nearest"), "coordinate_transformation_mode": aStr("asymmetric"), "nearest_mode": aStr("floor")}, sizes: []int64{1, 1, 3, 3}, shape: []int{1, 1, 3, 3},
			want: []float32{1, 1, 2, 1, 1, 2, 3, 3, 4}},
		{name: "sizes nearest half_pixel ceil", opset: 13, x: x22, at: attrs{"mode": aStr("nearest"), "nearest_mode": aStr("ceil")}, sizes: []int64{1, 1, 3, 3}, shape: []int{1, 1, 3, 3},
			want: []float32{1, 2, 2, 3, 4, 4, 3, 4, 4}},
		{name: "opset10 nearest downsample", opset: 10, x: x24, at: attrs{"mode": aStr("nearest")}, scales: sc(1, 1, 0.6, 0.6), shape: []int{1, 1, 1, 2},
			want: []float32{1, 3}},
		{name: "opset10 linear upsample", opset: 10, x: x22, at: attrs{"mode": aStr("linear")}, scales: sc(1, 1, 2, 2), shape: []int{1, 1, 4, 4},
			want: []float32{1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			consts := map[string]*tensor.Dense{}
			ins := []string{"x"}
			if c.opset < 11 {
				consts["scales"] = c.scales
				ins = append(ins, "scales")
			} else if c.scales != nil {
				consts["scales"] = c.scales
				ins = append(ins, "", "scales")
			} else {
				consts["sizes"] = denseI([]int{len(c.sizes)}, c.sizes)
				ins = append(ins, "", "", "sizes")
			}
			got, shape := runNode(t, "Resize", c.opset, c.at, ins, map[string]*tensor.Dense{"x": c.x}, consts)
			checkShape(t, shape, c.shape)
			assertClose(t, c.name, got, c.want, 1e-5)
		})
	}
	t.Run("Upsample opset7", func(t *testing.T) {
		got, shape := runNode(t, "Upsample", 7, attrs{"mode": aStr("nearest"), "scales": Attribute{Kind: AttrFloats, Floats: []float32{1, 1, 2, 2}}},
			[]string{"x"}, map[string]*tensor.Dense{"x": x22}, nil)
		checkShape(t, shape, []int{1, 1, 4, 4})
		assertClose(t, "upsample", got, []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0)
	})
}
