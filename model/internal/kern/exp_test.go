package kern

import (
	"math"
	"math/rand"
	"testing"
)

// TestExpShift checks ExpShift (AVX2 where the CPU has it) against its Go
// form bit for bit, and against math.Exp within 2 ulp, over [-90, 89] and
// on ±0, ±Inf, NaN and the bounds, for lengths that leave every tail.
func TestExpShift(t *testing.T) {
	var x []float32
	for v := float32(-90); v <= 89; v += 0.000731 {
		x = append(x, v)
	}
	x = append(x, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		expHi, expLo, math.Nextafter32(expHi, 100), math.Nextafter32(expLo, -100), 1e-30, -1e-30)
	rng := rand.New(rand.NewSource(3))
	for _, m := range []float32{0, 3.5, -2} {
		for _, n := range []int{0, 1, 7, 8, 9, 15, 17, len(x)} {
			xs := x[:n]
			if n < len(x) {
				xs = append([]float32(nil), x[len(x)-n:]...) // the specials
				rng.Shuffle(n, func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
			}
			got := make([]float32, n)
			ExpShift(got, xs, m)
			ref := make([]float32, n)
			expShiftGo(ref, xs, m)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) && !(got[i] != got[i] && ref[i] != ref[i]) {
					t.Fatalf("m=%v n=%d: ExpShift(%v) = %v, Go form %v", m, n, xs[i], got[i], ref[i])
				}
			}
		}
	}
	y := make([]float32, len(x))
	ExpShift(y, x, 0)
	worst := 0.0
	for i, v := range x {
		want := float32(math.Exp(float64(v)))
		switch {
		case v != v:
			if y[i] == y[i] {
				t.Errorf("ExpShift(NaN) = %v", y[i])
			}
		case want == 0 || want < 0x1p-126 || math.IsInf(float64(want), 1):
			if y[i] != want && !(want < 0x1p-126 && y[i] == 0) {
				t.Errorf("ExpShift(%v) = %v, want %v", v, y[i], want)
			}
		default:
			worst = math.Max(worst, math.Abs(float64(y[i])-float64(want))/float64(want))
		}
	}
	if worst > 2.5e-7 {
		t.Errorf("max relative error %.3g, want ≤ 2.5e-7 (2 ulp)", worst)
	}
	// In place.
	z := append([]float32(nil), x...)
	ExpShift(z, z, 0)
	for i := range z {
		if math.Float32bits(z[i]) != math.Float32bits(y[i]) && !(z[i] != z[i]) {
			t.Fatalf("in place: %v, out of place %v", z[i], y[i])
		}
	}
}

func BenchmarkExpShift(b *testing.B) {
	x := make([]float32, 6625)
	for i := range x {
		x[i] = float32(i%200) * -0.05
	}
	y := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	b.Run("dispatch", func(b *testing.B) {
		for b.Loop() {
			ExpShift(y, x, 0)
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			expShiftGo(y, x, 0)
		}
	})
}
