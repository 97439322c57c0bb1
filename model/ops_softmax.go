package model

import "math"

// This file: Softmax, LogSoftmax (opset < 13: 2-D coercion at axis; ≥ 13:
// along one axis).

func init() {
	register("Softmax", &opDef{minIn: 1, inplace: true, infer: inferSame, build: buildSoftmax})
	register("LogSoftmax", &opDef{minIn: 1, inplace: true, infer: inferSame, build: buildSoftmax})
}

type softmaxLayer struct {
	outer, n, inner int // softmax over n elements with stride inner
	log             bool
}

func buildSoftmax(c *nodeCtx) (layer, error) {
	x := c.in[0]
	r := len(x.shape)
	def := int64(-1)
	if c.opset < 13 {
		def = 1
	}
	if r == 0 {
		return nil, rankErr(c, 0, "rank ≥ 1")
	}
	axis, err := normAxis(int(c.n.AttrInt("axis", def)), r)
	if err != nil {
		return nil, err
	}
	l := &softmaxLayer{log: c.n.Op == "LogSoftmax"}
	if c.opset < 13 {
		l.outer, l.n, l.inner = prod(x.shape[:axis]), prod(x.shape[axis:]), 1
	} else {
		l.outer, l.n, l.inner = prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis+1:])
	}
	return l, nil
}

func (l *softmaxLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	if l.n == 0 {
		return
	}
	if l.inner == 1 && !l.log {
		// Softmax along contiguous rows.
		for o := 0; o < l.outer; o++ {
			xr, yr := x[o*l.n:(o+1)*l.n], y[o*l.n:(o+1)*l.n]
			// The row's maximum (NaN if it has a NaN, as max gives), with
			// plain compares: the max builtin's NaN and signed-zero cases
			// make it several times slower.
			m, nan := float32(math.Inf(-1)), false
			for _, v := range xr {
				if v > m {
					m = v
				}
				nan = nan || v != v
			}
			if nan {
				m = float32(math.NaN())
			}
			inv := float32(1 / expShift(yr, xr, m))
			for k := range yr {
				yr[k] *= inv
			}
		}
		return
	}
	for o := 0; o < l.outer; o++ {
		for i := 0; i < l.inner; i++ {
			base := o*l.n*l.inner + i
			m := float32(math.Inf(-1))
			for k := 0; k < l.n; k++ {
				m = max(m, x[base+k*l.inner])
			}
			var s float64
			for k := 0; k < l.n; k++ {
				e := exp32(x[base+k*l.inner] - m)
				s += float64(e)
				if !l.log {
					y[base+k*l.inner] = e
				}
			}
			if l.log {
				ls := float32(math.Log(s))
				for k := 0; k < l.n; k++ {
					y[base+k*l.inner] = x[base+k*l.inner] - m - ls
				}
				continue
			}
			inv := float32(1 / s)
			for k := 0; k < l.n; k++ {
				y[base+k*l.inner] *= inv
			}
		}
	}
}
