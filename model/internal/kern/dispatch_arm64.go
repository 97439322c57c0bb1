//go:build arm64 && !noasm && gc

package kern

// Every arm64 CPU has Advanced SIMD (NEON), so the assembly kernels always
// run; building with the noasm tag selects the pure-Go ones
// (dispatch_generic.go).
const hasAsm = true

// kernNEON follows the amd64 kernel IDs (gemm.go).
const kernNEON kernelID = kernAVX512x12 + 1

// neonKernel is the NEON family: an 8×12 micro-kernel (24 of the 32 vector
// registers hold the tile) and depthwise kernels. kc is the pure-Go
// kernel's, so every element of C is summed over the same K blocks in the
// same order; with the FMAs the Go compiler emits on arm64 for the Go
// kernels' multiply-adds, the two families give bit-identical results. nc
// is a multiple of nr that keeps the packed kc×nc B block (480 KiB) inside a
// Cortex-A72's 1 MiB L2. Depthwise convolutions run a 3×3 kernel or one for
// any taps.
var neonKernel = &gemmKernel{name: "neon", mr: 8, nr: 12, kc: 256, nc: 480, id: kernNEON}

// asmKernel is the fastest kernel family this CPU runs.
var asmKernel = neonKernel

// kernels lists the kernel families this CPU runs.
func kernels() []*gemmKernel { return []*gemmKernel{goKernel, neonKernel} }

// microNEON is the 8×12 micro-kernel (gemm_arm64.s): kparams as microGo.
//
//go:noescape
func microNEON(p *kparams)

// dw3x3NEON is the depthwise kernel for exactly 9 taps laid out as newDWPlan
// builds them (offs[3·kh+kw] = offs[3·kh] + offs[kw], offs[0] = 0): dwparams
// as dwGo (dw_arm64.s).
//
//go:noescape
func dw3x3NEON(p *dwparams)

// dwNEON is the depthwise kernel for any taps: dwparams as dwGo
// (dw_arm64.s).
//
//go:noescape
func dwNEON(p *dwparams)

func (kr *gemmKernel) callMicro(p *kparams) {
	if kr.id == kernNEON {
		microNEON(p)
		return
	}
	microGo(p)
}

// callMicroEdge computes a tile of which only the first cols columns are
// wanted (C is then the on-stack edge tile, nr wide): the full kernel.
func (kr *gemmKernel) callMicroEdge(p *kparams, cols int) { kr.callMicro(p) }

// callDW runs the depthwise kernel; kind says whether the taps (offs built
// by newDWPlan) have a specialised kernel.
func (kr *gemmKernel) callDW(p *dwparams, kind dwKind) {
	switch {
	case kr.id != kernNEON:
		dwGo(p)
	case kind == dw3x3:
		dw3x3NEON(p)
	default:
		dwNEON(p)
	}
}

// dotNEON is dotGo in NEON, same result bit for bit (gemm_arm64.s).
//
//go:noescape
func dotNEON(x, y *float32, n int) float32

// axpyNEON is axpyGo in NEON, same result bit for bit (gemm_arm64.s).
//
//go:noescape
func axpyNEON(alpha float32, x, y *float32, n int)

// dot returns Σ x[i]·y[i] over len(x) elements.
func dot(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	if activeKernel.id != kernNEON || n < 4 {
		return dotGo(x, y)
	}
	return dotNEON(&x[0], &y[0], n)
}

// axpy computes y += alpha·x over len(x) elements.
func axpy(alpha float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	if activeKernel.id != kernNEON || n < 4 {
		axpyGo(alpha, x, y)
		return
	}
	axpyNEON(alpha, &x[0], &y[0], n)
}

func (kr *gemmKernel) deinterleave2(even, odd, src []float32) { deinterleave2Go(even, odd, src) }

// packBFull packs npanels full nr-column panels of kcb rows from src (row
// stride ld) into dst: panel q holds, for each row l, the nr floats at
// src[l·ld + q·nr]. (Plain copies; the Go compiler's are as fast as NEON
// ones would be.)
func (kr *gemmKernel) packBFull(dst, src []float32, kcb, ld, npanels int) {
	nr := kr.nr
	for q := 0; q < npanels; q++ {
		pan := dst[q*kcb*nr : (q+1)*kcb*nr]
		for l := 0; l < kcb; l++ {
			copy(pan[l*nr:l*nr+nr], src[l*ld+q*nr:])
		}
	}
}

func (kr *gemmKernel) padPlane(plane, x []float32, rows, e, padT, padL, inH, inW, iw1 int) bool {
	return false
}
