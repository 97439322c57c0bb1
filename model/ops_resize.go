package model

import (
	"math"
)

// This file: Resize (opset 10, 11–19: nearest/linear/cubic, every
// coordinate_transformation_mode, scales or sizes, axes,
// keep_aspect_ratio_policy) and Upsample (opsets 7–9). Resampling is
// separable: one 1-D pass per axis that changes, each pass driven by a
// per-axis table of source taps and weights.

func init() {
	register("Resize", &opDef{minIn: 1, infer: inferResize, build: buildResize})
	register("Upsample", &opDef{minIn: 1, infer: inferResize, build: buildResize})
}

// axisTable: for output index o, taps idx[o*nt+t] with weights w[o*nt+t];
// outside[o] marks tf_crop_and_resize extrapolation.
type axisTable struct {
	nt      int
	idx     []int
	w       []float32
	outside []bool
	ident   bool
}

type resizeGeom struct {
	out    []int
	tables []axisTable
	extrap float32
}

func resizeGeometry(c *nodeCtx) (*resizeGeom, error) {
	x := c.in[0]
	r := len(x.shape)
	if x.dt != dtFloat {
		return nil, unsupportedf("%s on %v", c.n.Op, x.dt)
	}
	if r == 0 {
		return nil, rankErr(c, 0, "rank ≥ 1")
	}
	mode := c.n.AttrString("mode", "nearest")
	ctm := c.n.AttrString("coordinate_transformation_mode", "half_pixel")
	nearest := c.n.AttrString("nearest_mode", "round_prefer_floor")
	legacy := c.n.Op == "Upsample" || c.opset < 11
	if legacy {
		ctm, nearest = "asymmetric", "simple"
		if mode == "bilinear" {
			mode = "linear"
		}
	}
	if c.n.AttrInt("antialias", 0) != 0 {
		return nil, unsupportedf("Resize antialias=1")
	}
	cubicA := float64(c.n.AttrFloat("cubic_coeff_a", -0.75))
	exclude := c.n.AttrInt("exclude_outside", 0) != 0
	g := &resizeGeom{extrap: c.n.AttrFloat("extrapolation_value", 0)}

	var scalesIn, sizesIn, roiIn *tval
	switch {
	case c.n.Op == "Upsample" && c.opset < 9:
		sc := c.n.AttrFloats("scales")
		if sc == nil {
			return nil, shapeErrf("Upsample needs a scales attribute")
		}
		scalesIn = constF([]int{len(sc)}, sc)
	case legacy:
		v, err := constInput(c, 1, "scales")
		if err != nil {
			return nil, err
		}
		scalesIn = v
	default:
		var err error
		if roiIn, err = constInput(c, 1, "roi"); err != nil {
			return nil, err
		}
		if scalesIn, err = constInput(c, 2, "scales"); err != nil {
			return nil, err
		}
		if sizesIn, err = constInput(c, 3, "sizes"); err != nil {
			return nil, err
		}
	}
	if scalesIn != nil && scalesIn.numel() == 0 {
		scalesIn = nil
	}
	if sizesIn != nil && sizesIn.numel() == 0 {
		sizesIn = nil
	}
	if (scalesIn == nil) == (sizesIn == nil) {
		return nil, shapeErrf("exactly one of scales and sizes must be given")
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if a := attrIntsOr(c.n, "axes", nil); a != nil {
		axes = axes[:0]
		for _, v := range a {
			ax, err := normAxis(v, r)
			if err != nil {
				return nil, err
			}
			axes = append(axes, ax)
		}
	}
	scale := make([]float64, r)
	g.out = cloneInts(x.shape)
	for i := range scale {
		scale[i] = 1
	}
	roiStart, roiEnd := make([]float64, r), make([]float64, r)
	for i := range roiEnd {
		roiEnd[i] = 1
	}
	if roiIn != nil && roiIn.numel() > 0 && ctm == "tf_crop_and_resize" {
		rv := roiIn.asFloats()
		if len(rv) != 2*len(axes) {
			return nil, shapeErrf("roi %q has %d values, want %d", c.n.Inputs[1], len(rv), 2*len(axes))
		}
		for k, ax := range axes {
			roiStart[ax], roiEnd[ax] = float64(rv[k]), float64(rv[len(axes)+k])
		}
	}
	if scalesIn != nil {
		sv := scalesIn.asFloats()
		if len(sv) != len(axes) {
			return nil, shapeErrf("scales %v do not fit X %q of rank %d (axes %v)", sv, c.n.Inputs[0], r, axes)
		}
		for k, ax := range axes {
			s := float64(sv[k])
			if !(s > 0) || s > 1<<20 {
				return nil, shapeErrf("scale %v must be positive", sv[k])
			}
			scale[ax] = s
			o := math.Floor(float64(x.shape[ax]) * s)
			if o > MaxTensorElements {
				return nil, shapeErrf("scale %v makes axis %d too large", s, ax)
			}
			g.out[ax] = int(o)
		}
	} else {
		sz := sizesIn.asInt64s()
		if len(sz) != len(axes) {
			return nil, shapeErrf("sizes %v do not fit X %q of rank %d (axes %v)", sz, c.n.Inputs[0], r, axes)
		}
		policy := c.n.AttrString("keep_aspect_ratio_policy", "stretch")
		for k, ax := range axes {
			if sz[k] < 0 || sz[k] > MaxTensorElements {
				return nil, shapeErrf("bad size %d", sz[k])
			}
			if x.shape[ax] == 0 {
				return nil, shapeErrf("cannot resize an empty axis")
			}
			scale[ax] = float64(sz[k]) / float64(x.shape[ax])
			g.out[ax] = int(sz[k])
		}
		if policy != "stretch" {
			s := scale[axes[0]]
			for _, ax := range axes {
				if (policy == "not_larger" && scale[ax] < s) || (policy == "not_smaller" && scale[ax] > s) {
					s = scale[ax]
				}
			}
			for _, ax := range axes {
				scale[ax] = s
				g.out[ax] = int(math.Floor(s*float64(x.shape[ax]) + 0.5))
			}
		}
	}
	if _, err := checkedNumel(g.out, MaxTensorElements); err != nil {
		return nil, err
	}
	g.tables = make([]axisTable, r)
	for ax := 0; ax < r; ax++ {
		t, err := makeAxisTable(mode, ctm, nearest, x.shape[ax], g.out[ax], scale[ax], roiStart[ax], roiEnd[ax], cubicA, exclude)
		if err != nil {
			return nil, err
		}
		g.tables[ax] = t
	}
	return g, nil
}

func makeAxisTable(mode, ctm, nearest string, in, out int, scale, rs, re, cubicA float64, exclude bool) (axisTable, error) {
	var t axisTable
	switch mode {
	case "nearest":
		t.nt = 1
	case "linear":
		t.nt = 2
	case "cubic":
		t.nt = 4
	default:
		return t, unsupportedf("Resize mode %q", mode)
	}
	t.idx = make([]int, out*t.nt)
	t.w = make([]float32, out*t.nt)
	t.outside = make([]bool, out)
	t.ident = in == out
	// As the ONNX reference does, the coordinate transforms use the
	// un-floored output length in·scale.
	fin, fout := float64(in), scale*float64(in)
	for o := 0; o < out; o++ {
		xo := float64(o)
		var xi float64
		switch ctm {
		case "half_pixel":
			xi = (xo+0.5)/scale - 0.5
		case "half_pixel_symmetric":
			adj := float64(out) / fout
			center := fin / 2
			off := center * (1 - adj)
			xi = off + (xo+0.5)/scale - 0.5
		case "pytorch_half_pixel":
			if fout != 1 {
				xi = (xo+0.5)/scale - 0.5
			} else {
				xi = -0.5
			}
		case "align_corners":
			if fout != 1 {
				xi = xo * (fin - 1) / (fout - 1)
			} else {
				xi = 0
			}
		case "asymmetric":
			xi = xo / scale
		case "tf_half_pixel_for_nn":
			xi = (xo + 0.5) / scale
		case "tf_crop_and_resize":
			if fout != 1 {
				xi = rs*(fin-1) + xo*(re-rs)*(fin-1)/(fout-1)
			} else {
				xi = 0.5 * (rs + re) * (fin - 1)
			}
			if xi < 0 || xi > fin-1 {
				t.outside[o] = true
				t.ident = false
			}
		default:
			return t, unsupportedf("coordinate_transformation_mode %q", ctm)
		}
		base := o * t.nt
		switch t.nt {
		case 1:
			var k float64
			switch nearest {
			case "round_prefer_floor":
				if xi == math.Floor(xi)+0.5 {
					k = math.Floor(xi)
				} else {
					k = math.Round(xi)
				}
			case "round_prefer_ceil":
				k = math.Floor(xi + 0.5)
			case "floor":
				k = math.Floor(xi)
			case "ceil":
				k = math.Ceil(xi)
			case "simple":
				if scale < 1 {
					k = math.Ceil(xi)
				} else {
					k = math.Floor(xi)
				}
			default:
				return t, unsupportedf("nearest_mode %q", nearest)
			}
			i := int(min(max(k, 0), fin-1))
			t.idx[base], t.w[base] = i, 1
			if i != o {
				t.ident = false
			}
		case 2:
			xc := min(max(xi, 0), fin-1)
			i0 := int(math.Floor(xc))
			i1 := min(i0+1, in-1)
			f := xc - float64(i0)
			t.idx[base], t.idx[base+1] = i0, i1
			t.w[base], t.w[base+1] = float32(1-f), float32(f)
			if i0 != o || f != 0 {
				t.ident = false
			}
		case 4:
			i0 := math.Floor(xi)
			f := xi - i0
			ws := cubicCoeffs(f, cubicA)
			var sum float64
			for k := 0; k < 4; k++ {
				src := int(i0) - 1 + k
				if exclude && (src < 0 || src >= in) {
					ws[k] = 0
				}
				sum += ws[k]
				t.idx[base+k] = min(max(src, 0), in-1)
			}
			for k := 0; k < 4; k++ {
				w := ws[k]
				if exclude && sum != 0 {
					w /= sum
				}
				t.w[base+k] = float32(w)
			}
			if f != 0 || int(i0) != o {
				t.ident = false
			}
		}
	}
	return t, nil
}

func cubicCoeffs(r, a float64) [4]float64 {
	x := [4]float64{1 + r, r, 1 - r, 2 - r}
	var w [4]float64
	for i, v := range x {
		switch {
		case v <= 1:
			w[i] = ((a+2)*v-(a+3))*v*v + 1
		case v < 2:
			w[i] = ((a*v-5*a)*v+8*a)*v - 4*a
		}
	}
	return w
}

func inferResize(c *nodeCtx) error {
	g, err := resizeGeometry(c)
	if err != nil {
		return err
	}
	c.setOut(0, dtFloat, g.out)
	return nil
}

type resizePass struct {
	t            *axisTable
	outer, inner int
	in, out      int // length along the axis
	size         int // elements written
}

type resizeLayer struct {
	g       *resizeGeom
	passes  []resizePass
	half    int // scratch is two buffers of this size
	anyOut  bool
	outDims []int
}

func buildResize(c *nodeCtx) (layer, error) {
	g, err := resizeGeometry(c)
	if err != nil {
		return nil, err
	}
	l := &resizeLayer{g: g, outDims: g.out}
	shape := cloneInts(c.in[0].shape)
	for ax := range shape {
		t := &g.tables[ax]
		for _, o := range t.outside {
			if o {
				l.anyOut = true
			}
		}
		if t.ident {
			continue
		}
		p := resizePass{t: t, outer: prod(shape[:ax]), inner: prod(shape[ax+1:]), in: shape[ax], out: g.out[ax]}
		shape[ax] = g.out[ax]
		p.size = prod(shape)
		if _, err := checkedNumel(shape, MaxTensorElements); err != nil {
			return nil, err
		}
		l.passes = append(l.passes, p)
	}
	for i, p := range l.passes {
		if i < len(l.passes)-1 && p.size > l.half {
			l.half = p.size
		}
	}
	return l, nil
}

func (l *resizeLayer) scratchLen() int { return 2 * l.half }

func (l *resizeLayer) forward(in, out [][]float32, scratch []float32) {
	src, y := in[0], out[0]
	if len(l.passes) == 0 {
		copy(y, src)
	}
	for i := range l.passes {
		p := &l.passes[i]
		var dst []float32
		if i == len(l.passes)-1 {
			dst = y
		} else if i%2 == 0 {
			dst = scratch[:p.size]
		} else {
			dst = scratch[l.half : l.half+p.size]
		}
		p.run(src, dst)
		src = dst
	}
	if l.anyOut {
		l.extrapolate(y)
	}
}

func (p *resizePass) run(src, dst []float32) {
	t := p.t
	nt := t.nt
	for o := 0; o < p.outer; o++ {
		s := src[o*p.in*p.inner : (o+1)*p.in*p.inner]
		d := dst[o*p.out*p.inner : (o+1)*p.out*p.inner]
		if p.inner == 1 {
			for j := 0; j < p.out; j++ {
				var acc float32
				for k := 0; k < nt; k++ {
					acc += t.w[j*nt+k] * s[t.idx[j*nt+k]]
				}
				d[j] = acc
			}
			continue
		}
		for j := 0; j < p.out; j++ {
			dr := d[j*p.inner : (j+1)*p.inner]
			for k := 0; k < nt; k++ {
				w := t.w[j*nt+k]
				sr := s[t.idx[j*nt+k]*p.inner : (t.idx[j*nt+k]+1)*p.inner]
				if k == 0 {
					if w == 1 {
						copy(dr, sr)
						continue
					}
					for i := range dr {
						dr[i] = w * sr[i]
					}
					continue
				}
				if w == 0 {
					continue
				}
				for i := range dr {
					dr[i] += w * sr[i]
				}
			}
		}
	}
}

// extrapolate writes extrapolation_value wherever any axis maps outside
// the input (tf_crop_and_resize).
func (l *resizeLayer) extrapolate(y []float32) {
	r := len(l.outDims)
	var idx [maxRank]int
	for i := range y {
		for d := 0; d < r; d++ {
			if l.g.tables[d].outside[idx[d]] {
				y[i] = l.g.extrap
				break
			}
		}
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < l.outDims[d] {
				break
			}
			idx[d] = 0
		}
	}
}
