package model

// This file: Split, DepthToSpace, SpaceToDepth, and the comparison/logic
// ops exporters use in shape arithmetic (Equal, Less, Greater, ..., Not,
// And, Or, Xor, Where), which fold on constants only.

func init() {
	register("Split", &opDef{minIn: 1, infer: inferSplit, build: buildSplit})
	register("DepthToSpace", &opDef{minIn: 1, infer: inferStrided2, build: buildStrided2})
	register("SpaceToDepth", &opDef{minIn: 1, infer: inferStrided2, build: buildStrided2})
	for _, name := range []string{"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"} {
		register(name, &opDef{minIn: 2, infer: inferCompare})
	}
	register("Not", &opDef{minIn: 1, infer: inferNot})
	register("Where", &opDef{minIn: 3, infer: inferWhere})
}

// ---- Split ----

func splitGeom(c *nodeCtx) (axis int, sizes []int, err error) {
	x := c.in[0]
	r := len(x.shape)
	if r == 0 {
		return 0, nil, rankErr(c, 0, "rank ≥ 1")
	}
	axis, err = normAxis(int(c.n.AttrInt("axis", 0)), r)
	if err != nil {
		return 0, nil, err
	}
	d := x.shape[axis]
	var split []int64
	if c.opset >= 13 && c.input(1) != nil {
		if split, err = constIntsInput(c, 1, "split"); err != nil {
			return 0, nil, err
		}
	} else {
		split = c.n.AttrInts("split")
	}
	n := len(c.out)
	if split == nil {
		if k := c.n.AttrInt("num_outputs", 0); k > 0 {
			n = int(k)
		}
		if n != len(c.out) {
			return 0, nil, shapeErrf("num_outputs %d but %d outputs", n, len(c.out))
		}
		chunk := (d + n - 1) / n
		if c.n.AttrInt("num_outputs", 0) == 0 && d%n != 0 {
			return 0, nil, shapeErrf("axis %d of size %d does not split evenly into %d outputs", axis, d, n)
		}
		for i := 0; i < n; i++ {
			sizes = append(sizes, min(chunk, max(d-i*chunk, 0)))
		}
		return axis, sizes, nil
	}
	if len(split) != n {
		return 0, nil, shapeErrf("split %v has %d entries for %d outputs", split, len(split), n)
	}
	total := 0
	for _, s := range split {
		if s < 0 || s > int64(d) {
			return 0, nil, shapeErrf("bad split %v for axis of size %d", split, d)
		}
		sizes = append(sizes, int(s))
		total += int(s)
	}
	if total != d {
		return 0, nil, shapeErrf("split %v sums to %d, axis %d has size %d", split, total, axis, d)
	}
	return axis, sizes, nil
}

func splitT[T any](x []T, ys [][]T, outer, d, inner int, sizes []int) {
	for o := 0; o < outer; o++ {
		off := o * d * inner
		for k, s := range sizes {
			n := s * inner
			if ys[k] != nil {
				copy(ys[k][o*n:(o+1)*n], x[off:off+n])
			}
			off += n
		}
	}
}

func inferSplit(c *nodeCtx) error {
	x := c.in[0]
	axis, sizes, err := splitGeom(c)
	if err != nil {
		return err
	}
	for k, s := range sizes {
		shape := cloneInts(x.shape)
		shape[axis] = s
		c.setOut(k, x.dt, shape)
	}
	if !x.konst {
		return nil
	}
	outer, d, inner := prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis+1:])
	if x.dt == dtInt64 {
		ys := make([][]int64, len(sizes))
		for k, s := range sizes {
			ys[k] = make([]int64, outer*s*inner)
		}
		splitT(x.i, ys, outer, d, inner, sizes)
		for k := range ys {
			c.out[k].konst, c.out[k].i = true, ys[k]
		}
		return nil
	}
	ys := make([][]float32, len(sizes))
	for k, s := range sizes {
		ys[k] = make([]float32, outer*s*inner)
	}
	splitT(x.f, ys, outer, d, inner, sizes)
	for k := range ys {
		c.out[k].konst, c.out[k].f = true, ys[k]
	}
	return nil
}

type splitLayer struct {
	outer, d, inner int
	sizes           []int
}

func buildSplit(c *nodeCtx) (layer, error) {
	x := c.in[0]
	axis, sizes, err := splitGeom(c)
	if err != nil {
		return nil, err
	}
	return &splitLayer{outer: prod(x.shape[:axis]), d: x.shape[axis], inner: prod(x.shape[axis+1:]), sizes: sizes}, nil
}

func (l *splitLayer) forward(in, out [][]float32, _ []float32) {
	splitT(in[0], out, l.outer, l.d, l.inner, l.sizes)
}

// ---- DepthToSpace / SpaceToDepth as strided copies ----

func planStrided2(c *nodeCtx) (strided, []int, error) {
	x := c.in[0]
	if len(x.shape) != 4 {
		return strided{}, nil, rankErr(c, 0, "4-D (N,C,H,W)")
	}
	b := int(c.n.AttrInt("blocksize", 0))
	if b < 1 {
		return strided{}, nil, shapeErrf("blocksize must be ≥ 1, is %d", b)
	}
	n, ch, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	hw := h * w
	if c.n.Op == "DepthToSpace" {
		if ch%(b*b) != 0 {
			return strided{}, nil, shapeErrf("C=%d is not divisible by blocksize² = %d", ch, b*b)
		}
		cc := ch / (b * b)
		dims := []int{n, cc, h, b, w, b}
		var st []int
		if c.n.AttrString("mode", "DCR") == "CRD" {
			st = []int{ch * hw, b * b * hw, w, b * hw, 1, hw}
		} else {
			st = []int{ch * hw, hw, w, b * cc * hw, 1, cc * hw}
		}
		return newStrided(dims, st, 0), []int{n, cc, h * b, w * b}, nil
	}
	if h%b != 0 || w%b != 0 {
		return strided{}, nil, shapeErrf("H=%d, W=%d are not divisible by blocksize %d", h, w, b)
	}
	dims := []int{n, b, b, ch, h / b, w / b}
	st := []int{ch * hw, w, 1, hw, b * w, b}
	return newStrided(dims, st, 0), []int{n, ch * b * b, h / b, w / b}, nil
}

func inferStrided2(c *nodeCtx) error {
	p, shape, err := planStrided2(c)
	if err != nil {
		return err
	}
	return applyStrided(c, p, shape)
}

func buildStrided2(c *nodeCtx) (layer, error) {
	p, _, err := planStrided2(c)
	if err != nil {
		return nil, err
	}
	return &stridedLayer{p: p}, nil
}

// ---- comparisons and logic (fold only) ----

func valAt(v *tval, i int) float64 {
	if v.dt == dtInt64 {
		return float64(v.i[i])
	}
	return float64(v.f[i])
}

func inferCompare(c *nodeCtx) error {
	a, b := c.in[0], c.in[1]
	out, ok := broadcastShape(a.shape, b.shape)
	if !ok {
		return shapeErrf("inputs %q %v and %q %v do not broadcast", c.n.Inputs[0], a.shape, c.n.Inputs[1], b.shape)
	}
	c.setOut(0, dtInt64, out)
	if !a.konst || !b.konst {
		return nil
	}
	if _, err := checkedNumel(out, maxFoldElements); err != nil {
		return nil
	}
	var f func(x, y float64) bool
	switch c.n.Op {
	case "Equal":
		f = func(x, y float64) bool { return x == y }
	case "Less":
		f = func(x, y float64) bool { return x < y }
	case "Greater":
		f = func(x, y float64) bool { return x > y }
	case "LessOrEqual":
		f = func(x, y float64) bool { return x <= y }
	case "GreaterOrEqual":
		f = func(x, y float64) bool { return x >= y }
	case "And":
		f = func(x, y float64) bool { return x != 0 && y != 0 }
	case "Or":
		f = func(x, y float64) bool { return x != 0 || y != 0 }
	case "Xor":
		f = func(x, y float64) bool { return (x != 0) != (y != 0) }
	}
	p := newBcast(out, a.shape, b.shape)
	y := make([]int64, p.n)
	p.walk(func(yo, ao, bo, n, sa, sb int) {
		for i := 0; i < n; i++ {
			if f(valAt(a, ao+i*sa), valAt(b, bo+i*sb)) {
				y[yo+i] = 1
			}
		}
	})
	c.out[0].konst, c.out[0].i = true, y
	return nil
}

func inferNot(c *nodeCtx) error {
	x := c.in[0]
	c.setOut(0, dtInt64, cloneInts(x.shape))
	if !x.konst {
		return nil
	}
	y := make([]int64, x.numel())
	for i := range y {
		if valAt(x, i) == 0 {
			y[i] = 1
		}
	}
	c.out[0].konst, c.out[0].i = true, y
	return nil
}

func inferWhere(c *nodeCtx) error {
	cond, a, b := c.in[0], c.in[1], c.in[2]
	ab, ok := broadcastShape(a.shape, b.shape)
	if !ok {
		return shapeErrf("inputs %q %v and %q %v do not broadcast", c.n.Inputs[1], a.shape, c.n.Inputs[2], b.shape)
	}
	out, ok := broadcastShape(cond.shape, ab)
	if !ok {
		return shapeErrf("condition %q %v does not broadcast to %v", c.n.Inputs[0], cond.shape, ab)
	}
	if a.dt != b.dt {
		return unsupportedf("mixed input types")
	}
	c.setOut(0, a.dt, out)
	if !allConst(c) {
		return unsupportedf("Where with inputs computed at run time")
	}
	n, err := checkedNumel(out, maxFoldElements)
	if err != nil {
		return nil
	}
	ca := newStrided(out, bcastStrides(out, cond.shape), 0)
	pa := newStrided(out, bcastStrides(out, a.shape), 0)
	pb := newStrided(out, bcastStrides(out, b.shape), 0)
	cv := make([]float64, n)
	cs := cond.asFloats()
	ctmp := make([]float32, n)
	stridedCopy(&ca, cs, ctmp)
	for i, v := range ctmp {
		cv[i] = float64(v)
	}
	if a.dt == dtInt64 {
		ya, yb := make([]int64, n), make([]int64, n)
		stridedCopy(&pa, a.i, ya)
		stridedCopy(&pb, b.i, yb)
		for i := range ya {
			if cv[i] == 0 {
				ya[i] = yb[i]
			}
		}
		c.out[0].konst, c.out[0].i = true, ya
		return nil
	}
	ya, yb := make([]float32, n), make([]float32, n)
	stridedCopy(&pa, a.f, ya)
	stridedCopy(&pb, b.f, yb)
	for i := range ya {
		if cv[i] == 0 {
			ya[i] = yb[i]
		}
	}
	c.out[0].konst, c.out[0].f = true, ya
	return nil
}
