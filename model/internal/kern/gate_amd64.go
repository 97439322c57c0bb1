//go:build amd64 && !noasm && gc

package kern

// affineClipGateAsm runs AffineClipGate on the longest prefix of x that is
// a multiple of 8 values, when the CPU has AVX2, and returns its length.
func affineClipGateAsm(x []float32, g *Gate) int {
	n := len(x) &^ 7
	if !hasAsm || n == 0 {
		return 0
	}
	affineClipGateAVX2(&x[0], n, g)
	return n
}

//go:noescape
func affineClipGateAVX2(x *float32, n int, gate *Gate)
