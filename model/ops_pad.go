package model

// This file: Pad (constant, reflect, edge, wrap; pads as attribute before
// opset 11, as inputs from 11, axes from 18; negative pads crop).

func init() {
	register("Pad", &opDef{minIn: 1, infer: inferPad, build: buildPad})
}

type padGeom struct {
	mode   string
	value  float32
	begin  []int
	in     []int
	out    []int
	offset []int // per axis, how much of the input is cropped at the start
}

func padGeometry(c *nodeCtx) (*padGeom, error) {
	x := c.in[0]
	r := len(x.shape)
	p := &padGeom{mode: c.n.AttrString("mode", "constant"), in: x.shape}
	var pads []int64
	if c.opset < 11 || c.input(1) == nil {
		pads = c.n.AttrInts("pads")
		if pads == nil {
			pads = c.n.AttrInts("paddings")
		}
		p.value = c.n.AttrFloat("value", 0)
	} else {
		var err error
		pads, err = constIntsInput(c, 1, "Pad pads")
		if err != nil {
			return nil, err
		}
		if v := c.input(2); v != nil {
			if !v.konst {
				return nil, unsupportedf("Pad constant_value %q computed at run time", c.n.Inputs[2])
			}
			f, ok := v.scalarFloat()
			if !ok && v.numel() != 0 {
				return nil, shapeErrf("constant_value must be a scalar")
			}
			p.value = f
		}
		if c.input(3) != nil {
			axes, err := constIntsInput(c, 3, "Pad axes")
			if err != nil {
				return nil, err
			}
			if len(pads) != 2*len(axes) {
				return nil, shapeErrf("pads %v do not fit axes %v", pads, axes)
			}
			full := make([]int64, 2*r)
			for k, a := range axes {
				ax, err := normAxis(int(a), r)
				if err != nil {
					return nil, err
				}
				full[ax], full[r+ax] = pads[k], pads[len(axes)+k]
			}
			pads = full
		}
	}
	if len(pads) != 2*r {
		return nil, shapeErrf("pads %v do not fit X %q of rank %d", pads, c.n.Inputs[0], r)
	}
	switch p.mode {
	case "constant", "reflect", "edge", "wrap":
	default:
		return nil, unsupportedf("Pad mode %q", p.mode)
	}
	p.begin = make([]int, r)
	p.out = make([]int, r)
	p.offset = make([]int, r)
	for i := 0; i < r; i++ {
		b, e := pads[i], pads[r+i]
		if b > MaxTensorElements || e > MaxTensorElements || b < -MaxTensorElements || e < -MaxTensorElements {
			return nil, shapeErrf("pads %v out of range", pads)
		}
		o := int64(x.shape[i]) + b + e
		if o < 0 {
			return nil, shapeErrf("pads %v crop axis %d of %v below zero", pads, i, x.shape)
		}
		p.out[i] = int(o)
		if b < 0 {
			p.offset[i] = int(-b)
			p.begin[i] = 0
		} else {
			p.begin[i] = int(b)
		}
		if p.mode == "reflect" && x.shape[i] < 2 && (b > 0 || e > 0) {
			if x.shape[i] == 1 {
				continue // reflect of a single element repeats it
			}
			return nil, shapeErrf("reflect padding of an empty axis %d", i)
		}
		if p.mode != "constant" && x.shape[i] == 0 && (b > 0 || e > 0) {
			return nil, shapeErrf("%s padding of an empty axis %d", p.mode, i)
		}
	}
	if _, err := checkedNumel(p.out, MaxTensorElements); err != nil {
		return nil, err
	}
	return p, nil
}

func inferPad(c *nodeCtx) error {
	p, err := padGeometry(c)
	if err != nil {
		return err
	}
	if c.in[0].dt != dtFloat {
		return unsupportedf("Pad on %v", c.in[0].dt)
	}
	c.setOut(0, dtFloat, p.out)
	return nil
}

// padLayer maps each output coordinate to a source coordinate per axis
// (precomputed tables; -1 = fill with value).
type padLayer struct {
	value float32
	rank  int
	out   []int
	src   [][]int // per axis: source index for each output index, or -1
	inSt  []int
	n     int
}

func buildPad(c *nodeCtx) (layer, error) {
	p, err := padGeometry(c)
	if err != nil {
		return nil, err
	}
	r := len(p.in)
	l := &padLayer{value: p.value, rank: r, out: p.out, src: make([][]int, r), inSt: contiguousStrides(p.in), n: prod(p.out)}
	for ax := 0; ax < r; ax++ {
		n := p.in[ax]
		t := make([]int, p.out[ax])
		for o := range t {
			// position relative to the (uncropped) input start
			i := o - p.begin[ax] + p.offset[ax]
			switch {
			case i >= 0 && i < n:
				t[o] = i
			case p.mode == "constant":
				t[o] = -1
			case p.mode == "edge":
				t[o] = min(max(i, 0), n-1)
			case p.mode == "wrap":
				t[o] = ((i % n) + n) % n
			case p.mode == "reflect":
				if n == 1 {
					t[o] = 0
					break
				}
				period := 2 * (n - 1)
				k := ((i % period) + period) % period
				if k >= n {
					k = period - k
				}
				t[o] = k
			}
		}
		l.src[ax] = t
	}
	return l, nil
}

func (l *padLayer) forward(in, out [][]float32, _ []float32) {
	x, y := in[0], out[0]
	if l.n == 0 {
		return
	}
	r := l.rank
	if r == 0 {
		y[0] = x[0]
		return
	}
	inner := l.out[r-1]
	last := l.src[r-1]
	outer := l.n / inner
	var idx [maxRank]int
	for o := 0; o < outer; o++ {
		yr := y[o*inner : (o+1)*inner]
		base, fill := 0, false
		for d := 0; d < r-1; d++ {
			s := l.src[d][idx[d]]
			if s < 0 {
				fill = true
				break
			}
			base += s * l.inSt[d]
		}
		if fill {
			for i := range yr {
				yr[i] = l.value
			}
		} else {
			for i, s := range last {
				if s < 0 {
					yr[i] = l.value
				} else {
					yr[i] = x[base+s]
				}
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < l.out[d] {
				break
			}
			idx[d] = 0
		}
	}
}
