//go:build linux

package tensorcodec

import (
	"os"
	"runtime"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// cpuSpeed runs f on a locked OS thread for about d of CPU time and returns
// bytes per CPU-second, which is what "per core" means on a shared machine
// whose wall-clock speeds swing with other load.
func cpuSpeed(bytes int, d time.Duration, f func()) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f()
	now := func() time.Duration { t, _ := threadCPU(); return t }
	start := now()
	iters := 0
	for now()-start < d {
		for i := 0; i < 4; i++ {
			f()
		}
		iters += 4
	}
	return float64(bytes) * float64(iters) / (now() - start).Seconds()
}

// TestSpeedPerCore prints encode/decode speed per CPU-second (and memmove
// of the same bytes) for every preset on a 1 MiB post-ReLU activation. Set
// TENSORCODEC_SPEED=1 to run it.
func TestSpeedPerCore(t *testing.T) {
	if os.Getenv("TENSORCODEC_SPEED") != "1" {
		t.Skip("set TENSORCODEC_SPEED=1")
	}
	a := oneMB()
	raw := 4 * len(a.Float32s())
	src, dst := make([]byte, raw), make([]byte, raw)
	mm := cpuSpeed(raw, 300*time.Millisecond, func() { copy(dst, src) })
	t.Logf("memmove %.0f MB/s per core", mm/1e6)
	for _, p := range Presets() {
		enc, _ := NewEncoder(WithPreset(p))
		dec, _ := NewDecoder()
		msg, st, _ := enc.Encode(nil, a)
		var out []*tensor.Dense
		es := cpuSpeed(raw, 300*time.Millisecond, func() { msg, _, _ = enc.Encode(msg[:0], a) })
		ds := cpuSpeed(raw, 300*time.Millisecond, func() { out, _ = dec.Decode(out, msg) })
		t.Logf("%-17s ratio %6.2fx  encode %6.0f MB/s (%.3fx memmove)  decode %6.0f MB/s (%.3fx memmove)",
			p, st.Ratio(), es/1e6, es/mm, ds/1e6, ds/mm)
	}
}
