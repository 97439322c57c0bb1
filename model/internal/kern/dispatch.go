package kern

// activeKernel is the kernel family NewConv and Sgemm use: the fastest one
// this CPU runs. Only tests change it (through setKernel), to compare every
// family against the reference.
var activeKernel = asmKernel

func currentKernel() *gemmKernel { return activeKernel }

// setKernel makes kr the active kernel family and returns the previous one,
// so tests can write defer setKernel(setKernel(kr)).
func setKernel(kr *gemmKernel) *gemmKernel {
	old := activeKernel
	activeKernel = kr
	return old
}
