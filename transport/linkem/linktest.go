package linkem

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// LinkTestALPN is the ALPN protocol of the link test's QUIC connection.
const LinkTestALPN = "edgesplit-linktest/1"

// LinkTestConfig configures [RunLinkTest]. The zero value tests a
// pass-through link with 4 MiB each way.
type LinkTestConfig struct {
	// Up and Down are the emulated link's settings, applied on the client
	// side (Up: client → server).
	Up, Down LinkSettings
	// Bytes is the payload sent each way. Default 4 MiB.
	Bytes int64
	// SkipUp and SkipDown skip one direction's transfer.
	SkipUp, SkipDown bool
	// Window is the width of the per-window throughput series. Default 1 s.
	Window time.Duration
	// Pings is the number of idle-link echo round trips measured before the
	// transfers. Default 5.
	Pings int
	// Timeout bounds the whole test. Default: four times the transfer time
	// at the configured rate, plus 15 s.
	Timeout time.Duration
	// Raw runs over the bare *net.UDPConn with no emulator on either side,
	// as a reference for the pass-through overhead. Up and Down are ignored.
	Raw bool
	// FastPath runs quic-go over [Conn.FastPath] (GSO and batched reads
	// kept) when the downlink is a pass-through.
	FastPath bool
}

// Window is one slot of the receiver's throughput series.
type Window struct {
	// Start is the window start on the link clock (time since the link
	// started).
	Start time.Duration
	// Bytes received in the window.
	Bytes int64
	// MeasuredBps is the payload goodput in the window.
	MeasuredBps float64
	// CapacityBps is the link capacity that fed the window (the trace's
	// capacity one propagation delay earlier, or the fixed rate).
	CapacityBps float64
	// Full reports whether the whole window lies inside the transfer.
	Full bool
}

// DirectionResult reports one direction's transfer.
type DirectionResult struct {
	Direction Direction
	Bytes     int64
	// Duration runs from the first to the last payload byte at the receiver.
	Duration time.Duration
	// ConfiguredBps is the link capacity during the transfer (0 = unlimited).
	ConfiguredBps float64
	// GoodputBps is payload bytes over Duration.
	GoodputBps float64
	// SteadyBps is the goodput after the first window (slow start excluded);
	// equal to GoodputBps when the transfer is shorter than two windows.
	SteadyBps float64
	// Ratio is GoodputBps / ConfiguredBps (0 when unlimited); SteadyRatio
	// uses SteadyBps.
	Ratio, SteadyRatio float64
	Windows            []Window
	// Link counts the emulator's work in this direction during the transfer.
	Link DirStats
	// ConfiguredLoss is the configured random plus bursty loss probability;
	// EmulatedLoss the fraction the emulator dropped (any cause);
	// QUICLoss the sender's lost/sent packet ratio.
	ConfiguredLoss, EmulatedLoss, QUICLoss float64
}

// LinkTestResult reports a link test.
type LinkTestResult struct {
	Up, Down *DirectionResult
	// ConfiguredRTT is Up.Delay + Down.Delay.
	ConfiguredRTT time.Duration
	// PingRTT is the median echo round trip on the idle link.
	PingRTT time.Duration
	// SmoothedRTT and MinRTT come from the client's QUIC connection stats
	// after the transfers.
	SmoothedRTT, MinRTT time.Duration
	// Stats are the emulator's totals for the whole test.
	Stats Stats
}

// configuredLoss combines random and bursty loss.
func configuredLoss(s LinkSettings) float64 {
	keep := 1 - s.Loss
	if s.Burst != nil {
		keep *= 1 - s.Burst.MeanLoss()
	}
	return 1 - keep
}

// RunLinkTest runs a QUIC transfer over an emulated link on loopback: a server
// on a bare UDP socket and a client whose socket is wrapped in a [Conn] with
// cfg.Up and cfg.Down. It sends cfg.Bytes up, then cfg.Bytes down, and
// reports configured against measured goodput, RTT and loss.
func RunLinkTest(ctx context.Context, cfg LinkTestConfig) (*LinkTestResult, error) {
	if cfg.Bytes == 0 {
		cfg.Bytes = 4 << 20
	}
	if cfg.Bytes < 0 || cfg.Bytes > 1<<40 {
		return nil, fmt.Errorf("linkem: link test: Bytes = %d, want 1..2^40", cfg.Bytes)
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Second
	}
	if cfg.Pings == 0 {
		cfg.Pings = 5
	}
	if cfg.Raw {
		cfg.Up, cfg.Down = LinkSettings{}, LinkSettings{}
	}
	for _, s := range []LinkSettings{cfg.Up, cfg.Down} {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("linkem: link test: %w", err)
		}
	}
	if cfg.Timeout <= 0 {
		est := 15 * time.Second
		for _, s := range []LinkSettings{cfg.Up, cfg.Down} {
			if r := s.MeanRate(); r > 0 {
				keep := max(1-configuredLoss(s), 0.05)
				est += time.Duration(4 * float64(cfg.Bytes) * 8 / r / keep * float64(time.Second))
			}
		}
		cfg.Timeout = est
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	ca, err := pki.NewCA(pki.CAOptions{Name: "linktest CA", Validity: time.Hour})
	if err != nil {
		return nil, err
	}
	srvID, err := ca.Issue("linktest-server", pki.IssueOptions{Validity: time.Hour})
	if err != nil {
		return nil, err
	}
	cliID, err := ca.Issue("linktest-client", pki.IssueOptions{Validity: time.Hour})
	if err != nil {
		return nil, err
	}
	qconf := &quic.Config{
		MaxIdleTimeout:             30 * time.Second,
		MaxStreamReceiveWindow:     64 << 20,
		MaxConnectionReceiveWindow: 96 << 20,
		KeepAlivePeriod:            5 * time.Second,
	}

	srvUDP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("linkem: link test: %w", err)
	}
	srvTr := &quic.Transport{Conn: srvUDP}
	defer srvUDP.Close()
	defer srvTr.Close()
	ln, err := srvTr.Listen(srvID.ServerTLS(LinkTestALPN), qconf)
	if err != nil {
		return nil, fmt.Errorf("linkem: link test: listen: %w", err)
	}
	defer ln.Close()

	cliUDP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("linkem: link test: %w", err)
	}
	var lc *Conn
	var cliPC net.PacketConn = cliUDP
	epoch := time.Now()
	if !cfg.Raw {
		lc, err = New(cliUDP, cfg.Up, cfg.Down, Options{})
		if err != nil {
			cliUDP.Close()
			return nil, err
		}
		cliPC = lc
		epoch = lc.Epoch()
		if cfg.FastPath {
			if cliPC, err = lc.FastPath(); err != nil {
				lc.Close()
				return nil, err
			}
		}
	}
	defer cliPC.Close()
	cliTr := &quic.Transport{Conn: cliPC}
	defer cliTr.Close()

	srv := &linkTestServer{epoch: epoch, window: cfg.Window, up: make(chan recvResult, 1)}
	srvCtx, srvCancel := context.WithCancel(ctx)
	defer srvCancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.serve(srvCtx, ln) }()
	defer wg.Wait()
	defer srvCancel()

	conn, err := cliTr.Dial(ctx, srvUDP.LocalAddr(), cliID.ClientTLS("linktest-server", LinkTestALPN), qconf)
	if err != nil {
		return nil, fmt.Errorf("linkem: link test: dial: %w", err)
	}
	defer conn.CloseWithError(0, "done")

	res := &LinkTestResult{ConfiguredRTT: cfg.Up.Delay + cfg.Down.Delay}
	if res.PingRTT, err = pingRTT(ctx, conn, cfg.Pings); err != nil {
		return nil, fmt.Errorf("linkem: link test: ping: %w", err)
	}
	snap := func() Stats {
		if lc == nil {
			return Stats{}
		}
		return lc.Stats()
	}
	if !cfg.SkipUp {
		before := snap()
		cliBefore := conn.ConnectionStats()
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return nil, fmt.Errorf("linkem: link test: open uplink stream: %w", err)
		}
		if err := sendPayload(ctx, str, 'U', cfg.Bytes); err != nil {
			return nil, fmt.Errorf("linkem: link test: uplink: %w", err)
		}
		str.Close()
		var rr recvResult
		select {
		case rr = <-srv.up:
		case <-ctx.Done():
			return nil, fmt.Errorf("linkem: link test: uplink: %w", context.Cause(ctx))
		}
		if rr.err != nil {
			return nil, fmt.Errorf("linkem: link test: uplink receive: %w", rr.err)
		}
		str.CancelRead(0)
		after := snap()
		cliAfter := conn.ConnectionStats()
		d := finish(Uplink, cfg.Up, rr, cfg.Window)
		d.Link = diff(after.Up, before.Up)
		d.EmulatedLoss = ratio(d.Link.Dropped(), d.Link.Packets)
		d.QUICLoss = ratio(cliAfter.PacketsLost-cliBefore.PacketsLost, cliAfter.PacketsSent-cliBefore.PacketsSent)
		res.Up = d
	}
	if !cfg.SkipDown {
		before := snap()
		srvBefore := srv.senderStats()
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return nil, fmt.Errorf("linkem: link test: open downlink stream: %w", err)
		}
		var hdr [9]byte
		hdr[0] = 'D'
		binary.BigEndian.PutUint64(hdr[1:], uint64(cfg.Bytes))
		if _, err := str.Write(hdr[:]); err != nil {
			return nil, fmt.Errorf("linkem: link test: downlink request: %w", err)
		}
		str.Close()
		stop := context.AfterFunc(ctx, func() { str.CancelRead(1) })
		rr := receive(str, epoch, cfg.Window)
		stop()
		if rr.err != nil {
			return nil, fmt.Errorf("linkem: link test: downlink: %w", rr.err)
		}
		if rr.bytes != cfg.Bytes {
			return nil, fmt.Errorf("linkem: link test: downlink got %d of %d bytes", rr.bytes, cfg.Bytes)
		}
		after := snap()
		srvAfter := srv.senderStats()
		d := finish(Downlink, cfg.Down, rr, cfg.Window)
		d.Link = diff(after.Down, before.Down)
		d.EmulatedLoss = ratio(d.Link.Dropped(), d.Link.Packets)
		d.QUICLoss = ratio(srvAfter.PacketsLost-srvBefore.PacketsLost, srvAfter.PacketsSent-srvBefore.PacketsSent)
		res.Down = d
	}
	st := conn.ConnectionStats()
	res.SmoothedRTT, res.MinRTT = st.SmoothedRTT, st.MinRTT
	res.Stats = snap()
	return res, nil
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func diff(a, b DirStats) DirStats {
	return DirStats{
		Packets: a.Packets - b.Packets, Bytes: a.Bytes - b.Bytes, Delivered: a.Delivered - b.Delivered,
		DroppedLoss: a.DroppedLoss - b.DroppedLoss, DroppedQueue: a.DroppedQueue - b.DroppedQueue,
		DroppedMTU: a.DroppedMTU - b.DroppedMTU, DroppedOther: a.DroppedOther - b.DroppedOther,
	}
}

func pingRTT(ctx context.Context, conn *quic.Conn, n int) (time.Duration, error) {
	if n <= 0 {
		return 0, nil
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	defer str.Close()
	stop := context.AfterFunc(ctx, func() { str.CancelRead(1); str.CancelWrite(1) })
	defer stop()
	if _, err := str.Write([]byte{'P'}); err != nil {
		return 0, err
	}
	rtts := make([]time.Duration, 0, n)
	var b [1]byte
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := str.Write(b[:]); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(str, b[:]); err != nil {
			return 0, err
		}
		rtts = append(rtts, time.Since(t0))
	}
	return stats.MedianInPlace(rtts), nil
}

var zeros = make([]byte, 64<<10)

func sendPayload(ctx context.Context, w *quic.Stream, kind byte, n int64) error {
	stop := context.AfterFunc(ctx, func() { w.CancelWrite(1) })
	defer stop()
	if _, err := w.Write([]byte{kind}); err != nil {
		return err
	}
	return writeZeros(w, n)
}

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		b := zeros[:min(int64(len(zeros)), n)]
		m, err := w.Write(b)
		n -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

type recvResult struct {
	bytes       int64
	first, last time.Duration // link clock
	buckets     []int64       // bytes per window from first
	err         error
}

func receive(r io.Reader, epoch time.Time, window time.Duration) recvResult {
	var rr recvResult
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			t := time.Since(epoch)
			if rr.bytes == 0 {
				rr.first = t
			}
			rr.last = t
			rr.bytes += int64(n)
			i := int((t - rr.first) / window)
			for len(rr.buckets) <= i {
				rr.buckets = append(rr.buckets, 0)
			}
			rr.buckets[i] += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return rr
		}
		if err != nil {
			rr.err = err
			return rr
		}
	}
}

// finish turns a receiver's record into a DirectionResult.
func finish(dir Direction, s LinkSettings, rr recvResult, window time.Duration) *DirectionResult {
	d := &DirectionResult{Direction: dir, Bytes: rr.bytes, Duration: rr.last - rr.first, ConfiguredLoss: configuredLoss(s)}
	capBps := func(from, to time.Duration) float64 {
		if to <= from {
			return 0
		}
		if s.Trace != nil {
			payload := 1.0
			if s.Overhead > 0 {
				payload = 1350.0 / float64(1350+s.Overhead) // approximate full-size QUIC packets
			}
			return float64(s.Trace.CapacityBytes(from-s.Delay, to-s.Delay)) * 8 / (to - from).Seconds() * payload
		}
		return s.Rate
	}
	if d.Duration > 0 {
		d.GoodputBps = float64(rr.bytes) * 8 / d.Duration.Seconds()
		d.ConfiguredBps = capBps(rr.first, rr.last)
	}
	d.SteadyBps = d.GoodputBps
	var steadyBytes int64
	for i, b := range rr.buckets {
		start := rr.first + time.Duration(i)*window
		end := start + window
		full := end <= rr.last
		w := Window{Start: start, Bytes: b, Full: full}
		span := window
		if !full {
			span = rr.last - start
		}
		if span > 0 {
			w.MeasuredBps = float64(b) * 8 / span.Seconds()
		}
		w.CapacityBps = capBps(start, start+span)
		d.Windows = append(d.Windows, w)
		if i > 0 {
			steadyBytes += b
		}
	}
	if len(rr.buckets) > 2 {
		if span := rr.last - rr.first - window; span > 0 {
			d.SteadyBps = float64(steadyBytes) * 8 / span.Seconds()
		}
	}
	if d.ConfiguredBps > 0 {
		d.Ratio = d.GoodputBps / d.ConfiguredBps
		d.SteadyRatio = d.SteadyBps / d.ConfiguredBps
	}
	return d
}

type linkTestServer struct {
	epoch  time.Time
	window time.Duration
	up     chan recvResult

	mu    sync.Mutex
	conns []*quic.Conn
}

// senderStats sums the server's connection stats (it sends the downlink).
func (s *linkTestServer) senderStats() quic.ConnectionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st quic.ConnectionStats
	for _, c := range s.conns {
		cs := c.ConnectionStats()
		st.PacketsSent += cs.PacketsSent
		st.PacketsLost += cs.PacketsLost
	}
	return st
}

func (s *linkTestServer) serve(ctx context.Context, ln *quic.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				str, err := conn.AcceptStream(ctx)
				if err != nil {
					return
				}
				wg.Add(1)
				go func() { defer wg.Done(); s.handle(ctx, str) }()
			}
		}()
	}
}

func (s *linkTestServer) handle(ctx context.Context, str *quic.Stream) {
	stop := context.AfterFunc(ctx, func() { str.CancelRead(1); str.CancelWrite(1) })
	defer stop()
	defer str.Close()
	var kind [1]byte
	if _, err := io.ReadFull(str, kind[:]); err != nil {
		return
	}
	switch kind[0] {
	case 'P':
		_, _ = io.Copy(str, str)
	case 'U':
		rr := receive(str, s.epoch, s.window)
		select {
		case s.up <- rr:
		default:
		}
	case 'D':
		var n [8]byte
		if _, err := io.ReadFull(str, n[:]); err != nil {
			return
		}
		_ = writeZeros(str, int64(binary.BigEndian.Uint64(n[:])))
	}
}

// WriteReport prints the result as the CLI shows it: configured against
// measured goodput, RTT and loss per direction, plus the per-window series
// for trace-driven directions.
func (r *LinkTestResult) WriteReport(w io.Writer) error {
	mbps := func(b float64) string {
		if b == 0 {
			return "unlimited"
		}
		return fmt.Sprintf("%.2f Mbit/s", b/1e6)
	}
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("RTT: configured %v, idle ping %v, QUIC min %v, smoothed %v\n",
		r.ConfiguredRTT, r.PingRTT.Round(10*time.Microsecond), r.MinRTT.Round(10*time.Microsecond), r.SmoothedRTT.Round(10*time.Microsecond))
	for _, d := range []*DirectionResult{r.Up, r.Down} {
		if d == nil {
			continue
		}
		p("%-8s %d bytes in %v: goodput %s, configured %s", d.Direction, d.Bytes, d.Duration.Round(time.Millisecond), mbps(d.GoodputBps), mbps(d.ConfiguredBps))
		if d.ConfiguredBps > 0 {
			p(" (%.1f%%, steady %.1f%%)", 100*d.Ratio, 100*d.SteadyRatio)
		}
		p("\n         loss: configured %.3f%%, emulator dropped %.3f%% (queue %d, loss %d, mtu %d), QUIC declared %.3f%%\n",
			100*d.ConfiguredLoss, 100*d.EmulatedLoss, d.Link.DroppedQueue, d.Link.DroppedLoss, d.Link.DroppedMTU, 100*d.QUICLoss)
		if len(d.Windows) > 1 {
			for i, win := range d.Windows {
				p("         window %2d: measured %s, capacity %s\n", i, mbps(win.MeasuredBps), mbps(win.CapacityBps))
			}
		}
	}
	return err
}
