//go:build !(amd64 || arm64) || noasm || !gc

package kern

const hasAsm = false

var asmKernel = goKernel

// kernels lists the kernel families this CPU runs.
func kernels() []*gemmKernel { return []*gemmKernel{goKernel} }

func (kr *gemmKernel) callMicro(p *kparams)               { microGo(p) }
func (kr *gemmKernel) callMicroEdge(p *kparams, cols int) { microGo(p) }
func (kr *gemmKernel) callDW(p *dwparams, kind dwKind)    { dwGo(p) }

func dot(x, y []float32) float32         { return dotGo(x, y) }
func axpy(alpha float32, x, y []float32) { axpyGo(alpha, x, y) }

func (kr *gemmKernel) deinterleave2(even, odd, src []float32) { deinterleave2Go(even, odd, src) }

func (kr *gemmKernel) packBFull(dst, src []float32, kcb, ld, npanels int) {
	panic("kern: packBFull without assembly")
}

func (kr *gemmKernel) padPlane(plane, x []float32, rows, e, padT, padL, inH, inW, iw1 int) bool {
	return false
}
