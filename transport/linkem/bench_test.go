package linkem

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
)

// Run with: go test -run '^$' -bench . -benchtime 1x ./transport/linkem/
// (bench/linkem/run.sh does this and keeps the log). Each benchmark prints
// ratios against a reference measured in the same run.

func linkTest(b *testing.B, cfg LinkTestConfig) *LinkTestResult {
	b.Helper()
	res, err := RunLinkTest(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkRateSweep: goodput ÷ configured rate, 1–1000 Mbit/s, 10 ms each way.
func BenchmarkRateSweep(b *testing.B) {
	for _, mbps := range []float64{1, 10, 50, 100, 200, 500, 1000} {
		b.Run(fmt.Sprintf("%gMbps", mbps), func(b *testing.B) {
			s := LinkSettings{Rate: Mbps(mbps), Delay: 10 * time.Millisecond}
			bytes := int64(Mbps(mbps) / 8 * 3) // ≈ 3 s of transfer
			bytes = max(bytes, 256<<10)
			for i := 0; i < b.N; i++ {
				res := linkTest(b, LinkTestConfig{Up: s, Down: s, Bytes: bytes, SkipDown: true, Pings: 1})
				b.ReportMetric(res.Up.Ratio, "goodput/rate")
				b.ReportMetric(res.Up.SteadyRatio, "steady/rate")
				b.ReportMetric(res.Up.GoodputBps/1e6, "Mbit/s")
			}
		})
	}
}

// BenchmarkProfiles: each built-in profile, both directions.
func BenchmarkProfiles(b *testing.B) {
	for _, p := range Profiles() {
		b.Run(p.Name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				// ≈ 4 s of transfer in each direction at its own rate
				up := linkTest(b, LinkTestConfig{Up: p.Up, Down: p.Down, Bytes: max(int64(p.Up.MeanRate()/8*4), 256<<10), SkipDown: true, Pings: 5})
				down := linkTest(b, LinkTestConfig{Up: p.Up, Down: p.Down, Bytes: max(int64(p.Down.MeanRate()/8*4), 256<<10), SkipUp: true, Pings: 1})
				b.ReportMetric(up.Up.Ratio, "up-goodput/rate")
				b.ReportMetric(up.Up.SteadyRatio, "up-steady/rate")
				b.ReportMetric(down.Down.Ratio, "down-goodput/rate")
				b.ReportMetric(down.Down.SteadyRatio, "down-steady/rate")
				b.ReportMetric(float64(up.PingRTT)/float64(up.ConfiguredRTT), "rtt/configured")
			}
		})
	}
}

// BenchmarkPassThrough: unshaped loopback QUIC through the emulator's
// pass-through path ÷ raw quic-go over *net.UDPConn (GSO, recvmmsg),
// alternating runs (5 each), median of each.
func BenchmarkPassThrough(b *testing.B) {
	const bytes = 128 << 20
	for i := 0; i < b.N; i++ {
		var raw, pass, fast []float64
		for k := 0; k < 5; k++ {
			r := linkTest(b, LinkTestConfig{Raw: true, Bytes: bytes, SkipDown: true, Pings: 1})
			p := linkTest(b, LinkTestConfig{Bytes: bytes, SkipDown: true, Pings: 1})
			f := linkTest(b, LinkTestConfig{FastPath: true, Bytes: bytes, SkipDown: true, Pings: 1})
			raw = append(raw, r.Up.GoodputBps)
			pass = append(pass, p.Up.GoodputBps)
			fast = append(fast, f.Up.GoodputBps)
		}
		mr, mp, mf := stats.Median(raw), stats.Median(pass), stats.Median(fast)
		b.ReportMetric(mr/1e6, "raw-Mbit/s")
		b.ReportMetric(mp/1e6, "pass-Mbit/s")
		b.ReportMetric(mp/mr, "pass/raw")
		b.ReportMetric(mf/mr, "fastpath/raw")
	}
}

// BenchmarkTraceWindows: a time-varying trace; per 1 s window, measured
// throughput against the trace's capacity.
func BenchmarkTraceWindows(b *testing.B) {
	rates := []float64{20, 40, 10, 30, 50, 15, 35, 25, 45, 20}
	tr, err := TraceFromRates(rates, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	s := LinkSettings{Trace: tr, Delay: 10 * time.Millisecond, QueueDelay: 150 * time.Millisecond}
	for i := 0; i < b.N; i++ {
		bytes := int64(tr.MeanRate() / 8 * 9)
		res := linkTest(b, LinkTestConfig{Up: s, Bytes: bytes, SkipDown: true, Pings: 1})
		var within, n int
		worst := 0.0
		for k, w := range res.Up.Windows {
			if k == 0 || !w.Full || w.CapacityBps == 0 {
				continue // slow start, partial window
			}
			e := math.Abs(w.MeasuredBps/w.CapacityBps - 1)
			worst = max(worst, e)
			n++
			if e <= 0.10 {
				within++
			}
			b.Logf("window %d: capacity %.1f Mbit/s measured %.1f (%.3f)", k, w.CapacityBps/1e6, w.MeasuredBps/1e6, w.MeasuredBps/w.CapacityBps)
		}
		b.ReportMetric(float64(within)/float64(max(n, 1)), "windows-within-10%")
		b.ReportMetric(worst, "worst-window-error")
		b.ReportMetric(res.Up.Ratio, "goodput/capacity")
	}
}

// BenchmarkRTT: idle-link echo RTT against 2 × one-way delay.
func BenchmarkRTT(b *testing.B) {
	for _, d := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(d.String(), func(b *testing.B) {
			s := LinkSettings{Rate: Mbps(100), Delay: d}
			for i := 0; i < b.N; i++ {
				res := linkTest(b, LinkTestConfig{Up: s, Down: s, Bytes: 64 << 10, SkipDown: true, Pings: 9})
				b.ReportMetric(float64(res.PingRTT-2*d)/1e6, "rtt-error-ms")
				b.ReportMetric(float64(res.MinRTT-2*d)/1e6, "minrtt-error-ms")
			}
		})
	}
}

// BenchmarkTraceWindowsSaturated: the same trace driven by a UDP sender that
// always keeps the queue full, so per-window throughput shows the emulator's
// own accuracy (BenchmarkTraceWindows adds CUBIC's reaction to it).
func BenchmarkTraceWindowsSaturated(b *testing.B) {
	rates := []float64{20, 40, 10, 30, 50, 15}
	tr, err := TraceFromRates(rates, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		dst := udp(b)
		dst.SetReadBuffer(8 << 20)
		delay := 10 * time.Millisecond
		lc, err := New(udp(b), LinkSettings{Trace: tr, Delay: delay, QueueBytes: 4 << 20}, LinkSettings{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		dur := time.Duration(len(rates)) * time.Second
		stop := make(chan struct{})
		go func() { // ≈ 60 Mbit/s offered, above every step
			pkt := make([]byte, 1500)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					for k := 0; k < 5; k++ {
						lc.WriteTo(pkt, dst.LocalAddr())
					}
				}
			}
		}()
		buckets := make([]int64, len(rates)+1)
		buf := make([]byte, 2048)
		dst.SetReadDeadline(lc.Epoch().Add(dur + delay))
		for {
			n, _, err := dst.ReadFrom(buf)
			if err != nil {
				break
			}
			k := int((time.Since(lc.Epoch()) - delay) / time.Second)
			if k >= 0 && k < len(buckets) {
				buckets[k] += int64(n)
			}
		}
		close(stop)
		lc.Close()
		worst, within := 0.0, 0
		for k, want := range rates {
			got := float64(buckets[k]) * 8 / 1e6
			e := math.Abs(got/want - 1)
			worst = max(worst, e)
			if e <= 0.10 {
				within++
			}
			b.Logf("second %d: capacity %.1f Mbit/s delivered %.2f (%.3f)", k, want, got, got/want)
		}
		b.ReportMetric(float64(within)/float64(len(rates)), "windows-within-10%")
		b.ReportMetric(worst, "worst-window-error")
	}
}
