package tensorcodec

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestAllStageCombinations round-trips every transform × layout × entropy
// combination (and channel axes) on random data with special values. The
// lossless transform must be bit-exact; lossy ones must decode to exactly
// the values the encoder's error report describes, and keep exact zeros
// when integer-quantised.
func TestAllStageCombinations(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	iters := 6
	if testing.Short() {
		iters = 2
	}
	dec, _ := NewDecoder()
	for tf := Transform(0); tf < numTransforms; tf++ {
		for l := Layout(0); l < numLayouts; l++ {
			for en := Entropy(0); en < numEntropies; en++ {
				for it := 0; it < iters; it++ {
					shape := randomShape(r, 4000)
					n := 1
					for _, d := range shape {
						n *= d
					}
					x := make([]float32, n)
					randomValues(r, x)
					if !tf.Lossless() && it%2 == 0 { // mostly-finite data, post-ReLU style
						for i := range x {
							if !finite(x[i]) || x[i] < 0 {
								x[i] = 0
							}
						}
					}
					in := newDense(shape, x)
					enc, err := NewEncoder(WithTransform(tf), WithLayout(l), WithEntropy(en, 1+it%2), WithChannelAxis(r.IntN(len(shape)+1)-1))
					if err != nil {
						t.Fatal(err)
					}
					msg, st, err := enc.Encode(nil, in)
					if err != nil {
						t.Fatalf("%v/%v/%v: %v", tf, l, en, err)
					}
					out, err := dec.Decode(nil, msg)
					if err != nil {
						t.Fatalf("%v/%v/%v shape %v: %v", tf, l, en, shape, err)
					}
					checkAgainstStats(t, tf, in, out[0], st)
				}
			}
		}
	}
}

func checkAgainstStats(t *testing.T, tf Transform, in, out *tensor.Dense, st Stats) {
	t.Helper()
	if !sameShape(in.Shape(), out.Shape()) {
		t.Fatalf("%v: shape %v -> %v", tf, in.Shape(), out.Shape())
	}
	x, y := in.Float32s(), out.Float32s()
	if tf.Lossless() {
		if !sameBits(in, out) {
			t.Fatalf("lossless transform changed bits")
		}
		return
	}
	var maxE float64
	nonFinite := 0
	for i := range x {
		if !finite(x[i]) {
			nonFinite++
			continue
		}
		maxE = max(maxE, math.Abs(float64(x[i])-float64(y[i])))
		if tf.quantised() && x[i] == 0 && y[i] != 0 {
			t.Fatalf("%v: zero decoded as %g", tf, y[i])
		}
	}
	if float32(maxE) != float32(st.MaxAbsErr) || nonFinite != st.NonFinite {
		t.Fatalf("%v: decoder sees max error %g (%d non-finite), encoder reported %g (%d)", tf, maxE, nonFinite, st.MaxAbsErr, st.NonFinite)
	}
}
