package model

import (
	"math"
)

// This file: ReduceMean/Sum/Max/Min/Prod/SumSquare/L1/L2/LogSum/LogSumExp
// (axes as attribute, or as input from opset 18 — 13 for ReduceSum —,
// keepdims, noop_with_empty_axes).

var reduceOps = []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
	"ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"}

func init() {
	for _, name := range reduceOps {
		register(name, &opDef{minIn: 1, infer: inferReduce, build: buildReduce})
	}
}

type reduceGeom struct {
	reduced []bool
	out     []int
	noop    bool
}

func reduceGeometry(c *nodeCtx) (*reduceGeom, error) {
	x := c.in[0]
	r := len(x.shape)
	axesFromInput := c.opset >= 18 || (c.n.Op == "ReduceSum" && c.opset >= 13)
	var axes []int64
	if axesFromInput && c.input(1) != nil {
		var err error
		if axes, err = constIntsInput(c, 1, "axes"); err != nil {
			return nil, err
		}
	} else {
		axes = c.n.AttrInts("axes")
	}
	g := &reduceGeom{reduced: make([]bool, r)}
	if len(axes) == 0 {
		if c.n.AttrInt("noop_with_empty_axes", 0) != 0 {
			g.noop = true
			g.out = cloneInts(x.shape)
			return g, nil
		}
		for i := range g.reduced {
			g.reduced[i] = true
		}
	}
	for _, a := range axes {
		ax, err := normAxis(int(a), r)
		if err != nil {
			return nil, err
		}
		g.reduced[ax] = true
	}
	keep := c.n.AttrInt("keepdims", 1) != 0
	g.out = []int{}
	for i, d := range x.shape {
		switch {
		case !g.reduced[i]:
			g.out = append(g.out, d)
		case keep:
			g.out = append(g.out, 1)
		}
	}
	return g, nil
}

func inferReduce(c *nodeCtx) error {
	if c.in[0].dt != dtFloat {
		return unsupportedf("%s on %v", c.n.Op, c.in[0].dt)
	}
	g, err := reduceGeometry(c)
	if err != nil {
		return err
	}
	c.setOut(0, dtFloat, g.out)
	return nil
}

type reduceLayer struct {
	op    string
	noop  bool
	p     strided // walks the input; st = output strides (0 on reduced axes)
	nOut  int
	count float32 // elements per output
}

func buildReduce(c *nodeCtx) (layer, error) {
	g, err := reduceGeometry(c)
	if err != nil {
		return nil, err
	}
	x := c.in[0]
	l := &reduceLayer{op: c.n.Op, noop: g.noop, nOut: prod(g.out)}
	if g.noop {
		return l, nil
	}
	// Output strides over the input's axes.
	ost := make([]int, len(x.shape))
	s := 1
	for i := len(x.shape) - 1; i >= 0; i-- {
		if g.reduced[i] {
			continue
		}
		ost[i] = s
		s *= x.shape[i]
	}
	l.p = newStrided(x.shape, ost, 0)
	if l.nOut > 0 {
		l.count = float32(x.numel() / l.nOut)
	}
	return l, nil
}

func (l *reduceLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	if l.noop {
		copy(y, x)
		return
	}
	init := float32(0)
	switch l.op {
	case "ReduceMax":
		init = float32(math.Inf(-1))
	case "ReduceMin":
		init = float32(math.Inf(1))
	case "ReduceProd":
		init = 1
	}
	for i := range y {
		y[i] = init
	}
	p := &l.p
	if p.n == 0 {
		l.finish(y)
		return
	}
	r := p.rank
	inner, is := p.dims[r-1], p.st[r-1]
	outer := p.n / inner
	var idx [maxRank]int
	off := 0
	for o := 0; o < outer; o++ {
		xr := x[o*inner : (o+1)*inner]
		if is == 0 {
			y[off] = l.accRow(y[off], xr)
		} else {
			yr := y[off : off+inner]
			l.accVec(yr, xr)
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
	l.finish(y)
}

// accRow folds a row into one accumulator.
func (l *reduceLayer) accRow(acc float32, xr []float32) float32 {
	switch l.op {
	case "ReduceMax":
		for _, v := range xr {
			acc = max(acc, v)
		}
	case "ReduceMin":
		for _, v := range xr {
			acc = min(acc, v)
		}
	case "ReduceProd":
		for _, v := range xr {
			acc *= v
		}
	case "ReduceSumSquare", "ReduceL2":
		for _, v := range xr {
			acc += v * v
		}
	case "ReduceL1":
		for _, v := range xr {
			acc += abs32(v)
		}
	case "ReduceLogSumExp":
		for _, v := range xr {
			acc += float32(math.Exp(float64(v)))
		}
	default:
		acc += sum32(xr)
	}
	return acc
}

// accVec folds a row element-wise into a row of accumulators.
func (l *reduceLayer) accVec(yr, xr []float32) {
	xr = xr[:len(yr)]
	switch l.op {
	case "ReduceMax":
		for i, v := range xr {
			yr[i] = max(yr[i], v)
		}
	case "ReduceMin":
		for i, v := range xr {
			yr[i] = min(yr[i], v)
		}
	case "ReduceProd":
		for i, v := range xr {
			yr[i] *= v
		}
	case "ReduceSumSquare", "ReduceL2":
		for i, v := range xr {
			yr[i] += v * v
		}
	case "ReduceL1":
		for i, v := range xr {
			yr[i] += abs32(v)
		}
	case "ReduceLogSumExp":
		for i, v := range xr {
			yr[i] += float32(math.Exp(float64(v)))
		}
	default:
		for i, v := range xr {
			yr[i] += v
		}
	}
}

func (l *reduceLayer) finish(y []float32) {
	switch l.op {
	case "ReduceMean":
		inv := 1 / l.count
		for i := range y {
			y[i] *= inv
		}
	case "ReduceL2":
		for i, v := range y {
			y[i] = float32(math.Sqrt(float64(v)))
		}
	case "ReduceLogSum", "ReduceLogSumExp":
		for i, v := range y {
			y[i] = float32(math.Log(float64(v)))
		}
	}
}
