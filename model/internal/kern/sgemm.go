package kern

import "fmt"

// Sgemm computes C = op(A)·op(B) (+ C when accumulate), row-major with
// leading dimensions lda/ldb/ldc; op(X) is X or Xᵀ per transA/transB; op(A)
// is m×k, op(B) is k×n, C is m×n. Sizes ≤ 0 in m or n do nothing; k ≤ 0
// sets C to zero (or leaves it when accumulate).
//
// Sgemm runs on the calling goroutine and allocates nothing in steady state:
// its packing buffers come from a sync.Pool. A leading dimension smaller than
// its matrix's row length, or a slice too short for its matrix, is a
// programming error: Sgemm panics with a message naming it before touching
// memory.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int,
	c []float32, ldc int, accumulate bool) {
	if m <= 0 || n <= 0 {
		return
	}
	checkMatrix("C", c, m, n, ldc, false)
	if k > 0 {
		checkMatrix("A", a, m, k, lda, transA)
		checkMatrix("B", b, k, n, ldb, transB)
	}
	if k <= 0 {
		if !accumulate {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	kr := currentKernel().forShape(m, n)
	if m*n*k < 4096 || (m < 4 && !(transA && transB)) || (transB && !transA && m <= 16) {
		sgemmSmall(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		return
	}
	// One K block at a time, so the pooled buffers stay bounded
	// (roundUp(m, mr)·kc + kc·nc floats); each block adds its product into
	// C exactly as the blocked kernel would within one call.
	bufs := sgemmPool.Get().(*sgemmBufs)
	bufs.pa = grow(bufs.pa, kr.packedALen(m, min(k, kr.kc)))
	bufs.pb = grow(bufs.pb, kr.packBLen(k, n))
	for pc := 0; pc < k; pc += kr.kc {
		kcb := min(kr.kc, k-pc)
		am, bm := matrix{nil, lda, transA}, matrix{nil, ldb, transB}
		if transA {
			am.p = a[pc*lda:]
		} else {
			am.p = a[pc:]
		}
		if transB {
			bm.p = b[pc:]
		} else {
			bm.p = b[pc*ldb:]
		}
		pa := bufs.pa[:kr.packedALen(m, kcb)]
		kr.packA(pa, am, m, kcb)
		job := gemmJob{
			kr: kr, m: m, n: n, k: kcb, pa: pa,
			b: bm, c: c, ldc: ldc, acc: accumulate || pc > 0,
			bbuf: bufs.pb, i0: 0, i1: m, j0: 0, j1: n,
		}
		job.run()
	}
	sgemmPool.Put(bufs)
}

// checkMatrix panics unless x holds an r×c matrix (stored transposed when
// trans) with leading dimension ld.
func checkMatrix(name string, x []float32, r, c, ld int, trans bool) {
	if trans {
		r, c = c, r
	}
	if ld < c || len(x) < (r-1)*ld+c {
		panic(fmt.Sprintf("kern: Sgemm: %s is %d×%d with leading dimension %d, but ld < %d or the slice has only %d elements",
			name, r, c, ld, c, len(x)))
	}
}

// sgemmSmall handles products too small or too thin to pay for packing,
// such as the matrix–vector products of fully connected layers: with transB
// each row of B is read once and dotted with every row of op(A); otherwise
// each row of C accumulates rows of B.
func sgemmSmall(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int,
	c []float32, ldc int, accumulate bool) {
	if transB && !transA {
		for j := 0; j < n; j++ {
			brow := b[j*ldb : j*ldb+k]
			for i := 0; i < m; i++ {
				s := dot(a[i*lda:i*lda+k], brow)
				if accumulate {
					s += c[i*ldc+j]
				}
				c[i*ldc+j] = s
			}
		}
		return
	}
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if !accumulate {
			clear(crow)
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			if av == 0 {
				continue
			}
			if transB {
				for j := range crow {
					crow[j] += av * b[j*ldb+p]
				}
			} else {
				axpy(av, b[p*ldb:p*ldb+n], crow)
			}
		}
	}
}

// dotGo returns Σ x[i]·y[i] over len(x) elements.
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo computes y += alpha·x over len(x) elements.
func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// SgemmOn is [Sgemm] with the work split across p's threads where that
// keeps every element's summation order: for now the matrix–vector products
// of fully connected layers (op(B) = Bᵀ, op(A) = A, m ≤ 16), split into
// column ranges, each column a dot product of the same K. Products below
// [MinParallelWork] multiply-adds per part, and a nil or busy p, run on the
// caller. Results are identical to Sgemm's.
func SgemmOn(p *Pool, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int,
	c []float32, ldc int, accumulate bool) {
	parts := 1
	if threads := p.Threads(); threads > 1 && transB && !transA && m >= 1 && m <= 16 && n >= 2 && k > 0 {
		parts = min(threads*partsPerThread, n, maxParts)
		if MinParallelWork > 0 {
			parts = min(parts, m*n*k/MinParallelWork)
		}
	}
	if parts < 2 || !p.tryAcquire() {
		Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		return
	}
	checkMatrix("C", c, m, n, ldc, false)
	checkMatrix("A", a, m, k, lda, transA)
	checkMatrix("B", b, k, n, ldb, transB)
	st := &p.w.sgemm
	*st = sgemmTask{m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, acc: accumulate}
	p.w.run(st, parts)
	*st = sgemmTask{}
	p.release()
}

// sgemmTask is one parallel SgemmOn (C = A·Bᵀ) cut into column ranges.
type sgemmTask struct {
	m, n, k  int
	a, b, c  []float32
	lda, ldb int
	ldc      int
	acc      bool
}

var _ Task = (*sgemmTask)(nil)

func (s *sgemmTask) Part(t, parts, _ int) {
	j0, j1 := s.n*t/parts, s.n*(t+1)/parts
	if j0 < j1 {
		sgemmSmall(false, true, s.m, j1-j0, s.k, s.a, s.lda, s.b[j0*s.ldb:], s.ldb, s.c[j0:], s.ldc, s.acc)
	}
}
