package tensorcodec

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// randomShape returns a shape of rank 1..4 with at most maxN elements.
func randomShape(r *rand.Rand, maxN int) []int {
	rank := 1 + r.IntN(4)
	shape := make([]int, rank)
	n := 1
	for i := range shape {
		d := 1 + r.IntN(max(1, min(17, maxN/n)))
		shape[i] = d
		n *= d
	}
	return shape
}

// specialBits are float32 bit patterns that a lossless codec must keep.
var specialBits = []uint32{
	0x00000000, 0x80000000, // ±0
	0x7f800000, 0xff800000, // ±Inf
	0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xff812345, 0x7fc0dead, // NaNs: quiet, signalling, payloads
	0x00000001, 0x80000001, 0x007fffff, 0x00400000, // denormals
	0x00800000, 0x7f7fffff, 0xff7fffff, // smallest normal, ±max
}

// randomValues fills x with a mix of special values, runs of zeros, and
// random bit patterns of several kinds.
func randomValues(r *rand.Rand, x []float32) {
	mode := r.IntN(4)
	for i := range x {
		switch {
		case r.IntN(8) == 0:
			x[i] = math.Float32frombits(specialBits[r.IntN(len(specialBits))])
		case mode == 0:
			x[i] = math.Float32frombits(r.Uint32()) // any bits at all
		case mode == 1 && r.IntN(2) == 0:
			x[i] = 0
		default:
			x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(9)-4)))
		}
	}
}

func newDense(shape []int, x []float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(x))
}

// TestLosslessProperty: every lossless configuration round-trips random
// shapes and values bit-exactly, NaN payloads, ±Inf, -0 and denormals included.
func TestLosslessProperty(t *testing.T) {
	iters := 300
	if testing.Short() {
		iters = 60
	}
	configs := [][]EOption{
		{WithPreset(PresetLossless)},
		{WithLayout(LayoutPlain), WithEntropy(EntropyNone, 0)},
		{WithLayout(LayoutSparse), WithEntropy(EntropyS2, 1)},
		{WithLayout(LayoutSparse), WithEntropy(EntropyZstd, 2)},
		{WithLayout(LayoutShuffle), WithEntropy(EntropyHuff0, 0)},
		{WithLayout(LayoutPlain), WithEntropy(EntropyS2, 3)},
	}
	r := rand.New(rand.NewPCG(1, 2))
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	for ci, opts := range configs {
		enc, err := NewEncoder(opts...)
		if err != nil {
			t.Fatal(err)
		}
		var msg []byte
		var out []*tensor.Dense
		for it := 0; it < iters; it++ {
			nt := 1 + r.IntN(3)
			ins := make([]*tensor.Dense, nt)
			for k := range ins {
				shape := randomShape(r, 5000)
				n := 1
				for _, d := range shape {
					n *= d
				}
				x := make([]float32, n)
				randomValues(r, x)
				ins[k] = newDense(shape, x)
			}
			var st Stats
			msg, st, err = enc.Encode(msg[:0], ins...)
			if err != nil {
				t.Fatalf("config %d iter %d: encode: %v", ci, it, err)
			}
			if st.MaxAbsErr != 0 || st.SumSqErr != 0 || st.Bytes != len(msg) || st.Tensors != nt {
				t.Fatalf("config %d: stats %+v for lossless %d-byte message", ci, st, len(msg))
			}
			out, err = dec.Decode(out, msg)
			if err != nil {
				t.Fatalf("config %d iter %d: decode: %v", ci, it, err)
			}
			if len(out) != nt {
				t.Fatalf("decoded %d tensors, want %d", len(out), nt)
			}
			for k := range ins {
				if !sameShape(out[k].Shape(), ins[k].Shape()) {
					t.Fatalf("shape %v, want %v", out[k].Shape(), ins[k].Shape())
				}
				a, b := ins[k].Float32s(), out[k].Float32s()
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("config %d iter %d tensor %d elem %d: %08x -> %08x", ci, it, k, i,
							math.Float32bits(a[i]), math.Float32bits(b[i]))
					}
				}
			}
		}
	}
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
