package model

import "math"

// This file: LRN, InstanceNormalization, LayerNormalization.

func init() {
	register("LRN", &opDef{minIn: 1, infer: inferSame, build: buildLRN})
	register("InstanceNormalization", &opDef{minIn: 3, infer: inferInstanceNorm, build: buildInstanceNorm})
	register("LayerNormalization", &opDef{minIn: 2, infer: inferLayerNorm, build: buildLayerNorm})
}

type lrnLayer struct {
	n, ch, hw      int
	size           int
	alpha, beta, k float64
}

func buildLRN(c *nodeCtx) (layer, error) {
	x := c.in[0]
	if len(x.shape) < 2 {
		return nil, rankErr(c, 0, "rank ≥ 2 (N, C, ...)")
	}
	size := int(c.n.AttrInt("size", 0))
	if size < 1 {
		return nil, shapeErrf("size attribute must be ≥ 1, is %d", size)
	}
	return &lrnLayer{n: x.shape[0], ch: x.shape[1], hw: prod(x.shape[2:]), size: size,
		alpha: float64(c.n.AttrFloat("alpha", 1e-4)), beta: float64(c.n.AttrFloat("beta", 0.75)), k: float64(c.n.AttrFloat("bias", 1))}, nil
}

func (l *lrnLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	lo, hi := (l.size-1)/2, (l.size-1)-(l.size-1)/2
	for b := 0; b < l.n; b++ {
		base := b * l.ch * l.hw
		for c := 0; c < l.ch; c++ {
			c0, c1 := max(0, c-lo), min(l.ch-1, c+hi)
			for i := 0; i < l.hw; i++ {
				var s float64
				for cc := c0; cc <= c1; cc++ {
					v := float64(x[base+cc*l.hw+i])
					s += v * v
				}
				y[base+c*l.hw+i] = float32(float64(x[base+c*l.hw+i]) / math.Pow(l.k+l.alpha/float64(l.size)*s, l.beta))
			}
		}
	}
}

func inferInstanceNorm(c *nodeCtx) error {
	x := c.in[0]
	if len(x.shape) < 3 {
		return rankErr(c, 0, "rank ≥ 3 (N, C, spatial...)")
	}
	for k := 1; k <= 2; k++ {
		if c.in[k].numel() != x.shape[1] {
			return shapeErrf("input %d %q has shape %v, want [%d]", k, c.n.Inputs[k], c.in[k].shape, x.shape[1])
		}
	}
	c.setOut(0, dtFloat, cloneInts(x.shape))
	return nil
}

type instNormLayer struct {
	n, ch, hw   int
	scale, bias []float32
	eps         float64
}

func buildInstanceNorm(c *nodeCtx) (layer, error) {
	x := c.in[0]
	s, err := constInput(c, 1, "scale")
	if err != nil {
		return nil, err
	}
	b, err := constInput(c, 2, "B")
	if err != nil {
		return nil, err
	}
	return &instNormLayer{n: x.shape[0], ch: x.shape[1], hw: prod(x.shape[2:]), scale: s.asFloats(), bias: b.asFloats(),
		eps: float64(c.n.AttrFloat("epsilon", 1e-5))}, nil
}

// normalize writes (x-mean)/sqrt(var+eps) of xr into yr and returns nothing;
// mean and variance are computed in float64.
func normalize(xr, yr []float32, eps float64) (mean, inv float64) {
	var s float64
	for _, v := range xr {
		s += float64(v)
	}
	mean = s / float64(len(xr))
	var q float64
	for _, v := range xr {
		d := float64(v) - mean
		q += d * d
	}
	inv = 1 / math.Sqrt(q/float64(len(xr))+eps)
	return mean, inv
}

func (l *instNormLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	if l.hw == 0 {
		return
	}
	for b := 0; b < l.n; b++ {
		for c := 0; c < l.ch; c++ {
			off := (b*l.ch + c) * l.hw
			xr, yr := x[off:off+l.hw], y[off:off+l.hw]
			mean, inv := normalize(xr, yr, l.eps)
			sc, bi := float64(l.scale[c])*inv, float64(l.bias[c])
			for i, v := range xr {
				yr[i] = float32((float64(v)-mean)*sc + bi)
			}
		}
	}
}

func layerNormAxis(c *nodeCtx) (int, error) {
	x := c.in[0]
	return normAxis(int(c.n.AttrInt("axis", -1)), len(x.shape))
}

func inferLayerNorm(c *nodeCtx) error {
	x := c.in[0]
	axis, err := layerNormAxis(c)
	if err != nil {
		return err
	}
	norm := x.shape[axis:]
	for k := 1; k <= 2; k++ {
		v := c.input(k)
		if v == nil {
			continue
		}
		o, ok := broadcastShape(norm, v.shape)
		if !ok || !equalInts(o, norm) {
			return shapeErrf("input %d %q of shape %v does not broadcast to %v", k, c.n.Inputs[k], v.shape, norm)
		}
	}
	c.setOut(0, dtFloat, cloneInts(x.shape))
	stat := cloneInts(x.shape)
	for i := axis; i < len(stat); i++ {
		stat[i] = 1
	}
	for k := 1; k < len(c.out) && k < 3; k++ {
		c.setOut(k, dtFloat, cloneInts(stat))
	}
	if len(c.out) > 3 {
		return shapeErrf("LayerNormalization has at most 3 outputs")
	}
	return nil
}

type layerNormLayer struct {
	outer, inner int
	scale, bias  []float32 // expanded to inner
	eps          float64
}

func buildLayerNorm(c *nodeCtx) (layer, error) {
	x := c.in[0]
	axis, err := layerNormAxis(c)
	if err != nil {
		return nil, err
	}
	norm := x.shape[axis:]
	l := &layerNormLayer{outer: prod(x.shape[:axis]), inner: prod(norm), eps: float64(c.n.AttrFloat("epsilon", 1e-5))}
	expand := func(k int) ([]float32, error) {
		v, err := constInput(c, k, "LayerNormalization parameter")
		if err != nil || v == nil {
			return nil, err
		}
		p := newStrided(norm, bcastStrides(norm, v.shape), 0)
		r := make([]float32, l.inner)
		stridedCopy(&p, v.asFloats(), r)
		return r, nil
	}
	if l.scale, err = expand(1); err != nil {
		return nil, err
	}
	if l.bias, err = expand(2); err != nil {
		return nil, err
	}
	return l, nil
}

// bcastStrides returns the strides reading a tensor of shape s broadcast to
// out (0 along broadcast axes).
func bcastStrides(out, s []int) []int {
	st := make([]int, len(out))
	ss := contiguousStrides(s)
	for i := range out {
		k := i - (len(out) - len(s))
		if k >= 0 && s[k] != 1 {
			st[i] = ss[k]
		}
	}
	return st
}

func (l *layerNormLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	if l.inner == 0 {
		return
	}
	for o := 0; o < l.outer; o++ {
		xr, yr := x[o*l.inner:(o+1)*l.inner], y[o*l.inner:(o+1)*l.inner]
		mean, inv := normalize(xr, yr, l.eps)
		if len(out) > 1 {
			out[1][o] = float32(mean)
		}
		if len(out) > 2 {
			out[2][o] = float32(inv)
		}
		for i, v := range xr {
			r := (float64(v) - mean) * inv * float64(l.scale[i])
			if l.bias != nil {
				r += float64(l.bias[i])
			}
			yr[i] = float32(r)
		}
	}
}
