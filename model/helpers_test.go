package model

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
)

// Test helpers: graph building, reference computations, comparisons.

func aInt(v int64) Attribute     { return Attribute{Kind: AttrInt, Int: v} }
func aInts(v ...int64) Attribute { return Attribute{Kind: AttrInts, Ints: v} }
func aFloat(v float32) Attribute { return Attribute{Kind: AttrFloat, Float: v} }
func aStr(v string) Attribute    { return Attribute{Kind: AttrString, String: v} }
func aTensor(t *tensor.Dense) Attribute {
	return Attribute{Kind: AttrTensor, Tensor: t}
}

type attrs = map[string]Attribute

func nd(op, name string, ins, outs []string, at attrs) *Node {
	if at == nil {
		at = attrs{}
	}
	return &Node{Name: name, Op: op, Inputs: ins, Outputs: outs, Attrs: at}
}

func denseF(shape []int, data []float32) *tensor.Dense {
	if len(shape) == 0 {
		return tensor.New(tensor.WithShape(), tensor.WithBacking(data))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

func denseI(shape []int, data []int64) *tensor.Dense {
	if len(shape) == 0 {
		return tensor.New(tensor.WithShape(), tensor.WithBacking(data))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

func randData(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return d
}

func randDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	return denseF(shape, randData(rng, prod(shape)))
}

// runOnce compiles g with opts and runs it once on inputs, returning copies
// of the outputs.
func runOnce(t testing.TB, g *Graph, opts Options, inputs ...*tensor.Dense) [][]float32 {
	t.Helper()
	net, err := Compile(g, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	ex := net.NewExtractor()
	outs, err := ex.Run(context.Background(), inputs...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := make([][]float32, len(outs))
	for i, o := range outs {
		r[i] = append([]float32(nil), o.Float32s()...)
	}
	return r
}

// runBoth runs g fused and unfused and checks they agree; returns the fused
// outputs.
func runBoth(t testing.TB, g *Graph, inputs ...*tensor.Dense) [][]float32 {
	t.Helper()
	a := runOnce(t, g, Options{}, inputs...)
	b := runOnce(t, g, Options{NoFusion: true}, inputs...)
	for i := range a {
		assertClose(t, "fused vs unfused", a[i], b[i], 1e-5)
	}
	return a
}

func assertClose(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		if math.IsInf(w, 0) && g == w {
			continue
		}
		if math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: element %d = %v, want %v (tol %g)", what, i, g, w, tol)
		}
	}
}

// refConv2D is a naive NCHW convolution with explicit pads.
func refConv2D(x []float32, n, c, h, w int, wt []float32, m, kh, kw int, bias []float32,
	sh, sw, dh, dw, pt, pl, pb, pr, group int) ([]float32, int, int) {
	oh := (h+pt+pb-((kh-1)*dh+1))/sh + 1
	ow := (w+pl+pr-((kw-1)*dw+1))/sw + 1
	y := make([]float32, n*m*oh*ow)
	cg, mg := c/group, m/group
	for b := 0; b < n; b++ {
		for o := 0; o < m; o++ {
			g := o / mg
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var s float64
					if bias != nil {
						s = float64(bias[o])
					}
					for ci := 0; ci < cg; ci++ {
						ic := g*cg + ci
						for a := 0; a < kh; a++ {
							for bb := 0; bb < kw; bb++ {
								ih, iw := i*sh-pt+a*dh, j*sw-pl+bb*dw
								if ih < 0 || ih >= h || iw < 0 || iw >= w {
									continue
								}
								s += float64(x[((b*c+ic)*h+ih)*w+iw]) * float64(wt[((o*cg+ci)*kh+a)*kw+bb])
							}
						}
					}
					y[((b*m+o)*oh+i)*ow+j] = float32(s)
				}
			}
		}
	}
	return y, oh, ow
}

// refMatMul: (m×k)·(k×n).
func refMatMul(a, b []float32, m, k, n int) []float32 {
	y := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			y[i*n+j] = float32(s)
		}
	}
	return y
}

func relu(x []float32) []float32 {
	r := make([]float32, len(x))
	for i, v := range x {
		r[i] = max(v, 0)
	}
	return r
}
