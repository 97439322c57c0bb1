//go:build linux

package tensorcodec

import (
	"runtime"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// cpuLoop runs f n times on a locked OS thread and returns the thread CPU
// time it took, which is what "per core" means on a shared machine whose
// wall-clock speeds swing with other load.
func cpuLoop(n int, f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, _ := threadCPU()
	for range n {
		f()
	}
	end, _ := threadCPU()
	return end - start
}

// memmovePerCore is copy() of n bytes in bytes per CPU-second, for scale.
func memmovePerCore(n int) float64 {
	src, dst := make([]byte, n), make([]byte, n)
	iters := 16
	for {
		el := cpuLoop(iters, func() { copy(dst, src) })
		if el >= 20*time.Millisecond {
			return float64(n) * float64(iters) / el.Seconds()
		}
		iters *= 2
	}
}

// BenchmarkSpeedPerCore reports, for every preset on a 1 MiB post-ReLU
// activation, encode and decode speed per CPU-second of the benchmarking
// thread (MB/s-per-core) and as a multiple of memmove measured the same way
// (x-memmove): the ratios the speed targets are stated in.
func BenchmarkSpeedPerCore(b *testing.B) {
	a := oneMB()
	raw := 4 * len(a.Float32s())
	for _, p := range Presets() {
		enc, _ := NewEncoder(WithPreset(p))
		dec, _ := NewDecoder()
		msg, st, _ := enc.Encode(nil, a)
		var out []*tensor.Dense
		for _, stage := range []struct {
			name string
			f    func()
		}{
			{"encode", func() { msg, _, _ = enc.Encode(msg[:0], a) }},
			{"decode", func() { out, _ = dec.Decode(out, msg) }},
		} {
			b.Run(p.String()+"/"+stage.name, func(b *testing.B) {
				stage.f()
				mm := memmovePerCore(raw)
				b.SetBytes(int64(raw))
				b.ResetTimer()
				el := cpuLoop(b.N, stage.f)
				b.StopTimer()
				speed := float64(raw) * float64(b.N) / el.Seconds()
				b.ReportMetric(speed/1e6, "MB/s-per-core")
				b.ReportMetric(speed/mm, "x-memmove")
				b.ReportMetric(st.Ratio(), "ratio")
			})
		}
	}
}

// TestThreadCPUClock checks the clock the per-core speeds (BenchmarkSpeedPerCore,
// Bench) rest on: it is the calling thread's CPU time, which advances while
// the thread works and not while it sleeps (unlike the wall clock).
func TestThreadCPUClock(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := threadCPU()
	if !ok {
		t.Fatal("threadCPU is unavailable on Linux")
	}
	// Work until the thread has used 5 ms of CPU (bounded by a wall-clock
	// deadline only so that a broken clock ends the test).
	deadline := time.Now().Add(10 * time.Second)
	sink := 0
	t1 := t0
	for t1-t0 < 5*time.Millisecond && time.Now().Before(deadline) {
		for i := range 100000 {
			sink += i
		}
		t1, _ = threadCPU()
	}
	if t1-t0 < 5*time.Millisecond {
		t.Fatalf("thread CPU time advanced %v in 10 s of work", t1-t0)
	}
	time.Sleep(100 * time.Millisecond)
	t2, _ := threadCPU()
	if d := t2 - t1; d < 0 || d >= 50*time.Millisecond {
		t.Errorf("thread CPU time moved %v while the thread slept 100 ms: not a per-thread CPU clock", d)
	}
	_ = sink
}
