package model

import (
	"math"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// Branch-free float32 max/min/clamp through the IEEE-754 ordering trick:
// mapping a float's bits to an int32 that sorts like the float (negative
// values have their magnitude bits flipped) lets integer compares — which
// the compiler turns into conditional moves — replace Go's float min/max
// builtins (several times slower: they special-case NaN and signed zeros)
// and unpredictable branches. NaN sorts above +Inf (positive NaN) or below
// -Inf (negative NaN); -0 sorts below +0.

// ordOf maps v to an int32 ordered like v.
func ordOf(v float32) int32 {
	u := int32(math.Float32bits(v))
	return u ^ ((u >> 31) & 0x7fffffff)
}

// fromOrd inverts ordOf.
func fromOrd(k int32) float32 {
	return math.Float32frombits(uint32(k ^ ((k >> 31) & 0x7fffffff)))
}

// clamper clamps to [lo, hi] without branches on the data. It is the
// arithmetic of a standalone Clip and of the fused HardSwish chain, so the
// two agree bit for bit. With lo = 0 (ReLU6, HardSwish's clip) it works on
// the bits directly: negative values (and -0) become +0, then an integer
// min against hi's bits (non-negative floats order like their bits). Else
// it goes through ordOf. NaN is clamped (to hi, or lo for a negative NaN).
// Measured against branches: 3.6× faster on N(0,2) data (half below lo),
// 1.4× on data mostly inside the range.
type clamper struct {
	zeroLo bool
	lo, hi int32 // ordOf(lo), ordOf(hi); hi is also hi's bits when zeroLo
}

func newClamper(lo, hi float32) clamper {
	return clamper{zeroLo: lo == 0 && hi >= 0, lo: ordOf(lo), hi: ordOf(hi)}
}

func (c clamper) clamp(v float32) float32 {
	if c.zeroLo {
		u := int32(math.Float32bits(v))
		u &^= u >> 31
		return math.Float32frombits(uint32(min(u, c.hi)))
	}
	return fromOrd(min(max(ordOf(v), c.lo), c.hi))
}

// relu32 is max(v, 0) with -0 and negative NaN mapped to +0.
func relu32(v float32) float32 {
	u := int32(math.Float32bits(v))
	return math.Float32frombits(uint32(u &^ (u >> 31)))
}

// exp32 is e^x in float32 arithmetic, as kern.ExpShift computes it (within
// 2 ulp of math.Exp; 0 where e^x is subnormal).
func exp32(x float32) float32 {
	var y [1]float32
	kern.ExpShift(y[:], []float32{x}, 0)
	return y[0]
}

// expShift sets y[i] = e^(x[i]−m) (kern.ExpShift) and returns the sum of
// the y[i] in float64. y and x may be the same slice.
func expShift(y, x []float32, m float32) float64 {
	kern.ExpShift(y, x, m)
	var sum float64
	for _, e := range y {
		sum += float64(e)
	}
	return sum
}
