package kern

import (
	"math"
	"math/rand"
	"testing"
)

// TestAffineClipGate compares AffineClipGate (AVX2 where the CPU has it)
// with its Go form and with float64 arithmetic rounded step by step, bit
// for bit, on lengths that leave every tail and on ±0, ±Inf, NaN of both
// signs and values around the clip's bounds.
func TestAffineClipGate(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	negNaN := math.Float32frombits(0xffc00000)
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), negNaN,
		-3, 3, -3.0000002, 2.9999998, 1e-38, -1e-38, 6, 9}
	gates := []Gate{
		{PS: 1.7, PB: -0.3, A: 3, Hi: 6, M: 1.0 / 6, QS: 0.9, QB: 0.25},
		{PS: 1, PB: float32(math.Copysign(0, -1)), A: 3, Hi: 6, M: 1.0 / 6, QS: 1, QB: float32(math.Copysign(0, -1))},
		{PS: -2, PB: 0.5, A: 0.5, Hi: 1, M: 2, QS: -1, QB: 0},
	}
	ref := func(v float32, g Gate) float32 {
		v = float32(float64(v)*float64(g.PS)) + g.PB
		u := v + g.A
		switch {
		case u != u && math.Signbit(float64(u)), u < 0, u == 0:
			u = 0
		case u != u, u > g.Hi:
			u = g.Hi
		}
		w := float32(float64(v) * float64(u))
		w = float32(float64(w) * float64(g.M))
		return float32(float64(w)*float64(g.QS)) + g.QB
	}
	for _, g := range gates {
		for n := 0; n <= 41; n++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 4)
			}
			copy(x, special[:min(n, len(special))])
			if n > len(special) {
				copy(x[n-len(special):], special) // specials in the tail too
			}
			got := append([]float32(nil), x...)
			AffineClipGate(got, g)
			goForm := append([]float32(nil), x...)
			affineClipGateGo(goForm, g)
			for i := range x {
				want := ref(x[i], g)
				if math.Float32bits(got[i]) != math.Float32bits(goForm[i]) {
					t.Fatalf("gate %+v, n=%d: x[%d]=%v: AffineClipGate %v, Go form %v", g, n, i, x[i], got[i], goForm[i])
				}
				if math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
					t.Fatalf("gate %+v, n=%d: x[%d]=%v: got %v, step-by-step %v", g, n, i, x[i], got[i], want)
				}
			}
		}
	}
	if n := testing.AllocsPerRun(10, func() { AffineClipGate(make([]float32, 0), gates[0]) }); n != 0 {
		t.Errorf("AffineClipGate allocates %v times", n)
	}
}

func BenchmarkAffineClipGate(b *testing.B) {
	src := make([]float32, 4096)
	for i := range src {
		src[i] = float32(i%17) - 8
	}
	x := make([]float32, len(src))
	g := Gate{PS: 1, PB: 0, A: 3, Hi: 6, M: 1.0 / 6, QS: 1, QB: 0}
	b.SetBytes(int64(4 * len(x)))
	b.Run("dispatch", func(b *testing.B) {
		for b.Loop() {
			copy(x, src) // in place: keep the values from drifting to subnormals
			AffineClipGate(x, g)
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			copy(x, src)
			affineClipGateGo(x, g)
		}
	})
}
