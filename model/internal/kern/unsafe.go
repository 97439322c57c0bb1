package kern

import "unsafe"

// unsafeSlice views n elements starting at p. The kernels' parameter blocks
// carry raw pointers (the assembly reads them); the Go kernels turn them
// back into slices with this.
func unsafeSlice[T any](p *T, n int) []T { return unsafe.Slice(p, n) }
