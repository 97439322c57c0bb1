//go:build amd64 && !noasm && gc

package kern

// expShiftAsm runs ExpShift on the longest prefix that is a multiple of 8
// values, when the CPU has AVX2, and returns its length.
func expShiftAsm(y, x []float32, m float32) int {
	n := len(y) &^ 7
	if !hasAsm || n == 0 {
		return 0
	}
	expShiftAVX2(&y[0], &x[0], n, m, &expConsts[0])
	return n
}

//go:noescape
func expShiftAVX2(y, x *float32, n int, m float32, consts *float32)
