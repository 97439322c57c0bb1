package model

import (
	"math"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// This file: unary activations, binary arithmetic with numpy broadcasting,
// BatchNormalization (inference), Identity, Cast.

func init() {
	acts := map[string]func(c *nodeCtx) (kern.Activation, bool){
		"Relu": func(c *nodeCtx) (kern.Activation, bool) { return kern.Activation{Kind: kern.ActRelu}, true },
		"LeakyRelu": func(c *nodeCtx) (kern.Activation, bool) {
			return kern.Activation{Kind: kern.ActLeakyRelu, Alpha: c.n.AttrFloat("alpha", 0.01)}, true
		},
		"HardSigmoid": func(c *nodeCtx) (kern.Activation, bool) {
			return kern.Activation{Kind: kern.ActHardSigmoid, Alpha: c.n.AttrFloat("alpha", 0.2), Beta: c.n.AttrFloat("beta", 0.5)}, true
		},
		"HardSwish": func(c *nodeCtx) (kern.Activation, bool) { return kern.Activation{Kind: kern.ActHardSwish}, true },
		"Sigmoid":   func(c *nodeCtx) (kern.Activation, bool) { return kern.Activation{Kind: kern.ActSigmoid}, true },
		"Tanh":      func(c *nodeCtx) (kern.Activation, bool) { return kern.Activation{Kind: kern.ActTanh}, true },
		"Clip":      clipAct,
	}
	for name, f := range acts {
		f := f
		register(name, &opDef{minIn: 1, inplace: true, act: f, infer: inferSame,
			build: func(c *nodeCtx) (layer, error) {
				a, ok := f(c)
				if !ok {
					return nil, unsupportedf("Clip bounds must be constants")
				}
				return &actLayer{act: a}, nil
			}})
	}
	unary := map[string]func(n *Node) func(float32) float32{
		"Exp":        func(*Node) func(float32) float32 { return f64(math.Exp) },
		"Log":        func(*Node) func(float32) float32 { return f64(math.Log) },
		"Sqrt":       func(*Node) func(float32) float32 { return f64(math.Sqrt) },
		"Neg":        func(*Node) func(float32) float32 { return func(x float32) float32 { return -x } },
		"Abs":        func(*Node) func(float32) float32 { return f64(math.Abs) },
		"Floor":      func(*Node) func(float32) float32 { return f64(math.Floor) },
		"Ceil":       func(*Node) func(float32) float32 { return f64(math.Ceil) },
		"Round":      func(*Node) func(float32) float32 { return f64(math.RoundToEven) },
		"Reciprocal": func(*Node) func(float32) float32 { return func(x float32) float32 { return 1 / x } },
		"Erf":        func(*Node) func(float32) float32 { return f64(math.Erf) },
		"Sin":        func(*Node) func(float32) float32 { return f64(math.Sin) },
		"Cos":        func(*Node) func(float32) float32 { return f64(math.Cos) },
		"Softsign":   func(*Node) func(float32) float32 { return func(x float32) float32 { return x / (1 + abs32(x)) } },
		"Softplus": func(*Node) func(float32) float32 {
			return func(x float32) float32 { return float32(math.Log1p(math.Exp(float64(x)))) }
		},
		"Sign": func(*Node) func(float32) float32 {
			return func(x float32) float32 {
				switch {
				case x > 0:
					return 1
				case x < 0:
					return -1
				}
				return x
			}
		},
		"Elu": func(n *Node) func(float32) float32 {
			al := float64(n.AttrFloat("alpha", 1))
			return func(x float32) float32 {
				if x < 0 {
					return float32(al * (math.Exp(float64(x)) - 1))
				}
				return x
			}
		},
		"Celu": func(n *Node) func(float32) float32 {
			al := float64(n.AttrFloat("alpha", 1))
			return func(x float32) float32 {
				xf := float64(x)
				return float32(math.Max(0, xf) + math.Min(0, al*(math.Exp(xf/al)-1)))
			}
		},
		"Selu": func(n *Node) func(float32) float32 {
			al := float64(n.AttrFloat("alpha", 1.67326319217681884765625))
			ga := float64(n.AttrFloat("gamma", 1.05070102214813232421875))
			return func(x float32) float32 {
				if x <= 0 {
					return float32(ga * (al*math.Exp(float64(x)) - al))
				}
				return float32(ga * float64(x))
			}
		},
		"ThresholdedRelu": func(n *Node) func(float32) float32 {
			al := n.AttrFloat("alpha", 1)
			return func(x float32) float32 {
				if x > al {
					return x
				}
				return 0
			}
		},
		"Mish": func(*Node) func(float32) float32 {
			return func(x float32) float32 {
				xf := float64(x)
				return float32(xf * math.Tanh(math.Log1p(math.Exp(xf))))
			}
		},
		"Gelu": func(n *Node) func(float32) float32 {
			if n.AttrString("approximate", "none") == "tanh" {
				return func(x float32) float32 {
					xf := float64(x)
					return float32(0.5 * xf * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(xf+0.044715*xf*xf*xf))))
				}
			}
			return func(x float32) float32 {
				xf := float64(x)
				return float32(0.5 * xf * (1 + math.Erf(xf/math.Sqrt2)))
			}
		},
	}
	for name, f := range unary {
		f := f
		register(name, &opDef{minIn: 1, inplace: true, infer: inferSame,
			build: func(c *nodeCtx) (layer, error) { return &unaryLayer{f: f(c.n)}, nil }})
	}
	for _, name := range []string{"Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Mod"} {
		name := name
		register(name, &opDef{minIn: 2, inplace: true, infer: inferBinary, floatExponent: name == "Pow",
			build: func(c *nodeCtx) (layer, error) { return newBinary(c, name) }})
	}
	for _, name := range []string{"Sum", "Mean", "Max", "Min"} {
		name := name
		register(name, &opDef{minIn: 1, inplace: true, infer: inferVariadic,
			build: func(c *nodeCtx) (layer, error) { return newVariadic(c, name) }})
	}
	register("BatchNormalization", &opDef{minIn: 5, inplace: true, infer: inferBN, build: buildBN})
	register("Identity", &opDef{minIn: 1, inplace: true, infer: inferIdentity,
		build: func(c *nodeCtx) (layer, error) { return copyLayer{}, nil }})
	register("Dropout", &opDef{minIn: 1, inplace: true, infer: inferDropout,
		build: func(c *nodeCtx) (layer, error) { return copyLayer{}, nil }})
	register("Cast", &opDef{minIn: 1, inplace: true, infer: inferCast,
		build: func(c *nodeCtx) (layer, error) { return copyLayer{}, nil }})
}

func f64(f func(float64) float64) func(float32) float32 {
	return func(x float32) float32 { return float32(f(float64(x))) }
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func clipAct(c *nodeCtx) (kern.Activation, bool) {
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	if c.opset < 11 || (c.input(1) == nil && c.input(2) == nil) {
		lo = c.n.AttrFloat("min", lo)
		hi = c.n.AttrFloat("max", hi)
	} else {
		if v := c.input(1); v != nil {
			f, ok := v.scalarFloat()
			if !ok {
				return kern.Activation{}, false
			}
			lo = f
		}
		if v := c.input(2); v != nil {
			f, ok := v.scalarFloat()
			if !ok {
				return kern.Activation{}, false
			}
			hi = f
		}
	}
	return kern.Activation{Kind: kern.ActClip, Alpha: lo, Beta: hi}, true
}

func inferSame(c *nodeCtx) error {
	x := c.in[0]
	if x.dt != dtFloat {
		return unsupportedf("input %q is %v, want float32", c.n.Inputs[0], x.dt)
	}
	c.setOut(0, dtFloat, cloneInts(x.shape))
	return nil
}

func inferDropout(c *nodeCtx) error {
	if v := c.input(2); v != nil {
		if !v.konst {
			return unsupportedf("Dropout training_mode %q computed at run time", c.n.Inputs[2])
		}
		if f, _ := v.scalarFloat(); f != 0 {
			return unsupportedf("Dropout in training mode")
		}
	}
	if c.opset < 7 && c.n.AttrInt("is_test", 1) == 0 {
		return unsupportedf("Dropout in training mode (is_test=0)")
	}
	return inferIdentity(c)
}

func inferIdentity(c *nodeCtx) error {
	x := c.in[0]
	c.out[0].shape, c.out[0].dt = cloneInts(x.shape), x.dt
	if x.konst {
		c.out[0].konst, c.out[0].f, c.out[0].i = true, x.f, x.i
	}
	if len(c.out) > 1 { // Dropout mask
		c.setOut(1, dtInt64, cloneInts(x.shape))
	}
	return nil
}

// ONNX TensorProto data types.
const (
	onnxFloat   = 1
	onnxUint8   = 2
	onnxInt8    = 3
	onnxUint16  = 4
	onnxInt16   = 5
	onnxInt32   = 6
	onnxInt64   = 7
	onnxBool    = 9
	onnxFloat16 = 10
	onnxDouble  = 11
	onnxUint32  = 12
	onnxUint64  = 13
)

func inferCast(c *nodeCtx) error {
	x := c.in[0]
	to := c.n.AttrInt("to", onnxFloat)
	var dt dtype
	switch to {
	case onnxFloat, onnxDouble, onnxFloat16:
		dt = dtFloat
	case onnxUint8, onnxInt8, onnxUint16, onnxInt16, onnxInt32, onnxInt64, onnxBool, onnxUint32, onnxUint64:
		dt = dtInt64
	default:
		return unsupportedf("Cast to type %d", to)
	}
	c.setOut(0, dt, cloneInts(x.shape))
	if !x.konst {
		if dt != x.dt {
			return nil // rejected by Compile if it must run
		}
		return nil
	}
	o := c.out[0]
	o.konst = true
	if dt == dtFloat {
		o.f = x.asFloats()
		return nil
	}
	if x.dt == dtInt64 {
		o.i = x.i
	} else {
		o.i = make([]int64, len(x.f))
		for k, v := range x.f {
			o.i[k] = int64(v) // truncation toward zero, as C casts
		}
	}
	if to == onnxBool {
		r := make([]int64, len(o.i))
		for k, v := range o.i {
			if v != 0 {
				r[k] = 1
			}
		}
		if x.dt == dtFloat {
			for k, v := range x.f {
				if v != 0 {
					r[k] = 1
				}
			}
		}
		o.i = r
	}
	return nil
}

// actLayer applies a kern.Activation.
type actLayer struct{ act kern.Activation }

func (l *actLayer) forward(in, out [][]float32, _ []float32) {
	y := out[0]
	if len(y) == 0 {
		return
	}
	x := in[0][:len(y)]
	switch l.act.Kind {
	case kern.ActRelu:
		for i, v := range x {
			y[i] = relu32(v)
		}
	case kern.ActClip:
		cl := newClamper(l.act.Alpha, l.act.Beta)
		for i, v := range x {
			y[i] = cl.clamp(v)
		}
	default:
		if &y[0] != &x[0] {
			copy(y, x)
		}
		l.act.Apply(y)
	}
}

// unaryLayer applies a scalar function.
type unaryLayer struct{ f func(float32) float32 }

func (l *unaryLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	for i, v := range x[:len(y)] {
		y[i] = l.f(v)
	}
}

// copyLayer copies input 0 to output 0 (Identity, Cast float→float,
// Reshape-like ops). It is a no-op when they share memory.
type copyLayer struct{}

func (copyLayer) forward(in, out [][]float32, _ []float32) {
	y := out[0]
	if len(y) == 0 || &y[0] == &in[0][0] {
		return
	}
	copy(y, in[0])
}

// ---- broadcasting ----

// broadcastShape returns the numpy broadcast of a and b.
func broadcastShape(a, b []int) ([]int, bool) {
	r := len(a)
	if len(b) > r {
		r = len(b)
	}
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if k := i - (r - len(a)); k >= 0 {
			da = a[k]
		}
		if k := i - (r - len(b)); k >= 0 {
			db = b[k]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, false
		}
	}
	return out, true
}

// bcast is a plan to walk an output of shape dims with per-input strides
// (0 along broadcast axes), after merging axes that walk alike.
type bcast struct {
	rank int
	dims [maxRank]int
	st   [2][maxRank]int
	n    int // output elements
}

func newBcast(out []int, ins ...[]int) bcast {
	var p bcast
	p.n = prod(out)
	r := len(out)
	// Full strides per input.
	type ax struct {
		d  int
		st [2]int
	}
	axes := make([]ax, 0, r)
	for i := 0; i < r; i++ {
		var a ax
		a.d = out[i]
		for k, s := range ins {
			off := i - (r - len(s))
			if off < 0 || s[off] == 1 {
				a.st[k] = 0
				continue
			}
			stride := 1
			for _, d := range s[off+1:] {
				stride *= d
			}
			a.st[k] = stride
		}
		if a.d == 1 {
			continue
		}
		axes = append(axes, a)
	}
	// Merge axis i into i-1 when contiguous for every input.
	merged := axes[:0]
	for _, a := range axes {
		if len(merged) > 0 {
			m := &merged[len(merged)-1]
			ok := true
			for k := range ins {
				if m.st[k] != a.st[k]*a.d {
					ok = false
				}
			}
			if ok {
				m.d *= a.d
				for k := range ins {
					m.st[k] = a.st[k]
				}
				continue
			}
		}
		merged = append(merged, a)
	}
	if len(merged) == 0 {
		merged = append(merged, ax{d: 1})
	}
	p.rank = len(merged)
	for i, a := range merged {
		p.dims[i] = a.d
		p.st[0][i] = a.st[0]
		p.st[1][i] = a.st[1]
	}
	return p
}

// walk calls row(y offset, a offset, b offset, length, a inner stride, b inner stride)
// for every innermost row.
func (p *bcast) walk(row func(yo, ao, bo, n, sa, sb int)) {
	if p.n == 0 {
		return
	}
	r := p.rank
	inner := p.dims[r-1]
	sa, sb := p.st[0][r-1], p.st[1][r-1]
	outer := p.n / inner
	var idx [maxRank]int
	ao, bo := 0, 0
	for o := 0; o < outer; o++ {
		row(o*inner, ao, bo, inner, sa, sb)
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			ao += p.st[0][d]
			bo += p.st[1][d]
			if idx[d] < p.dims[d] {
				break
			}
			ao -= p.st[0][d] * p.dims[d]
			bo -= p.st[1][d] * p.dims[d]
			idx[d] = 0
		}
	}
}

func inferBinary(c *nodeCtx) error {
	a, b := c.in[0], c.in[1]
	var out []int
	if c.n.Op == "PRelu" {
		// slope broadcasts unidirectionally to X.
		o, ok := broadcastShape(a.shape, b.shape)
		if !ok || !equalInts(o, a.shape) {
			return shapeErrf("slope %q of shape %v does not broadcast to X %q of shape %v", c.n.Inputs[1], b.shape, c.n.Inputs[0], a.shape)
		}
		out = o
	} else {
		o, ok := broadcastShape(a.shape, b.shape)
		if !ok {
			return shapeErrf("inputs %q %v and %q %v do not broadcast", c.n.Inputs[0], a.shape, c.n.Inputs[1], b.shape)
		}
		out = o
	}
	if a.dt == dtInt64 && b.dt == dtInt64 {
		c.setOut(0, dtInt64, out)
		if a.konst && b.konst {
			if _, err := checkedNumel(out, maxFoldElements); err != nil {
				return err
			}
			f, err := intBinary(c.n.Op)
			if err != nil {
				return err
			}
			p := newBcast(out, a.shape, b.shape)
			y := make([]int64, p.n)
			p.walk(func(yo, ao, bo, n, sa, sb int) {
				for i := 0; i < n; i++ {
					y[yo+i] = f(a.i[ao+i*sa], b.i[bo+i*sb])
				}
			})
			c.out[0].konst, c.out[0].i = true, y
		}
		return nil
	}
	if a.dt != b.dt {
		return unsupportedf("mixed input types %v and %v", a.dt, b.dt)
	}
	c.setOut(0, dtFloat, out)
	return nil
}

func intBinary(op string) (func(a, b int64) int64, error) {
	switch op {
	case "Add":
		return func(a, b int64) int64 { return a + b }, nil
	case "Sub":
		return func(a, b int64) int64 { return a - b }, nil
	case "Mul":
		return func(a, b int64) int64 { return a * b }, nil
	case "Div":
		return func(a, b int64) int64 {
			if b == 0 {
				return 0
			}
			return a / b
		}, nil
	case "Max":
		return func(a, b int64) int64 { return max(a, b) }, nil
	case "Min":
		return func(a, b int64) int64 { return min(a, b) }, nil
	case "Mod":
		return func(a, b int64) int64 {
			if b == 0 {
				return 0
			}
			m := a % b
			if m != 0 && (m < 0) != (b < 0) {
				m += b
			}
			return m
		}, nil
	case "Pow":
		return func(a, b int64) int64 { return int64(math.Pow(float64(a), float64(b))) }, nil
	}
	return nil, unsupportedf("%s on int64", op)
}

type binOp uint8

const (
	opAdd binOp = iota
	opSub
	opMul
	opDiv
	opOther
)

// binaryLayer is an element-wise binary op with broadcasting.
// arithOp returns the binOp of Add, Sub, Mul and Div, and whether name is
// one of them.
func arithOp(name string) (binOp, bool) {
	switch name {
	case "Add":
		return opAdd, true
	case "Sub":
		return opSub, true
	case "Mul":
		return opMul, true
	case "Div":
		return opDiv, true
	}
	return 0, false
}

// divRecip returns 1/b and whether x/b may run as x·(1/b): when 1/b is a
// normal float32 (within an ulp of the division then).
func divRecip(b float32) (float32, bool) {
	r := 1 / b
	rb := math.Abs(float64(r))
	return r, rb != 0 && !math.IsInf(rb, 0) && rb >= 0x1p-126
}

type binaryLayer struct {
	op    binOp
	f     func(a, b float32) float32
	p     bcast
	recip []float32 // replaces input 1 (Div by a constant scalar)
}

func newBinary(c *nodeCtx, name string) (layer, error) {
	l := &binaryLayer{p: newBcast(c.out[0].shape, c.in[0].shape, c.in[1].shape)}
	l.op, _ = arithOp(name)
	switch name {
	case "Div":
		// Division by a constant scalar is a multiply by its reciprocal
		// (within an ulp; fused chains use the same arithmetic).
		if b := c.in[1]; b.konst && b.numel() == 1 && b.dt == dtFloat {
			if r, ok := divRecip(b.f[0]); ok {
				l.op, l.recip = opMul, []float32{r}
			}
		}
	case "Pow":
		l.op, l.f = opOther, func(a, b float32) float32 { return float32(math.Pow(float64(a), float64(b))) }
		if e, ok := c.in[1].scalarFloat(); ok && e == 2 {
			// x² as LayerNorm's decomposed form writes it: the float64
			// square of a float32 is exact, so rounding it equals a·a.
			l.f = func(a, _ float32) float32 { return a * a }
		}
	case "Max":
		l.op, l.f = opOther, func(a, b float32) float32 {
			if a != a || b != b {
				return float32(math.NaN())
			}
			return max(a, b)
		}
	case "Min":
		l.op, l.f = opOther, func(a, b float32) float32 {
			if a != a || b != b {
				return float32(math.NaN())
			}
			return min(a, b)
		}
	case "PRelu":
		l.op, l.f = opOther, func(x, s float32) float32 {
			if x < 0 {
				return x * s
			}
			return x
		}
	case "Mod":
		fmod := c.n.AttrInt("fmod", 0)
		if fmod == 0 {
			return nil, unsupportedf("Mod with fmod=0 on float32")
		}
		l.op, l.f = opOther, func(a, b float32) float32 { return float32(math.Mod(float64(a), float64(b))) }
	}
	return l, nil
}

func (l *binaryLayer) forward(in, out [][]float32, _ []float32) {
	a, b, y := in[0], in[1], out[0]
	if l.recip != nil {
		b = l.recip
	}
	p := &l.p
	if p.n == 0 {
		return
	}
	r := p.rank
	inner := p.dims[r-1]
	sa, sb := p.st[0][r-1], p.st[1][r-1]
	outer := p.n / inner
	var idx [maxRank]int
	ao, bo := 0, 0
	for o := 0; o < outer; o++ {
		yr := y[o*inner : (o+1)*inner]
		if l.op == opOther {
			for i := range yr {
				yr[i] = l.f(a[ao+i*sa], b[bo+i*sb])
			}
		} else {
			binRow(l.op, yr, a[ao:], b[bo:], sa, sb)
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			ao += p.st[0][d]
			bo += p.st[1][d]
			if idx[d] < p.dims[d] {
				break
			}
			ao -= p.st[0][d] * p.dims[d]
			bo -= p.st[1][d] * p.dims[d]
			idx[d] = 0
		}
	}
}

// binRow computes one innermost row; sa/sb are 0 (broadcast) or 1.
func binRow(op binOp, y, a, b []float32, sa, sb int) {
	n := len(y)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case opSub:
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case opMul:
			for i := range y {
				y[i] = a[i] * b[i]
			}
		case opDiv:
			for i := range y {
				y[i] = a[i] / b[i]
			}
		}
	case sa == 1:
		a = a[:n]
		s := b[0]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = a[i] + s
			}
		case opSub:
			for i := range y {
				y[i] = a[i] - s
			}
		case opMul:
			for i := range y {
				y[i] = a[i] * s
			}
		case opDiv:
			for i := range y {
				y[i] = a[i] / s
			}
		}
	case sb == 1:
		b = b[:n]
		s := a[0]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = s + b[i]
			}
		case opSub:
			for i := range y {
				y[i] = s - b[i]
			}
		case opMul:
			for i := range y {
				y[i] = s * b[i]
			}
		case opDiv:
			for i := range y {
				y[i] = s / b[i]
			}
		}
	default:
		var v float32
		switch op {
		case opAdd:
			v = a[0] + b[0]
		case opSub:
			v = a[0] - b[0]
		case opMul:
			v = a[0] * b[0]
		case opDiv:
			v = a[0] / b[0]
		}
		for i := range y {
			y[i] = v
		}
	}
}

// ---- variadic Sum / Mean ----

func inferVariadic(c *nodeCtx) error {
	if c.in[0].dt == dtInt64 && allConst(c) && c.n.Op != "Mean" {
		return foldIntVariadic(c)
	}
	out := c.in[0].shape
	for k, v := range c.in {
		if v == nil {
			continue
		}
		if v.dt != dtFloat {
			return unsupportedf("input %d is %v", k, v.dt)
		}
		o, ok := broadcastShape(out, v.shape)
		if !ok {
			return shapeErrf("input %q %v does not broadcast with %v", c.n.Inputs[k], v.shape, out)
		}
		out = o
	}
	c.setOut(0, dtFloat, cloneInts(out))
	return nil
}

type variadicLayer struct {
	plans []bcast // plan k combines input k into the output
	mean  float32
	op    string
}

func newVariadic(c *nodeCtx, name string) (layer, error) {
	l := &variadicLayer{op: name}
	cnt := 0
	for _, v := range c.in {
		if v != nil {
			l.plans = append(l.plans, newBcast(c.out[0].shape, c.out[0].shape, v.shape))
			cnt++
		} else {
			l.plans = append(l.plans, bcast{})
		}
	}
	if name == "Mean" {
		l.mean = 1 / float32(cnt)
	}
	return l, nil
}

func (l *variadicLayer) forward(in, out [][]float32, _ []float32) {
	y := out[0]
	first := true
	for k, x := range in {
		if x == nil {
			continue
		}
		p := &l.plans[k]
		if first {
			// y = broadcast(x); in-place over in[0] is fine (same shape).
			p.walk(func(yo, _, bo, n, _, sb int) {
				for i := 0; i < n; i++ {
					y[yo+i] = x[bo+i*sb]
				}
			})
			first = false
			continue
		}
		switch l.op {
		case "Max":
			p.walk(func(yo, _, bo, n, _, sb int) {
				for i := 0; i < n; i++ {
					if v := x[bo+i*sb]; v > y[yo+i] || v != v {
						y[yo+i] = v
					}
				}
			})
		case "Min":
			p.walk(func(yo, _, bo, n, _, sb int) {
				for i := 0; i < n; i++ {
					if v := x[bo+i*sb]; v < y[yo+i] || v != v {
						y[yo+i] = v
					}
				}
			})
		default:
			p.walk(func(yo, _, bo, n, _, sb int) {
				for i := 0; i < n; i++ {
					y[yo+i] += x[bo+i*sb]
				}
			})
		}
	}
	if l.mean != 0 {
		for i := range y {
			y[i] *= l.mean
		}
	}
}

// ---- BatchNormalization (inference) ----

func inferBN(c *nodeCtx) error {
	x := c.in[0]
	if len(x.shape) < 2 {
		return rankErr(c, 0, "rank ≥ 2 (N, C, ...)")
	}
	ch := x.shape[1]
	for k := 1; k <= 4; k++ {
		v := c.in[k]
		if v.numel() != ch {
			return shapeErrf("input %d %q has shape %v, want [%d] (C of X)", k, c.n.Inputs[k], v.shape, ch)
		}
	}
	if c.n.AttrInt("training_mode", 0) != 0 {
		return unsupportedf("training_mode=1")
	}
	c.setOut(0, dtFloat, cloneInts(x.shape))
	for k := 1; k < len(c.out); k++ {
		if c.n.Outputs[k] != "" {
			return unsupportedf("training outputs (output %d %q)", k, c.n.Outputs[k])
		}
		c.setOut(k, dtFloat, []int{ch})
	}
	return nil
}

type bnLayer struct {
	scale, shift []float32
	n, ch, hw    int
}

func buildBN(c *nodeCtx) (layer, error) {
	x := c.in[0]
	ch := x.shape[1]
	var p [4][]float32
	for k := 1; k <= 4; k++ {
		v, err := constInput(c, k, "BatchNormalization parameter")
		if err != nil {
			return nil, err
		}
		p[k-1] = v.asFloats()
	}
	eps := float64(c.n.AttrFloat("epsilon", 1e-5))
	l := &bnLayer{scale: make([]float32, ch), shift: make([]float32, ch), n: x.shape[0], ch: ch, hw: prod(x.shape[2:])}
	for o := 0; o < ch; o++ {
		s := float64(p[0][o]) / math.Sqrt(float64(p[3][o])+eps)
		l.scale[o] = float32(s)
		l.shift[o] = float32(float64(p[1][o]) - float64(p[2][o])*s)
	}
	return l, nil
}

func (l *bnLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	for b := 0; b < l.n; b++ {
		for ch := 0; ch < l.ch; ch++ {
			off := (b*l.ch + ch) * l.hw
			s, t := l.scale[ch], l.shift[ch]
			xr, yr := x[off:off+l.hw], y[off:off+l.hw]
			for i, v := range xr {
				yr[i] = v*s + t
			}
		}
	}
}

// foldIntVariadic folds Sum/Max/Min of int64 constants (shape arithmetic).
func foldIntVariadic(c *nodeCtx) error {
	op := c.n.Op
	if op == "Sum" {
		op = "Add"
	}
	f, err := intBinary(op)
	if err != nil {
		return err
	}
	acc := c.in[0]
	for k, v := range c.in[1:] {
		if v == nil {
			continue
		}
		if v.dt != dtInt64 {
			return unsupportedf("mixed input types")
		}
		out, ok := broadcastShape(acc.shape, v.shape)
		if !ok {
			return shapeErrf("input %q %v does not broadcast with %v", c.n.Inputs[k+1], v.shape, acc.shape)
		}
		if _, err := checkedNumel(out, maxFoldElements); err != nil {
			return err
		}
		p := newBcast(out, acc.shape, v.shape)
		y := make([]int64, p.n)
		a, b := acc.i, v.i
		p.walk(func(yo, ao, bo, n, sa, sb int) {
			for i := 0; i < n; i++ {
				y[yo+i] = f(a[ao+i*sa], b[bo+i*sb])
			}
		})
		acc = constI(out, y)
	}
	*c.out[0] = *constI(cloneInts(acc.shape), acc.i)
	return nil
}
