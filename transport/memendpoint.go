package transport

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// MemEndpoint is an endpoint on a [MemNetwork]. It implements [Transport]
// and is safe for concurrent use.
type MemEndpoint struct {
	core
	net      *MemNetwork
	addr     MemAddr
	up, down *linkem.Shaper

	mu       sync.Mutex
	closing  bool
	closed   bool
	peers    map[string]*memPeer
	open     map[*memExchange]struct{}
	inflight sync.WaitGroup // handlers and calls
}

// memPeer is the state an endpoint keeps per remote address.
type memPeer struct {
	peer
	slots chan struct{} // the peer's open requests to us (MaxConcurrentStreams)
}

// memExchange is one request's stream pair, failed when either endpoint
// closes.
type memExchange struct {
	req, resp *memHalf
}

func (x *memExchange) fail(err error) {
	x.req.fail(err)
	x.resp.fail(err)
}

// Addr returns the endpoint's address.
func (e *MemEndpoint) Addr() net.Addr { return e.addr }

// role returns the Identity's role ("" without one).
func (e *MemEndpoint) role() pki.Role {
	if e.cfg.Identity == nil {
		return ""
	}
	return e.cfg.Identity.Role
}

// Name returns the Identity's name ("" without one).
func (e *MemEndpoint) Name() string {
	if e.cfg.Identity == nil {
		return ""
	}
	return e.cfg.Identity.Name
}

// SetLink shapes the endpoint's access link: up carries what it sends, down
// what it receives. Loss, queue limits, MTU and reordering do not apply (see
// [linkem.Shaper]); zero settings pass through.
func (e *MemEndpoint) SetLink(up, down linkem.LinkSettings) error {
	if err := up.Validate(); err != nil {
		return fmt.Errorf("transport: uplink: %w", err)
	}
	if err := down.Validate(); err != nil {
		return fmt.Errorf("transport: downlink: %w", err)
	}
	e.up.Set(up)
	e.down.Set(down)
	return nil
}

// Link returns the endpoint's current link settings.
func (e *MemEndpoint) Link() (up, down linkem.LinkSettings) {
	return e.up.Settings(), e.down.Settings()
}

func (e *MemEndpoint) peerFor(addr string) *memPeer {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.peers[addr]
	if !ok {
		p = &memPeer{peer: peer{key: addr}, slots: make(chan struct{}, e.cfg.MaxConcurrentStreams)}
		e.peers[addr] = p
	}
	return p
}

// authenticate checks the caller's certificate against the server's CA, as
// the TLS handshake would; endpoints without an Identity skip it.
func authenticate(cli, srv *MemEndpoint) error {
	ci, si := cli.cfg.Identity, srv.cfg.Identity
	if ci == nil || si == nil {
		return nil
	}
	verify := func(leaf []byte, roots *x509.CertPool) error {
		c, err := x509.ParseCertificate(leaf)
		if err != nil {
			return err
		}
		_, err = c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	if len(ci.Certificate.Certificate) == 0 || len(si.Certificate.Certificate) == 0 {
		return Errorf(CodeUnauthenticated, "dial %s: TLS handshake failed: no certificate", srv.addr)
	}
	if err := verify(ci.Certificate.Certificate[0], si.Roots); err != nil {
		return wrapErr(CodeUnauthenticated, fmt.Sprintf("dial %s: TLS handshake failed", srv.addr), err)
	}
	if err := verify(si.Certificate.Certificate[0], ci.Roots); err != nil {
		return wrapErr(CodeUnauthenticated, fmt.Sprintf("dial %s: TLS handshake failed", srv.addr), err)
	}
	return nil
}

// Call sends a request to the endpoint at addr on the same network, with
// the semantics of [Endpoint.Call].
func (e *MemEndpoint) Call(ctx context.Context, addr string, req *Request, body io.Reader) (*Response, error) {
	if req == nil {
		return nil, Errorf(CodeBadRequest, "nil request")
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, Errorf(CodeUnavailable, "endpoint is shutting down")
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	done := sync.OnceFunc(e.inflight.Done)
	resp, err := e.call(ctx, addr, req, body, done)
	if err != nil {
		done()
		return nil, err
	}
	return resp, nil
}

func (e *MemEndpoint) call(ctx context.Context, addr string, req *Request, body io.Reader, done func()) (*Response, error) {
	p := e.peerFor(addr)
	r := *req
	r.Timeout = 0
	if dl, ok := ctx.Deadline(); ok {
		r.Timeout = time.Until(dl)
		if r.Timeout <= 0 {
			return nil, wrapErr(CodeDeadlineExceeded, "deadline passed before sending", context.DeadlineExceeded)
		}
	}
	r.PeerGoodput = p.rxRate()
	hdr, err := appendRequest(make([]byte, 0, 256), &r, e.cfg.MaxHeaderBytes)
	if err != nil {
		return nil, err
	}
	srv := e.net.lookup(addr)
	if srv == nil || srv == e {
		return nil, Errorf(CodeUnavailable, "dial %s: no endpoint at that address", addr)
	}
	if err := authenticate(e, srv); err != nil {
		return nil, err
	}
	if err := checkPeer(req, addr, srv.Name(), srv.role()); err != nil {
		return nil, err
	}
	sp := srv.peerFor(string(e.addr))
	p.mu.Lock()
	p.name = srv.Name()
	p.mu.Unlock()
	// Open the stream: wait for one of the server's slots for us.
	select {
	case sp.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, classify(ctx, "open stream", ctx.Err())
	}
	x := &memExchange{
		req:  newMemHalf([]*linkem.Shaper{e.up, srv.down}, int(srv.cfg.StreamReceiveWindow)),
		resp: newMemHalf([]*linkem.Shaper{srv.up, e.down}, int(e.cfg.StreamReceiveWindow)),
	}
	release := func() { <-sp.slots }
	if !e.track(x) {
		release()
		return nil, Errorf(CodeUnavailable, "endpoint is shutting down")
	}
	if !srv.accept(x, e, sp, release) {
		e.untrack(x)
		release()
		return nil, Errorf(CodeUnavailable, "dial %s: endpoint closed", addr)
	}
	cli := &memStream{in: x.resp, out: x.req}
	resp, err := e.exchange(ctx, &p.peer, cli, hdr, r.Timeout, body, func() { e.untrack(x); done() }, func() {})
	if err != nil {
		e.untrack(x)
		return nil, err
	}
	return resp, nil
}

// track registers x to be failed when e closes; false if e is closed.
func (e *MemEndpoint) track(x *memExchange) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.open[x] = struct{}{}
	return true
}

func (e *MemEndpoint) untrack(x *memExchange) {
	e.mu.Lock()
	delete(e.open, x)
	e.mu.Unlock()
}

// accept serves exchange x from cli on its own goroutine (the endpoint's
// lifetime bounds it: closing fails the streams, which ends the handler).
func (e *MemEndpoint) accept(x *memExchange, cli *MemEndpoint, p *memPeer, release func()) bool {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	e.open[x] = struct{}{}
	closing := e.closing
	e.inflight.Add(1)
	e.mu.Unlock()
	str := &memStream{in: x.req, out: x.resp}
	p.mu.Lock()
	p.name = cli.Name()
	p.mu.Unlock()
	// The "connection" ends when either endpoint closes.
	connCtx, stop := context.WithCancel(e.ctx)
	stopCli := context.AfterFunc(cli.ctx, stop)
	go func() {
		defer e.inflight.Done()
		defer release()
		defer stop()
		defer stopCli()
		defer e.untrack(x)
		if closing {
			e.refuse(str, CodeUnavailable, "endpoint is shutting down")
			return
		}
		e.serveStream(&p.peer, str, PeerInfo{Addr: cli.addr, Name: cli.Name(), Role: cli.role()}, connCtx, func() {})
	}()
	return true
}

// Estimate returns the live estimate of the link to the peer at addr:
// goodput as on [Endpoint] (measured while transfers run, each side
// reporting what it received), and RTTs from the links' current one-way
// delays in both directions.
func (e *MemEndpoint) Estimate(addr string) (PeerEstimate, bool) {
	e.mu.Lock()
	p, ok := e.peers[addr]
	e.mu.Unlock()
	if !ok {
		return PeerEstimate{}, false
	}
	return e.estimate(p), true
}

func (e *MemEndpoint) estimate(p *memPeer) PeerEstimate {
	est := p.estimate()
	if srv := e.net.lookup(p.key); srv != nil {
		est.Connected = true
		rtt := e.up.Settings().Delay + srv.down.Settings().Delay + srv.up.Settings().Delay + e.down.Settings().Delay
		est.SmoothedRTT, est.MinRTT, est.LatestRTT = rtt, rtt, rtt
	}
	return est
}

// Estimates returns the live estimates of all known peers, sorted by address.
func (e *MemEndpoint) Estimates() []PeerEstimate {
	e.mu.Lock()
	ps := make([]*memPeer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	out := make([]PeerEstimate, 0, len(ps))
	for _, p := range ps {
		out = append(out, e.estimate(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// Shutdown stops accepting requests, waits for in-flight requests (served
// and made) to finish or for ctx to end, then closes. It returns ctx's error
// if it gave up waiting.
func (e *MemEndpoint) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("transport: shutdown: %w", ctx.Err())
	}
	e.Close()
	return err
}

// Close closes the endpoint at once, failing in-flight requests with
// CodePeerGone on both sides.
func (e *MemEndpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closing, e.closed = true, true
	open := make([]*memExchange, 0, len(e.open))
	for x := range e.open {
		open = append(open, x)
	}
	e.open = nil
	e.mu.Unlock()
	e.net.remove(e)
	err := fmt.Errorf("transport: endpoint %s closed: %w", e.addr, net.ErrClosed)
	for _, x := range open {
		x.fail(err)
	}
	e.cancel()
	e.up.Close()
	e.down.Close()
	return nil
}
