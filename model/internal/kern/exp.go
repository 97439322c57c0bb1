package kern

import "math"

// expConsts are ExpShift's constants, each repeated over 8 lanes for the
// AVX2 form: log2(e), 0.5, ln2 split in two (c1 + c2), the polynomial's
// six coefficients, 1, the bounds, +Inf, and the exponent bias 127 (as
// int32 bits).
var expConsts = func() (c [15 * 8]float32) {
	vals := [15]float32{
		1.44269504088896341, 0.5, 0.693359375, -2.12194440e-4,
		1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
		1, expHi, expLo, float32(math.Inf(1)), math.Float32frombits(127),
	}
	for i, v := range vals {
		for l := 0; l < 8; l++ {
			c[i*8+l] = v
		}
	}
	return c
}()

const (
	expHi = 88.72283
	expLo = -87.33654
)

// ExpShift sets y[i] = e^(x[i]−m) for every i (len(x) ≥ len(y); y and x
// may be the same slice), in float32 arithmetic: Cephes' expf, t = n·ln2 + r
// with |r| ≤ ln2/2, a degree-6 polynomial for e^r, then n added to the
// exponent in two steps. It is within 2 ulp of e^t rounded to float32;
// where e^t is subnormal (t < −87.3) it gives 0, above 88.7 +Inf, and NaN
// for NaN. Every operation rounds on its own (no FMA), so the AVX2 form (8
// lanes at a time, used when the CPU has it) gives the same bits as the Go
// form.
func ExpShift(y, x []float32, m float32) {
	x = x[:len(y)]
	n := expShiftAsm(y, x, m)
	expShiftGo(y[n:], x[n:], m)
}

func expShiftGo(y, x []float32, m float32) {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	for i, v := range x[:len(y)] {
		t := v - m
		var e float32
		switch {
		case t != t:
			e = t
		case t > expHi:
			e = float32(math.Inf(1))
		case t < expLo:
			e = 0
		default:
			// The float32 conversions keep every product its own rounding.
			fx := float32(math.Floor(float64(float32(t*log2e) + 0.5)))
			r := t - float32(fx*c1)
			r -= float32(fx * c2)
			z := r * r
			p := float32(1.9875691500e-4)
			p = float32(p*r) + 1.3981999507e-3
			p = float32(p*r) + 8.3334519073e-3
			p = float32(p*r) + 4.1665795894e-2
			p = float32(p*r) + 1.6666665459e-1
			p = float32(p*r) + 5.0000001201e-1
			e = float32(p*z) + r + 1
			n := int32(fx)
			h := n / 2
			e *= math.Float32frombits(uint32(h+127) << 23)
			e *= math.Float32frombits(uint32(n-h+127) << 23)
		}
		y[i] = e
	}
}
