package scheduler

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time; on this shared machine the
// wall time of a benchmark swings with the other tenants' load, CPU time much
// less, so each benchmark also reports cpu-ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlan times one planning decision per policy on a ResNet-18-sized
// residual model (8 blocks, 59 nodes), 3 codecs and 2 clouds. Edge-only
// (validation plus one sum) is the reference the others are read against.
func BenchmarkPlan(b *testing.B) {
	m := resnetLike(8, 1)
	in := m.inputs(20, 20*time.Millisecond, testCodecs...)
	in.Clouds = append(in.Clouds, CloudInput{ID: "c2", Profile: m.cloud, Queue: 5 * time.Millisecond,
		Link: LinkEstimate{RTT: 30 * time.Millisecond, Up: 3e6, Down: 6e6}})
	for _, pol := range []Policy{EdgeOnly{}, Neurosurgeon{}, &DADS{}, NewAuto(AutoConfig{})} {
		b.Run(pol.Name(), func(b *testing.B) {
			b.ReportAllocs()
			c0 := cpuTime()
			for b.Loop() {
				if _, err := pol.Plan(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
	// Chain model (VGG-like): dads and auto reduce to a prefix scan.
	v := vggLike()
	vin := v.inputs(20, 20*time.Millisecond, testCodecs...)
	b.Run("auto-chain", func(b *testing.B) {
		a := NewAuto(AutoConfig{})
		b.ReportAllocs()
		c0 := cpuTime()
		for b.Loop() {
			a.Plan(vin)
		}
		b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
	})
}
