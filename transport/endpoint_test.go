package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type cluster struct {
	t  *testing.T
	ca *pki.CA
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, ca: ca}
}

func (c *cluster) identity(name string) *pki.Identity {
	c.t.Helper()
	id, err := c.ca.Issue(name, pki.IssueOptions{Validity: time.Hour})
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// endpoint starts an endpoint on loopback; mod may adjust its config.
func (c *cluster) endpoint(name string, h Handler, mod func(*Config)) *Endpoint {
	c.t.Helper()
	cfg := Config{Identity: c.identity(name), Handler: h, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	e, err := ListenAddr("127.0.0.1:0", cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { e.Close() })
	return e
}

// echo returns the request body, prefixed by nothing, and records requests.
type echo struct {
	mu   sync.Mutex
	reqs []*Request
	dls  []time.Duration
}

func (h *echo) ServeSegment(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	if dl, ok := ctx.Deadline(); ok {
		h.dls = append(h.dls, time.Until(dl))
	}
	h.mu.Unlock()
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	w.SetHeader([]byte("x"))
	_, err = w.Write(data)
	return err
}

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCallRoundTrip(t *testing.T) {
	c := newCluster(t)
	h := &echo{}
	srv := c.endpoint("cloud", h, nil)
	cli := c.endpoint("edge", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	data := payload(3 << 20)
	req := &Request{ID: 42, Header: []byte("mobilenet@v2 [3,17) fp16-zstd")}
	for i := 0; i < 2; i++ { // second call reuses the connection
		resp, err := cli.Call(ctx, srv.Addr().String(), req, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(data))
		}
		if resp.RequestID != 42 || string(resp.Header) != "x" {
			t.Fatalf("response header = %d %q", resp.RequestID, resp.Header)
		}
	}
	h.mu.Lock()
	r := h.reqs[0]
	dl := h.dls[0]
	h.mu.Unlock()
	if r.ID != 42 || string(r.Header) != "mobilenet@v2 [3,17) fp16-zstd" {
		t.Fatalf("server saw %+v", r)
	}
	if dl <= 8*time.Second || dl > 10*time.Second {
		t.Fatalf("handler deadline %v, want ≈ 10 s (propagated)", dl)
	}
	if n := len(cli.peers); n != 1 {
		t.Fatalf("client has %d peers, want 1", n)
	}

	est, ok := cli.Estimate(srv.Addr().String())
	if !ok || !est.Connected || est.Name != "cloud" {
		t.Fatalf("estimate = %+v, %v", est, ok)
	}
	if est.SmoothedRTT <= 0 || est.MinRTT <= 0 || est.MinRTT > est.SmoothedRTT*10 {
		t.Fatalf("RTTs = %v / %v", est.SmoothedRTT, est.MinRTT)
	}
	if est.RecvGoodput <= 0 || est.SendGoodput <= 0 {
		t.Fatalf("goodput estimates recv=%v send=%v, want > 0", est.RecvGoodput, est.SendGoodput)
	}
	srvEst := srv.Estimates()
	if len(srvEst) != 1 || srvEst[0].Name != "edge" || srvEst[0].RecvGoodput <= 0 {
		t.Fatalf("server estimates = %+v", srvEst)
	}
}

func TestHandlerErrorIsTyped(t *testing.T) {
	c := newCluster(t)
	srv := c.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		return Errorf(CodeNotFound, "model %q not loaded", req.Header)
	}), nil)
	cli := c.endpoint("edge", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cli.Call(ctx, srv.Addr().String(), &Request{Header: []byte("resnet")}, bytes.NewReader(payload(1000)))
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeNotFound || !te.Remote || te.Message != `model "resnet" not loaded` {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrInternal) {
		t.Fatal("errors.Is does not match the code")
	}
	// A client-only endpoint refuses requests.
	_, err = srv.Call(ctx, cli.Addr().String(), &Request{}, nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call to a client-only endpoint: %v", err)
	}
}

func TestDeadlineAndCancelPropagate(t *testing.T) {
	c := newCluster(t)
	seen := make(chan error, 2)
	srv := c.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		<-ctx.Done()
		seen <- context.Cause(ctx)
		return ctx.Err()
	}), nil)
	cli := c.endpoint("edge", nil, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := cli.Call(ctx, srv.Addr().String(), &Request{ID: 1}, nil)
	if el := time.Since(t0); el > 1500*time.Millisecond {
		t.Fatalf("call returned after %v, deadline was 300 ms", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	select {
	case e := <-seen:
		if !errors.Is(e, context.DeadlineExceeded) {
			t.Fatalf("handler saw %v", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("handler's context never ended")
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	_, err = cli.Call(ctx2, srv.Addr().String(), &Request{ID: 2}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	select {
	case e := <-seen:
		if !errors.Is(e, context.Canceled) {
			t.Fatalf("handler saw %v, want canceled", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not reach the handler")
	}
}

func TestConcurrentStreamLimit(t *testing.T) {
	c := newCluster(t)
	var cur, peak atomic.Int32
	release := make(chan struct{})
	srv := c.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		cur.Add(-1)
		return nil
	}), func(cfg *Config) { cfg.MaxConcurrentStreams = 2 })
	cli := c.endpoint("edge", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := cli.Call(ctx, srv.Addr().String(), &Request{ID: uint64(i)}, nil)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); cur.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // give excess streams a chance to (wrongly) start
	if p := peak.Load(); p != 2 {
		t.Fatalf("%d handlers ran at once, limit 2", p)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("peak %d > 2", p)
	}
}

func TestGracefulShutdown(t *testing.T) {
	c := newCluster(t)
	started := make(chan struct{})
	srv := c.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, err := w.Write([]byte("done"))
		return err
	}), nil)
	cli := c.endpoint("edge", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type result struct {
		body []byte
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := cli.Call(ctx, srv.Addr().String(), &Request{}, nil)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{b, err}
	}()
	<-started
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || string(r.body) != "done" {
		t.Fatalf("in-flight request during shutdown: %q, %v", r.body, r.err)
	}
	_, err := srv.Call(ctx, cli.Addr().String(), &Request{}, nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call on a shut-down endpoint: %v", err)
	}
}

func TestReconnectWithBackoff(t *testing.T) {
	c := newCluster(t)
	srv := c.endpoint("cloud", &echo{}, nil)
	addr := srv.Addr().String()
	cli := c.endpoint("edge", nil, func(cfg *Config) {
		cfg.DialBackoffMin = 20 * time.Millisecond
		cfg.HandshakeTimeout = 300 * time.Millisecond
	})
	call := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		resp, err := cli.Call(ctx, addr, &Request{}, bytes.NewReader([]byte("hi")))
		if err != nil {
			return err
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		return err
	}
	if err := call(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := call(500 * time.Millisecond); err == nil {
		t.Fatal("call to a closed peer succeeded")
	} else if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrPeerGone) && !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("call to a closed peer: %v", err)
	}
	// restart on the same address
	ua, _ := net.ResolveUDPAddr("udp", addr)
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	srv2, err := Listen(pc, Config{Identity: c.identity("cloud"), Handler: &echo{}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	if err := call(5 * time.Second); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestGoodputIgnoresIdle(t *testing.T) {
	var m meter
	t0 := time.Now()
	m.begin(t0)
	m.add(t0.Add(100*time.Millisecond), 1<<20)
	m.end(t0.Add(100 * time.Millisecond))
	r1, _ := m.rate()
	// a long idle gap, then a small request that must not count
	t1 := t0.Add(time.Minute)
	m.begin(t1)
	m.add(t1.Add(50*time.Millisecond), 100)
	m.end(t1.Add(50 * time.Millisecond))
	r2, _ := m.rate()
	want := float64(1<<20) * 8 / 0.1
	if r1 < want*0.99 || r1 > want*1.01 || r2 != r1 {
		t.Fatalf("rates %v, %v; want %v both", r1, r2, want)
	}
}
