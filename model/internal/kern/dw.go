package kern

// dwparams is what a depthwise tap kernel reads: for each of rows rows,
// dst[i] = ep(bias + Σ_t w[t]·src[offs[t]+i]) for i in [0, n), then src
// advances by srcPitch and dst by dstPitch elements. Kernels may read (never
// write) up to dwSlack-1 elements past the last tap of a row. The assembly
// kernels read it by field offset: keep the layout in step with the .s
// files.
type dwparams struct {
	dst      *float32 // 0
	src      *float32 // 8
	offs     *int     // 16: ntaps offsets into src
	w        *float32 // 24: ntaps weights
	n        int      // 32
	ntaps    int      // 40
	bias     float32  // 48
	act      int32    // 52: 1 when ep is not the identity
	rows     int      // 56
	srcPitch int      // 64
	dstPitch int      // 72
	ep       epilogue // 80
}

// dwKind names the tap layouts with specialised kernels.
type dwKind uint8

const (
	dwGeneric dwKind = iota
	dw3x3            // any stride and dilation
	dw5x5s1          // column stride 1, column dilation 1
	dw5x5s2          // column stride 2, column dilation 1
)

// dwSlack is how far past a row's last tap a depthwise kernel may read.
const dwSlack = 64

// dwGo is the pure-Go depthwise tap kernel.
func dwGo(p *dwparams) {
	n := p.n
	offs := unsafeSlice(p.offs, p.ntaps)
	w := unsafeSlice(p.w, p.ntaps)
	maxOff := 0
	for _, o := range offs {
		maxOff = max(maxOff, o)
	}
	if p.rows <= 0 {
		return
	}
	src := unsafeSlice(p.src, (p.rows-1)*p.srcPitch+maxOff+n)
	dstAll := unsafeSlice(p.dst, (p.rows-1)*p.dstPitch+n)
	for r := 0; r < p.rows; r++ {
		dst := dstAll[r*p.dstPitch : r*p.dstPitch+n]
		row := src[r*p.srcPitch:]
		for i := range dst {
			dst[i] = p.bias
		}
		for t, o := range offs {
			axpyGo(w[t], row[o:o+n], dst)
		}
		for i, v := range dst {
			dst[i] = p.ep.apply(v)
		}
	}
}

// dwPlan is the precomputed geometry of a depthwise convolution.
//
// Each input channel is copied into a zero-padded plane split by stride
// phase: padded element (r, c) lands at ((r%sH·sW + c%sW)·hq + r/sH)·e + c/sW.
// Then output (oh, ow) is Σ_t w_t·plane[offs[t] + oh·e + ow] for every tap t,
// so one kernel call computes a whole output plane (with row pitch e ≥ OutW)
// from contiguous runs, whatever the stride and dilation.
type dwPlan struct {
	kind     dwKind
	hq, e    int   // rows per row phase, columns per column phase
	phn, pwn int   // padded rows and columns actually read
	offs     []int // per tap, KH·KW
	planeLen int   // plane scratch, ≥ every read
	iw1      int   // input columns [0, iw1) land inside the padded width
	// Per column phase q: the phase-row positions [colLo[q], colHi[q]) hold
	// input columns; the rest of the e positions are padding.
	colLo, colHi []int
}

func newDWPlan(s ConvShape) dwPlan {
	var d dwPlan
	d.phn = (s.OutH-1)*s.StrideH + (s.KH-1)*s.DilH + 1
	d.pwn = (s.OutW-1)*s.StrideW + (s.KW-1)*s.DilW + 1
	d.hq = (d.phn + s.StrideH - 1) / s.StrideH
	d.e = (d.pwn + s.StrideW - 1) / s.StrideW
	d.offs = make([]int, 0, s.KH*s.KW)
	maxOff := 0
	for kh := 0; kh < s.KH; kh++ {
		r := kh * s.DilH
		for kw := 0; kw < s.KW; kw++ {
			c := kw * s.DilW
			o := ((r%s.StrideH*s.StrideW+c%s.StrideW)*d.hq+r/s.StrideH)*d.e + c/s.StrideW
			d.offs = append(d.offs, o)
			maxOff = max(maxOff, o)
		}
	}
	d.planeLen = roundUp(max(s.StrideH*s.StrideW*d.hq*d.e, maxOff+(s.OutH-1)*d.e+s.OutW+dwSlack), 16)
	d.iw1 = max(0, min(s.InW, d.pwn-s.PadL))
	switch {
	case s.KH == 3 && s.KW == 3:
		d.kind = dw3x3
	case s.KH == 5 && s.KW == 5 && s.DilW == 1 && s.StrideW == 1:
		d.kind = dw5x5s1
	case s.KH == 5 && s.KW == 5 && s.DilW == 1 && s.StrideW == 2:
		d.kind = dw5x5s2
	}
	for q := 0; q < s.StrideW; q++ {
		lo, hi := validRange(q-s.PadL, s.StrideW, d.iw1, d.e)
		d.colLo = append(d.colLo, lo)
		d.colHi = append(d.colHi, hi)
	}
	return d
}

// scratchLen is the scratch one goroutine needs: the plane.
func (d *dwPlan) scratchLen() int { return d.planeLen }

// fill copies one input channel (InH×InW) into the phase-split padded plane,
// zeros in the padding. Past the sH·sW·hq·e plane elements the scratch is
// left as it was: only discarded lanes read it.
func (d *dwPlan) fill(kr *gemmKernel, s ConvShape, x, plane []float32) {
	sh, sw := s.StrideH, s.StrideW
	phaseStride := d.hq * d.e
	iw1 := d.iw1
	if sh == 1 && sw == 1 && kr.padPlane(plane, x, d.phn, d.e, s.PadT, s.PadL, s.InH, s.InW, iw1) {
		return
	}
	// Clearing the whole plane once and then writing only the data costs
	// less than clearing each row's padding (a few calls a row).
	clear(plane[:sh*sw*d.hq*d.e])
	if iw1 == 0 {
		return
	}
	qh, i := 0, 0 // r = i·sh + qh, kept without dividing
	for r := 0; r < d.phn; r++ {
		rowBase := (qh*sw*d.hq + i) * d.e
		if qh++; qh == sh {
			qh, i = 0, i+1
		}
		ih := r - s.PadT
		if ih < 0 || ih >= s.InH {
			continue
		}
		src := x[ih*s.InW : ih*s.InW+iw1]
		switch sw {
		case 1:
			copy(plane[rowBase+d.colLo[0]:rowBase+d.colHi[0]], src)
		case 2:
			// Input column iw lands in phase (iw+PadL)%2 at (iw+PadL)/2.
			p0, p1 := s.PadL%2, (s.PadL+1)%2
			ev := plane[rowBase+p0*phaseStride+s.PadL/2:]
			od := plane[rowBase+p1*phaseStride+(s.PadL+1)/2:]
			pairs := iw1 / 2
			kr.deinterleave2(ev[:pairs], od[:pairs], src)
			if iw1%2 == 1 {
				ev[pairs] = src[iw1-1]
			}
		default:
			// Phase q holds padded columns c = j·sw + q, input c - PadL,
			// for j in [colLo[q], colHi[q]).
			for q := 0; q < sw; q++ {
				row := plane[rowBase+q*phaseStride : rowBase+q*phaseStride+d.e]
				lo, hi := d.colLo[q], d.colHi[q]
				iw := lo*sw + q - s.PadL
				for j := lo; j < hi; j++ {
					row[j] = src[iw]
					iw += sw
				}
			}
		}
	}
}

// dwChannel computes output channel ch of a depthwise convolution.
func (c *Conv) dwChannel(ch int, x, y, scratch []float32) {
	s := &c.s
	d := &c.dw
	plane := scratch[:d.planeLen]
	ihw := s.InH * s.InW
	d.fill(c.kr, *s, x[ch*ihw:(ch+1)*ihw], plane)
	ntaps := len(d.offs)
	ohw := s.OutH * s.OutW
	yc := y[ch*ohw : (ch+1)*ohw]
	p := dwparams{
		dst: &yc[0], src: &plane[0], offs: &d.offs[0], w: &c.w[ch*ntaps],
		n: s.OutW, ntaps: ntaps, bias: c.bias[ch], act: c.epAct,
		rows: s.OutH, srcPitch: d.e, dstPitch: s.OutW, ep: c.ep,
	}
	c.kr.callDW(&p, d.kind)
	if c.ep.post.Kind != ActNone {
		c.ep.post.Apply(yc)
	}
}

// deinterleave2Go sets even[j] = src[2j], odd[j] = src[2j+1] for j < len(even).
func deinterleave2Go(even, odd, src []float32) {
	odd = odd[:len(even)]
	src = src[:2*len(even)]
	for j := range even {
		even[j] = src[2*j]
		odd[j] = src[2*j+1]
	}
}
