package sim

import (
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on this shared machine
// wall time swings with the other tenants' load, CPU time much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughputScenario: many devices on fixed Wi-Fi links running ResNet-18
// (edge as fast as the reference core, cloud servers 100× faster), planned
// every 10 s of simulated time; most requests are split.
const throughputScenario = `
name: throughput
seed: 1
duration: DUR
policy: POLICY
estimation: {interval: 10s}
codecs: [{name: raw, ratio: 1}, {name: uint8, ratio: 4, encode_mbps: 1500, decode_mbps: 3000, agreement: {agree: 3000, samples: 3000}}]
models: [{name: m, synthetic: resnet18}]
edges: [{name: e, count: DEVICES, model: m, slowdown: 1, link: {profile: wifi}, arrivals: {rate: RATE}}]
backhaul: {delay: 5ms}
clouds: [{name: c, count: 4, workers: 64, slowdown: 0.01}]
`

func throughput(dur time.Duration, devices int, rate float64, policy string) string {
	return strings.NewReplacer("DUR", dur.String(), "DEVICES", itoa(devices), "RATE", ftoa(rate), "POLICY", policy).Replace(throughputScenario)
}

// BenchmarkSimRequests measures simulated requests per second of wall time
// (metric req/s), without and with the per-request CSV. The reference is a
// bare event-heap push+pop cycle timed in the same run; "heap-ops/req" is
// how many such cycles one simulated request costs.
func BenchmarkSimRequests(b *testing.B) {
	refNs := heapRef()
	b.Logf("reference: %.1f ns per heap push+pop (1000 pending events)", refNs)
	for _, tc := range []struct {
		name string
		csv  bool
	}{{"no-csv", false}, {"csv", true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := mustParse(b, throughput(500*time.Second, 1000, 1, "neurosurgeon"))
			var reqs int64
			var last *Summary
			cpu0 := cpuTime()
			for b.Loop() {
				cfg := Config{}
				if tc.csv {
					cfg.CSV = io.Discard
				}
				sum, err := Run(context.Background(), s, cfg)
				if err != nil {
					b.Fatal(err)
				}
				reqs += sum.Requests
				last = sum
			}
			b.Logf("%d requests per run, %.0f%% offloaded, %.2f events per request",
				last.Requests, 100*float64(last.Offloaded)/float64(last.Requests), float64(last.Events)/float64(last.Requests))
			perReq := float64(b.Elapsed().Nanoseconds()) / float64(reqs)
			b.ReportMetric(1e9/perReq, "req/s")
			b.ReportMetric(float64(reqs)/(cpuTime()-cpu0).Seconds(), "req/cpu-s")
			if refNs > 0 {
				b.ReportMetric(perReq/refNs, "heap-ops/req")
			}
		})
	}
}

// heapRef times a million push+pop cycles on a heap of 1000 events (ns
// per cycle), the reference the request rate is read against.
func heapRef() float64 {
	var q eventHeap
	for i := 0; i < 1000; i++ {
		q.push(int64(i*7919%1000), evArrival, 0, 0)
	}
	const n = 1_000_000
	start := time.Now()
	for i := 0; i < n; i++ {
		e := q.pop()
		q.push(e.at+int64(i%1000), evArrival, 0, 0)
	}
	return float64(time.Since(start).Nanoseconds()) / n
}

// BenchmarkSim10kDevices1h is the scale target: 10 000 devices for one
// simulated hour, each sending a request every 10 s (3.6 M requests),
// planned by neurosurgeon every 10 s. Metric: wall seconds per run.
func BenchmarkSim10kDevices1h(b *testing.B) {
	s := mustParse(b, throughput(time.Hour, 10000, 0.1, "neurosurgeon"))
	for b.Loop() {
		start, cpu0 := time.Now(), cpuTime()
		sum, err := Run(context.Background(), s, Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
		b.ReportMetric((cpuTime() - cpu0).Seconds(), "cpu-s")
		b.ReportMetric(float64(sum.Requests), "requests")
		b.Logf("%d requests, %.0f%% offloaded, %d events, %d plans in %v",
			sum.Requests, 100*float64(sum.Offloaded)/float64(sum.Requests), sum.Events, sum.Plans, time.Since(start))
	}
}
