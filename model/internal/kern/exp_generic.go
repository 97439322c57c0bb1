//go:build !amd64 || noasm || !gc

package kern

func expShiftAsm(y, x []float32, m float32) int { return 0 }
