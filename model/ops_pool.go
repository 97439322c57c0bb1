package model

import (
	"math"
	"unsafe"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// This file: MaxPool, AveragePool (1-D and 2-D), GlobalAveragePool,
// GlobalMaxPool (any rank).

func init() {
	register("MaxPool", &opDef{minIn: 1, infer: inferPool, build: buildPool})
	register("AveragePool", &opDef{minIn: 1, infer: inferPool, build: buildPool})
	register("GlobalAveragePool", &opDef{minIn: 1, infer: inferGlobalPool, build: buildGlobalPool})
	register("GlobalMaxPool", &opDef{minIn: 1, infer: inferGlobalPool, build: buildGlobalPool})
}

func poolWindow(c *nodeCtx) (window, error) {
	x := c.in[0]
	if x.dt != dtFloat {
		return window{}, unsupportedf("%s on %v", c.n.Op, x.dt)
	}
	if len(x.shape) < 3 {
		return window{}, rankErr(c, 0, "rank ≥ 3 (N, C, spatial...)")
	}
	nsp := len(x.shape) - 2
	if nsp > 2 {
		return window{}, unsupportedf("%d-D pooling (X %q has shape %v)", nsp, c.n.Inputs[0], x.shape)
	}
	kernel := attrIntsOr(c.n, "kernel_shape", nil)
	if kernel == nil {
		return window{}, shapeErrf("kernel_shape attribute is required")
	}
	if c.n.Op == "AveragePool" && c.opset < 19 {
		if d := attrIntsOr(c.n, "dilations", nil); d != nil {
			for _, v := range d {
				if v != 1 {
					return window{}, unsupportedf("AveragePool dilations before opset 19")
				}
			}
		}
	}
	if c.n.AttrInt("storage_order", 0) != 0 && len(c.out) > 1 && c.n.Outputs[1] != "" {
		return window{}, unsupportedf("storage_order=1")
	}
	w, err := spatialAttrs(c.n, nsp, kernel)
	if err != nil {
		return w, err
	}
	err = w.outputSize(c.n, x.shape[2:], c.n.AttrInt("ceil_mode", 0) != 0)
	return w, err
}

func inferPool(c *nodeCtx) error {
	w, err := poolWindow(c)
	if err != nil {
		return err
	}
	x := c.in[0]
	c.setOut(0, dtFloat, append([]int{x.shape[0], x.shape[1]}, w.out...))
	if len(c.out) > 1 && c.n.Outputs[1] != "" {
		if c.n.Op != "MaxPool" {
			return shapeErrf("%s has one output", c.n.Op)
		}
		c.setOut(1, dtInt64, append([]int{x.shape[0], x.shape[1]}, w.out...))
	}
	return nil
}

type poolLayer struct {
	max          bool
	includePad   bool
	planes       int
	w            window // 2-D
	inHW, outHW  int
	divisorTable []float32 // per output position (average pooling)
	hk0, hk1     []int32   // valid kernel rows per output row
	wk0, wk1     []int32   // valid kernel columns per output column
	fast2x2      bool      // 2×2 kernel, stride 2, no dilation
	threads      int
	pool         *kern.Pool // splits the planes (nil: serial)
}

func buildPool(c *nodeCtx) (layer, error) {
	w, err := poolWindow(c)
	if err != nil {
		return nil, err
	}
	x := c.in[0]
	w = w.to2D()
	l := &poolLayer{
		max:        c.n.Op == "MaxPool",
		includePad: c.n.AttrInt("count_include_pad", 0) != 0,
		planes:     x.shape[0] * x.shape[1],
		w:          w,
		inHW:       w.in[0] * w.in[1],
		outHW:      w.out[0] * w.out[1],
		threads:    max(1, c.threads),
		pool:       c.pool,
	}
	l.hk0, l.hk1 = validTaps(w.in[0], w.out[0], w.k[0], w.s[0], w.d[0], w.pb[0])
	l.wk0, l.wk1 = validTaps(w.in[1], w.out[1], w.k[1], w.s[1], w.d[1], w.pb[1])
	l.fast2x2 = w.k[0] == 2 && w.k[1] == 2 && w.s[0] == 2 && w.s[1] == 2 && w.d[0] == 1 && w.d[1] == 1
	if !l.max {
		l.divisorTable = make([]float32, l.outHW)
		for oh := 0; oh < w.out[0]; oh++ {
			ch := l.count(0, oh)
			for ow := 0; ow < w.out[1]; ow++ {
				cw := l.count(1, ow)
				if ch*cw > 0 {
					l.divisorTable[oh*w.out[1]+ow] = 1 / float32(ch*cw)
				}
			}
		}
	}
	return l, nil
}

// count returns how many taps of window o along axis ax count towards the
// average.
func (l *poolLayer) count(ax, o int) int {
	w := l.w
	lo, hi := 0, w.in[ax]
	if l.includePad {
		lo, hi = -w.pb[ax], w.in[ax]+w.pe[ax]
	}
	n := 0
	for k := 0; k < w.k[ax]; k++ {
		p := o*w.s[ax] - w.pb[ax] + k*w.d[ax]
		if p >= lo && p < hi {
			n++
		}
	}
	return n
}

// validTaps returns, for each output position along an axis, the range
// [k0, k1) of kernel taps that fall inside the input.
func validTaps(in, out, k, st, d, pb int) (k0, k1 []int32) {
	k0, k1 = make([]int32, out), make([]int32, out)
	for o := 0; o < out; o++ {
		p0 := o*st - pb
		a, b := 0, k
		for a < k && p0+a*d < 0 {
			a++
		}
		for b > a && p0+(b-1)*d >= in {
			b--
		}
		k0[o], k1[o] = int32(a), int32(b)
	}
	return k0, k1
}

func (l *poolLayer) scratchLen() int { return kern.PlaneScratch(l.threads, l.w.in[1]) }

// separableRow computes one output row of an undilated pool: first the
// column-wise max (or sum) of the nr valid input rows from r0, then the
// max (or sum) over each window of that row.
func (l *poolLayer) separableRow(xp, yr []float32, r0, nr, sw, pl, oh int, v []float32) {
	W := len(v)
	if nr <= 0 || W == 0 {
		// Every window of this row lies in the padding.
		fill := float32(0)
		if l.max {
			fill = float32(math.Inf(-1))
		}
		for i := range yr {
			yr[i] = fill
		}
		return
	}
	first := xp[r0*W : (r0+1)*W]
	if l.max {
		// The column maxima stay in the order-preserving integer form
		// (ordOf) until the output: one conversion per input element.
		vo := unsafe.Slice((*int32)(unsafe.Pointer(&v[0])), W)
		for i, a := range first {
			vo[i] = ordOf(a)
		}
		for r := 1; r < nr; r++ {
			row := xp[(r0+r)*W : (r0+r+1)*W]
			row = row[:len(vo)]
			for i, a := range row {
				vo[i] = max(vo[i], ordOf(a))
			}
		}
		negInf := ordOf(float32(math.Inf(-1)))
		for ow := range yr {
			w0 := ow*sw - pl
			j0, j1 := w0+int(l.wk0[ow]), w0+int(l.wk1[ow])
			m := negInf
			if j1 <= j0 {
				// The window lies in the padding (ceil_mode).
				yr[ow] = fromOrd(m)
				continue
			}
			for _, a := range vo[j0:j1] {
				m = max(m, a)
			}
			yr[ow] = fromOrd(m)
		}
		return
	}
	copy(v, first)
	for r := 1; r < nr; r++ {
		row := xp[(r0+r)*W : (r0+r+1)*W]
		for i, a := range row {
			v[i] += a
		}
	}
	div := l.divisorTable[oh*len(yr) : (oh+1)*len(yr)]
	for ow := range yr {
		w0 := ow*sw - pl
		j0, j1 := w0+int(l.wk0[ow]), w0+int(l.wk1[ow])
		var s float32
		if j1 <= j0 {
			yr[ow] = 0
			continue
		}
		for _, a := range v[j0:j1] {
			s += a
		}
		yr[ow] = s * div[ow]
	}
}

func (l *poolLayer) forward(in, out [][]float32, scratch []float32) {
	w := &l.w
	l.pool.RunPlanes(l, in[0], out[0], scratch, l.planes, l.outHW*w.k[0]*w.k[1], w.in[1])
}

// Planes computes planes [p0, p1) (kern.PlaneWork).
func (l *poolLayer) Planes(x, y, scratch []float32, p0, p1 int) {
	w := &l.w
	W := w.in[1]
	OH, OW := w.out[0], w.out[1]
	sh, sw, dh, dw := w.s[0], w.s[1], w.d[0], w.d[1]
	pt, pl := w.pb[0], w.pb[1]
	negInf := float32(math.Inf(-1))
	for p := p0; p < p1; p++ {
		xp := x[p*l.inHW : (p+1)*l.inHW]
		yp := y[p*l.outHW : (p+1)*l.outHW]
		for oh := 0; oh < OH; oh++ {
			h0 := oh*sh - pt
			k0, k1 := int(l.hk0[oh]), int(l.hk1[oh])
			yr := yp[oh*OW : (oh+1)*OW]
			if dh == 1 && dw == 1 && !(l.max && l.fast2x2 && k1-k0 == 2) {
				l.separableRow(xp, yr, h0+k0, k1-k0, sw, pl, oh, scratch[:W])
				continue
			}
			if l.max && l.fast2x2 && k1-k0 == 2 {
				r0 := xp[(h0+k0)*W : (h0+k0+1)*W]
				r1 := xp[(h0+k0+1)*W : (h0+k0+2)*W]
				for ow := range yr {
					j := 2*ow - pl
					if j >= 0 && j+1 < W {
						yr[ow] = fromOrd(max(ordOf(r0[j]), ordOf(r0[j+1]), ordOf(r1[j]), ordOf(r1[j+1])))
						continue
					}
					m := ordOf(negInf)
					for jj := int(l.wk0[ow]); jj < int(l.wk1[ow]); jj++ {
						m = max(m, ordOf(r0[j+jj]), ordOf(r1[j+jj]))
					}
					yr[ow] = fromOrd(m)
				}
				continue
			}
			for ow := range yr {
				w0 := ow*sw - pl
				j0, j1 := int(l.wk0[ow]), int(l.wk1[ow])
				if l.max {
					m := ordOf(negInf)
					for k := k0; k < k1; k++ {
						row := xp[(h0+k*dh)*W:]
						for j := j0; j < j1; j++ {
							m = max(m, ordOf(row[w0+j*dw]))
						}
					}
					yr[ow] = fromOrd(m)
				} else {
					var s float32
					for k := k0; k < k1; k++ {
						row := xp[(h0+k*dh)*W:]
						for j := j0; j < j1; j++ {
							s += row[w0+j*dw]
						}
					}
					yr[ow] = s * l.divisorTable[oh*OW+ow]
				}
			}
		}
	}
}

func inferGlobalPool(c *nodeCtx) error {
	x := c.in[0]
	if x.dt != dtFloat {
		return unsupportedf("%s on %v", c.n.Op, x.dt)
	}
	if len(x.shape) < 2 {
		return rankErr(c, 0, "rank ≥ 2 (N, C, ...)")
	}
	out := cloneInts(x.shape)
	for i := 2; i < len(out); i++ {
		out[i] = 1
	}
	c.setOut(0, dtFloat, out)
	return nil
}

type globalPoolLayer struct {
	max    bool
	planes int
	hw     int
}

func buildGlobalPool(c *nodeCtx) (layer, error) {
	x := c.in[0]
	return &globalPoolLayer{max: c.n.Op == "GlobalMaxPool", planes: x.shape[0] * x.shape[1], hw: prod(x.shape[2:])}, nil
}

func (l *globalPoolLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	if l.hw == 0 {
		return
	}
	inv := 1 / float32(l.hw)
	for p := 0; p < l.planes; p++ {
		xp := x[p*l.hw : (p+1)*l.hw]
		if l.max {
			m := ordOf(xp[0])
			for _, v := range xp[1:] {
				m = max(m, ordOf(v))
			}
			y[p] = fromOrd(m)
		} else {
			y[p] = sum32(xp) * inv
		}
	}
}

// sum32 adds x with four independent accumulators.
func sum32(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}
