package model

import (
	"fmt"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// This file: Conv and ConvTranspose (1-D and 2-D), on kern.Conv and
// kern.Sgemm + Col2im.

func init() {
	register("Conv", &opDef{minIn: 2, infer: inferConv, build: buildConv})
	register("ConvTranspose", &opDef{minIn: 2, infer: inferConvTranspose, build: buildConvTranspose})
}

// window is the geometry of a sliding window along the spatial axes.
type window struct {
	in, k, s, d, pb, pe, out []int
}

// spatialAttrs reads kernel/strides/dilations/pads for nsp spatial axes.
func spatialAttrs(n *Node, nsp int, kernel []int) (w window, err error) {
	w.k = kernel
	w.s = attrIntsOr(n, "strides", filled(nsp, 1))
	w.d = attrIntsOr(n, "dilations", filled(nsp, 1))
	pads := attrIntsOr(n, "pads", filled(2*nsp, 0))
	if len(w.k) != nsp || len(w.s) != nsp || len(w.d) != nsp || len(pads) != 2*nsp {
		return w, shapeErrf("kernel_shape %v, strides %v, dilations %v, pads %v do not fit %d spatial axes", w.k, w.s, w.d, pads, nsp)
	}
	w.pb, w.pe = pads[:nsp], pads[nsp:]
	for i := 0; i < nsp; i++ {
		if w.k[i] < 1 || w.s[i] < 1 || w.d[i] < 1 || w.pb[i] < 0 || w.pe[i] < 0 ||
			w.k[i] > 1<<20 || w.s[i] > 1<<20 || w.d[i] > 1<<20 || w.pb[i] > 1<<20 || w.pe[i] > 1<<20 {
			return w, shapeErrf("bad window: kernel_shape %v, strides %v, dilations %v, pads %v", w.k, w.s, w.d, pads)
		}
	}
	return w, nil
}

// outputSize fills w.out (and pads for auto_pad) for inputs of size in.
func (w *window) outputSize(n *Node, in []int, ceil bool) error {
	w.in = in
	nsp := len(in)
	w.out = make([]int, nsp)
	ap := n.AttrString("auto_pad", "NOTSET")
	w.pb, w.pe = cloneInts(w.pb), cloneInts(w.pe)
	for i := 0; i < nsp; i++ {
		keff := (w.k[i]-1)*w.d[i] + 1
		switch ap {
		case "NOTSET", "":
			span := in[i] + w.pb[i] + w.pe[i] - keff
			if span < 0 {
				return shapeErrf("window %d (dilated) exceeds padded input %d on spatial axis %d", keff, in[i]+w.pb[i]+w.pe[i], i)
			}
			o := span/w.s[i] + 1
			if ceil {
				o = (span+w.s[i]-1)/w.s[i] + 1
				// The last window must start inside the input or the left padding.
				if (o-1)*w.s[i] >= in[i]+w.pb[i] {
					o--
				}
			}
			w.out[i] = o
		case "VALID":
			if in[i] < keff {
				return shapeErrf("window %d exceeds input %d on spatial axis %d (auto_pad VALID)", keff, in[i], i)
			}
			w.out[i] = (in[i]-keff)/w.s[i] + 1
			w.pb[i], w.pe[i] = 0, 0
		case "SAME_UPPER", "SAME_LOWER":
			o := (in[i] + w.s[i] - 1) / w.s[i]
			total := (o-1)*w.s[i] + keff - in[i]
			if total < 0 {
				total = 0
			}
			if ap == "SAME_UPPER" {
				w.pb[i] = total / 2
			} else {
				w.pb[i] = total - total/2
			}
			w.pe[i] = total - w.pb[i]
			w.out[i] = o
		default:
			return unsupportedf("auto_pad %q", ap)
		}
		if w.out[i] < 1 {
			return shapeErrf("empty output on spatial axis %d", i)
		}
	}
	return nil
}

func inferConv(c *nodeCtx) error {
	x, wt := c.in[0], c.in[1]
	if x.dt != dtFloat || wt.dt != dtFloat {
		return unsupportedf("Conv on %v", x.dt)
	}
	if len(x.shape) != 3 && len(x.shape) != 4 {
		if len(x.shape) == 5 {
			return unsupportedf("3-D convolution (X %q has shape %v)", c.n.Inputs[0], x.shape)
		}
		return rankErr(c, 0, "3-D (N,C,W) or 4-D (N,C,H,W)")
	}
	if len(wt.shape) != len(x.shape) {
		return shapeErrf("weight %q has shape %v, want %d-D like X %v", c.n.Inputs[1], wt.shape, len(x.shape), x.shape)
	}
	group := int(c.n.AttrInt("group", 1))
	ch := x.shape[1]
	m := wt.shape[0]
	if group < 1 || ch%group != 0 || m%group != 0 || wt.shape[1] != ch/group {
		return shapeErrf("weight %q has shape %v, want [M %d ...] with M divisible by group=%d and C/group=%d (X %q has C=%d)",
			c.n.Inputs[1], wt.shape, ch/max(group, 1), group, ch/max(group, 1), c.n.Inputs[0], ch)
	}
	if b := c.input(2); b != nil && (len(b.shape) != 1 || b.shape[0] != m) {
		return shapeErrf("bias %q has shape %v, want [%d]", c.n.Inputs[2], b.shape, m)
	}
	nsp := len(x.shape) - 2
	kernel := attrIntsOr(c.n, "kernel_shape", wt.shape[2:])
	if !equalInts(kernel, wt.shape[2:]) {
		return shapeErrf("kernel_shape %v does not match weight %q shape %v", kernel, c.n.Inputs[1], wt.shape)
	}
	w, err := spatialAttrs(c.n, nsp, kernel)
	if err != nil {
		return err
	}
	if err := w.outputSize(c.n, x.shape[2:], false); err != nil {
		return err
	}
	c.setOut(0, dtFloat, append([]int{x.shape[0], m}, w.out...))
	return nil
}

// to2D expresses a 1-D window as a 2-D one with height 1.
func (w window) to2D() window {
	if len(w.k) == 2 {
		return w
	}
	one := func(v []int, def int) []int { return []int{def, v[0]} }
	return window{in: one(w.in, 1), k: one(w.k, 1), s: one(w.s, 1), d: one(w.d, 1),
		pb: one(w.pb, 0), pe: one(w.pe, 0), out: one(w.out, 1)}
}

type convLayer struct {
	conv    *kern.Conv
	post    kern.Activation // fused activation run after the kernel (see affineEpilogue)
	chain   *chainOp        // run on each image's output, when fused
	batch   int
	inLen   int
	outLen  int
	threads int
	pool    *kern.Pool
}

func buildConv(c *nodeCtx) (layer, error) {
	x, wt := c.in[0], c.in[1]
	wv, err := constInput(c, 1, "Conv weight")
	if err != nil {
		return nil, err
	}
	var bias []float32
	if c.input(2) != nil {
		bv, err := constInput(c, 2, "Conv bias")
		if err != nil {
			return nil, err
		}
		bias = bv.f
	}
	nsp := len(x.shape) - 2
	w, err := spatialAttrs(c.n, nsp, wt.shape[2:])
	if err != nil {
		return nil, err
	}
	if err := w.outputSize(c.n, x.shape[2:], false); err != nil {
		return nil, err
	}
	w = w.to2D()
	group := int(c.n.AttrInt("group", 1))
	s := kern.ConvShape{
		InC: x.shape[1], InH: w.in[0], InW: w.in[1],
		OutC: wt.shape[0], OutH: w.out[0], OutW: w.out[1],
		KH: w.k[0], KW: w.k[1], StrideH: w.s[0], StrideW: w.s[1],
		PadT: w.pb[0], PadL: w.pb[1], DilH: w.d[0], DilW: w.d[1], Group: group,
	}
	act, post := c.act, kern.Activation{}
	if affineEpilogue(act) {
		act, post = kern.Activation{}, act
	}
	kc, err := kern.NewConv(s, wv.f, bias, act)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShape, err)
	}
	return &convLayer{conv: kc, post: post, chain: c.chain, batch: x.shape[0], inLen: s.InC * s.InH * s.InW, outLen: s.OutC * s.OutH * s.OutW, threads: c.threads, pool: c.pool}, nil
}

// affineEpilogue reports whether a fused activation has an α·x+β step
// (HardSigmoid, HardSwish). Some of kern's in-register epilogues — the
// 12-row SGEMM tiles and the AVX-512/AVX2 depthwise 3×3 and 5×5 kernels —
// compute it as one FMA, rounding once where the standalone node rounds
// twice, so a cut between a Conv and such an activation would not be
// bit-identical to the fused run (the PP-OCRv4 recogniser's SE blocks hit
// it). The Conv layer applies those two after the kernel, with the
// standalone node's code; clamps (Relu, Clip) stay in the kernel.
func affineEpilogue(a kern.Activation) bool {
	return a.Kind == kern.ActHardSigmoid || a.Kind == kern.ActHardSwish
}

func (l *convLayer) scratchLen() int { return l.conv.ScratchLen(l.threads) }

func (l *convLayer) forward(in, out [][]float32, scratch []float32) {
	x, y := in[0], out[0]
	for b := 0; b < l.batch; b++ {
		yb := y[b*l.outLen : (b+1)*l.outLen]
		l.conv.Forward(x[b*l.inLen:(b+1)*l.inLen], yb, scratch, l.pool)
		l.post.Apply(yb)
		if l.chain != nil {
			l.chain.apply(yb, yb)
		}
	}
}

// ---- ConvTranspose ----

// convTGeom computes ConvTranspose's output size and pads.
func convTGeom(c *nodeCtx) (w window, group, m int, err error) {
	x, wt := c.in[0], c.in[1]
	if len(x.shape) == 5 {
		return w, 0, 0, unsupportedf("3-D transposed convolution (X %q has shape %v)", c.n.Inputs[0], x.shape)
	}
	if len(x.shape) != 3 && len(x.shape) != 4 {
		return w, 0, 0, rankErr(c, 0, "3-D (N,C,W) or 4-D (N,C,H,W)")
	}
	if len(wt.shape) != len(x.shape) {
		return w, 0, 0, shapeErrf("weight %q has shape %v, want %d-D", c.n.Inputs[1], wt.shape, len(x.shape))
	}
	group = int(c.n.AttrInt("group", 1))
	ch := x.shape[1]
	if group < 1 || wt.shape[0] != ch || ch%group != 0 {
		return w, 0, 0, shapeErrf("weight %q has shape %v, want [C=%d, M/group, ...] with group=%d", c.n.Inputs[1], wt.shape, ch, group)
	}
	m = wt.shape[1] * group
	if b := c.input(2); b != nil && (len(b.shape) != 1 || b.shape[0] != m) {
		return w, 0, 0, shapeErrf("bias %q has shape %v, want [%d]", c.n.Inputs[2], b.shape, m)
	}
	nsp := len(x.shape) - 2
	kernel := attrIntsOr(c.n, "kernel_shape", wt.shape[2:])
	if !equalInts(kernel, wt.shape[2:]) {
		return w, 0, 0, shapeErrf("kernel_shape %v does not match weight %q shape %v", kernel, c.n.Inputs[1], wt.shape)
	}
	w, err = spatialAttrs(c.n, nsp, kernel)
	if err != nil {
		return w, 0, 0, err
	}
	opad := attrIntsOr(c.n, "output_padding", filled(nsp, 0))
	oshape := attrIntsOr(c.n, "output_shape", nil)
	if len(opad) != nsp {
		return w, 0, 0, shapeErrf("output_padding %v does not fit %d spatial axes", opad, nsp)
	}
	if oshape != nil && len(oshape) == nsp+2 {
		oshape = oshape[2:]
	}
	if oshape != nil && len(oshape) != nsp {
		return w, 0, 0, shapeErrf("output_shape %v does not fit %d spatial axes", oshape, nsp)
	}
	ap := c.n.AttrString("auto_pad", "NOTSET")
	w.in = x.shape[2:]
	w.out = make([]int, nsp)
	w.pb, w.pe = cloneInts(w.pb), cloneInts(w.pe)
	for i := 0; i < nsp; i++ {
		keff := (w.k[i]-1)*w.d[i] + 1
		full := w.s[i]*(w.in[i]-1) + opad[i] + keff
		if opad[i] < 0 || opad[i] >= max(w.s[i], w.d[i]) {
			return w, 0, 0, shapeErrf("output_padding %v must be smaller than stride or dilation", opad)
		}
		switch {
		case oshape != nil:
			// A negative total (output_shape beyond the full output)
			// leaves the extra positions at the bias, as the ONNX
			// reference does (floor division).
			total := full - oshape[i]
			half := floorDiv(total, 2)
			if ap == "SAME_UPPER" {
				w.pb[i], w.pe[i] = half, total-half
			} else {
				w.pb[i], w.pe[i] = total-half, half
			}
			if w.pb[i] < 0 {
				return w, 0, 0, unsupportedf("output_shape %v needs negative leading padding on axis %d", oshape, i)
			}
			w.out[i] = oshape[i]
		case ap == "SAME_UPPER" || ap == "SAME_LOWER":
			o := w.in[i] * w.s[i]
			total := full - o
			if total < 0 {
				total = 0
			}
			if ap == "SAME_UPPER" {
				w.pb[i], w.pe[i] = total/2, total-total/2
			} else {
				w.pb[i], w.pe[i] = total-total/2, total/2
			}
			w.out[i] = o
		case ap == "VALID":
			w.pb[i], w.pe[i] = 0, 0
			w.out[i] = full
		case ap == "NOTSET" || ap == "":
			w.out[i] = full - w.pb[i] - w.pe[i]
		default:
			return w, 0, 0, unsupportedf("auto_pad %q", ap)
		}
		if w.out[i] < 1 {
			return w, 0, 0, shapeErrf("empty output on spatial axis %d", i)
		}
	}
	return w, group, m, nil
}

func inferConvTranspose(c *nodeCtx) error {
	w, _, m, err := convTGeom(c)
	if err != nil {
		return err
	}
	c.setOut(0, dtFloat, append([]int{c.in[0].shape[0], m}, w.out...))
	return nil
}

type convTLayer struct {
	s       kern.ConvShape // the forward conv from y-space to x-space
	w       []float32      // C × (M/group·KH·KW)
	bias    []float32
	act     kern.Activation
	batch   int
	inLen   int // C·H·W of x
	outLen  int
	colRows int
}

func buildConvTranspose(c *nodeCtx) (layer, error) {
	w, group, m, err := convTGeom(c)
	if err != nil {
		return nil, err
	}
	wv, err := constInput(c, 1, "ConvTranspose weight")
	if err != nil {
		return nil, err
	}
	var bias []float32
	if c.input(2) != nil {
		bv, err := constInput(c, 2, "ConvTranspose bias")
		if err != nil {
			return nil, err
		}
		bias = bv.f
	}
	w = w.to2D()
	x := c.in[0]
	s := kern.ConvShape{
		InC: m, InH: w.out[0], InW: w.out[1],
		OutC: x.shape[1], OutH: w.in[0], OutW: w.in[1],
		KH: w.k[0], KW: w.k[1], StrideH: w.s[0], StrideW: w.s[1],
		PadT: w.pb[0], PadL: w.pb[1], DilH: w.d[0], DilW: w.d[1], Group: group,
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShape, err)
	}
	return &convTLayer{s: s, w: wv.f, bias: bias, act: c.act, batch: x.shape[0],
		inLen: s.OutC * s.OutH * s.OutW, outLen: s.InC * s.InH * s.InW,
		colRows: (m / group) * s.KH * s.KW}, nil
}

func (l *convTLayer) scratchLen() int { return l.colRows * l.s.OutH * l.s.OutW }

func (l *convTLayer) forward(in, out [][]float32, scratch []float32) {
	s := l.s
	hw := s.OutH * s.OutW
	cg := s.OutC / s.Group // input channels per group
	col := scratch[:l.colRows*hw]
	ohw := s.InH * s.InW
	for b := 0; b < l.batch; b++ {
		x := in[0][b*l.inLen : (b+1)*l.inLen]
		y := out[0][b*l.outLen : (b+1)*l.outLen]
		clear(y)
		for g := 0; g < s.Group; g++ {
			// col = W_gᵀ · x_g: (mg·KH·KW) × hw.
			kern.Sgemm(true, false, l.colRows, hw, cg, l.w[g*cg*l.colRows:], l.colRows, x[g*cg*hw:], hw, col, hw, false)
			kern.Col2im(s, g, col, y)
		}
		for o := 0; o < s.InC; o++ {
			yr := y[o*ohw : (o+1)*ohw]
			if l.bias != nil {
				bv := l.bias[o]
				for i := range yr {
					yr[i] += bv
				}
			}
		}
		l.act.Apply(y)
	}
}

// floorDiv is integer division rounding toward negative infinity.
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
