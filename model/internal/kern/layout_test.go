package kern

import (
	"testing"
	"unsafe"
)

// TestParamLayout pins the field offsets the assembly kernels read.
func TestParamLayout(t *testing.T) {
	var k kparams
	var d dwparams
	var e epilogue
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"kparams.a", unsafe.Offsetof(k.a), 0},
		{"kparams.b", unsafe.Offsetof(k.b), 8},
		{"kparams.c", unsafe.Offsetof(k.c), 16},
		{"kparams.bias", unsafe.Offsetof(k.bias), 24},
		{"kparams.k", unsafe.Offsetof(k.k), 32},
		{"kparams.ldc", unsafe.Offsetof(k.ldc), 40},
		{"kparams.flags", unsafe.Offsetof(k.flags), 48},
		{"kparams.ep", unsafe.Offsetof(k.ep), 56},
		{"epilogue.ea", unsafe.Offsetof(e.ea), 0},
		{"epilogue.eb", unsafe.Offsetof(e.eb), 4},
		{"epilogue.lo", unsafe.Offsetof(e.lo), 8},
		{"epilogue.hi", unsafe.Offsetof(e.hi), 12},
		{"epilogue.mulx", unsafe.Offsetof(e.mulx), 16},
		{"dwparams.dst", unsafe.Offsetof(d.dst), 0},
		{"dwparams.src", unsafe.Offsetof(d.src), 8},
		{"dwparams.offs", unsafe.Offsetof(d.offs), 16},
		{"dwparams.w", unsafe.Offsetof(d.w), 24},
		{"dwparams.n", unsafe.Offsetof(d.n), 32},
		{"dwparams.ntaps", unsafe.Offsetof(d.ntaps), 40},
		{"dwparams.bias", unsafe.Offsetof(d.bias), 48},
		{"dwparams.act", unsafe.Offsetof(d.act), 52},
		{"dwparams.rows", unsafe.Offsetof(d.rows), 56},
		{"dwparams.srcPitch", unsafe.Offsetof(d.srcPitch), 64},
		{"dwparams.dstPitch", unsafe.Offsetof(d.dstPitch), 72},
		{"dwparams.ep", unsafe.Offsetof(d.ep), 80},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s at offset %d, the assembly reads %d", c.name, c.got, c.want)
		}
	}
}
