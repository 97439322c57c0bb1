package tensorcodec

import (
	"bytes"
	"context"
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
