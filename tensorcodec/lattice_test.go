package tensorcodec

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// synthPixels returns c planes of h×w 8-bit pixels: a smooth random image
// (sparse, like MNIST strokes on black, when sparse is set) rounded to
// integers, deterministic in seed.
func synthPixels(seed uint64, c, h, w int, sparse bool) []uint8 {
	r := rand.New(rand.NewPCG(seed, 77))
	p := make([]uint8, c*h*w)
	for ch := 0; ch < c; ch++ {
		var fx, fy, ph [3]float64
		for i := range fx {
			fx[i], fy[i], ph[i] = r.Float64()*0.5, r.Float64()*0.5, r.Float64()*6.3
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 0.0
				for i := range fx {
					v += math.Sin(fx[i]*float64(x) + fy[i]*float64(y) + ph[i])
				}
				v = 128 + 60*v + 8*r.NormFloat64()
				if sparse {
					v = 400*(v/255-0.62) + 2*r.NormFloat64()
				}
				p[(ch*h+y)*w+x] = uint8(max(0, min(255, math.Round(v))))
			}
		}
	}
	return p
}

// pipeline turns pixels into float32 inputs the way common preprocessing
// does, per channel (mean, std indexed by channel).
func pipeline(pix []uint8, c int, f func(p uint8, ch int) float32) []float32 {
	x := make([]float32, len(pix))
	per := len(pix) / c
	for i, p := range pix {
		x[i] = f(p, i/per)
	}
	return x
}

// corrections returns the number of non-zero table corrections of a
// single-record lattice message encoded without entropy coding.
func corrections(t *testing.T, msg []byte) int {
	t.Helper()
	hs, err := Inspect(msg, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := hs[0]
	if !h.Transform.lattice() || h.Entropy != EntropyNone {
		return -1
	}
	payload := msg[len(msg)-h.PayloadLen:]
	q := 0
	for _, b := range payload[:(h.TableLen+7)/8] {
		q += bits.OnesCount8(b)
	}
	return q
}

func TestLatticeRoundTrip(t *testing.T) {
	imagenetMean := []float32{0.485, 0.456, 0.406}
	imagenetStd := []float32{0.229, 0.224, 0.225}
	digits := synthPixels(1, 1, 28, 28, true)
	rgb := synthPixels(2, 3, 32, 48, false)
	act := SyntheticActivation(3, 16, 20, 20)
	inv := float32(1) / float32(0.3081) // as dataset.Preprocess computes 1/std

	constChans := make([]float32, 16*8*8)
	for i := range constChans {
		constChans[i] = float32(i/64)*0.37 - 1
	}
	// Half the channels constant (non-zero), half real-valued.
	mixed := append([]float32(nil), act.Float32s()...)
	for c := 0; c < 16; c += 2 {
		for i := 0; i < 400; i++ {
			mixed[c*400+i] = 0.125 + float32(c)
		}
	}
	// int8-dequantised values (q - z)·s, as the int8 decoder writes them.
	deq := make([]float32, 4096)
	{
		r := rand.New(rand.NewPCG(4, 4))
		for i := range deq {
			q := max(0, min(255, int(r.NormFloat64()*30+40)))
			deq[i] = (float32(q) - 17) * 0.0123
		}
	}
	// Near-lattice: pixel/255 with a few values one ulp off (≤ 256 distinct
	// values still, so an exact table with corrections), and noise on
	// every value (too many distinct values for a table at all).
	near := pipeline(digits, 1, func(p uint8, _ int) float32 { return float32(p) / 255 })
	for i := 0; i < len(near); i += 97 {
		if near[i] != 0 {
			near[i] = math.Nextafter32(near[i], 2)
		}
	}
	noisy := pipeline(digits, 1, func(p uint8, _ int) float32 { return float32(p)/255 + 1e-4*float32(math.Sin(float64(p)*1.7)) })
	r := rand.New(rand.NewPCG(5, 5))
	for i := range noisy {
		noisy[i] += float32(r.NormFloat64()) * 1e-6
	}
	// Lattice values with NaN, ±Inf and -0 mixed in.
	special := pipeline(digits, 1, func(p uint8, _ int) float32 { return float32(p) / 255 })
	for i, b := range []uint32{0x7fc00001, 0xff800000, 0x7f800000, 0x80000000, 0x00000001} {
		special[100+50*i] = math.Float32frombits(b)
	}
	randomBits := make([]float32, 3000)
	for i := range randomBits {
		randomBits[i] = math.Float32frombits(r.Uint32())
	}

	cases := []struct {
		name  string
		shape []int
		x     []float32
		want  Transform // expected transform with the lossless preset
		corr  int       // expected corrections (-1: don't care)
	}{
		{"pixel/255 (torch ToTensor)", []int{1, 1, 28, 28}, pipeline(digits, 1, func(p uint8, _ int) float32 { return float32(p) / 255 }), TransformLattice, 0},
		{"pixel*(1/255) (dataset.Preprocess)", []int{1, 1, 28, 28}, pipeline(digits, 1, func(p uint8, _ int) float32 { return float32(p) * (1.0 / 255) }), TransformLattice, 0},
		{"normalised MNIST (torch)", []int{1, 1, 28, 28}, pipeline(digits, 1, func(p uint8, _ int) float32 { return (float32(p)/255 - 0.1307) / 0.3081 }), TransformLattice, 0},
		{"normalised MNIST (dataset.Preprocess)", []int{1, 1, 28, 28}, pipeline(digits, 1, func(p uint8, _ int) float32 {
			v := float32(p) * (1.0 / 255)
			return float32(v-0.1307) * inv
		}), TransformLattice, 0},
		{"ImageNet-normalised RGB (per channel)", []int{1, 3, 32, 48}, pipeline(rgb, 3, func(p uint8, c int) float32 {
			return (float32(p)/255 - imagenetMean[c]) / imagenetStd[c]
		}), TransformLatticeChannel, 0},
		{"PP-OCR (p/255-0.5)/0.5", []int{1, 3, 32, 48}, pipeline(rgb, 3, func(p uint8, _ int) float32 { return (float32(p)/255 - 0.5) / 0.5 }), TransformLattice, 0},
		{"int8 dequantised", []int{1, 4096}, deq, TransformLattice, 0},
		{"constant channels", []int{1, 16, 8, 8}, constChans, TransformXorChannel, -1},
		{"post-ReLU activation", act.Shape(), act.Float32s(), TransformNone, -1},
		{"constant + real channels", act.Shape(), mixed, TransformXorChannel, -1},
		{"near-lattice (1 ulp off)", []int{1, 1, 28, 28}, near, TransformLattice, -1},
		{"near-lattice (noise)", []int{1, 1, 28, 28}, noisy, TransformNone, -1},
		{"lattice with NaN, ±Inf, -0, denormal", []int{1, 1, 28, 28}, special, TransformLattice, -1},
		{"random bits", []int{3, 1000}, randomBits, TransformNone, -1},
	}
	dec, _ := NewDecoder()
	bare, _ := NewEncoder(WithEntropy(EntropyNone, 0))
	old, _ := NewEncoder(WithExactPaths(false))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newDense(c.shape, c.x)
			for _, enc := range []*Encoder{nil, bare} {
				var msg []byte
				var st Stats
				var err error
				if enc == nil {
					msg, st, err = Encode(nil, in)
				} else {
					msg, st, err = enc.Encode(nil, in)
				}
				if err != nil {
					t.Fatal(err)
				}
				if st.MaxAbsErr != 0 || st.NonFinite != 0 {
					t.Errorf("lossless stats %+v", st)
				}
				out, err := dec.Decode(nil, msg)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(in, out[0]) {
					x, y := in.Float32s(), out[0].Float32s()
					for i := range x {
						if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
							t.Fatalf("element %d: %08x -> %08x", i, math.Float32bits(x[i]), math.Float32bits(y[i]))
						}
					}
				}
				hs, _ := Inspect(msg, Limits{})
				if hs[0].Transform != c.want {
					t.Errorf("transform %v, want %v", hs[0].Transform, c.want)
				}
				if enc == bare {
					if c.corr >= 0 && corrections(t, msg) != c.corr {
						t.Errorf("%d table corrections, want %d (params %+v)", corrections(t, msg), c.corr, hs[0].Lattice(0))
					}
					// One byte per element at most, plus the header and
					// the table's correction bitmap.
					if hs := hs[0]; c.want.lattice() && c.corr == 0 && hs.PayloadLen > len(c.x)+(hs.TableLen+7)/8 {
						t.Errorf("lattice payload %d bytes for %d elements before entropy coding", hs.PayloadLen, len(c.x))
					}
				}
				if enc == nil {
					_, so, _ := old.Encode(nil, in)
					t.Logf("%-9v %6d bytes (%.2fx), without exact paths %6d (%.2fx)", hs[0].Transform, st.Bytes, st.Ratio(), so.Bytes, so.Ratio())
					if st.Bytes > so.Bytes+so.Bytes/200+8 { // frame headers of split zstd
						t.Errorf("exact paths made it larger: %d vs %d bytes", st.Bytes, so.Bytes)
					}
				}
			}
		})
	}
}

// TestLatticeExplicit: the lattice and xor transforms chosen with
// WithTransform round-trip every layout and entropy coder, fall back to
// none where the data do not allow a table, and a constant channel costs
// nothing but its parameters.
func TestLatticeExplicit(t *testing.T) {
	digits := pipeline(synthPixels(6, 2, 16, 16, true), 2, func(p uint8, c int) float32 { return float32(p)/255 - float32(c) })
	act := SyntheticActivation(7, 4, 24, 24) // > 256 distinct values per channel
	dec, _ := NewDecoder()
	for _, tf := range []Transform{TransformLattice, TransformLatticeChannel, TransformXorChannel} {
		for l := Layout(0); l < numLayouts; l++ {
			for en := Entropy(0); en < numEntropies; en++ {
				enc, err := NewEncoder(WithTransform(tf), WithLayout(l), WithEntropy(en, 0))
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range []*tensor.Dense{newDense([]int{1, 2, 16, 16}, digits), act} {
					msg, _, err := enc.Encode(nil, in)
					if err != nil {
						t.Fatal(err)
					}
					out, err := dec.Decode(nil, msg)
					if err != nil {
						t.Fatalf("%v/%v/%v: %v", tf, l, en, err)
					}
					if !sameBits(in, out[0]) {
						t.Fatalf("%v/%v/%v: bits changed", tf, l, en)
					}
					hs, _ := Inspect(msg, Limits{})
					want := tf
					if tf.lattice() && in == act {
						want = TransformNone
					}
					if hs[0].Transform != want {
						t.Errorf("%v/%v/%v: sent as %v", tf, l, en, hs[0].Transform)
					}
				}
			}
		}
	}
	// One constant channel among lattice channels: a one-entry table.
	x := append([]float32(nil), digits...)
	for i := 256; i < 512; i++ {
		x[i] = -0.75
	}
	enc, _ := NewEncoder(WithTransform(TransformLatticeChannel), WithEntropy(EntropyNone, 0))
	msg, _, _ := enc.Encode(nil, newDense([]int{1, 2, 16, 16}, x))
	hs, _ := Inspect(msg, Limits{})
	if p := hs[0].Lattice(1); p.Count != 1 || p.Value(0) != -0.75 {
		t.Errorf("constant channel: %+v", p)
	}
	// A lattice-channel request on a tensor with too many values per channel
	// on its axis, and an axis beyond the rank.
	if _, _, err := enc.Encode(nil, act); err != nil {
		t.Fatal(err)
	}
	enc, _ = NewEncoder(WithTransform(TransformXorChannel), WithChannelAxis(5))
	if _, _, err := enc.Encode(nil, act); !errors.Is(err, ErrShape) {
		t.Errorf("axis beyond rank: %v", err)
	}
}

// TestLatticeValue pins the prediction's arithmetic: each step rounded to
// float32, no fused multiply-add.
func TestLatticeValue(t *testing.T) {
	p := LatticeParams{DivA: true, DivC: true, Count: 256, A: 255, M: 0.1307, C: 0.3081}
	for k := 0; k < 256; k++ {
		want := (float32(k)/255 - 0.1307) / 0.3081
		if got := p.Value(k); got != want {
			t.Fatalf("Value(%d) = %v, want %v", k, got, want)
		}
	}
	q := LatticeParams{A: 1.0 / 255, M: 0.5, C: 2}
	for k := 0; k < 256; k++ {
		v := float32(float32(k) * (1.0 / 255))
		if got, want := q.Value(k), float32(v-0.5)*2; got != want {
			t.Fatalf("Value(%d) = %v, want %v", k, got, want)
		}
	}
}

func latticeParam(flags, count1, zero byte, a, m, c float32) []byte {
	b := []byte{flags, count1, zero}
	for _, f := range []float32{a, m, c} {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// TestLatticeHostile: malformed lattice and xor records give typed errors.
func TestLatticeHostile(t *testing.T) {
	// 6 elements, lattice with 4 entries (no corrections), plain codes.
	good := record{dtype: 1, transform: 6, dims: []uint64{2, 3}, params: latticeParam(0, 3, 0, 1, 0, 1),
		rawLen: 7, payloadLen: 7, payload: []byte{0x00, 0, 1, 2, 3, 0, 1}}
	mod := func(f func(*record)) record {
		r := good
		r.payload = append([]byte(nil), good.payload...)
		f(&r)
		return r
	}
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"valid control", message(1, good), nil},
		{"unknown flag", message(1, mod(func(r *record) { r.params = latticeParam(4, 3, 0, 1, 0, 1) })), ErrCorrupt},
		{"zero index ≥ count", message(1, mod(func(r *record) { r.params = latticeParam(0, 3, 4, 1, 0, 1) })), ErrCorrupt},
		{"NaN a", message(1, mod(func(r *record) { r.params = latticeParam(0, 3, 0, float32(math.NaN()), 0, 1) })), ErrCorrupt},
		{"zero a", message(1, mod(func(r *record) { r.params = latticeParam(0, 3, 0, 0, 0, 1) })), ErrCorrupt},
		{"Inf m", message(1, mod(func(r *record) { r.params = latticeParam(0, 3, 0, 1, float32(math.Inf(1)), 1) })), ErrCorrupt},
		{"zero c", message(1, mod(func(r *record) { r.params = latticeParam(3, 3, 0, 1, 0, 0) })), ErrCorrupt},
		{"params truncated", message(1, mod(func(r *record) { r.params = r.params[:9]; r.rawLen, r.payloadLen, r.payload = 0, 0, nil })), ErrTruncated},
		{"code ≥ count", message(1, mod(func(r *record) { r.payload[6] = 4 })), ErrCorrupt},
		{"correction bitmap padding", message(1, mod(func(r *record) { r.payload[0] = 0x10 })), ErrCorrupt},
		{"corrections missing", message(1, mod(func(r *record) { r.payload[0] = 0x01 })), ErrCorrupt},
		{"one correction", message(1, mod(func(r *record) {
			r.payload = []byte{0x02, 0, 0, 0x80, 0, 0, 1, 2, 3, 0, 1} // entry 1 → bits(1) ^ 0x00800000
			r.rawLen, r.payloadLen = 11, 11
		})), nil},
		{"raw length too short", message(1, mod(func(r *record) { r.rawLen, r.payloadLen, r.payload = 6, 6, r.payload[:6] })), ErrCorrupt},
		{"sparse code ≥ count", message(1, mod(func(r *record) {
			r.layout = 2
			r.payload = []byte{0x00, 0x3e, 1, 2, 3, 9, 1} // bits 1..5, code 9
			r.rawLen, r.payloadLen = 7, 7
		})), ErrCorrupt},
		{"sparse popcount", message(1, mod(func(r *record) {
			r.layout = 2
			r.payload = []byte{0x00, 0x3e, 1, 2, 3, 1}
			r.rawLen, r.payloadLen = 6, 6
		})), ErrCorrupt},
		{"tables beyond the byte limit", message(1, record{dtype: 1, transform: 7, dims: []uint64{1, 1 << 16}, axis: u64(1),
			params: bytesRepeat(latticeParam(0, 255, 0, 1, 0, 1), 1<<16), rawLen: 1 << 17, payloadLen: 1 << 17}), ErrLimit},
		{"xor valid", message(1, record{dtype: 1, transform: 8, dims: []uint64{2, 3}, axis: u64(0),
			params: make([]byte, 8), rawLen: 24, payloadLen: 24, payload: make([]byte, 24)}), nil},
		{"xor params truncated", message(1, record{dtype: 1, transform: 8, dims: []uint64{2, 3}, axis: u64(0),
			params: make([]byte, 4)}), ErrCorrupt},
	}
	for _, c := range cases {
		d, _ := NewDecoder(WithLimits(0, 1<<20))
		out, err := d.Decode(nil, c.msg)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			if c.name == "one correction" && (out[0].Float32s()[1] != math.Float32frombits(math.Float32bits(1)^0x00800000) || out[0].Float32s()[2] != 2) {
				t.Errorf("%s: decoded %v", c.name, out[0].Float32s())
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func bytesRepeat(b []byte, n int) []byte {
	out := make([]byte, 0, len(b)*n)
	for i := 0; i < n; i++ {
		out = append(out, b...)
	}
	return out
}

// TestExactPathsSteadyState: the exact paths allocate nothing once warm and
// the parameter cache keeps fitting a stream of images of one pipeline.
func TestExactPathsSteadyState(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	mk := func(seed uint64) *tensor.Dense {
		return newDense([]int{1, 3, 24, 24}, pipeline(synthPixels(seed, 3, 24, 24, false), 3, func(p uint8, c int) float32 {
			return (float32(p)/255 - []float32{0.485, 0.456, 0.406}[c]) / []float32{0.229, 0.224, 0.225}[c]
		}))
	}
	ins := []*tensor.Dense{mk(1), mk(2), SyntheticActivation(1, 8, 16, 16)}
	msg, _, _ := enc.Encode(nil, ins...)
	out, _ := dec.Decode(nil, msg)
	i := 0
	allocs := testing.AllocsPerRun(20, func() {
		i++
		ins[0] = mk(uint64(i))
		msg, _, _ = enc.Encode(msg[:0], ins...)
		out, _ = dec.Decode(out, msg)
	})
	// mk allocates the new image (its slice, the tensor); nothing else may.
	base := testing.AllocsPerRun(20, func() { i++; ins[0] = mk(uint64(i)) })
	if allocs > base {
		t.Errorf("%.1f allocations per encode+decode beyond the input's %.1f", allocs-base, base)
	}
	msg, _, _ = enc.Encode(msg[:0], ins...)
	out, _ = dec.Decode(out, msg)
	for k := range ins {
		if !sameBits(out[k], ins[k]) {
			t.Fatalf("tensor %d: bits changed", k)
		}
	}
}

// exactBenchData are the tensors the exact-path benchmarks run on:
// 8-bit images through common pipelines, and activations.
func exactBenchData() []struct {
	name string
	t    *tensor.Dense
} {
	mean, std := []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
	digits := make([]uint8, 0, 64*784)
	for i := uint64(0); i < 64; i++ {
		digits = append(digits, synthPixels(i, 1, 28, 28, true)...)
	}
	act := SyntheticActivation(1, 64, 56, 56)
	// A convolution's output over a blank background: the bias, per channel.
	bias := append([]float32(nil), act.Float32s()...)
	for c := 0; c < 64; c++ {
		for i := c * 3136; i < (c+1)*3136; i++ {
			if bias[i] == 0 {
				bias[i] = 0.01*float32(c) - 0.3
			}
		}
	}
	return []struct {
		name string
		t    *tensor.Dense
	}{
		{"mnist-batch64-p/255", newDense([]int{64, 1, 28, 28}, pipeline(digits, 1, func(p uint8, _ int) float32 { return float32(p) / 255 }))},
		{"rgb-224-imagenet-norm", newDense([]int{1, 3, 224, 224}, pipeline(synthPixels(9, 3, 224, 224, false), 3, func(p uint8, c int) float32 {
			return (float32(p)/255 - mean[c]) / std[c]
		}))},
		{"post-relu-64x56x56", act},
		{"bias-background-64x56x56", newDense(act.Shape(), bias)},
	}
}

// BenchmarkExactPaths: encode and decode speed (MB/s of float32) and ratio
// of the lossless preset with and without the exact paths, on the same data.
func BenchmarkExactPaths(b *testing.B) {
	for _, d := range exactBenchData() {
		raw := 4 * len(d.t.Float32s())
		for _, exact := range []bool{true, false} {
			mode := "exact"
			if !exact {
				mode = "old"
			}
			enc, _ := NewEncoder(WithExactPaths(exact))
			msg, st, _ := enc.Encode(nil, d.t)
			b.Run(d.name+"/"+mode+"/encode", func(b *testing.B) {
				b.SetBytes(int64(raw))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					msg, _, _ = enc.Encode(msg[:0], d.t)
				}
				b.ReportMetric(st.Ratio(), "ratio")
			})
			b.Run(d.name+"/"+mode+"/decode", func(b *testing.B) {
				dec, _ := NewDecoder()
				out, _ := dec.Decode(nil, msg)
				b.SetBytes(int64(raw))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					out, _ = dec.Decode(out, msg)
				}
				b.ReportMetric(st.Ratio(), "ratio")
			})
		}
	}
}
