package model

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func opsOf(g *Graph) []string {
	var r []string
	for _, n := range g.Nodes {
		r = append(r, n.Op)
	}
	return r
}

// exporterGraph is Conv → Shape → Gather → Unsqueeze → Concat → Reshape →
// Gemm, as PyTorch's exporter writes x.view(x.size(0), -1).
func exporterGraph(rng *rand.Rand, opset int64) *Graph {
	g := NewGraph("exporter")
	g.OpsetVersion = opset
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{-1, 3, 4, 4}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.Initializers["w"] = randDense(rng, 8, 3, 3, 3)
	g.Initializers["fw"] = randDense(rng, 5, 128)
	g.Initializers["idx0"] = denseI(nil, []int64{0})
	g.Initializers["minus1"] = denseI([]int{1}, []int64{-1})
	unsq := nd("Unsqueeze", "unsq", []string{"g0"}, []string{"u0"}, attrs{"axes": aInts(0)})
	if opset >= 13 {
		g.Initializers["axes0"] = denseI([]int{1}, []int64{0})
		unsq = nd("Unsqueeze", "unsq", []string{"g0", "axes0"}, []string{"u0"}, nil)
	}
	g.Nodes = []*Node{
		nd("Conv", "conv", []string{"x", "w"}, []string{"c"}, attrs{"pads": aInts(1, 1, 1, 1)}),
		nd("Shape", "shape", []string{"c"}, []string{"s"}, nil),
		nd("Gather", "gather", []string{"s", "idx0"}, []string{"g0"}, attrs{"axis": aInt(0)}),
		unsq,
		nd("Concat", "concat", []string{"u0", "minus1"}, []string{"shp"}, attrs{"axis": aInt(0)}),
		nd("Reshape", "reshape", []string{"c", "shp"}, []string{"f"}, nil),
		nd("Gemm", "fc", []string{"f", "fw"}, []string{"y"}, attrs{"transB": aInt(1)}),
	}
	return g
}

func TestSimplifyFoldsExporterShapeChain(t *testing.T) {
	for _, opset := range []int64{11, 13} {
		rng := rand.New(rand.NewSource(10))
		g := exporterGraph(rng, opset)
		sg, err := Simplify(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := opsOf(sg); !reflect.DeepEqual(got, []string{"Conv", "Reshape", "Gemm"}) {
			t.Fatalf("opset %d: simplified ops %v, want [Conv Reshape Gemm]", opset, got)
		}
		if s := sg.Shapes["f"]; !equalInts(s, []int{1, 128}) {
			t.Fatalf("shape of f = %v", s)
		}
		shp := sg.Initializers["shp"]
		if shp == nil || !reflect.DeepEqual(shp.Data(), []int64{1, -1}) {
			t.Fatalf("folded shape initializer = %v", shp)
		}
		if len(g.Nodes) != 7 {
			t.Fatalf("Simplify modified the caller's graph")
		}
		// Numerics: conv then flatten then gemm.
		x := randDense(rng, 1, 3, 4, 4)
		got := runBoth(t, g, x)
		c, _, _ := refConv2D(x.Float32s(), 1, 3, 4, 4, g.Initializers["w"].Float32s(), 8, 3, 3, nil, 1, 1, 1, 1, 1, 1, 1, 1, 1)
		fw := g.Initializers["fw"].Float32s()
		want := make([]float32, 5)
		for o := range want {
			var s float64
			for k := 0; k < 128; k++ {
				s += float64(c[k]) * float64(fw[o*128+k])
			}
			want[o] = float32(s)
		}
		assertClose(t, "y", got[0], want, 1e-4)
	}
}

func TestSimplifyInputShapesOverride(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	g := exporterGraph(rng, 13)
	sg, err := Simplify(g, map[string][]int{"x": {3, 3, 4, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if s := sg.Shapes["y"]; !equalInts(s, []int{3, 5}) {
		t.Fatalf("y shape %v, want [3 5]", s)
	}
	if !equalInts(sg.Inputs[0].Shape, []int{3, 3, 4, 4}) {
		t.Fatalf("input shape %v", sg.Inputs[0].Shape)
	}
	if g.Inputs[0].Shape[0] != -1 {
		t.Fatal("caller's graph input shape changed")
	}
}

func bnGraph(rng *rand.Rand, shareConv bool) *Graph {
	g := NewGraph("bn")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{2, 3, 6, 6}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.Initializers["w"] = randDense(rng, 4, 3, 3, 3)
	g.Initializers["b"] = randDense(rng, 4)
	g.Initializers["s"] = randDense(rng, 4)
	g.Initializers["beta"] = randDense(rng, 4)
	g.Initializers["mean"] = randDense(rng, 4)
	v := randData(rng, 4)
	for i := range v {
		v[i] = v[i]*v[i] + 0.1
	}
	g.Initializers["var"] = denseF([]int{4}, v)
	g.Nodes = []*Node{
		nd("Conv", "conv", []string{"x", "w", "b"}, []string{"c"}, attrs{"strides": aInts(2, 2), "pads": aInts(1, 1, 1, 1)}),
		nd("BatchNormalization", "bn", []string{"c", "s", "beta", "mean", "var"}, []string{"n"}, attrs{"epsilon": aFloat(1e-3)}),
		nd("Relu", "relu", []string{"n"}, []string{"y"}, nil),
	}
	if shareConv {
		g.Outputs = append(g.Outputs, ValueInfo{Name: "c"})
	}
	return g
}

func refBN(g *Graph, x []float32) []float32 {
	c, oh, ow := refConv2D(x, 2, 3, 6, 6, g.Initializers["w"].Float32s(), 4, 3, 3, g.Initializers["b"].Float32s(), 2, 2, 1, 1, 1, 1, 1, 1, 1)
	s, b, m, v := g.Initializers["s"].Float32s(), g.Initializers["beta"].Float32s(), g.Initializers["mean"].Float32s(), g.Initializers["var"].Float32s()
	y := make([]float32, len(c))
	hw := oh * ow
	for i := range c {
		ch := (i / hw) % 4
		r := (float64(c[i])-float64(m[ch]))/math.Sqrt(float64(v[ch])+1e-3)*float64(s[ch]) + float64(b[ch])
		y[i] = float32(math.Max(r, 0))
	}
	return y
}

func TestBatchNormFolding(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, share := range []bool{false, true} {
		g := bnGraph(rng, share)
		sg, err := Simplify(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		hasBN := false
		for _, n := range sg.Nodes {
			hasBN = hasBN || n.Op == "BatchNormalization"
		}
		if hasBN != share {
			t.Fatalf("share=%v: ops after Simplify %v", share, opsOf(sg))
		}
		x := randDense(rng, 2, 3, 6, 6)
		got := runBoth(t, g, x)
		assertClose(t, "bn", got[0], refBN(g, x.Float32s()), 1e-5)
	}
	// The caller's weights are untouched.
	rng = rand.New(rand.NewSource(12))
	g := bnGraph(rng, false)
	w0 := append([]float32(nil), g.Initializers["w"].Float32s()...)
	if _, err := Simplify(g, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w0, g.Initializers["w"].Float32s()) {
		t.Fatal("Simplify modified the caller's weights")
	}
}

func TestSimplifyRemovesIdentityAndConstants(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	g := NewGraph("id")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, 4}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	bias := randDense(rng, 4)
	g.Nodes = []*Node{
		nd("Constant", "k", nil, []string{"bias"}, attrs{"value": aTensor(bias)}),
		nd("Identity", "id1", []string{"x"}, []string{"x1"}, nil),
		nd("Dropout", "drop", []string{"x1"}, []string{"x2"}, attrs{"ratio": aFloat(0.5)}),
		nd("Add", "add", []string{"x2", "bias"}, []string{"a"}, nil),
		nd("Identity", "id2", []string{"a"}, []string{"y"}, nil),
		nd("Relu", "dead", []string{"a"}, []string{"unused"}, nil),
	}
	sg, err := Simplify(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := opsOf(sg); !reflect.DeepEqual(got, []string{"Add"}) {
		t.Fatalf("ops %v, want [Add]", got)
	}
	if sg.Nodes[0].Outputs[0] != "y" || sg.Nodes[0].Inputs[0] != "x" {
		t.Fatalf("Add node %v -> %v", sg.Nodes[0].Inputs, sg.Nodes[0].Outputs)
	}
	x := randDense(rng, 1, 4)
	got := runBoth(t, g, x)
	want := make([]float32, 4)
	for i := range want {
		want[i] = x.Float32s()[i] + bias.Float32s()[i]
	}
	assertClose(t, "y", got[0], want, 1e-6)
	if len(g.Nodes) != 6 || g.Nodes[4].Outputs[0] != "y" || g.Nodes[3].Inputs[0] != "x2" {
		t.Fatal("caller's graph modified")
	}
}

func TestGraphOutputIsInputOrConstant(t *testing.T) {
	g := NewGraph("pass")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{2}}}
	g.Outputs = []ValueInfo{{Name: "x"}, {Name: "k"}, {Name: "y"}}
	g.Initializers["k"] = denseF([]int{2}, []float32{7, 8})
	g.Nodes = []*Node{nd("Identity", "id", []string{"x"}, []string{"y"}, nil)}
	x := denseF([]int{2}, []float32{1, 2})
	got := runBoth(t, g, x)
	assertClose(t, "x", got[0], []float32{1, 2}, 0)
	assertClose(t, "k", got[1], []float32{7, 8}, 0)
	assertClose(t, "y", got[2], []float32{1, 2}, 0)
}

// TestShapeOpsAtRunTime runs the data-movement ops on a computed float32
// tensor and checks them against the same ops folded on constants.
func TestShapeOpsAtRunTime(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	type tc struct {
		name   string
		op     string
		opset  int64
		at     attrs
		consts map[string]*tensor.Dense
		ins    []string
		shape  []int
	}
	i64 := func(v ...int64) *tensor.Dense { return denseI([]int{len(v)}, v) }
	cases := []tc{
		{name: "Transpose", op: "Transpose", at: attrs{"perm": aInts(0, 2, 3, 1)}, ins: []string{"x"}, shape: []int{2, 4, 5, 3}},
		{name: "Transpose default", op: "Transpose", ins: []string{"x"}, shape: []int{5, 4, 3, 2}},
		{name: "Slice", op: "Slice", consts: map[string]*tensor.Dense{"s": i64(1, 0), "e": i64(3, 100), "a": i64(1, 3), "st": i64(1, 2)}, ins: []string{"x", "s", "e", "a", "st"}, shape: []int{2, 2, 4, 3}},
		{name: "Slice negative step", op: "Slice", consts: map[string]*tensor.Dense{"s": i64(-1), "e": i64(-100), "a": i64(2), "st": i64(-2)}, ins: []string{"x", "s", "e", "a", "st"}, shape: []int{2, 3, 2, 5}},
		{name: "Slice opset1", op: "Slice", opset: 1, at: attrs{"starts": aInts(0, 1), "ends": aInts(1, 1000), "axes": aInts(0, 3)}, ins: []string{"x"}, shape: []int{1, 3, 4, 4}},
		{name: "Gather axis1", op: "Gather", at: attrs{"axis": aInt(1)}, consts: map[string]*tensor.Dense{"i": denseI([]int{2, 2}, []int64{2, 0, -1, 1})}, ins: []string{"x", "i"}, shape: []int{2, 2, 2, 4, 5}},
		{name: "Gather scalar", op: "Gather", at: attrs{"axis": aInt(3)}, consts: map[string]*tensor.Dense{"i": denseI(nil, []int64{4})}, ins: []string{"x", "i"}, shape: []int{2, 3, 4}},
		{name: "Concat", op: "Concat", at: attrs{"axis": aInt(1)}, consts: map[string]*tensor.Dense{"k": randDense(rng, 2, 2, 4, 5)}, ins: []string{"x", "k", "x"}, shape: []int{2, 8, 4, 5}},
		{name: "Flatten", op: "Flatten", at: attrs{"axis": aInt(2)}, ins: []string{"x"}, shape: []int{6, 20}},
		{name: "Reshape", op: "Reshape", consts: map[string]*tensor.Dense{"s": i64(0, -1, 5)}, ins: []string{"x", "s"}, shape: []int{2, 12, 5}},
		{name: "Squeeze", op: "Squeeze", consts: map[string]*tensor.Dense{"a": i64(0)}, ins: []string{"y", "a"}, shape: []int{3, 4, 5}},
		{name: "Unsqueeze", op: "Unsqueeze", consts: map[string]*tensor.Dense{"a": i64(0, -1)}, ins: []string{"x", "a"}, shape: []int{1, 2, 3, 4, 5, 1}},
		{name: "Expand", op: "Expand", consts: map[string]*tensor.Dense{"s": i64(2, 1, 1, 1, 1)}, ins: []string{"x", "s"}, shape: []int{2, 2, 3, 4, 5}},
		{name: "Tile", op: "Tile", consts: map[string]*tensor.Dense{"rep": i64(1, 2, 1, 3)}, ins: []string{"x", "rep"}, shape: []int{2, 6, 4, 15}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opset := c.opset
			if opset == 0 {
				opset = 13
			}
			x := randDense(rng, 2, 3, 4, 5)
			if c.ins[0] == "y" {
				x = randDense(rng, 1, 3, 4, 5)
			}
			// Run time: the input comes through a Relu, so it is computed.
			g := NewGraph(c.name)
			g.OpsetVersion = opset
			g.Inputs = []ValueInfo{{Name: "in", Shape: cloneInts(x.Shape())}}
			g.Outputs = []ValueInfo{{Name: "out"}}
			for k, v := range c.consts {
				g.Initializers[k] = v
			}
			ins := append([]string{}, c.ins...)
			for i, n := range ins {
				if n == "x" || n == "y" {
					ins[i] = "r"
				}
			}
			g.Nodes = []*Node{nd("Neg", "neg", []string{"in"}, []string{"r"}, nil), nd(c.op, "op", ins, []string{"out"}, c.at)}
			got := runBoth(t, g, x)[0]
			// Fold time: the same op on a constant.
			fg := NewGraph(c.name + "-folded")
			fg.OpsetVersion = opset
			fg.Outputs = []ValueInfo{{Name: "out"}}
			for k, v := range c.consts {
				fg.Initializers[k] = v
			}
			neg := make([]float32, len(x.Float32s()))
			for i, v := range x.Float32s() {
				neg[i] = -v
			}
			fg.Initializers["r"] = denseF(cloneInts(x.Shape()), neg)
			fg.Nodes = []*Node{nd(c.op, "op", ins, []string{"out"}, c.at)}
			sfg, err := Simplify(fg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(sfg.Nodes) != 0 {
				t.Fatalf("constant %s not folded: %v", c.op, opsOf(sfg))
			}
			if !equalInts(sfg.Shapes["out"], c.shape) {
				t.Fatalf("shape %v, want %v", sfg.Shapes["out"], c.shape)
			}
			want := sfg.Initializers["out"].Float32s()
			assertClose(t, c.name, got, want, 0)
			net, err := Compile(g, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(net.Outputs()[0].Shape, c.shape) {
				t.Fatalf("run-time shape %v, want %v", net.Outputs()[0].Shape, c.shape)
			}
		})
	}
	// Spot-check Transpose against index math.
	x := randDense(rng, 2, 3, 4)
	got, _ := runNode(t, "Transpose", 13, attrs{"perm": aInts(2, 0, 1)}, []string{"x"}, map[string]*tensor.Dense{"x": x}, nil)
	xd := x.Float32s()
	for a := 0; a < 4; a++ {
		for b := 0; b < 2; b++ {
			for c := 0; c < 3; c++ {
				if got[(a*2+b)*3+c] != xd[(b*3+c)*4+a] {
					t.Fatalf("transpose mismatch at %d,%d,%d", a, b, c)
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	base := func() *Graph { return smallCNN(rng) }
	cases := []struct {
		name   string
		mutate func(g *Graph)
		is     error
		substr []string
	}{
		{"unsupported op", func(g *Graph) { g.Nodes[1].Op = "FancyOp" }, ErrUnsupportedOp, []string{`"relu1"`, "FancyOp"}},
		{"missing input", func(g *Graph) { g.Nodes[3].Inputs[0] = "nope" }, nil, []string{"conv2", `"nope"`}},
		{"weight shape", func(g *Graph) { g.Initializers["w2"] = randDense(rng, 8, 5, 3, 3) }, ErrShape, []string{`"conv2"`, "Conv", `"w2"`}},
		{"gemm K", func(g *Graph) { g.Initializers["wf"] = randDense(rng, 10, 100) }, ErrShape, []string{`"fc"`, "Gemm"}},
		{"add broadcast", func(g *Graph) { g.Nodes[5].Inputs[1] = "c1" }, ErrShape, []string{`"add"`}},
		{"huge reshape", func(g *Graph) {
			g.Initializers["shape"] = denseI([]int{3}, []int64{1 << 20, 1 << 20, 1 << 10})
			g.Nodes[6] = nd("Reshape", "flat", []string{"s", "shape"}, []string{"f"}, nil)
		}, nil, []string{`"flat"`}},
		{"huge ConstantOfShape", func(g *Graph) {
			g.Initializers["big"] = denseI([]int{2}, []int64{1 << 30, 1 << 30})
			g.Nodes = append(g.Nodes, nd("ConstantOfShape", "cos", []string{"big"}, []string{"z"}, nil))
			g.Outputs = append(g.Outputs, ValueInfo{Name: "z"})
		}, ErrTooLarge, []string{`"cos"`}},
		{"cycle", func(g *Graph) { g.Nodes[0].Inputs[0] = "y" }, nil, []string{"cycle"}},
		{"bad pads", func(g *Graph) { g.Nodes[0].Attrs["pads"] = aInts(1, 1) }, ErrShape, []string{`"conv1"`}},
		{"dynamic weight", func(g *Graph) { g.Nodes[3].Inputs[1] = "p1" }, nil, []string{`"conv2"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := base()
			c.mutate(g)
			_, err := Compile(g, Options{})
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v is not %v", err, c.is)
			}
			for _, s := range c.substr {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not mention %s", err, s)
				}
			}
		})
	}
	t.Run("run input shape", func(t *testing.T) {
		net, err := Compile(base(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ex := net.NewExtractor()
		_, err = ex.Run(context.Background(), randDense(rng, 1, 3, 8, 9))
		if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), "(1, 3, 8, 9)") {
			t.Fatalf("wrong-shape input: %v", err)
		}
		if _, err = ex.Run(context.Background()); err == nil {
			t.Fatal("missing input accepted")
		}
		if _, err = ex.Run(context.Background(), nil); err == nil {
			t.Fatal("nil input accepted")
		}
		xi := tensor.New(tensor.WithShape(1, 3, 8, 8), tensor.WithBacking(make([]float64, 192)))
		if _, err = ex.Run(context.Background(), xi); err == nil {
			t.Fatal("float64 input accepted")
		}
		view := randDense(rng, 1, 3, 8, 8)
		if err := view.T(0, 1, 3, 2); err != nil {
			t.Fatal(err)
		}
		if _, err = ex.Run(context.Background(), view); err == nil || !strings.Contains(err.Error(), "view") {
			t.Fatalf("transposed view accepted: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err = ex.Run(ctx, randDense(rng, 1, 3, 8, 8)); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled context: %v", err)
		}
	})
}

// TestBatchNormFoldedMatchesUnfolded runs the same Conv+BN+Relu with BN
// folded into the Conv (the Conv output has one consumer) and with BN kept
// as its own node (the Conv output is also a graph output): the two agree
// within 1e-5.
func TestBatchNormFoldedMatchesUnfolded(t *testing.T) {
	folded := bnGraph(rand.New(rand.NewSource(77)), false)
	kept := bnGraph(rand.New(rand.NewSource(77)), true)
	x := randDense(rand.New(rand.NewSource(78)), 2, 3, 6, 6)
	a := runOnce(t, folded, Options{}, x)[0]
	b := runOnce(t, kept, Options{}, x)[0]
	assertClose(t, "folded vs unfolded BN", a, b, 1e-5)
}
