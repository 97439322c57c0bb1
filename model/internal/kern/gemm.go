package kern

import (
	"math"
	"sync"
)

// kparams is what a GEMM micro-kernel reads: one mr×nr tile of C from a
// packed A panel (k × mr) and a packed B panel (k × nr). The assembly
// kernels read it by field offset: keep the layout in step with
// gemm_amd64.s.
type kparams struct {
	a     *float32 // 0: packed A panel, k × mr
	b     *float32 // 8: packed B panel, k × nr
	c     *float32 // 16: top-left of the C tile
	bias  *float32 // 24: mr per-row biases (read only with flagEpilogue)
	k     int      // 32: reduction length, ≥ 1
	ldc   int      // 40: row stride of C in elements
	flags int      // 48: flagAccumulate | flagEpilogue | flagAct | flagClamp
	ep    epilogue // 56: ea, eb, lo, hi, mulx
}

const (
	flagAccumulate = 1 // add the product to C instead of overwriting it
	flagEpilogue   = 2 // then add bias and apply ep
	flagAct        = 4 // with flagEpilogue: apply ep in full
	flagClamp      = 8 // with flagEpilogue: ep is just min(hi, max(lo, x))
)

// epilogue is the part of an activation a kernel applies in registers:
// t = min(hi, max(lo, ea·x + eb)); y = x·t when mulx, else t. post is what
// is left to apply afterwards in Go (LeakyRelu, Sigmoid, Tanh).
type epilogue struct {
	ea, eb, lo, hi float32
	mulx           int32
	_              int32
	post           Activation
}

func makeEpilogue(a Activation) epilogue {
	inf := float32(math.Inf(1))
	e := epilogue{ea: 1, lo: -inf, hi: inf}
	if a.Kind == ActNone {
		return e
	}
	switch a.Kind {
	case ActRelu:
		e.lo = 0
	case ActClip:
		e.lo, e.hi = a.Alpha, a.Beta
	case ActHardSigmoid:
		e.ea, e.eb, e.lo, e.hi = a.Alpha, a.Beta, 0, 1
	case ActHardSwish:
		e.ea, e.eb, e.lo, e.hi, e.mulx = 1.0/6, 0.5, 0, 1, 1
	case ActLeakyRelu, ActSigmoid, ActTanh:
		e.post = a
	}
	return e
}

// identity reports whether the in-register part does nothing.
func (e *epilogue) identity() bool {
	return e.ea == 1 && e.eb == 0 && math.IsInf(float64(e.lo), -1) && math.IsInf(float64(e.hi), 1) && e.mulx == 0
}

// clampOnly reports whether the in-register part is min(hi, max(lo, x)).
func (e *epilogue) clampOnly() bool { return e.ea == 1 && e.eb == 0 && e.mulx == 0 }

// apply is the scalar form of the in-register epilogue.
func (e *epilogue) apply(v float32) float32 {
	t := float32(e.ea*v) + e.eb // the conversion forbids fusing into an FMA
	t = min(e.hi, max(e.lo, t))
	if e.mulx != 0 {
		t *= v
	}
	return t
}

// gemmKernel is one micro-kernel family and its blocking.
type gemmKernel struct {
	name   string
	mr, nr int // micro-tile
	kc     int // K block: a k×nr B panel and a k×mr A panel stay in L1
	nc     int // N block: the packed kc×nc B block stays in L2
	id     kernelID
	alt    *gemmKernel // a taller-tile sibling forShape may pick, or nil
}

// forShape returns the kernel to use for an m×n product: kr, or its
// 12-row sibling when the sibling pads m no more than kr does. (It used to
// be picked for large n despite extra padding, on the assumption that its
// full panels are 1.2× faster; measured on a 64-row 3×3 convolution the
// padded 12-row tiles were 1.08× slower than exact 8-row ones.)
func (kr *gemmKernel) forShape(m, n int) *gemmKernel {
	if kr.alt == nil {
		return kr
	}
	p12, p8 := roundUp(m, kr.alt.mr), roundUp(m, kr.mr)
	if p12 <= p8 {
		return kr.alt
	}
	return kr
}

// kernelID selects the micro-kernels; calls go through a switch (not func
// values) so the parameter blocks stay on the stack.
type kernelID uint8

const (
	kernGo kernelID = iota
	kernAVX2
	kernAVX512
	kernAVX512x12
)

// Largest micro-tile of any kernel: sizes the on-stack edge tile.
const (
	maxMR = 16
	maxNR = 32
)

var goKernel = &gemmKernel{name: "go", mr: 4, nr: 8, kc: 256, nc: 1024, id: kernGo}

// microGo is the pure-Go 4×8 micro-kernel. (A 4×4 kernel with scalar
// accumulators measured slower here.)
func microGo(p *kparams) {
	const mr, nr = 4, 8
	var acc [mr][nr]float32
	k := p.k
	a := unsafeSlice(p.a, k*mr)
	b := unsafeSlice(p.b, k*nr)
	for l := 0; l < k; l++ {
		ap := a[l*mr : l*mr+mr : l*mr+mr]
		bp := b[l*nr : l*nr+nr : l*nr+nr]
		for i := range mr {
			av := ap[i]
			r := &acc[i]
			r[0] += av * bp[0]
			r[1] += av * bp[1]
			r[2] += av * bp[2]
			r[3] += av * bp[3]
			r[4] += av * bp[4]
			r[5] += av * bp[5]
			r[6] += av * bp[6]
			r[7] += av * bp[7]
		}
	}
	c := unsafeSlice(p.c, (mr-1)*p.ldc+nr)
	var bias []float32
	if p.flags&flagEpilogue != 0 {
		bias = unsafeSlice(p.bias, mr)
	}
	for i := range mr {
		row := c[i*p.ldc : i*p.ldc+nr]
		for j := range nr {
			v := acc[i][j]
			if p.flags&flagAccumulate != 0 {
				v += row[j]
			}
			if bias != nil {
				v = p.ep.apply(v + bias[i])
			}
			row[j] = v
		}
	}
}

// matrix is a read-only view of a row-major matrix, possibly transposed:
// element (i, j) is p[i*ld+j], or p[j*ld+i] when trans.
type matrix struct {
	p     []float32
	ld    int
	trans bool
}

// packedALen is the length of a whole packed A (m×k) for kernel kr.
func (kr *gemmKernel) packedALen(m, k int) int {
	return roundUp(m, kr.mr) * k
}

// packA packs all of op(A) (m×k) into dst: for each K block of kr.kc, for
// each mr-row panel, kcb × mr values, rows past m zero.
func (kr *gemmKernel) packA(dst []float32, a matrix, m, k int) {
	mr := kr.mr
	mpad := roundUp(m, mr)
	for p0 := 0; p0 < k; p0 += kr.kc {
		kcb := min(kr.kc, k-p0)
		blk := dst[p0*mpad : p0*mpad+mpad*kcb]
		for i0 := 0; i0 < mpad; i0 += mr {
			pan := blk[i0*kcb : (i0+mr)*kcb]
			rows := min(mr, m-i0)
			if rows < mr {
				clear(pan)
			}
			if a.trans {
				// Row p of the stored Aᵀ holds column p of A: mr
				// contiguous values per step.
				for l := 0; l < kcb; l++ {
					o := (p0+l)*a.ld + i0
					copy(pan[l*mr:l*mr+rows], a.p[o:o+rows])
				}
				continue
			}
			for r := 0; r < rows; r++ {
				src := a.p[(i0+r)*a.ld+p0 : (i0+r)*a.ld+p0+kcb]
				for l, v := range src {
					pan[l*mr+r] = v
				}
			}
		}
	}
}

// packB packs the kcb×ncb block of op(B) at (p0, j0) into dst as nr-column
// panels of kcb × nr values, columns past ncb zero.
func (kr *gemmKernel) packB(dst []float32, b matrix, p0, kcb, j0, ncb int) {
	nr := kr.nr
	for jr := 0; jr < ncb; jr += nr {
		pan := dst[jr*kcb : (jr+nr)*kcb]
		cols := min(nr, ncb-jr)
		if b.trans {
			if cols < nr {
				clear(pan)
			}
			for c := 0; c < cols; c++ {
				src := b.p[(j0+jr+c)*b.ld+p0 : (j0+jr+c)*b.ld+p0+kcb]
				for l, v := range src {
					pan[l*nr+c] = v
				}
			}
			continue
		}
		if cols == nr {
			if kr.id != kernGo {
				// Every full panel from here on, in one pass.
				full := (ncb - jr) / nr
				end := (p0+kcb-1)*b.ld + j0 + jr + full*nr
				kr.packBFull(dst[jr*kcb:(jr+full*nr)*kcb], b.p[(p0)*b.ld+j0+jr:end], kcb, b.ld, full)
				jr += (full - 1) * nr
				continue
			}
			for l := 0; l < kcb; l++ {
				o := (p0+l)*b.ld + j0 + jr
				copy(pan[l*nr:l*nr+nr], b.p[o:o+nr])
			}
			continue
		}
		for l := 0; l < kcb; l++ {
			o := (p0+l)*b.ld + j0 + jr
			d := pan[l*nr : l*nr+nr]
			copy(d, b.p[o:o+cols])
			clear(d[cols:])
		}
	}
}

// packBLen is the scratch one goroutine needs to pack B blocks.
func (kr *gemmKernel) packBLen(k, n int) int {
	return min(kr.kc, k) * min(kr.nc, roundUp(n, kr.nr))
}

// gemmJob is one goroutine's share of C = A·B with A packed whole.
type gemmJob struct {
	kr      *gemmKernel
	m, n, k int
	pa      []float32 // packed A, packedALen(m, k)
	b       matrix
	c       []float32
	ldc     int
	acc     bool
	bias    []float32 // nil, or roundUp(m, mr) values with epilogue
	ep      epilogue
	bbuf    []float32 // packBLen(k, n)
	i0, i1  int       // row range, multiples of mr (i1 may be m)
	j0, j1  int       // column range of C
	bcol0   int       // the C column that b's column 0 holds
	// pre, when set, is all of B already packed (see packedBOffset): run
	// reads its panels instead of packing b into bbuf. Parts of one GEMM
	// split by rows share it, so B is packed once, not once per part.
	pre []float32
}

// packedBLen is the length of all of B (k×n) packed as run reads it: for
// each nc-column block, for each kc-row block, kcb × roundUp(ncb, nr).
func (kr *gemmKernel) packedBLen(k, n int) int { return k * roundUp(n, kr.nr) }

// packedBOffset is where the packed kc-block at row pc of the nc-block
// starting at column jc (a multiple of nc) begins in a whole packed B.
func (kr *gemmKernel) packedBOffset(k, n, jc, pc int) int {
	return jc*k + pc*roundUp(min(kr.nc, n-jc), kr.nr)
}

// run computes rows [i0, i1) × columns [j0, j1) of C.
func (g *gemmJob) run() {
	kr := g.kr
	mr, nr := kr.mr, kr.nr
	mpad := roundUp(g.m, mr)
	var p kparams
	p.ldc = g.ldc
	p.ep = g.ep
	var tile [maxMR * maxNR]float32
	for jc := g.j0; jc < g.j1; jc += kr.nc {
		ncb := min(kr.nc, g.j1-jc)
		for pc := 0; pc < g.k; pc += kr.kc {
			kcb := min(kr.kc, g.k-pc)
			bblk := g.bbuf
			if g.pre != nil {
				bblk = g.pre[kr.packedBOffset(g.k, g.n, jc, pc):]
			} else {
				kr.packB(bblk, g.b, pc, kcb, jc-g.bcol0, ncb)
			}
			flags := flagAccumulate
			if pc == 0 && !g.acc {
				flags = 0
			}
			last := pc+kcb >= g.k
			if last && g.bias != nil {
				flags |= flagEpilogue
				switch {
				case g.ep.identity():
				case g.ep.clampOnly():
					flags |= flagClamp
				default:
					flags |= flagAct
				}
			}
			p.k = kcb
			ablk := g.pa[pc*mpad:]
			for jr := 0; jr < ncb; jr += nr {
				cols := min(nr, ncb-jr)
				p.b = &bblk[jr*kcb]
				for ir := g.i0; ir < g.i1; ir += mr {
					rows := min(mr, g.m-ir)
					p.a = &ablk[ir*kcb]
					if g.bias != nil {
						p.bias = &g.bias[ir]
					}
					p.flags = flags
					coff := ir*g.ldc + jc + jr
					if rows == mr && cols == nr {
						p.c = &g.c[coff]
						p.ldc = g.ldc
						kr.callMicro(&p)
					} else {
						t := tile[:mr*nr]
						if flags&flagAccumulate != 0 {
							for r := 0; r < rows; r++ {
								copy(t[r*nr:r*nr+cols], g.c[coff+r*g.ldc:])
							}
						}
						p.c = &t[0]
						p.ldc = nr
						kr.callMicroEdge(&p, cols)
						for r := 0; r < rows; r++ {
							copy(g.c[coff+r*g.ldc:coff+r*g.ldc+cols], t[r*nr:])
						}
					}
					if last && g.ep.post.Kind != ActNone {
						for r := 0; r < rows; r++ {
							g.ep.post.Apply(g.c[coff+r*g.ldc : coff+r*g.ldc+cols])
						}
					}
				}
			}
		}
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// sgemmBufs holds Sgemm's packing buffers; pooled so steady state
// allocates nothing.
type sgemmBufs struct{ pa, pb []float32 }

var sgemmPool = sync.Pool{New: func() any { return new(sgemmBufs) }}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
