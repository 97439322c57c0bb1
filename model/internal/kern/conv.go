package kern

import (
	"errors"
	"fmt"
)

// ErrShape is returned (wrapped) by [NewConv] when a [ConvShape] or the
// weight/bias lengths are inconsistent.
var ErrShape = errors.New("kern: bad convolution shape")

// ConvShape describes one 2-D convolution of a single image (batch handled
// by the caller).
type ConvShape struct {
	InC, InH, InW    int
	OutC, OutH, OutW int
	KH, KW           int
	StrideH, StrideW int
	PadT, PadL       int // bottom/right padding is implied by OutH/OutW
	DilH, DilW       int
	Group            int
}

// maxDim bounds every dimension so products cannot overflow int.
const maxDim = 1 << 24

// Validate reports whether s describes a convolution the kernels can run.
func (s ConvShape) Validate() error {
	dims := []struct {
		name string
		v    int
	}{
		{"InC", s.InC}, {"InH", s.InH}, {"InW", s.InW},
		{"OutC", s.OutC}, {"OutH", s.OutH}, {"OutW", s.OutW},
		{"KH", s.KH}, {"KW", s.KW}, {"StrideH", s.StrideH}, {"StrideW", s.StrideW},
		{"DilH", s.DilH}, {"DilW", s.DilW}, {"Group", s.Group},
	}
	for _, d := range dims {
		if d.v < 1 || d.v > maxDim {
			return fmt.Errorf("%w: %s=%d out of range [1, %d]", ErrShape, d.name, d.v, maxDim)
		}
	}
	if s.PadT < 0 || s.PadL < 0 || s.PadT > maxDim || s.PadL > maxDim {
		return fmt.Errorf("%w: negative or huge padding PadT=%d PadL=%d", ErrShape, s.PadT, s.PadL)
	}
	if s.InC%s.Group != 0 || s.OutC%s.Group != 0 {
		return fmt.Errorf("%w: Group=%d does not divide InC=%d and OutC=%d", ErrShape, s.Group, s.InC, s.OutC)
	}
	const maxElems = 1 << 31
	if int64(s.InC)*int64(s.InH)*int64(s.InW) > maxElems ||
		int64(s.OutC)*int64(s.OutH)*int64(s.OutW) > maxElems ||
		int64(s.InC/s.Group)*int64(s.KH)*int64(s.KW)*int64(s.OutH)*int64(s.OutW) > maxElems ||
		int64(s.OutC)*int64(s.InC/s.Group)*int64(s.KH)*int64(s.KW) > maxElems {
		return fmt.Errorf("%w: tensor sizes exceed %d elements", ErrShape, int64(maxElems))
	}
	// The padded input the output reads (bottom/right padding implied by
	// OutH/OutW) bounds the depthwise kernel's scratch.
	ph := int64(s.OutH-1)*int64(s.StrideH) + int64(s.KH-1)*int64(s.DilH) + 1
	pw := int64(s.OutW-1)*int64(s.StrideW) + int64(s.KW-1)*int64(s.DilW) + 1
	if ph*pw > maxElems {
		return fmt.Errorf("%w: padded input %d×%d exceeds %d elements", ErrShape, ph, pw, int64(maxElems))
	}
	return nil
}

func (s ConvShape) inLen() int     { return s.InC * s.InH * s.InW }
func (s ConvShape) outLen() int    { return s.OutC * s.OutH * s.OutW }
func (s ConvShape) weightLen() int { return s.OutC * (s.InC / s.Group) * s.KH * s.KW }
func (s ConvShape) colRows() int   { return (s.InC / s.Group) * s.KH * s.KW }

// convPath is the algorithm a Conv runs.
type convPath uint8

const (
	pathIm2col    convPath = iota // im2col + packed GEMM
	pathPointwise                 // 1×1 stride 1 unpadded: GEMM on the input
	pathDepthwise                 // direct depthwise kernel
)

// maxThreads bounds the goroutines one Forward call uses.
const maxThreads = 64

// MinParallelWork is the number of multiply-adds per extra thread below
// which a Conv runs serially: handing a part to a parked or spinning worker
// costs more than it saves. Tests set it to 0 to run every shape
// multi-threaded; benchmarks tune it.
var MinParallelWork = 1 << 17

// Conv is a prepared convolution: weights packed once at load time for the
// fastest path (1×1 → direct GEMM without im2col; depthwise → direct kernel;
// general → im2col + blocked SGEMM), bias and activation fused in the
// epilogue. A Conv is immutable and safe for concurrent use.
type Conv struct {
	s     ConvShape
	path  convPath
	kr    *gemmKernel
	ep    epilogue
	epAct int32 // 1 when ep is not the identity
	// GEMM paths: per group, A packed for kr (pa) and the bias padded to
	// whole micro-panels (bias); m, k are the per-group GEMM sizes.
	pa, bias []float32
	m, k, n  int
	paLen    int
	// Depthwise: the weights as given (OutC × KH·KW) and the plan.
	w  []float32
	dw dwPlan
}

// NewConv validates s and packs w (OutC × InC/Group × KH × KW) and bias
// (OutC, or nil).
func NewConv(s ConvShape, w, bias []float32, act Activation) (*Conv, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(w) != s.weightLen() {
		return nil, fmt.Errorf("%w: weight has %d elements, want OutC·InC/Group·KH·KW = %d", ErrShape, len(w), s.weightLen())
	}
	if bias != nil && len(bias) != s.OutC {
		return nil, fmt.Errorf("%w: bias has %d elements, want OutC = %d", ErrShape, len(bias), s.OutC)
	}
	if !act.valid() {
		return nil, fmt.Errorf("kern: unknown activation %v", act.Kind)
	}
	kr := currentKernel()
	c := &Conv{s: s, kr: kr, ep: makeEpilogue(act)}
	if !c.ep.identity() {
		c.epAct = 1
	}
	switch {
	case s.Group == s.InC && s.Group == s.OutC:
		c.path = pathDepthwise
	case s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 && s.PadT == 0 && s.PadL == 0 &&
		s.OutH == s.InH && s.OutW == s.InW:
		c.path = pathPointwise
	default:
		c.path = pathIm2col
	}
	if c.path == pathDepthwise {
		c.w = append([]float32(nil), w...)
		c.bias = make([]float32, s.OutC)
		copy(c.bias, bias)
		c.dw = newDWPlan(s)
		return c, nil
	}
	c.m, c.k, c.n = s.OutC/s.Group, s.colRows(), s.OutH*s.OutW
	kr = kr.forShape(c.m, c.n)
	c.kr = kr
	c.paLen = kr.packedALen(c.m, c.k)
	c.pa = make([]float32, s.Group*c.paLen)
	mpad := roundUp(c.m, kr.mr)
	c.bias = make([]float32, s.Group*mpad)
	for g := 0; g < s.Group; g++ {
		kr.packA(c.pa[g*c.paLen:], matrix{p: w[g*c.m*c.k:], ld: c.k}, c.m, c.k)
		if bias != nil {
			copy(c.bias[g*mpad:], bias[g*c.m:(g+1)*c.m])
		}
	}
	return c, nil
}

// im2colScratch is one goroutine's scratch on the im2col path: a chunk of
// the column matrix (K × up to nc columns) and the B packing buffer.
func (c *Conv) im2colScratch() int {
	return c.k*min(c.colChunk(), c.n) + c.kr.packBLen(c.k, c.n)
}

// ColChunkBytes bounds the im2col chunk (K rows × chunk columns) so that it
// stays in L2 with the B block packed from it.
var ColChunkBytes = 1 << 19

// MinColChunk is the fewest columns an im2col chunk has (A is read once
// per chunk, so tiny chunks cost more than an L2 overflow).
var MinColChunk = 256

// colChunk is the number of im2col columns built at a time: the kernel's
// nc, fewer when K is long, in whole nr-column panels.
func (c *Conv) colChunk() int {
	nr := c.kr.nr
	n := ColChunkBytes / 4 / max(1, c.k) / nr * nr
	return max(min(c.kr.nc, MinColChunk/nr*nr), min(c.kr.nc, n))
}

// Shape returns the shape the Conv was built with.
func (c *Conv) Shape() ConvShape { return c.s }

func clampThreads(t int) int { return max(1, min(t, maxThreads)) }

// ScratchLen is the number of float32s of scratch Forward needs with the
// given thread count.
func (c *Conv) ScratchLen(threads int) int {
	t := clampThreads(threads)
	switch c.path {
	case pathDepthwise:
		return t * c.dw.scratchLen()
	case pathPointwise:
		return t*c.kr.packBLen(c.k, c.n) + c.sharedBLen(t)
	default:
		return t*c.im2colScratch() + c.sharedBLen(t)
	}
}

// rowSplit reports whether a parallel GEMM conv cut into parts parts is
// split by mr-row panels (few columns) rather than by column blocks; see
// convTask.split.
func (c *Conv) rowSplit(parts int) bool {
	panels := (c.m + c.kr.mr - 1) / c.kr.mr
	nblocks := (c.n + c.kr.nr - 1) / c.kr.nr
	return parts > 1 && !(nblocks >= 2*parts || nblocks >= panels)
}

// sharedBLen is the scratch for one group's whole packed B that the parts
// of a row split share (0 when threads threads would not split by rows):
// without it every part would build (im2col) and pack all of B itself.
func (c *Conv) sharedBLen(threads int) int {
	if c.path == pathDepthwise || !c.rowSplit(c.parallelism(threads)) {
		return 0
	}
	return c.kr.packedBLen(c.k, c.n)
}

// Forward computes y (OutC×OutH×OutW) from x (InC×InH×InW) for one image.
// With a nil or single-threaded pool it runs on the calling goroutine; with
// more threads it splits the work statically across the pool's workers
// (convolutions too small to gain, below [MinParallelWork] multiply-adds
// per extra thread, stay serial; a busy pool runs it serially too). scratch
// must hold at least ScratchLen(p.Threads()) float32s; its contents on entry
// do not matter. x, y and scratch must not overlap. Slices shorter than the
// shape needs are a programming error: Forward panics with a message naming
// the slice before touching memory. Results do not depend on the pool.
func (c *Conv) Forward(x, y, scratch []float32, p *Pool) {
	s := &c.s
	threads := p.Threads()
	if len(x) < s.inLen() || len(y) < s.outLen() || len(scratch) < c.ScratchLen(threads) {
		panic(fmt.Sprintf("kern: Conv.Forward: x, y, scratch have %d, %d, %d elements; want at least %d, %d, %d",
			len(x), len(y), len(scratch), s.inLen(), s.outLen(), c.ScratchLen(threads)))
	}
	if parts := c.parallelism(threads); parts > 1 && p.tryAcquire() {
		ct := &p.w.conv
		ct.conv, ct.x, ct.y, ct.scratch = c, x, y, scratch
		if c.path == pathDepthwise {
			ct.dw = true
			p.w.run(ct, parts)
		} else {
			ct.dw = false
			mpad := roundUp(c.m, c.kr.mr)
			var shared []float32
			if sb := c.sharedBLen(threads); sb > 0 {
				shared = scratch[len(scratch)-sb:]
			}
			for g := 0; g < s.Group; g++ {
				job := c.groupJob(g, x, y, mpad)
				ct.group = g
				if shared != nil {
					// Phase 1: the parts pack B once, by column
					// panels, into the shared buffer; phase 2 (the
					// GEMM by row panels) reads it.
					ct.pack, ct.shared = true, shared
					p.w.run(ct, min(parts, (c.n+c.kr.nr-1)/c.kr.nr))
					ct.pack = false
					job.pre = shared
				}
				ct.split(&job, parts)
				p.w.run(ct, parts)
			}
			ct.shared = nil
			clear(ct.jobs[:parts]) // drop the references to x and y
		}
		ct.conv, ct.x, ct.y, ct.scratch = nil, nil, nil, nil
		p.release()
		return
	}
	if c.path == pathDepthwise {
		per := c.dw.scratchLen()
		for ch := 0; ch < s.OutC; ch++ {
			c.dwChannel(ch, x, y, scratch[:per])
		}
		return
	}
	mpad := roundUp(c.m, c.kr.mr)
	per := c.ScratchLen(1)
	for g := 0; g < s.Group; g++ {
		job := c.groupJob(g, x, y, mpad)
		c.runGemm(&job, g, x, scratch[:per])
	}
}

// partsPerThread is how many parts a parallel Conv is cut into per thread:
// more than one, so that a thread the OS runs late (or a slower share)
// leaves the others parts to claim instead of a tail to wait for.
const partsPerThread = 4

// parallelism is the number of parts worth splitting c into for threads
// threads: at most partsPerThread per thread, each at least
// MinParallelWork multiply-adds; 1 means run serially.
func (c *Conv) parallelism(threads int) int {
	if threads <= 1 {
		return 1
	}
	s := &c.s
	parts := min(threads*partsPerThread, maxConvParts)
	if MinParallelWork > 0 {
		parts = min(parts, s.outLen()*s.colRows()/MinParallelWork)
	}
	if c.path == pathDepthwise {
		parts = min(parts, s.OutC)
	}
	return max(1, parts)
}

// groupJob is the whole GEMM of group g.
func (c *Conv) groupJob(g int, x, y []float32, mpad int) gemmJob {
	s := &c.s
	ohw := c.n
	job := gemmJob{
		kr: c.kr, m: c.m, n: c.n, k: c.k, pa: c.pa[g*c.paLen : (g+1)*c.paLen],
		c: y[g*c.m*ohw : (g+1)*c.m*ohw], ldc: ohw,
		bias: c.bias[g*mpad : (g+1)*mpad], ep: c.ep,
		i0: 0, i1: c.m, j0: 0, j1: c.n,
	}
	if c.path == pathPointwise {
		icg := s.InC / s.Group
		job.b = matrix{p: x[g*icg*ohw : (g+1)*icg*ohw], ld: ohw}
	}
	return job
}

// runGemm runs job for group g, given one goroutine's scratch. On the
// im2col path it builds the column matrix nc columns at a time, so the chunk
// stays in cache and the scratch stays small.
func (c *Conv) runGemm(job *gemmJob, g int, x, scratch []float32) {
	if c.path == pathPointwise || job.pre != nil {
		job.bbuf = scratch
		job.run()
		return
	}
	nc := c.colChunk()
	colLen := c.k * min(nc, c.n)
	col, bbuf := scratch[:colLen], scratch[colLen:]
	j0, j1 := job.j0, job.j1
	for jc := j0; jc < j1; jc += nc {
		je := min(j1, jc+nc)
		im2colRange(&c.s, g, x, col, jc, je)
		part := *job
		part.b = matrix{p: col, ld: je - jc}
		part.bcol0 = jc
		part.j0, part.j1 = jc, je
		part.bbuf = bbuf
		part.run()
	}
}

// maxConvParts bounds the parts of one parallel Conv.Forward.
const maxConvParts = 64

// convTask is one parallel Conv.Forward: a Pool owns one and uses it under
// its lock, so a parallel Forward allocates nothing.
type convTask struct {
	jobs    [maxConvParts]gemmJob
	conv    *Conv
	x, y    []float32
	scratch []float32
	group   int
	dw      bool
	pack    bool      // phase 1 of a row split: pack B into shared
	shared  []float32 // the group's whole packed B (row splits)
}

var _ Task = (*convTask)(nil)

// split divides job into parts jobs: by column ranges (whole nr-column
// blocks) when there are enough columns, else by mr-row panels. Either way
// every output element is summed in the same order as by one thread.
func (ct *convTask) split(job *gemmJob, parts int) {
	mr, nr := job.kr.mr, job.kr.nr
	panels := (job.m + mr - 1) / mr
	nblocks := (job.n + nr - 1) / nr
	for t := 0; t < parts; t++ {
		j := *job
		if nblocks >= 2*parts || nblocks >= panels {
			j.j0 = min(job.n, nblocks*t/parts*nr)
			j.j1 = min(job.n, nblocks*(t+1)/parts*nr)
		} else {
			j.i0 = min(job.m, panels*t/parts*mr)
			j.i1 = min(job.m, panels*(t+1)/parts*mr)
		}
		ct.jobs[t] = j
	}
}

// Part runs part t of n on the scratch of slot: a channel range
// (depthwise) or a GEMM tile range.
func (ct *convTask) Part(t, n, slot int) {
	c := ct.conv
	if ct.dw {
		per := c.dw.scratchLen()
		scratch := ct.scratch[slot*per : (slot+1)*per]
		oc := c.s.OutC
		for ch := oc * t / n; ch < oc*(t+1)/n; ch++ {
			c.dwChannel(ch, ct.x, ct.y, scratch)
		}
		return
	}
	if ct.pack {
		c.packPart(t, n, ct.group, ct.x, ct.shared, ct.scratch[slot*c.ScratchLen(1):(slot+1)*c.ScratchLen(1)])
		return
	}
	j := &ct.jobs[t]
	if j.i0 < j.i1 && j.j0 < j.j1 {
		per := c.ScratchLen(1)
		c.runGemm(j, ct.group, ct.x, ct.scratch[slot*per:(slot+1)*per])
	}
}

// packPart packs part t of n of group g's B (nr-column panels, in nc-column
// pieces) into the whole packed B dst, building the im2col columns it needs
// in scratch (one goroutine's ScratchLen(1)).
func (c *Conv) packPart(t, n, g int, x, dst, scratch []float32) {
	kr, s := c.kr, &c.s
	nblocks := (c.n + kr.nr - 1) / kr.nr
	j0 := min(c.n, nblocks*t/n*kr.nr)
	j1 := min(c.n, nblocks*(t+1)/n*kr.nr)
	icg := s.InC / s.Group
	for j := j0; j < j1; {
		jc := j / kr.nc * kr.nc
		je := min(j1, jc+kr.nc)
		b, col0 := matrix{}, 0
		if c.path == pathPointwise {
			b = matrix{p: x[g*icg*c.n : (g+1)*icg*c.n], ld: c.n}
			col0 = j
		} else {
			col := scratch[:c.k*(je-j)]
			im2colRange(s, g, x, col, j, je)
			b = matrix{p: col, ld: je - j}
		}
		for pc := 0; pc < c.k; pc += kr.kc {
			kcb := min(kr.kc, c.k-pc)
			off := kr.packedBOffset(c.k, c.n, jc, pc) + (j-jc)*kcb
			kr.packB(dst[off:], b, pc, kcb, col0, je-j)
		}
		j = je
	}
}

// Im2col writes the (InC/Group·KH·KW) × (OutH·OutW) column matrix of group
// g of image x into col. Taps that fall into the padding are zero.
func Im2col(s ConvShape, g int, x, col []float32) {
	im2colRange(&s, g, x, col, 0, s.OutH*s.OutW)
}

// im2colRange writes columns [j0, j1) of group g's column matrix into col,
// whose rows are j1-j0 long.
func im2colRange(s *ConvShape, g int, x, col []float32, j0, j1 int) {
	icg := s.InC / s.Group
	ld := j1 - j0
	ohFirst, ohLast := j0/s.OutW, (j1-1)/s.OutW
	r := 0
	for ic := 0; ic < icg; ic++ {
		plane := x[(g*icg+ic)*s.InH*s.InW : (g*icg+ic+1)*s.InH*s.InW]
		for kh := 0; kh < s.KH; kh++ {
			for kw := 0; kw < s.KW; kw++ {
				dst := col[r*ld : (r+1)*ld]
				r++
				// Output columns whose input column is inside the image.
				off := kw*s.DilW - s.PadL
				vlo, vhi := validRange(off, s.StrideW, s.InW, s.OutW)
				for oh := ohFirst; oh <= ohLast; oh++ {
					// This output row's part of [j0, j1).
					o0 := max(0, j0-oh*s.OutW)
					o1 := min(s.OutW, j1-oh*s.OutW)
					drow := dst[oh*s.OutW+o0-j0 : oh*s.OutW+o1-j0]
					ih := oh*s.StrideH - s.PadT + kh*s.DilH
					lo, hi := max(vlo, o0), min(vhi, o1)
					if ih < 0 || ih >= s.InH || lo >= hi {
						clear(drow)
						continue
					}
					clear(drow[:lo-o0])
					clear(drow[hi-o0:])
					srow := plane[ih*s.InW : (ih+1)*s.InW]
					d := drow[lo-o0 : hi-o0]
					if s.StrideW == 1 {
						copy(d, srow[lo+off:])
						continue
					}
					iw := lo*s.StrideW + off
					for i := range d {
						d[i] = srow[iw]
						iw += s.StrideW
					}
				}
			}
		}
	}
}

// validRange returns the range [lo, hi) of output positions o in [0, outN)
// whose input position o·stride + off lies in [0, inN).
func validRange(off, stride, inN, outN int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if inN-1-off < 0 {
		return 0, 0
	}
	hi = min(outN, (inN-1-off)/stride+1)
	lo = min(lo, hi)
	return lo, hi
}

// Col2im is the adjoint of [Im2col]: it accumulates the column matrix col of
// group g into dx (InC×InH×InW), skipping taps that fall into the padding.
func Col2im(s ConvShape, g int, col, dx []float32) {
	icg := s.InC / s.Group
	hw := s.OutH * s.OutW
	r := 0
	for ic := 0; ic < icg; ic++ {
		plane := dx[(g*icg+ic)*s.InH*s.InW:]
		for kh := 0; kh < s.KH; kh++ {
			for kw := 0; kw < s.KW; kw++ {
				src := col[r*hw : (r+1)*hw]
				r++
				for oh := 0; oh < s.OutH; oh++ {
					ih := oh*s.StrideH - s.PadT + kh*s.DilH
					if ih < 0 || ih >= s.InH {
						continue
					}
					drow := plane[ih*s.InW : (ih+1)*s.InW]
					srow := src[oh*s.OutW : (oh+1)*s.OutW]
					for ow, v := range srow {
						iw := ow*s.StrideW - s.PadL + kw*s.DilW
						if iw >= 0 && iw < s.InW {
							drow[iw] += v
						}
					}
				}
			}
		}
	}
}
