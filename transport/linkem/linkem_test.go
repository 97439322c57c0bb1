package linkem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesplit/edgesplit/transport/pki"
)

func udp(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEveryPacketGoesThroughEmulator runs quic-go over a Conn and checks that
// the emulator saw every packet quic-go sent and received.
func TestEveryPacketGoesThroughEmulator(t *testing.T) {
	for _, tc := range []struct {
		name     string
		up, down LinkSettings
		fast     bool
	}{
		{"pass-through", LinkSettings{}, LinkSettings{}, false},
		{"fast path", LinkSettings{}, LinkSettings{}, true},
		{"fast path, shaped uplink", LinkSettings{Rate: Mbps(50), Delay: time.Millisecond}, LinkSettings{}, true},
		{"shaped", LinkSettings{Rate: Mbps(50), Delay: time.Millisecond}, LinkSettings{Rate: Mbps(50), Delay: time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, _ := pki.NewCA(pki.CAOptions{})
			sid, _ := ca.Issue("s", pki.IssueOptions{})
			cid, _ := ca.Issue("c", pki.IssueOptions{})
			srvPC := udp(t)
			srvTr := &quic.Transport{Conn: srvPC}
			defer srvTr.Close()
			ln, err := srvTr.Listen(sid.ServerTLS("t"), nil)
			if err != nil {
				t.Fatal(err)
			}
			lc, err := New(udp(t), tc.up, tc.down, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer lc.Close()
			var cliPC net.PacketConn = lc
			if tc.fast {
				if cliPC, err = lc.FastPath(); err != nil {
					t.Fatal(err)
				}
			}
			cliTr := &quic.Transport{Conn: cliPC}
			defer cliTr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan int64, 1)
			go func() {
				c, err := ln.Accept(ctx)
				if err != nil {
					done <- -1
					return
				}
				s, err := c.AcceptStream(ctx)
				if err != nil {
					done <- -1
					return
				}
				n, _ := io.Copy(io.Discard, s)
				s.Write([]byte("ok"))
				s.Close()
				done <- n
				<-ctx.Done()
			}()
			conn, err := cliTr.Dial(ctx, srvPC.LocalAddr(), cid.ClientTLS("", "t"), nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := conn.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(make([]byte, 2<<20)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, err := io.ReadAll(s); err != nil {
				t.Fatal(err)
			}
			if n := <-done; n != 2<<20 {
				t.Fatalf("server got %d bytes", n)
			}
			qs := conn.ConnectionStats()
			ls := lc.Stats()
			if tc.fast && !conn.ConnectionState().GSO {
				t.Log("quic-go did not enable GSO on the fast path (kernel without UDP_SEGMENT?)")
			}
			if !tc.fast && conn.ConnectionState().GSO {
				t.Fatal("quic-go used GSO through the per-packet wrapper")
			}
			t.Logf("quic sent %d received %d; emulator up %d down %d", qs.PacketsSent, qs.PacketsReceived, ls.Up.Packets, ls.Down.Packets)
			// quic-go counts QUIC packets; during the handshake several are
			// coalesced into one datagram, so the emulator (which counts
			// datagrams) may see a few fewer, never more.
			if ls.Up.Packets > qs.PacketsSent || ls.Up.Packets+4 < qs.PacketsSent {
				t.Fatalf("emulator saw %d datagrams up, quic-go sent %d packets", ls.Up.Packets, qs.PacketsSent)
			}
			if ls.Down.Packets+4 < qs.PacketsReceived || ls.Down.Packets > qs.PacketsReceived+8 {
				t.Fatalf("emulator saw %d datagrams down, quic-go received %d packets", ls.Down.Packets, qs.PacketsReceived)
			}
			if r := float64(ls.Up.Bytes) / float64(qs.BytesSent); r < 0.99 || r > 1.01 {
				t.Fatalf("emulator saw %d bytes up, quic-go sent %d", ls.Up.Bytes, qs.BytesSent)
			}
			if qs.PacketsSent < 1000 {
				t.Fatalf("only %d packets sent for 2 MiB", qs.PacketsSent)
			}
		})
	}
}

// collect reads n packets from pc (or until timeout) and returns their first
// byte and arrival times.
func collect(pc net.PacketConn, n int, timeout time.Duration) (ids []byte, at []time.Time) {
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(timeout))
	for len(ids) < n {
		m, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if m > 0 {
			ids = append(ids, buf[0])
			at = append(at, time.Now())
		}
	}
	return
}

func TestRateAndDelay(t *testing.T) {
	dst := udp(t)
	const rate, size, n = 4e6, 1000, 100 // 100 packets of 1000 B at 4 Mbit/s = 200 ms
	lc, err := New(udp(t), LinkSettings{Rate: rate, Delay: 30 * time.Millisecond, QueueBytes: 1 << 20}, LinkSettings{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	pkt := make([]byte, size)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		pkt[0] = byte(i)
		lc.WriteTo(pkt, dst.LocalAddr())
	}
	ids, at := collect(dst, n, 3*time.Second)
	if len(ids) != n {
		t.Fatalf("got %d of %d packets", len(ids), n)
	}
	first := at[0].Sub(t0)
	last := at[n-1].Sub(t0)
	wantFirst := 30*time.Millisecond + txTime(size, rate)
	wantLast := 30*time.Millisecond + time.Duration(n)*txTime(size, rate)
	// Never early (the emulator must not beat the configured delay and rate);
	// lateness is loosely bounded because a loaded machine (or -race) delays
	// the reading goroutine. BenchmarkRTT and BenchmarkRateSweep measure
	// the precision.
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{{"first", first, wantFirst}, {"last", last, wantLast}} {
		if d := c.got - c.want; d < -1500*time.Microsecond || d > 250*time.Millisecond {
			t.Fatalf("%s packet after %v, want %v (-1.5 ms, +250 ms)", c.name, c.got, c.want)
		}
	}
	for i, id := range ids {
		if id != byte(i) {
			t.Fatal("packets reordered")
		}
	}
}

func TestDropTailQueue(t *testing.T) {
	dst := udp(t)
	// 1 Mbit/s, queue 15 kB: a burst of 100 × 1000 B keeps ≈ 15.
	lc, err := New(udp(t), LinkSettings{Rate: 1e6, QueueBytes: 15000}, LinkSettings{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	for i := 0; i < 100; i++ {
		lc.WriteTo(make([]byte, 1000), dst.LocalAddr())
	}
	st := lc.Stats().Up
	if st.Packets != 100 || st.DroppedQueue < 83 || st.DroppedQueue > 86 {
		t.Fatalf("stats %+v, want ≈ 85 queue drops", st)
	}
	// the same in time: 40 ms at 1 Mbit/s = 5000 B, below the 12 kB floor,
	// so 12 packets fit and 8 drop
	lc.SetLink(Uplink, LinkSettings{Rate: 1e6, QueueDelay: 40 * time.Millisecond})
	time.Sleep(200 * time.Millisecond)
	before := lc.Stats().Up.DroppedQueue
	for i := 0; i < 20; i++ {
		lc.WriteTo(make([]byte, 1000), dst.LocalAddr())
	}
	if d := lc.Stats().Up.DroppedQueue - before; d < 7 || d > 9 {
		t.Fatalf("%d drops with a 40 ms queue, want 8 (12 kB floor)", d)
	}
}

func TestLossModels(t *testing.T) {
	dst := udp(t)
	const n = 20000
	lc, err := New(udp(t), LinkSettings{Loss: 0.1, Delay: time.Millisecond, Seed: 3}, LinkSettings{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	for i := 0; i < n; i++ {
		lc.WriteTo([]byte{1}, dst.LocalAddr())
	}
	if got := float64(lc.Stats().Up.DroppedLoss) / n; math.Abs(got-0.1) > 0.01 {
		t.Fatalf("random loss %.4f, want 0.1", got)
	}
	ge := &GilbertElliott{PGoodToBad: 0.01, PBadToGood: 0.2, LossGood: 0, LossBad: 0.8}
	lc.SetLink(Uplink, LinkSettings{Burst: ge, Delay: time.Millisecond, Seed: 4})
	before := lc.Stats().Up.DroppedLoss
	for i := 0; i < n*5; i++ {
		lc.WriteTo([]byte{1}, dst.LocalAddr())
	}
	got := float64(lc.Stats().Up.DroppedLoss-before) / (n * 5)
	if want := ge.MeanLoss(); math.Abs(got-want) > 0.2*want {
		t.Fatalf("Gilbert–Elliott loss %.4f, want %.4f", got, want)
	}
}

func TestJitterKeepsOrderUnlessAsked(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		dst := udp(t)
		lc, err := New(udp(t), LinkSettings{Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond, AllowReorder: reorder}, LinkSettings{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			lc.WriteTo([]byte{byte(i)}, dst.LocalAddr())
			time.Sleep(200 * time.Microsecond)
		}
		ids, _ := collect(dst, 100, 2*time.Second)
		lc.Close()
		if len(ids) != 100 {
			t.Fatalf("got %d packets", len(ids))
		}
		inversions := 0
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] {
				inversions++
			}
		}
		if !reorder && inversions != 0 {
			t.Fatalf("%d reorderings without AllowReorder", inversions)
		}
		if reorder && inversions == 0 {
			t.Fatal("no reordering with AllowReorder and 8 ms jitter")
		}
	}
}

func TestMTUAndDownlink(t *testing.T) {
	src := udp(t)
	lc, err := New(udp(t), LinkSettings{}, LinkSettings{MTU: 1200, Delay: 20 * time.Millisecond}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	t0 := time.Now()
	src.WriteTo(make([]byte, 1300), lc.LocalAddr())
	src.WriteTo([]byte{7}, lc.LocalAddr())
	buf := make([]byte, 2000)
	lc.SetReadDeadline(time.Now().Add(time.Second))
	n, _, err := lc.ReadFrom(buf)
	if err != nil || n != 1 || buf[0] != 7 {
		t.Fatalf("read %d %v", n, err)
	}
	if d := time.Since(t0); d < 19*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("downlink delay %v, want 20 ms", d)
	}
	if st := lc.Stats().Down; st.DroppedMTU != 1 {
		t.Fatalf("down stats %+v", st)
	}
	lc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := lc.ReadFrom(buf); !errors.Is(err, errDeadline()) {
		t.Fatalf("read past deadline: %v", err)
	}
}

func errDeadline() error { return os.ErrDeadlineExceeded }

func TestSettingsValidation(t *testing.T) {
	bad := []LinkSettings{
		{Rate: -1}, {Rate: math.NaN()}, {Rate: 10}, {Loss: 1.5}, {Delay: -1},
		{Burst: &GilbertElliott{PGoodToBad: 2}}, {QueueBytes: -1}, {MTU: -5},
	}
	for _, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("%+v: %v", s, err)
		}
		if _, err := New(udp(t), s, LinkSettings{}, Options{}); err == nil {
			t.Errorf("New accepted %+v", s)
		}
	}
	if _, err := New(nil, LinkSettings{}, LinkSettings{}, Options{}); err == nil {
		t.Error("New accepted a nil conn")
	}
	lc, _ := New(udp(t), LinkSettings{}, LinkSettings{}, Options{})
	defer lc.Close()
	if err := lc.SetLink(Downlink, LinkSettings{Delay: time.Millisecond}); !errors.Is(err, ErrPassThroughDownlink) {
		t.Errorf("shaping a pass-through downlink: %v", err)
	}
}

func TestTraceParseAndSchedule(t *testing.T) {
	tr, err := ParseTrace(strings.NewReader("# comment\n1\n1\n2\n\n4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 4 || tr.Period() != 4*time.Millisecond {
		t.Fatalf("len %d period %v", tr.Len(), tr.Period())
	}
	// 4 opportunities per 4 ms = 12 Mbit/s
	if r := tr.MeanRate(); r != 12e6 {
		t.Fatalf("mean rate %v", r)
	}
	if c := tr.CapacityBytes(0, 8*time.Millisecond); c != 8*1500 {
		t.Fatalf("capacity over two loops %d", c)
	}
	var buf bytes.Buffer
	tr.WriteTo(&buf)
	if buf.String() != "1\n1\n2\n4\n" {
		t.Fatalf("written %q", buf.String())
	}
	for _, bad := range []string{"", "3\n2\n", "0\n0\n", "x\n", "-1\n", "99999999999\n"} {
		if _, err := ParseTrace(strings.NewReader(bad)); !errors.Is(err, ErrBadTrace) {
			t.Errorf("%q: %v", bad, err)
		}
	}

	// pipe schedule: two 1000-byte packets at t=0 share opportunities 1 ms
	// (1500 B) and then 1 ms again (second opportunity).
	p := &pipe{}
	p.s = LinkSettings{Trace: tr}
	d1 := p.traceDepart(0, 1000)
	p.bbytes = 1000
	d2 := p.traceDepart(0, 1000)
	d3 := p.traceDepart(0, 1500)
	if d1 != time.Millisecond || d2 != time.Millisecond || d3 != 2*time.Millisecond {
		t.Fatalf("departures %v %v %v, want 1ms 1ms 2ms", d1, d2, d3)
	}
	// Idle: opportunities pass unused; a packet at 9.5 ms leaves at the
	// next one, 1 ms into the third loop (8 + 1 = 9 < 9.5 → 8+2 = 10).
	p.bbytes = 0
	if d := p.traceDepart(9500*time.Microsecond, 100); d != 10*time.Millisecond {
		t.Fatalf("after idle: %v, want 10ms", d)
	}
}

func TestTraceFromRatesAndCSV(t *testing.T) {
	var out bytes.Buffer
	csv := "second,mbps\n0,12\n1,24\n2,0\n3,6\n"
	if err := ConvertCSV(&out, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	tr, err := ParseTrace(&out)
	if err != nil {
		t.Fatal(err)
	}
	// 12 Mbit/s = 1000 opportunities/s, 24 → 2000, 0 → 0, 6 → 500
	if tr.Len() != 3500 || tr.Period() != 4*time.Second {
		t.Fatalf("len %d period %v", tr.Len(), tr.Period())
	}
	for i, want := range []float64{12e6, 24e6, 0, 6e6} {
		from := time.Duration(i) * time.Second
		got := float64(tr.CapacityBytes(from, from+time.Second)) * 8
		// opportunities on a step's last millisecond fall on the next
		// window's first instant: allow two
		if math.Abs(got-want) > 2*1500*8 {
			t.Errorf("second %d: %v bit/s, want %v", i, got, want)
		}
	}
	for _, bad := range []string{"", "a\nb\n", "1\n-3\n", "1\nNaN\n"} {
		if err := ConvertCSV(io.Discard, strings.NewReader(bad)); !errors.Is(err, ErrBadTrace) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestProfiles(t *testing.T) {
	want := []string{"3g", "5g-lowband", "5g-midband", "5g-mmwave", "ethernet", "lte", "wifi"}
	if got := ProfileNames(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("profiles %v", got)
	}
	for _, p := range Profiles() {
		if p.Source == "" || p.Description == "" || (p.Provenance != Measured && p.Provenance != Synthesised) {
			t.Errorf("%s: undocumented", p.Name)
		}
		if err := p.Up.Validate(); err != nil {
			t.Errorf("%s up: %v", p.Name, err)
		}
		if err := p.Down.Validate(); err != nil {
			t.Errorf("%s down: %v", p.Name, err)
		}
	}
	mm, _ := LookupProfile("5g-mmwave")
	if r := mm.Down.MeanRate(); r < 550e6 || r > 750e6 {
		t.Errorf("mmWave mean downlink %v", r)
	}
	// blockage: some 100 ms step has no capacity
	outage := false
	for s := time.Duration(0); s < mm.Down.Trace.Period(); s += 100 * time.Millisecond {
		if mm.Down.Trace.CapacityBytes(s, s+100*time.Millisecond) == 0 {
			outage = true
		}
	}
	if !outage {
		t.Error("mmWave trace has no blockage outage")
	}
	if _, err := LookupProfile("6g"); err == nil {
		t.Error("unknown profile accepted")
	}
}

// TestLinkTestSmall runs the CLI's link test at a modest rate.
func TestLinkTestSmall(t *testing.T) {
	s := LinkSettings{Rate: Mbps(8), Delay: 10 * time.Millisecond, QueueDelay: 100 * time.Millisecond}
	res, err := RunLinkTest(context.Background(), LinkTestConfig{Up: s, Down: s, Bytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ping %v srtt %v min %v; up %.2f Mbit/s (%.3f) down %.2f Mbit/s (%.3f)", res.PingRTT, res.SmoothedRTT, res.MinRTT,
		res.Up.GoodputBps/1e6, res.Up.Ratio, res.Down.GoodputBps/1e6, res.Down.Ratio)
	// quic-go's min RTT is the cleanest view of the path; the app-level
	// ping adds scheduling delay on a loaded machine.
	if d := res.MinRTT - 20*time.Millisecond; d < -time.Millisecond || d > 2*time.Millisecond {
		t.Errorf("min RTT %v, want 20 ms", res.MinRTT)
	}
	if res.PingRTT < 19*time.Millisecond || res.PingRTT > 40*time.Millisecond {
		t.Errorf("idle ping RTT %v, want ≈ 20 ms", res.PingRTT)
	}
	for _, d := range []*DirectionResult{res.Up, res.Down} {
		// The emulator must never carry more than its rate; the lower bound
		// is a sanity check (a starved sender idles the link; the benchmark
		// measures the real ratio).
		if d.Ratio < 0.3 || d.Ratio > 1.02 {
			t.Errorf("%v goodput ratio %.3f", d.Direction, d.Ratio)
		}
		if d.SteadyRatio > 1.05 {
			t.Errorf("%v steady goodput ratio %.3f exceeds the rate", d.Direction, d.SteadyRatio)
		}
	}
}

func TestWriteReport(t *testing.T) {
	s := LinkSettings{Rate: Mbps(20), Delay: 2 * time.Millisecond}
	res, err := RunLinkTest(context.Background(), LinkTestConfig{Up: s, Down: s, Bytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := res.WriteReport(&sb); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{"RTT: configured 4ms", "uplink", "downlink", "configured 20.00 Mbit/s", "loss: configured 0.000%"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	t.Log("\n" + out)
}
