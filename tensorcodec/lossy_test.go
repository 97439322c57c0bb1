package tensorcodec

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// lossyInput returns test tensors: a post-ReLU activation, a signed tensor
// with per-channel ranges that differ by orders of magnitude, and small odd
// shapes.
func lossyInputs(r *rand.Rand) []*tensor.Dense {
	ts := []*tensor.Dense{SyntheticActivation(7, 16, 20, 24)}
	for it := 0; it < 20; it++ {
		shape := randomShape(r, 3000)
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		inner := 1
		for _, d := range shape[min(2, len(shape)):] {
			inner *= d
		}
		for i := range x {
			scale := math.Pow(10, float64((i/inner)%5-2))
			x[i] = float32(r.NormFloat64() * scale)
			if r.IntN(3) == 0 {
				x[i] = 0
			}
		}
		ts = append(ts, newDense(shape, x))
	}
	return ts
}

// TestLossyBounds checks each preset's documented per-element error bound
// against the decoded values, that zeros stay zero, and that the Stats the
// encoder reports equal the error actually seen by the decoder.
func TestLossyBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ins := lossyInputs(r)
	for _, p := range Presets() {
		enc, _ := NewEncoder(WithPreset(p))
		dec, _ := NewDecoder()
		for ti, in := range ins {
			msg, st, err := enc.Encode(nil, in)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			hs, err := Inspect(msg, Limits{})
			if err != nil {
				t.Fatalf("%s: inspect: %v", p, err)
			}
			h := hs[0]
			out, err := dec.Decode(nil, msg)
			if err != nil {
				t.Fatalf("%s: decode: %v", p, err)
			}
			x, y := in.Float32s(), out[0].Float32s()
			outer, chans, inner := 1, 1, len(x)
			if h.Transform.perChannel() {
				outer, chans, inner = geometry(h.Shape(), h.Axis)
			}
			var maxE, se, sx float64
			for o := 0; o < outer; o++ {
				for c := 0; c < chans; c++ {
					for i := 0; i < inner; i++ {
						k := (o*chans+c)*inner + i
						e := math.Abs(float64(x[k]) - float64(y[k]))
						maxE = max(maxE, e)
						se += e * e
						sx += float64(x[k]) * float64(x[k])
						var bound float64
						ax := math.Abs(float64(x[k]))
						switch p {
						case PresetLossless:
							bound = 0
						case PresetFast:
							bound = max(ax*0x1p-11, 0x1p-25)
						default:
							s, _ := h.Param(c)
							bound = float64(s)*0.5*(1+1e-5) + ax*0x1p-22
						}
						if e > bound {
							t.Fatalf("%s tensor %d elem %d: x=%g x̂=%g err %g > bound %g", p, ti, k, x[k], y[k], e, bound)
						}
						if x[k] == 0 && y[k] != 0 && p != PresetFast {
							t.Fatalf("%s: zero became %g", p, y[k])
						}
					}
				}
			}
			if float32(maxE) != float32(st.MaxAbsErr) {
				t.Errorf("%s tensor %d: reported max error %g, measured %g", p, ti, st.MaxAbsErr, maxE)
			}
			if rel := relRMSE(se, sx); math.Abs(rel-st.RelRMSE) > 1e-3*rel+1e-12 {
				t.Errorf("%s tensor %d: reported rel RMSE %g, measured %g", p, ti, st.RelRMSE, rel)
			}
		}
	}
}

// TestNonFiniteLossy: NaN and ±Inf never break lossy encoders: NaN decodes
// to 0 in integer modes, ±Inf saturate, and the stats stay finite.
func TestNonFiniteLossy(t *testing.T) {
	x := []float32{1, -2, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0.5, 0, 3}
	for _, p := range Presets()[1:] {
		msg, st, err := EncodePreset(nil, p, newDense([]int{2, 4}, append([]float32(nil), x...)))
		if err != nil {
			t.Fatal(err)
		}
		if st.NonFinite != 3 || math.IsNaN(st.MaxAbsErr) || math.IsInf(st.MaxAbsErr, 0) || math.IsNaN(st.RelRMSE) {
			t.Fatalf("%s: stats %+v", p, st)
		}
		out, err := Decode(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		y := out[0].Float32s()
		switch p {
		case PresetFast:
			if !math.IsNaN(float64(y[2])) || !math.IsInf(float64(y[3]), 1) || !math.IsInf(float64(y[4]), -1) {
				t.Fatalf("%s: %v", p, y)
			}
		default:
			// ±Inf saturate to the finite range of their tensor or channel.
			if y[2] != 0 || y[3] <= 0 || y[4] > 0 || math.IsInf(float64(y[3]), 0) || math.IsInf(float64(y[4]), 0) {
				t.Fatalf("%s: %v", p, y)
			}
		}
	}
}

// TestHalfConversions checks fp16/bf16 rounding on exhaustive halves and
// on edge cases against float64 reference rounding.
func TestHalfConversions(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := f16ToF32(uint16(h))
		if f != f { // NaN: must stay NaN with the same payload top bits
			if g := f32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %04x -> %04x", h, g)
			}
			continue
		}
		if g := f32ToF16(f); g != uint16(h) {
			t.Fatalf("half %04x -> %g -> %04x", h, f, g)
		}
		if g, ff := f32ToF16Fast(f), f16ToF32Fast(uint16(h)); g != uint16(h) || math.Float32bits(ff) != math.Float32bits(f) {
			t.Fatalf("fast paths: half %04x -> %g / %g -> %04x", h, f, ff, g)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		x := math.Float32frombits(r.Uint32())
		if x != x || math.Abs(float64(x)) > 65504 {
			continue
		}
		y := f16ToF32(f32ToF16(x))
		if g := f32ToF16Fast(x); g != f32ToF16(x) {
			t.Fatalf("fp16 fast path(%g) = %04x, reference %04x", x, g, f32ToF16(x))
		}
		// The result must be one of the two neighbouring halves, the nearer one.
		e := math.Abs(float64(x) - float64(y))
		ax := math.Abs(float64(x))
		if e > max(ax*0x1p-11, 0x1p-25) {
			t.Fatalf("fp16(%g) = %g, error %g", x, y, e)
		}
		b := bf16ToF32(f32ToBF16(x))
		if eb := math.Abs(float64(x) - float64(b)); eb > max(ax*0x1p-8, 0x1p-134) {
			t.Fatalf("bf16(%g) = %g", x, b)
		}
	}
	if got := f16ToF32(f32ToF16(1e6)); got != 65504 {
		t.Fatalf("fp16 saturation: %g", got)
	}
	if got := f16ToF32(f32ToF16(-1e6)); got != -65504 {
		t.Fatalf("fp16 saturation: %g", got)
	}
	if got := bf16ToF32(f32ToBF16(math.MaxFloat32)); math.IsInf(float64(got), 0) {
		t.Fatalf("bf16 saturation: %g", got)
	}
	// Ties round to even: 1 + 2^-11 is halfway between 1 and 1+2^-10.
	if got := f16ToF32(f32ToF16(1 + 0x1p-11)); got != 1 {
		t.Fatalf("tie to even: %g", got)
	}
}

// TestPresetRatiosOnActivation pins the compression a synthetic post-ReLU
// activation gets, so regressions in a stage show up.
func TestPresetRatiosOnActivation(t *testing.T) {
	a := SyntheticActivation(1, 64, 56, 56)
	want := map[Preset]float64{PresetLossless: 1.5, PresetFast: 2.5, PresetInt8: 3.99, PresetInt8SparseZstd: 6, PresetInt4Zstd: 12}
	for _, p := range Presets() {
		_, st, err := EncodePreset(nil, p, a)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-17s %8d bytes  %5.2fx  max err %.3g  rel RMSE %.3g", p, st.Bytes, st.Ratio(), st.MaxAbsErr, st.RelRMSE)
		if st.Ratio() < want[p] {
			t.Errorf("%s: ratio %.2f below %.2f", p, st.Ratio(), want[p])
		}
	}
}

// TestMinMax checks the branch-free min/max against a plain loop.
func TestMinMax(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for it := 0; it < 2000; it++ {
		x := make([]float32, r.IntN(40))
		mode := r.IntN(4)
		for i := range x {
			x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
			switch {
			case mode == 1:
				x[i] = float32(math.Abs(float64(x[i])))
			case mode == 2:
				x[i] = -float32(math.Abs(float64(x[i])))
			case mode == 3 && r.IntN(3) == 0:
				x[i] = math.Float32frombits(0x80000000) // -0
			}
		}
		var wl, wh float32
		for _, v := range x {
			wl, wh = min(wl, v), max(wh, v)
		}
		l, h := minMax(x)
		if l != wl || h != wh {
			t.Fatalf("minMax(%v) = %g, %g; want %g, %g", x, l, h, wl, wh)
		}
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		l, h := minMax([]float32{1, bad, -1})
		if finite(l) && finite(h) {
			t.Fatalf("minMax hid %g: %g %g", bad, l, h)
		}
	}
}

// TestLevels checks WithLevels: with L steps every channel's codes take at
// most L+1 values, the error stays within s/2 for the s in the header
// (s = range/L), zeros stay exact, the reported Stats equal the error seen
// by an unchanged decoder, fewer steps make a smaller entropy-coded message,
// and WithPreset resets the option.
func TestLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 16*64)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if i%97 == 0 {
			x[i] = 0
		}
	}
	in := newDense([]int{1, 16, 64}, x)
	dec, _ := NewDecoder()
	for _, tf := range []Transform{TransformInt8, TransformInt8Channel, TransformInt4Channel} {
		prev := 0
		for _, levels := range []int{0, 127, 63, 31, 7, 1} {
			enc, err := NewEncoder(WithTransform(tf), WithLayout(LayoutPlain), WithEntropy(EntropyHuff0, 0), WithLevels(levels))
			if err != nil {
				t.Fatal(err)
			}
			msg, st, err := enc.Encode(nil, in)
			if err != nil {
				t.Fatalf("%s L=%d: %v", tf, levels, err)
			}
			hs, err := Inspect(msg, Limits{})
			if err != nil {
				t.Fatalf("%s L=%d: inspect: %v", tf, levels, err)
			}
			out, err := dec.Decode(nil, msg)
			if err != nil {
				t.Fatalf("%s L=%d: decode: %v", tf, levels, err)
			}
			h, y := hs[0], out[0].Float32s()
			full := 255
			if tf == TransformInt4Channel {
				full = 15
			}
			l := full
			if levels > 0 {
				l = min(levels, full)
			}
			outer, chans, inner := 1, 1, len(x)
			if tf.perChannel() {
				outer, chans, inner = geometry(h.Shape(), h.Axis)
			}
			var maxE, se, sx float64
			for c := 0; c < chans; c++ {
				s, _ := h.Param(c)
				seen := map[float32]bool{}
				for o := 0; o < outer; o++ {
					for i := 0; i < inner; i++ {
						k := (o*chans+c)*inner + i
						seen[y[k]] = true
						e := math.Abs(float64(x[k]) - float64(y[k]))
						if e > float64(s)*0.5*(1+1e-5)+math.Abs(float64(x[k]))*0x1p-22 {
							t.Fatalf("%s L=%d elem %d: x=%g x̂=%g err %g > s/2 = %g", tf, levels, k, x[k], y[k], e, s/2)
						}
						if x[k] == 0 && y[k] != 0 {
							t.Fatalf("%s L=%d: zero became %g", tf, levels, y[k])
						}
						maxE, se, sx = max(maxE, e), se+e*e, sx+float64(x[k])*float64(x[k])
					}
				}
				if len(seen) > l+1 {
					t.Fatalf("%s L=%d channel %d: %d distinct values, want ≤ %d", tf, levels, c, len(seen), l+1)
				}
			}
			if float32(maxE) != float32(st.MaxAbsErr) {
				t.Errorf("%s L=%d: reported max error %g, measured %g", tf, levels, st.MaxAbsErr, maxE)
			}
			if rel := relRMSE(se, sx); math.Abs(rel-st.RelRMSE) > 1e-3*rel+1e-12 {
				t.Errorf("%s L=%d: reported rel RMSE %g, measured %g", tf, levels, st.RelRMSE, rel)
			}
			if tf != TransformInt4Channel && prev > 0 && levels < 127 && len(msg) >= prev {
				t.Errorf("%s L=%d: %d bytes, not smaller than the %d of the step before", tf, levels, len(msg), prev)
			}
			prev = len(msg)
		}
	}
	for _, bad := range []int{-1, 256} {
		if _, err := NewEncoder(WithLevels(bad)); err == nil {
			t.Errorf("WithLevels(%d) accepted", bad)
		}
	}
	a, _ := NewEncoder(WithLevels(3), WithPreset(PresetInt8))
	b, _ := NewEncoder(WithPreset(PresetInt8))
	ma, _, _ := a.Encode(nil, in)
	mb, _, _ := b.Encode(nil, in)
	if string(ma) != string(mb) {
		t.Error("WithPreset after WithLevels kept the levels")
	}
}
