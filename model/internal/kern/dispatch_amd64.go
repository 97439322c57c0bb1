//go:build amd64 && !noasm && gc

package kern

import "golang.org/x/sys/cpu"

// hasAsm reports whether the CPU runs the assembly kernels (AVX2 and FMA).
var hasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

var (
	avx2Kernel = &gemmKernel{name: "avx2", mr: 6, nr: 16, kc: 256, nc: 1024, id: kernAVX2}
	// The AVX-512 family has 8×32 and 12×32 tiles; the 12-row one is about
	// 1.2× faster where the rows fill it (fewer B loads per FMA), so
	// avx512Kernel picks per product (gemmKernel.forShape). The fixed ones
	// are there for tests.
	avx512x8Kernel  = &gemmKernel{name: "avx512x8", mr: 8, nr: 32, kc: 256, nc: 1024, id: kernAVX512}
	avx512x12Kernel = &gemmKernel{name: "avx512x12", mr: 12, nr: 32, kc: 256, nc: 1024, id: kernAVX512x12}
	avx512Kernel    = &gemmKernel{name: "avx512", mr: 8, nr: 32, kc: 256, nc: 1024, id: kernAVX512, alt: avx512x12Kernel}
)

// asmKernel is the fastest assembly kernel this CPU runs.
var asmKernel = pickAsmKernel()

// kernels lists the kernel families this CPU runs.
func kernels() []*gemmKernel {
	ks := []*gemmKernel{goKernel}
	if hasAsm {
		ks = append(ks, avx2Kernel)
	}
	if hasAsm && cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel, avx512x8Kernel, avx512x12Kernel)
	}
	return ks
}

func pickAsmKernel() *gemmKernel {
	switch {
	case !hasAsm:
		return goKernel
	case cpu.X86.HasAVX512F:
		return avx512Kernel
	default:
		return avx2Kernel
	}
}

//go:noescape
func microAVX2(p *kparams)

//go:noescape
func microAVX512(p *kparams)

//go:noescape
func microAVX512N16(p *kparams)

//go:noescape
func microAVX512x12(p *kparams)

//go:noescape
func microAVX512x12N16(p *kparams)

//go:noescape
func dwAVX2(p *dwparams)

//go:noescape
func dwAVX512(p *dwparams)

//go:noescape
func dw3x3AVX512(p *dwparams)

//go:noescape
func dw3x3AVX2(p *dwparams)

//go:noescape
func dw5x5s1AVX512(p *dwparams)

//go:noescape
func dw5x5s2AVX512(p *dwparams)

// callMicroEdge computes a tile of which only the first cols columns are
// wanted (C is then the on-stack edge tile, nr wide).
func (kr *gemmKernel) callMicroEdge(p *kparams, cols int) {
	if cols <= 16 {
		switch kr.id {
		case kernAVX512:
			microAVX512N16(p)
			return
		case kernAVX512x12:
			microAVX512x12N16(p)
			return
		}
	}
	kr.callMicro(p)
}

func (kr *gemmKernel) callMicro(p *kparams) {
	switch kr.id {
	case kernAVX2:
		microAVX2(p)
	case kernAVX512:
		microAVX512(p)
	case kernAVX512x12:
		microAVX512x12(p)
	default:
		microGo(p)
	}
}

// callDW runs the depthwise kernel; kind says whether the taps (offs built
// by newDWPlan) have a specialised kernel.
func (kr *gemmKernel) callDW(p *dwparams, kind dwKind) {
	switch kr.id {
	case kernAVX2:
		if kind == dw3x3 {
			dw3x3AVX2(p)
			return
		}
		dwAVX2(p)
	case kernAVX512, kernAVX512x12:
		switch kind {
		case dw3x3:
			dw3x3AVX512(p)
		case dw5x5s1:
			dw5x5s1AVX512(p)
		case dw5x5s2:
			dw5x5s2AVX512(p)
		default:
			dwAVX512(p)
		}
	default:
		dwGo(p)
	}
}

//go:noescape
func deinterleave2AVX2(even, odd, src *float32, n int)

//go:noescape
func packBAVX(dst, src *float32, kcb, ld, npanels, nr int)

// packBFull packs npanels full nr-column panels of kcb rows from src (row
// stride ld) into dst; the slices bound what the assembly touches.
func (kr *gemmKernel) packBFull(dst, src []float32, kcb, ld, npanels int) {
	_ = dst[npanels*kcb*kr.nr-1]
	_ = src[(kcb-1)*ld+npanels*kr.nr-1]
	packBAVX(&dst[0], &src[0], kcb, ld, npanels, kr.nr)
}

//go:noescape
func padPlaneAVX2(dst, src *float32, rows, e, padT, padL, inH, inW, iw1 int)

// padPlane builds the stride-1 padded plane of newDWPlan (see
// padPlaneAVX2) and reports whether it could; plane and x bound what the
// assembly touches.
func (kr *gemmKernel) padPlane(plane, x []float32, rows, e, padT, padL, inH, inW, iw1 int) bool {
	if kr.id == kernGo || rows <= 0 || padL+iw1 > e {
		return false
	}
	_ = plane[rows*e-1]
	if iw1 > 0 {
		_ = x[inH*inW-1]
	}
	padPlaneAVX2(&plane[0], &x[0], rows, e, padT, padL, inH, inW, iw1)
	return true
}

//go:noescape
func dotAVX2(x, y *float32, n int) float32

//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)

// deinterleave2 sets even[j] = src[2j], odd[j] = src[2j+1] for j < len(even).
func (kr *gemmKernel) deinterleave2(even, odd, src []float32) {
	n := len(even)
	if n == 0 {
		return
	}
	odd, src = odd[:n], src[:2*n]
	if kr.id == kernGo {
		deinterleave2Go(even, odd, src)
		return
	}
	deinterleave2AVX2(&even[0], &odd[0], &src[0], n)
}

// dot returns Σ x[i]·y[i] over len(x) elements.
func dot(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	v := 0
	var s float32
	if activeKernel.id != kernGo && n >= 8 {
		v = n &^ 7
		s = dotAVX2(&x[0], &y[0], v)
	}
	return s + dotGo(x[v:], y[v:])
}

// axpy computes y += alpha·x over len(x) elements.
func axpy(alpha float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	v := 0
	if activeKernel.id != kernGo && n >= 8 {
		v = n &^ 7
		axpyAVX2(alpha, &x[0], &y[0], v)
	}
	axpyGo(alpha, x[v:], y[v:])
}
