package model

import (
	"fmt"
	"math"
)

// This file: shape and data-movement ops — Shape, Size, Constant,
// ConstantOfShape, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
// Gather, Slice, Expand, Tile, Range. They fold on constants of either type
// and run on float32 at run time.

func init() {
	register("Shape", &opDef{minIn: 1, infer: inferShapeOp})
	register("Size", &opDef{minIn: 1, infer: inferSize})
	register("Constant", &opDef{infer: inferConstant})
	register("ConstantOfShape", &opDef{minIn: 1, infer: inferConstantOfShape})
	register("Range", &opDef{minIn: 3, infer: inferRange})
	register("Reshape", &opDef{minIn: 2, inplace: true, infer: inferReshape, build: buildCopy})
	register("Flatten", &opDef{minIn: 1, inplace: true, infer: inferFlatten, build: buildCopy})
	register("Squeeze", &opDef{minIn: 1, inplace: true, infer: inferSqueeze, build: buildCopy})
	register("Unsqueeze", &opDef{minIn: 1, inplace: true, infer: inferUnsqueeze, build: buildCopy})
	register("Transpose", &opDef{minIn: 1, infer: inferTranspose, build: buildStrided})
	register("Slice", &opDef{minIn: 1, infer: inferSlice, build: buildStrided})
	register("Expand", &opDef{minIn: 2, infer: inferExpand, build: buildStrided})
	register("Concat", &opDef{minIn: 1, infer: inferConcat, build: buildConcat})
	register("Gather", &opDef{minIn: 2, infer: inferGather, build: buildGather})
	register("Tile", &opDef{minIn: 2, infer: inferTile, build: buildTile})
}

func buildCopy(c *nodeCtx) (layer, error) { return copyLayer{}, nil }

// foldWith fills output 0 with data when every input is constant: the data
// function is given both element types.
func allConst(c *nodeCtx) bool {
	for _, v := range c.in {
		if v != nil && !v.konst {
			return false
		}
	}
	return true
}

// constShapeInput reads input i as a list of int64 (a shape, axes, pads...).
func constIntsInput(c *nodeCtx, i int, what string) ([]int64, error) {
	v, err := constInput(c, i, what)
	if err != nil || v == nil {
		return nil, err
	}
	if len(v.shape) > 1 {
		return nil, shapeErrf("%s %q has shape %v, want 1-D", what, c.n.Inputs[i], v.shape)
	}
	return v.asInt64s(), nil
}

func inferShapeOp(c *nodeCtx) error {
	x := c.in[0]
	r := len(x.shape)
	start, end := int(c.n.AttrInt("start", 0)), int(c.n.AttrInt("end", int64(r)))
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start = min(max(start, 0), r)
	end = min(max(end, start), r)
	d := make([]int64, end-start)
	for i := range d {
		d[i] = int64(x.shape[start+i])
	}
	c.out[0].shape, c.out[0].dt, c.out[0].konst, c.out[0].i = []int{len(d)}, dtInt64, true, d
	return nil
}

func inferSize(c *nodeCtx) error {
	*c.out[0] = *constI([]int{}, []int64{int64(c.in[0].numel())})
	return nil
}

func inferConstant(c *nodeCtx) error {
	n := c.n
	for name, a := range n.Attrs {
		switch name {
		case "value":
			if a.Kind != AttrTensor {
				return shapeErrf("value attribute is %v, want tensor", a.Kind)
			}
			v, err := denseToVal(n.Outputs[0], a.Tensor)
			if err != nil {
				return err
			}
			*c.out[0] = *v
			return nil
		case "value_float":
			*c.out[0] = *constF([]int{}, []float32{a.Float})
			return nil
		case "value_floats":
			*c.out[0] = *constF([]int{len(a.Floats)}, a.Floats)
			return nil
		case "value_int":
			*c.out[0] = *constI([]int{}, []int64{a.Int})
			return nil
		case "value_ints":
			*c.out[0] = *constI([]int{len(a.Ints)}, a.Ints)
			return nil
		}
	}
	return unsupportedf("Constant without a value/value_float(s)/value_int(s) attribute")
}

func inferConstantOfShape(c *nodeCtx) error {
	s, err := constIntsInput(c, 0, "shape")
	if err != nil {
		return err
	}
	shape := make([]int, len(s))
	for i, d := range s {
		if d < 0 || d > math.MaxInt32 {
			return shapeErrf("shape input %q has bad dimension %d", c.n.Inputs[0], d)
		}
		shape[i] = int(d)
	}
	n, err := checkedNumel(shape, maxFoldElements)
	if err != nil {
		return fmt.Errorf("ConstantOfShape %v: %w", shape, err)
	}
	val := constF([]int{1}, []float32{0})
	if a, ok := c.n.Attrs["value"]; ok && a.Kind == AttrTensor {
		v, err := denseToVal("value", a.Tensor)
		if err != nil {
			return err
		}
		if v.numel() != 1 {
			return shapeErrf("value attribute must hold one element, has shape %v", v.shape)
		}
		val = v
	}
	if val.dt == dtInt64 {
		d := make([]int64, n)
		for i := range d {
			d[i] = val.i[0]
		}
		*c.out[0] = *constI(shape, d)
		return nil
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = val.f[0]
	}
	*c.out[0] = *constF(shape, d)
	return nil
}

func inferRange(c *nodeCtx) error {
	if !allConst(c) {
		return unsupportedf("Range with inputs computed at run time")
	}
	st, li, de := c.in[0], c.in[1], c.in[2]
	if st.numel() != 1 || li.numel() != 1 || de.numel() != 1 {
		return shapeErrf("Range inputs must be scalars")
	}
	if st.dt == dtInt64 {
		s, l, d := st.i[0], li.i[0], de.i[0]
		if d == 0 {
			return shapeErrf("Range delta is 0")
		}
		cnt := int64(math.Ceil(float64(l-s) / float64(d)))
		if cnt < 0 {
			cnt = 0
		}
		if cnt > maxFoldElements {
			return fmt.Errorf("Range of %d elements: %w", cnt, ErrTooLarge)
		}
		r := make([]int64, cnt)
		for i := range r {
			r[i] = s + int64(i)*d
		}
		*c.out[0] = *constI([]int{int(cnt)}, r)
		return nil
	}
	s, l, d := float64(st.f[0]), float64(li.f[0]), float64(de.f[0])
	if d == 0 {
		return shapeErrf("Range delta is 0")
	}
	cntf := math.Ceil((l - s) / d)
	if cntf > maxFoldElements {
		return fmt.Errorf("Range of %g elements: %w", cntf, ErrTooLarge)
	}
	cnt := max(int(cntf), 0)
	r := make([]float32, cnt)
	for i := range r {
		r[i] = float32(s + float64(i)*d)
	}
	*c.out[0] = *constF([]int{cnt}, r)
	return nil
}

// passData makes output 0 carry input 0's data (same element order).
func passData(c *nodeCtx, shape []int) {
	x := c.in[0]
	o := c.out[0]
	o.shape, o.dt = shape, x.dt
	if x.konst {
		o.konst, o.f, o.i = true, x.f, x.i
	}
}

func inferReshape(c *nodeCtx) error {
	x := c.in[0]
	var s []int64
	if c.opset < 5 {
		s = c.n.AttrInts("shape")
	} else {
		var err error
		s, err = constIntsInput(c, 1, "Reshape shape")
		if err != nil {
			return err
		}
	}
	allowZero := c.n.AttrInt("allowzero", 0) != 0
	shape := make([]int, len(s))
	neg := -1
	known := 1
	for i, d := range s {
		switch {
		case d == 0 && !allowZero:
			if i >= len(x.shape) {
				return shapeErrf("shape %v copies dim %d, but X %q has rank %d", s, i, c.n.Inputs[0], len(x.shape))
			}
			shape[i] = x.shape[i]
		case d == -1:
			if neg >= 0 {
				return shapeErrf("shape %v has more than one -1", s)
			}
			neg = i
			continue
		case d < 0 || d > MaxTensorElements:
			return shapeErrf("shape %v has bad dimension %d", s, d)
		default:
			shape[i] = int(d)
		}
		if shape[i] != 0 && known > MaxTensorElements/shape[i] {
			return fmt.Errorf("reshape to %v: %w", s, ErrTooLarge)
		}
		known *= shape[i]
	}
	total := x.numel()
	if neg >= 0 {
		if known == 0 || total%known != 0 {
			return shapeErrf("cannot reshape X %q %v (%d elements) to %v", c.n.Inputs[0], x.shape, total, s)
		}
		shape[neg] = total / known
	} else if known != total {
		return shapeErrf("cannot reshape X %q %v (%d elements) to %v (%d elements)", c.n.Inputs[0], x.shape, total, s, known)
	}
	passData(c, shape)
	return nil
}

func inferFlatten(c *nodeCtx) error {
	x := c.in[0]
	r := len(x.shape)
	axis := int(c.n.AttrInt("axis", 1))
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis > r {
		return shapeErrf("axis %d out of range for X %q of rank %d", c.n.AttrInt("axis", 1), c.n.Inputs[0], r)
	}
	passData(c, []int{prod(x.shape[:axis]), prod(x.shape[axis:])})
	return nil
}

// axesOf reads axes from input 1 (opset ≥ 13) or the axes attribute; an
// attribute is honoured at any opset when the input is absent, as some
// exporters write it.
func axesOf(c *nodeCtx, what string) ([]int64, error) {
	if c.opset >= 13 && c.input(1) != nil {
		return constIntsInput(c, 1, what)
	}
	return c.n.AttrInts("axes"), nil
}

func inferSqueeze(c *nodeCtx) error {
	x := c.in[0]
	axes, err := axesOf(c, "Squeeze axes")
	if err != nil {
		return err
	}
	r := len(x.shape)
	drop := make([]bool, r)
	if len(axes) == 0 {
		for i, d := range x.shape {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		ax, err := normAxis(int(a), r)
		if err != nil {
			return err
		}
		if x.shape[ax] != 1 {
			return shapeErrf("cannot squeeze axis %d of X %q with shape %v", ax, c.n.Inputs[0], x.shape)
		}
		drop[ax] = true
	}
	var shape []int
	for i, d := range x.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	if shape == nil {
		shape = []int{}
	}
	passData(c, shape)
	return nil
}

func inferUnsqueeze(c *nodeCtx) error {
	x := c.in[0]
	axes, err := axesOf(c, "Unsqueeze axes")
	if err != nil {
		return err
	}
	if len(axes) == 0 {
		return shapeErrf("Unsqueeze needs axes")
	}
	r := len(x.shape) + len(axes)
	if r > maxRank {
		return unsupportedf("rank %d", r)
	}
	ins := make([]bool, r)
	for _, a := range axes {
		ax, err := normAxis(int(a), r)
		if err != nil {
			return err
		}
		if ins[ax] {
			return shapeErrf("axes %v repeat %d", axes, ax)
		}
		ins[ax] = true
	}
	shape := make([]int, r)
	k := 0
	for i := range shape {
		if ins[i] {
			shape[i] = 1
		} else {
			shape[i] = x.shape[k]
			k++
		}
	}
	passData(c, shape)
	return nil
}

// ---- strided copies: Transpose, Slice, Expand ----

// strided describes y[i0..ir] = x[base + Σ i_d·st_d] over output dims.
type strided struct {
	rank int
	dims [maxRank]int
	st   [maxRank]int
	base int
	n    int
}

func newStrided(dims, st []int, base int) strided {
	p := strided{base: base, n: prod(dims)}
	for i := range dims {
		if dims[i] == 1 {
			continue
		}
		if p.rank > 0 && p.st[p.rank-1] == st[i]*dims[i] {
			p.dims[p.rank-1] *= dims[i]
			p.st[p.rank-1] = st[i]
			continue
		}
		p.dims[p.rank], p.st[p.rank] = dims[i], st[i]
		p.rank++
	}
	if p.rank == 0 {
		p.dims[0], p.st[0], p.rank = 1, 1, 1
	}
	return p
}

func stridedCopy[T any](p *strided, x, y []T) {
	if p.n == 0 {
		return
	}
	r := p.rank
	inner, is := p.dims[r-1], p.st[r-1]
	outer := p.n / inner
	var idx [maxRank]int
	off := p.base
	for o := 0; o < outer; o++ {
		yr := y[o*inner : (o+1)*inner]
		if is == 1 {
			copy(yr, x[off:off+inner])
		} else {
			for i := range yr {
				yr[i] = x[off+i*is]
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			off += p.st[d]
			if idx[d] < p.dims[d] {
				break
			}
			off -= p.st[d] * p.dims[d]
			idx[d] = 0
		}
	}
}

// applyStrided computes output 0 from a strided plan: folds constants.
func applyStrided(c *nodeCtx, p strided, shape []int) error {
	x := c.in[0]
	o := c.out[0]
	o.shape, o.dt = shape, x.dt
	if !allConst(c) {
		return nil
	}
	if _, err := checkedNumel(shape, maxFoldElements); err != nil {
		return nil // too large to fold: runs at run time
	}
	o.konst = true
	if x.dt == dtInt64 {
		o.i = make([]int64, p.n)
		stridedCopy(&p, x.i, o.i)
	} else {
		o.f = make([]float32, p.n)
		stridedCopy(&p, x.f, o.f)
	}
	return nil
}

func contiguousStrides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// planStrided computes the plan of a Transpose, Slice or Expand node.
func planStrided(c *nodeCtx) (strided, []int, error) {
	x := c.in[0]
	r := len(x.shape)
	xst := contiguousStrides(x.shape)
	switch c.n.Op {
	case "Transpose":
		perm := attrIntsOr(c.n, "perm", nil)
		if perm == nil {
			perm = make([]int, r)
			for i := range perm {
				perm[i] = r - 1 - i
			}
		}
		if len(perm) != r {
			return strided{}, nil, shapeErrf("perm %v does not fit X %q of rank %d", perm, c.n.Inputs[0], r)
		}
		seen := make([]bool, r)
		dims, st := make([]int, r), make([]int, r)
		for i, p := range perm {
			if p < 0 || p >= r || seen[p] {
				return strided{}, nil, shapeErrf("perm %v is not a permutation of 0..%d", perm, r-1)
			}
			seen[p] = true
			dims[i], st[i] = x.shape[p], xst[p]
		}
		return newStrided(dims, st, 0), dims, nil
	case "Slice":
		var starts, ends, axes, steps []int64
		if c.opset < 10 {
			starts, ends, axes = c.n.AttrInts("starts"), c.n.AttrInts("ends"), c.n.AttrInts("axes")
		} else {
			var err error
			if starts, err = constIntsInput(c, 1, "Slice starts"); err != nil {
				return strided{}, nil, err
			}
			if ends, err = constIntsInput(c, 2, "Slice ends"); err != nil {
				return strided{}, nil, err
			}
			if axes, err = constIntsInput(c, 3, "Slice axes"); err != nil {
				return strided{}, nil, err
			}
			if steps, err = constIntsInput(c, 4, "Slice steps"); err != nil {
				return strided{}, nil, err
			}
		}
		if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
			return strided{}, nil, shapeErrf("Slice starts %v, ends %v, axes %v, steps %v differ in length", starts, ends, axes, steps)
		}
		dims := cloneInts(x.shape)
		st := cloneInts(xst)
		base := 0
		done := make([]bool, r)
		for k := range starts {
			ax := k
			if axes != nil {
				a, err := normAxis(int(axes[k]), r)
				if err != nil {
					return strided{}, nil, err
				}
				ax = a
			}
			if done[ax] {
				return strided{}, nil, shapeErrf("Slice axes %v repeat %d", axes, ax)
			}
			done[ax] = true
			step := int64(1)
			if steps != nil {
				step = steps[k]
			}
			if step == 0 {
				return strided{}, nil, shapeErrf("Slice step is 0")
			}
			d := int64(x.shape[ax])
			s, e := starts[k], ends[k]
			if s < 0 {
				s += d
			}
			if e < 0 {
				e += d
			}
			var cnt int64
			if step > 0 {
				s = min(max(s, 0), d)
				e = min(max(e, 0), d)
				if e > s {
					cnt = (e - s + step - 1) / step
				}
			} else {
				s = min(max(s, -1), d-1)
				e = min(max(e, -1), d-1)
				if s > e {
					cnt = (s - e - step - 1) / (-step)
				}
			}
			dims[ax] = int(cnt)
			if cnt > 0 {
				base += int(s) * xst[ax]
			}
			st[ax] = xst[ax] * int(step)
		}
		return newStrided(dims, st, base), dims, nil
	case "Expand":
		s, err := constIntsInput(c, 1, "Expand shape")
		if err != nil {
			return strided{}, nil, err
		}
		target := make([]int, len(s))
		for i, d := range s {
			if d < 0 || d > MaxTensorElements {
				return strided{}, nil, shapeErrf("Expand shape %v has bad dimension %d", s, d)
			}
			target[i] = int(d)
		}
		out, ok := broadcastShape(x.shape, target)
		if !ok {
			return strided{}, nil, shapeErrf("X %q %v does not broadcast to %v", c.n.Inputs[0], x.shape, s)
		}
		if _, err := checkedNumel(out, MaxTensorElements); err != nil {
			return strided{}, nil, err
		}
		st := make([]int, len(out))
		for i := range out {
			k := i - (len(out) - r)
			if k >= 0 && x.shape[k] != 1 {
				st[i] = xst[k]
			}
		}
		return newStrided(out, st, 0), out, nil
	}
	return strided{}, nil, unsupportedf("strided op %s", c.n.Op)
}

func inferStrided(c *nodeCtx) error {
	p, shape, err := planStrided(c)
	if err != nil {
		return err
	}
	return applyStrided(c, p, shape)
}

var (
	inferTranspose = inferStrided
	inferSlice     = inferStrided
	inferExpand    = inferStrided
)

type stridedLayer struct{ p strided }

func buildStrided(c *nodeCtx) (layer, error) {
	p, _, err := planStrided(c)
	if err != nil {
		return nil, err
	}
	return &stridedLayer{p: p}, nil
}

func (l *stridedLayer) forward(in, out [][]float32, _ []float32) {
	stridedCopy(&l.p, in[0], out[0])
}

// ---- Concat ----

func concatGeom(c *nodeCtx) (axis int, shape []int, err error) {
	var first *tval
	for _, v := range c.in {
		if v != nil {
			first = v
			break
		}
	}
	if first == nil {
		return 0, nil, shapeErrf("Concat has no inputs")
	}
	r := len(first.shape)
	a, ok := c.n.Attrs["axis"]
	if !ok {
		if c.opset >= 4 {
			return 0, nil, shapeErrf("axis attribute is required")
		}
		a.Int = 1
	}
	axis, err = normAxis(int(a.Int), r)
	if err != nil {
		return 0, nil, err
	}
	shape = cloneInts(first.shape)
	shape[axis] = 0
	for k, v := range c.in {
		if v == nil {
			continue
		}
		if v.dt != first.dt {
			return 0, nil, unsupportedf("mixed input types")
		}
		if len(v.shape) != r {
			return 0, nil, shapeErrf("input %d %q has shape %v, want rank %d like %v", k, c.n.Inputs[k], v.shape, r, first.shape)
		}
		for d := range v.shape {
			if d != axis && v.shape[d] != first.shape[d] {
				return 0, nil, shapeErrf("input %d %q has shape %v, incompatible with %v on axis %d", k, c.n.Inputs[k], v.shape, first.shape, d)
			}
		}
		shape[axis] += v.shape[axis]
	}
	return axis, shape, nil
}

func concatT[T any](ins [][]T, y []T, outer int, inner []int) {
	off := 0
	for o := 0; o < outer; o++ {
		for k, x := range ins {
			n := inner[k]
			if n == 0 {
				continue
			}
			copy(y[off:off+n], x[o*n:(o+1)*n])
			off += n
		}
	}
}

func inferConcat(c *nodeCtx) error {
	axis, shape, err := concatGeom(c)
	if err != nil {
		return err
	}
	var dt dtype
	for _, v := range c.in {
		if v != nil {
			dt = v.dt
		}
	}
	c.setOut(0, dt, shape)
	if !allConst(c) {
		return nil
	}
	n, err := checkedNumel(shape, maxFoldElements)
	if err != nil {
		return nil // too large to fold: runs at run time
	}
	outer := prod(shape[:axis])
	var inner []int
	var fi [][]float32
	var ii [][]int64
	for _, v := range c.in {
		if v == nil {
			continue
		}
		inner = append(inner, prod(v.shape[axis:]))
		fi, ii = append(fi, v.f), append(ii, v.i)
	}
	o := c.out[0]
	o.konst = true
	if dt == dtInt64 {
		o.i = make([]int64, n)
		concatT(ii, o.i, outer, inner)
	} else {
		o.f = make([]float32, n)
		concatT(fi, o.f, outer, inner)
	}
	return nil
}

type concatLayer struct {
	outer int
	inner []int
	use   []int // indices of present inputs
}

func buildConcat(c *nodeCtx) (layer, error) {
	axis, shape, err := concatGeom(c)
	if err != nil {
		return nil, err
	}
	l := &concatLayer{outer: prod(shape[:axis])}
	for k, v := range c.in {
		if v != nil {
			l.inner = append(l.inner, prod(v.shape[axis:]))
			l.use = append(l.use, k)
		}
	}
	return l, nil
}

func (l *concatLayer) forward(in, out [][]float32, _ []float32) {
	y := out[0]
	off := 0
	for o := 0; o < l.outer; o++ {
		for j, k := range l.use {
			n := l.inner[j]
			copy(y[off:off+n], in[k][o*n:(o+1)*n])
			off += n
		}
	}
}

// ---- Gather ----

func gatherGeom(c *nodeCtx) (axis int, idx []int, shape []int, err error) {
	x, iv := c.in[0], c.in[1]
	if !iv.konst {
		return 0, nil, nil, unsupportedf("Gather indices %q computed at run time", c.n.Inputs[1])
	}
	r := len(x.shape)
	if r == 0 {
		return 0, nil, nil, rankErr(c, 0, "rank ≥ 1")
	}
	axis, err = normAxis(int(c.n.AttrInt("axis", 0)), r)
	if err != nil {
		return 0, nil, nil, err
	}
	d := x.shape[axis]
	raw := iv.asInt64s()
	idx = make([]int, len(raw))
	for i, v := range raw {
		if v < 0 {
			v += int64(d)
		}
		if v < 0 || v >= int64(d) {
			return 0, nil, nil, shapeErrf("index %d out of range [-%d, %d) on axis %d of %q", raw[i], d, d, axis, c.n.Inputs[0])
		}
		idx[i] = int(v)
	}
	shape = append(append(cloneInts(x.shape[:axis]), iv.shape...), x.shape[axis+1:]...)
	return axis, idx, shape, nil
}

func gatherT[T any](x, y []T, outer, d, inner int, idx []int) {
	off := 0
	for o := 0; o < outer; o++ {
		for _, i := range idx {
			src := (o*d + i) * inner
			copy(y[off:off+inner], x[src:src+inner])
			off += inner
		}
	}
}

func inferGather(c *nodeCtx) error {
	x := c.in[0]
	if !c.in[1].konst {
		return unsupportedf("Gather indices %q computed at run time", c.n.Inputs[1])
	}
	axis, idx, shape, err := gatherGeom(c)
	if err != nil {
		return err
	}
	c.setOut(0, x.dt, shape)
	if !x.konst {
		return nil
	}
	n, err := checkedNumel(shape, maxFoldElements)
	if err != nil {
		return nil // too large to fold: runs at run time
	}
	outer, d, inner := prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis+1:])
	o := c.out[0]
	o.konst = true
	if x.dt == dtInt64 {
		o.i = make([]int64, n)
		gatherT(x.i, o.i, outer, d, inner, idx)
	} else {
		o.f = make([]float32, n)
		gatherT(x.f, o.f, outer, d, inner, idx)
	}
	return nil
}

type gatherLayer struct {
	outer, d, inner int
	idx             []int
}

func buildGather(c *nodeCtx) (layer, error) {
	axis, idx, _, err := gatherGeom(c)
	if err != nil {
		return nil, err
	}
	x := c.in[0]
	return &gatherLayer{outer: prod(x.shape[:axis]), d: x.shape[axis], inner: prod(x.shape[axis+1:]), idx: idx}, nil
}

func (l *gatherLayer) forward(in, out [][]float32, _ []float32) {
	gatherT(in[0], out[0], l.outer, l.d, l.inner, l.idx)
}

// ---- Tile ----

func tileGeom(c *nodeCtx) ([]int, error) {
	x := c.in[0]
	reps, err := constIntsInput(c, 1, "Tile repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != len(x.shape) {
		return nil, shapeErrf("repeats %v do not fit X %q of rank %d", reps, c.n.Inputs[0], len(x.shape))
	}
	shape := make([]int, len(reps))
	for i, r := range reps {
		if r < 0 || r > MaxTensorElements {
			return nil, shapeErrf("bad repeat %d", r)
		}
		shape[i] = x.shape[i] * int(r)
	}
	if _, err := checkedNumel(shape, MaxTensorElements); err != nil {
		return nil, err
	}
	return shape, nil
}

// tileT writes y[i] = x[i mod shape], walking the output with a counter
// per axis.
func tileT[T any](x, y []T, xs, ys []int) {
	r := len(ys)
	if len(y) == 0 {
		return
	}
	var idx [maxRank]int
	var st [maxRank]int
	s := 1
	for d := r - 1; d >= 0; d-- {
		st[d] = s
		s *= xs[d]
	}
	for i := range y {
		off := 0
		for d := 0; d < r; d++ {
			off += (idx[d] % xs[d]) * st[d]
		}
		y[i] = x[off]
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < ys[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func inferTile(c *nodeCtx) error {
	x := c.in[0]
	shape, err := tileGeom(c)
	if err != nil {
		return err
	}
	c.setOut(0, x.dt, shape)
	if !x.konst {
		return nil
	}
	n, err := checkedNumel(shape, maxFoldElements)
	if err != nil {
		return nil // too large to fold: runs at run time
	}
	o := c.out[0]
	o.konst = true
	if x.dt == dtInt64 {
		o.i = make([]int64, n)
		tileT(x.i, o.i, x.shape, shape)
	} else {
		o.f = make([]float32, n)
		tileT(x.f, o.f, x.shape, shape)
	}
	return nil
}

type tileLayer struct{ xs, ys []int }

func buildTile(c *nodeCtx) (layer, error) {
	shape, err := tileGeom(c)
	if err != nil {
		return nil, err
	}
	return &tileLayer{xs: cloneInts(c.in[0].shape), ys: shape}, nil
}

func (l *tileLayer) forward(in, out [][]float32, _ []float32) {
	tileT(in[0], out[0], l.xs, l.ys)
}
