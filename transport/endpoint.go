package transport

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesplit/edgesplit/transport/pki"
)

// Endpoint is a node's QUIC endpoint: one quic.Transport over one UDP socket
// that both accepts connections (serving requests with Config.Handler) and
// dials peers (Call). Connections are reused per peer, in both directions.
// It is safe for concurrent use.
type Endpoint struct {
	core
	pc    net.PacketConn
	tr    *quic.Transport
	ln    *quic.Listener
	qconf *quic.Config

	mu       sync.Mutex
	closing  bool
	peers    map[string]*peer
	inflight sync.WaitGroup // handlers and calls
	bg       sync.WaitGroup // accept loops
}

// core is what the request and response code shares between the QUIC
// endpoint and the memory network's: the configuration, the log and the
// endpoint's lifetime.
type core struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
}

// peer is the state kept per remote address.
type peer struct {
	addr *net.UDPAddr
	key  string

	mu       sync.Mutex
	name     string
	conn     *quic.Conn
	connAt   time.Time     // when conn was made
	dialing  chan struct{} // closed when the current dial ends
	failures int
	nextDial time.Time
	lastErr  error

	rx      meter // goodput from the peer, measured here
	loss    lossMeter
	txMu    sync.Mutex
	txRate  float64 // goodput to the peer, as reported by it
	txStamp time.Time
}

// Listen starts an endpoint on pc (for example a *net.UDPConn, or a
// linkem.Conn for an emulated link). The endpoint owns pc and closes it.
func Listen(pc net.PacketConn, cfg Config) (*Endpoint, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Endpoint{core: core{cfg: c, log: c.Logger}, pc: pc, peers: map[string]*peer{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.qconf = &quic.Config{
		HandshakeIdleTimeout:       c.HandshakeTimeout,
		MaxIdleTimeout:             c.IdleTimeout,
		KeepAlivePeriod:            c.KeepAlivePeriod,
		MaxIncomingStreams:         c.MaxConcurrentStreams,
		MaxIncomingUniStreams:      -1,
		MaxStreamReceiveWindow:     c.StreamReceiveWindow,
		MaxConnectionReceiveWindow: c.ConnectionReceiveWindow,
	}
	e.tr = &quic.Transport{Conn: pc}
	ln, err := e.tr.Listen(c.Identity.ServerTLS(ALPN), e.qconf)
	if err != nil {
		e.tr.Close()
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	e.ln = ln
	e.bg.Add(1)
	go e.acceptLoop()
	return e, nil
}

// ListenAddr opens a UDP socket on addr (e.g. "127.0.0.1:0") and calls Listen.
func ListenAddr(addr string, cfg Config) (*Endpoint, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	e, err := Listen(pc, cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return e, nil
}

// Addr returns the endpoint's UDP address.
func (e *Endpoint) Addr() net.Addr { return e.pc.LocalAddr() }

// Name returns this node's name.
func (e *Endpoint) Name() string { return e.cfg.Identity.Name }

func (e *Endpoint) peerFor(addr *net.UDPAddr) *peer {
	key := addr.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.peers[key]
	if !ok {
		p = &peer{addr: addr, key: key}
		e.peers[key] = p
	}
	return p
}

func (e *Endpoint) acceptLoop() {
	defer e.bg.Done()
	for {
		conn, err := e.ln.Accept(e.ctx)
		if err != nil {
			return
		}
		ua, ok := conn.RemoteAddr().(*net.UDPAddr)
		if !ok {
			conn.CloseWithError(0, "bad address")
			continue
		}
		p := e.peerFor(ua)
		p.mu.Lock()
		p.name = peerName(conn)
		if p.conn == nil || p.conn.Context().Err() != nil {
			p.conn, p.connAt = conn, time.Now() // reuse inbound connections for outbound calls
		}
		p.mu.Unlock()
		e.serveConn(conn, p)
	}
}

func peerName(conn *quic.Conn) string {
	name, _ := peerIdentity(conn)
	return name
}

// peerIdentity returns the node name and role of conn's peer certificate.
func peerIdentity(conn *quic.Conn) (string, pki.Role) {
	cs := conn.ConnectionState().TLS
	if len(cs.PeerCertificates) == 0 {
		return "", ""
	}
	return pki.PeerName(cs.PeerCertificates[0]), pki.RoleOf(cs.PeerCertificates[0])
}

// serveConn accepts streams on conn (inbound or outbound) until it closes.
func (e *Endpoint) serveConn(conn *quic.Conn, p *peer) {
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		for {
			str, err := conn.AcceptStream(e.ctx)
			if err != nil {
				return
			}
			e.mu.Lock()
			if e.closing {
				e.mu.Unlock()
				e.refuse(str, CodeUnavailable, "endpoint is shutting down")
				continue
			}
			e.inflight.Add(1)
			e.mu.Unlock()
			go func() {
				defer e.inflight.Done()
				name, role := peerIdentity(conn)
				info := PeerInfo{Addr: conn.RemoteAddr(), Name: name, Role: role}
				e.serveStream(p, str, info, conn.Context(), func() { p.observe(conn) })
			}()
		}
	}()
}

// conn returns a live connection to p, dialling with backoff if needed.
func (e *Endpoint) conn(ctx context.Context, p *peer) (*quic.Conn, error) {
	for {
		p.mu.Lock()
		if c := p.conn; c != nil && c.Context().Err() == nil {
			p.mu.Unlock()
			return c, nil
		}
		if ch := p.dialing; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, classify(ctx, "dial "+p.key, ctx.Err())
			}
		}
		if wait := time.Until(p.nextDial); wait > 0 {
			lastErr := p.lastErr
			p.mu.Unlock()
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return nil, wrapErr(CodeUnavailable, fmt.Sprintf("dial %s: backing off after %d failures", p.key, p.failures), lastErr)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, classify(ctx, "dial "+p.key, ctx.Err())
			}
		}
		ch := make(chan struct{})
		p.dialing = ch
		p.mu.Unlock()

		c, err := e.tr.Dial(ctx, p.addr, e.cfg.Identity.ClientTLS("", ALPN), e.qconf)

		p.mu.Lock()
		p.dialing = nil
		close(ch)
		if err != nil {
			p.failures++
			back := e.cfg.DialBackoffMin << min(p.failures-1, 16)
			back = min(back, e.cfg.DialBackoffMax)
			back = back/2 + rand.N(back/2+1)
			p.nextDial = time.Now().Add(back)
			p.lastErr = err
			p.mu.Unlock()
			ce := classify(ctx, "dial "+p.key, err)
			if ce.Code == CodeInternal || ce.Code == CodePeerGone {
				ce.Code = CodeUnavailable
			}
			e.log.Debug("transport: dial failed", "peer", p.key, "err", err)
			return nil, ce
		}
		p.failures, p.lastErr = 0, nil
		p.name = peerName(c)
		p.conn, p.connAt = c, time.Now()
		p.mu.Unlock()
		e.serveConn(c, p)
		return c, nil
	}
}

// Estimate returns the live estimate for the peer at addr.
func (e *Endpoint) Estimate(addr string) (PeerEstimate, bool) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return PeerEstimate{}, false
	}
	e.mu.Lock()
	p, ok := e.peers[ua.String()]
	e.mu.Unlock()
	if !ok {
		return PeerEstimate{}, false
	}
	return p.estimate(), true
}

// Estimates returns the live estimates of all known peers, sorted by address.
func (e *Endpoint) Estimates() []PeerEstimate {
	e.mu.Lock()
	ps := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	out := make([]PeerEstimate, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.estimate())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

func (p *peer) estimate() PeerEstimate {
	now := time.Now()
	p.mu.Lock()
	est := PeerEstimate{Addr: p.key, Name: p.name}
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		st := c.ConnectionStats()
		est.Connected = c.Context().Err() == nil
		est.SmoothedRTT, est.MinRTT, est.LatestRTT, est.RTTVar = st.SmoothedRTT, st.MinRTT, st.LatestRTT, st.MeanDeviation
		p.loss.observe(now, st)
	}
	var t1, t2, t3 time.Time
	est.RecvGoodput, t1 = p.rx.rate()
	p.txMu.Lock()
	est.SendGoodput, t2 = p.txRate, p.txStamp
	p.txMu.Unlock()
	est.Loss, t3 = p.loss.value()
	for _, t := range []time.Time{t1, t2, t3} {
		if t.After(est.Updated) {
			est.Updated = t
		}
	}
	return est
}

func (p *peer) setTxRate(bps uint64) {
	if bps == 0 {
		return
	}
	p.txMu.Lock()
	p.txRate, p.txStamp = float64(bps), time.Now()
	p.txMu.Unlock()
}

func (p *peer) rxRate() uint64 {
	r, _ := p.rx.rate()
	return uint64(r)
}

func (p *peer) observe(c *quic.Conn) { p.loss.observe(time.Now(), c.ConnectionStats()) }

// Shutdown stops accepting connections and requests, waits for in-flight
// requests (served and made) to finish or for ctx to end, then closes all
// connections and the socket. It returns ctx's error if it gave up waiting.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	already := e.closing
	e.closing = true
	e.mu.Unlock()
	if !already {
		e.ln.Close()
	}
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
		// Let the last replies reach their callers: QUIC discards unsent
		// stream data when a connection closes. Linger for a few RTTs.
		linger := 50 * time.Millisecond
		for _, est := range e.Estimates() {
			linger = max(linger, 50*time.Millisecond+3*est.SmoothedRTT)
		}
		t := time.NewTimer(min(linger, 2*time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	case <-ctx.Done():
		err = fmt.Errorf("transport: shutdown: %w", ctx.Err())
	}
	e.closeAll()
	return err
}

// Close closes the endpoint at once, failing in-flight requests.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	already := e.closing
	e.closing = true
	e.mu.Unlock()
	if !already {
		e.ln.Close()
	}
	e.closeAll()
	return nil
}

func (e *Endpoint) closeAll() {
	e.mu.Lock()
	ps := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		c := p.conn
		p.mu.Unlock()
		if c != nil {
			c.CloseWithError(0, "endpoint closed")
		}
	}
	e.cancel()
	e.tr.Close()
	e.pc.Close()
	e.bg.Wait()
}
