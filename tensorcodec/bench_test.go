package tensorcodec

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// oneMB is a 1 MiB post-ReLU activation (1×64×64×64 float32).
func oneMB() *tensor.Dense { return SyntheticActivation(1, 64, 64, 64) }

// TestSteadyStateAllocs: after warm-up, encoding and decoding a message
// (one-shot and streaming) allocates nothing, for every preset.
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc counting is slow-ish; covered by the benchmarks too")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocations are expected")
	}
	a := SyntheticActivation(1, 16, 32, 32)
	for _, p := range append(Presets(), numPresets) {
		opts := []EOption{WithPreset(p)}
		if p == numPresets { // huff0 + bf16 + shuffle
			opts = []EOption{WithTransform(TransformBF16), WithLayout(LayoutShuffle), WithEntropy(EntropyHuff0, 0)}
		}
		enc, err := NewEncoder(opts...)
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := NewDecoder()
		msg, _, _ := enc.Encode(nil, a)
		out, _ := dec.Decode(nil, msg)
		encAllocs := testing.AllocsPerRun(20, func() {
			msg, _, _ = enc.Encode(msg[:0], a)
		})
		decAllocs := testing.AllocsPerRun(20, func() {
			out, _ = dec.Decode(out, msg)
		})
		var buf bytes.Buffer
		buf.Grow(4 * len(msg))
		w, _ := NewWriter(&buf, opts...)
		r, _ := NewReader(&buf)
		w.WriteMessage(a)
		out, _ = r.ReadMessage(out)
		streamAllocs := testing.AllocsPerRun(20, func() {
			buf.Reset()
			w.WriteMessage(a)
			out, _ = r.ReadMessage(out)
		})
		t.Logf("%-17v encode %.1f  decode %.1f  stream %.1f allocs/op", p, encAllocs, decAllocs, streamAllocs)
		limit := 0.0
		if p == numPresets {
			limit = 2 // huff0's Scratch.Decoder() allocates one small struct per 128 KiB block
		}
		if encAllocs > 0 || decAllocs > limit || streamAllocs > limit {
			t.Errorf("preset %v: encode %.1f, decode %.1f, stream %.1f allocs/op", p, encAllocs, decAllocs, streamAllocs)
		}
	}
}

// memmoveSpeed measures copy() of n bytes in bytes per second, for the
// ratio every benchmark reports.
func memmoveSpeed(n int) float64 {
	a, b := make([]byte, n), make([]byte, n)
	iters := 0
	start := time.Now()
	for time.Since(start) < 20*time.Millisecond {
		for i := 0; i < 16; i++ {
			copy(b, a)
		}
		iters += 16
	}
	return float64(n) * float64(iters) / time.Since(start).Seconds()
}

func reportVsMemmove(b *testing.B, raw int, memmove float64) {
	speed := float64(raw) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(speed/memmove, "x-memmove")
	b.ReportMetric(memmove/1e6, "memmove-MB/s")
}

func BenchmarkEncode(b *testing.B) {
	a := oneMB()
	raw := 4 * len(a.Float32s())
	for _, p := range Presets() {
		b.Run(p.String(), func(b *testing.B) {
			enc, _ := NewEncoder(WithPreset(p))
			msg, st, _ := enc.Encode(nil, a)
			memmove := memmoveSpeed(raw)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg, _, _ = enc.Encode(msg[:0], a)
			}
			b.StopTimer()
			reportVsMemmove(b, raw, memmove)
			b.ReportMetric(st.Ratio(), "ratio")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	a := oneMB()
	raw := 4 * len(a.Float32s())
	for _, p := range Presets() {
		b.Run(p.String(), func(b *testing.B) {
			msg, st, _ := EncodePreset(nil, p, a)
			dec, _ := NewDecoder()
			out, _ := dec.Decode(nil, msg)
			memmove := memmoveSpeed(raw)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out, _ = dec.Decode(out, msg)
			}
			b.StopTimer()
			reportVsMemmove(b, raw, memmove)
			b.ReportMetric(st.Ratio(), "ratio")
		})
	}
}

// BenchmarkStream is the Writer → Reader path transport uses.
func BenchmarkStream(b *testing.B) {
	a := oneMB()
	raw := 4 * len(a.Float32s())
	for _, p := range []Preset{PresetLossless, PresetInt8SparseZstd} {
		b.Run(p.String(), func(b *testing.B) {
			var buf bytes.Buffer
			w, _ := NewWriter(&buf, WithPreset(p))
			r, _ := NewReader(&buf)
			w.WriteMessage(a)
			out, _ := r.ReadMessage(nil)
			memmove := memmoveSpeed(raw)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf.Reset()
				w.WriteMessage(a)
				out, _ = r.ReadMessage(out)
			}
			b.StopTimer()
			reportVsMemmove(b, raw, memmove)
		})
	}
}

// TestBenchHelper exercises Bench on the synthetic activation and logs the
// table docs/benchmarks.md quotes (run with -v).
func TestBenchHelper(t *testing.T) {
	a := SyntheticActivation(1, 64, 56, 56)
	minTime := 20 * time.Millisecond
	if !testing.Short() {
		minTime = 100 * time.Millisecond
	}
	for _, p := range Presets() {
		r, err := Bench(context.Background(), p, []*tensor.Dense{a}, BenchOptions{MinTime: minTime})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Decoded) != 1 || r.Bytes == 0 || r.EncodeMBps <= 0 || r.DecodeMBps <= 0 || r.MemmoveMBps <= 0 {
			t.Fatalf("%s: incomplete result %+v", p, r)
		}
		t.Log(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Bench(ctx, PresetInt8, []*tensor.Dense{a}, BenchOptions{MinTime: time.Hour}); err == nil {
		t.Fatal("Bench ignored a cancelled context")
	}
}

// TestParseVariant: variant specs select the stages, levels and axis they
// name (checked on the wire), a preset name encodes as the preset, and bad
// specs are ErrOption.
func TestParseVariant(t *testing.T) {
	a := SyntheticActivation(3, 4, 8, 8)
	for _, tc := range []struct {
		spec string
		tf   Transform
		lay  Layout
		ent  Entropy
		axis int
	}{
		{"int8", TransformInt8, LayoutPlain, EntropyNone, 0},
		{"INT8-channel:63/plain/huff0@2", TransformInt8Channel, LayoutPlain, EntropyHuff0, 2},
		{"int4-channel/sparse/zstd:3@1", TransformInt4Channel, LayoutSparse, EntropyZstd, 1},
		{"fp16/shuffle/s2", TransformFP16, LayoutShuffle, EntropyS2, 0},
	} {
		v, err := ParseVariant(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		e, err := v.NewEncoder()
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		msg, _, err := e.Encode(nil, a)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		hs, err := Inspect(msg, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		h := hs[0]
		// An entropy stage that does not shrink the data is dropped.
		if h.Transform != tc.tf || h.Layout != tc.lay || (h.Entropy != tc.ent && h.Entropy != EntropyNone) || h.Axis != tc.axis {
			t.Errorf("%s: header %v", tc.spec, &h)
		}
		if v.Name != tc.spec {
			t.Errorf("%s: name %q", tc.spec, v.Name)
		}
	}
	v, err := ParseVariant("int8-sparse-zstd")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := v.NewEncoder()
	got, _, _ := e.Encode(nil, a)
	want, _, _ := EncodePreset(nil, PresetInt8SparseZstd, a)
	if !bytes.Equal(got, want) {
		t.Error("preset variant encodes differently from the preset")
	}
	r, err := BenchVariant(context.Background(), v, []*tensor.Dense{a}, BenchOptions{MinTime: time.Millisecond})
	if err != nil || r.Name != "int8-sparse-zstd" || r.Bytes != len(want) {
		t.Errorf("BenchVariant: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "int9", "int8/diagonal", "int8/plain/lz4", "int8/plain/zstd:9", "int8@1",
		"fp16:63", "int8-channel:0", "int8-channel:256", "int8-channel@x", "int8/plain/none/extra", "int8-channel@9"} {
		if _, err := ParseVariant(bad); !errors.Is(err, ErrOption) {
			t.Errorf("ParseVariant(%q): err %v, want ErrOption", bad, err)
		}
	}
}
