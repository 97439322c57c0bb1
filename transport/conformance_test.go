package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
)

// testNet opens endpoints of one implementation for the conformance table.
type testNet struct {
	t    *testing.T
	c    *cluster
	open func(cfg Config) Transport
}

func (n *testNet) endpoint(name string, h Handler, mod func(*Config)) Transport {
	n.t.Helper()
	cfg := Config{Identity: n.c.identity(name), Handler: h, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	e := n.open(cfg)
	n.t.Cleanup(func() { e.Close() })
	return e
}

// implementations are the Transport implementations the table runs against.
var implementations = []struct {
	name string
	net  func(t *testing.T) *testNet
}{
	{"quic", func(t *testing.T) *testNet {
		n := &testNet{t: t, c: newCluster(t)}
		n.open = func(cfg Config) Transport {
			e, err := QUICNetwork{}.Listen("127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		return n
	}},
	{"memnet", func(t *testing.T) *testNet {
		mn := NewMemNetwork()
		n := &testNet{t: t, c: newCluster(t)}
		n.open = func(cfg Config) Transport {
			e, err := mn.Listen("", cfg)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		return n
	}},
}

func addr(e Transport) string { return e.Addr().String() }

func callBytes(ctx context.Context, cli Transport, to string, req *Request, body []byte) ([]byte, *Response, error) {
	resp, err := cli.Call(ctx, to, req, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return data, resp, err
}

var conformance = []struct {
	name string
	run  func(t *testing.T, n *testNet)
}{
	{"expected peer", func(t *testing.T, n *testNet) {
		// The server is "cloud-1", role cloud. A call expecting another
		// name or role fails before the handler sees anything.
		var served atomic.Int64
		srv := n.endpoint("cloud-1", HandlerFunc(func(_ context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			served.Add(1)
			_, err := io.Copy(w, body)
			return err
		}), func(c *Config) {
			id, err := n.c.ca.Issue("cloud-1", pki.IssueOptions{Validity: time.Hour, Role: pki.RoleCloud})
			if err != nil {
				t.Fatal(err)
			}
			c.Identity = id
		})
		cli := n.endpoint("edge-1", nil, nil)
		for _, tc := range []struct {
			name  string
			peer  string
			roles []pki.Role
			ok    bool
		}{
			{"right name and role", "cloud-1", []pki.Role{pki.RoleCloud}, true},
			{"no expectation", "", nil, true},
			{"another name", "cloud-9", nil, false},
			{"another role", "cloud-1", []pki.Role{pki.RoleEdge}, false},
		} {
			before := served.Load()
			got, _, err := callBytes(context.Background(), cli, addr(srv), &Request{ID: 1, Peer: tc.peer, PeerRoles: tc.roles}, []byte("activation"))
			switch {
			case tc.ok && (err != nil || string(got) != "activation"):
				t.Errorf("%s: %q, %v", tc.name, got, err)
			case !tc.ok && !errors.Is(err, ErrUntrustedPeer):
				t.Errorf("%s: %v, want ErrUntrustedPeer", tc.name, err)
			case !tc.ok && served.Load() != before:
				t.Errorf("%s: the handler ran though the peer was refused", tc.name)
			}
		}
	}},
	{"caller's role", func(t *testing.T, n *testNet) {
		roles := make(chan pki.Role, 1)
		srv := n.endpoint("cloud-1", HandlerFunc(func(ctx context.Context, _ *Request, _ io.Reader, _ ResponseWriter) error {
			info, _ := PeerFromContext(ctx)
			roles <- info.Role
			return nil
		}), nil)
		cli := n.endpoint("edge-1", nil, func(c *Config) {
			id, err := n.c.ca.Issue("edge-1", pki.IssueOptions{Validity: time.Hour, Role: pki.RoleEdge})
			if err != nil {
				t.Fatal(err)
			}
			c.Identity = id
		})
		if _, _, err := callBytes(context.Background(), cli, addr(srv), &Request{ID: 2}, nil); err != nil {
			t.Fatal(err)
		}
		if r := <-roles; r != pki.RoleEdge {
			t.Errorf("handler saw caller role %q, want edge", r)
		}
	}},
	{"round trip", func(t *testing.T, n *testNet) {
		h := &echo{}
		srv := n.endpoint("cloud", h, nil)
		cli := n.endpoint("edge", nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		data := payload(3<<20 + 17)
		got, resp, err := callBytes(ctx, cli, addr(srv), &Request{ID: 42, Header: []byte{1, 'm', 0, 2, 5}}, data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) || resp.RequestID != 42 || string(resp.Header) != "x" {
			t.Fatalf("echo mismatch: %d bytes, id %d, header %q", len(got), resp.RequestID, resp.Header)
		}
		h.mu.Lock()
		r, dl := h.reqs[0], h.dls[0]
		h.mu.Unlock()
		if !bytes.Equal(r.Header, []byte{1, 'm', 0, 2, 5}) {
			t.Fatalf("server saw %+v", r)
		}
		if dl <= 0 || dl > 30*time.Second {
			t.Fatalf("handler deadline %v, caller's was 30 s", dl)
		}
		// a second call reuses the endpoint pair
		if _, _, err := callBytes(ctx, cli, addr(srv), &Request{ID: 43}, nil); err != nil {
			t.Fatal(err)
		}
	}},
	{"handler error is typed", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			return Errorf(CodeNotFound, "no model %q", req.Header)
		}), nil)
		cli := n.endpoint("edge", nil, nil)
		_, _, err := callBytes(context.Background(), cli, addr(srv), &Request{Header: []byte("x")}, []byte("abc"))
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeNotFound || !te.Remote || !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want remote not found", err)
		}
	}},
	{"handler panic is internal", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			panic("boom")
		}), nil)
		cli := n.endpoint("edge", nil, nil)
		if _, _, err := callBytes(context.Background(), cli, addr(srv), &Request{}, nil); !errors.Is(err, ErrInternal) {
			t.Fatalf("err = %v, want internal", err)
		}
	}},
	{"no handler is unavailable", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", nil, nil)
		cli := n.endpoint("edge", nil, nil)
		if _, _, err := callBytes(context.Background(), cli, addr(srv), &Request{}, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	}},
	{"bad requests", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", &echo{}, func(c *Config) { c.MaxHeaderBytes = 256 })
		cli := n.endpoint("edge", nil, nil)
		if _, err := cli.Call(context.Background(), addr(srv), nil, nil); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("nil request: err = %v", err)
		}
		big := make([]byte, 1000)
		_, _, err := callBytes(context.Background(), cli, addr(srv), &Request{Header: big}, nil)
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeTooLarge || !te.Remote {
			t.Fatalf("header over the server's limit: err = %v, want remote too large", err)
		}
	}},
	{"response header limit", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			w.SetHeader(make([]byte, 300))
			_, err := w.Write([]byte("result"))
			return err
		}), func(c *Config) { c.MaxHeaderBytes = 256 })
		cli := n.endpoint("edge", nil, nil)
		_, _, err := callBytes(context.Background(), cli, addr(srv), &Request{}, nil)
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeTooLarge || !te.Remote {
			t.Fatalf("response header over the server's limit: err = %v, want remote too large", err)
		}
	}},
	{"body limits", func(t *testing.T, n *testNet) {
		got := make(chan error, 1)
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			_, err := io.Copy(io.Discard, body)
			got <- err
			if err != nil {
				return err
			}
			_, err = w.Write(payload(int(req.ID)))
			return err
		}), func(c *Config) { c.MaxBodyBytes = 64 << 10 })
		cli := n.endpoint("edge", nil, func(c *Config) { c.MaxResponseBytes = 32 << 10 })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, _, err := callBytes(ctx, cli, addr(srv), &Request{ID: 1}, payload(1<<20)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("request body over the limit: err = %v", err)
		}
		if herr := <-got; !errors.Is(herr, ErrTooLarge) {
			t.Fatalf("handler read %v", herr)
		}
		_, _, err := callBytes(ctx, cli, addr(srv), &Request{ID: 1 << 20}, payload(64<<10))
		<-got
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("response over the limit: err = %v", err)
		}
		if _, _, err := callBytes(ctx, cli, addr(srv), &Request{ID: 100}, payload(10)); err != nil {
			t.Fatalf("small call after limits: %v", err)
		}
		<-got
	}},
	{"deadline and cancel propagate", func(t *testing.T, n *testNet) {
		seen := make(chan error, 2)
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			<-ctx.Done()
			seen <- context.Cause(ctx)
			return ctx.Err()
		}), nil)
		cli := n.endpoint("edge", nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		_, err := cli.Call(ctx, addr(srv), &Request{ID: 1}, nil)
		if el := time.Since(t0); el > 1500*time.Millisecond {
			t.Fatalf("call returned after %v, deadline was 200 ms", el)
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
		if _, err = cli.Call(ctx2, addr(srv), &Request{ID: 2}, nil); !errors.Is(err, context.Canceled) {
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
		past, cancel3 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel3()
		if _, err := cli.Call(past, addr(srv), &Request{}, nil); !errors.Is(err, ErrDeadlineExceeded) {
			t.Fatalf("past deadline: err = %v", err)
		}
	}},
	{"slowloris body stalls", func(t *testing.T, n *testNet) {
		got := make(chan error, 1)
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			_, err := io.Copy(io.Discard, body)
			got <- err
			return err
		}), func(cfg *Config) { cfg.ReadIdleTimeout = 200 * time.Millisecond })
		cli := n.endpoint("edge", nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sr := &stallReader{n: 10 << 10, release: make(chan struct{})}
		defer close(sr.release)
		if _, err := cli.Call(ctx, addr(srv), &Request{}, sr); !errors.Is(err, ErrStalled) {
			t.Fatalf("caller got %v, want stalled", err)
		}
		if herr := <-got; !errors.Is(herr, ErrStalled) {
			t.Fatalf("handler got %v", herr)
		}
	}},
	{"concurrent stream limit", func(t *testing.T, n *testNet) {
		var cur, peak atomic.Int32
		release := make(chan struct{})
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			c := cur.Add(1)
			for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
			}
			<-release
			cur.Add(-1)
			return nil
		}), func(cfg *Config) { cfg.MaxConcurrentStreams = 2 })
		cli := n.endpoint("edge", nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := callBytes(ctx, cli, addr(srv), &Request{ID: uint64(i)}, nil)
				errs <- err
			}()
		}
		for deadline := time.Now().Add(5 * time.Second); cur.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
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
	}},
	{"graceful shutdown", func(t *testing.T, n *testNet) {
		started := make(chan struct{})
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			close(started)
			time.Sleep(200 * time.Millisecond)
			_, err := w.Write([]byte("done"))
			return err
		}), nil)
		cli := n.endpoint("edge", nil, nil)
		res := make(chan error, 1)
		go func() {
			got, _, err := callBytes(context.Background(), cli, addr(srv), &Request{}, nil)
			if err == nil && string(got) != "done" {
				err = errors.New("wrong reply " + string(got))
			}
			res <- err
		}()
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-res; err != nil {
			t.Fatalf("in-flight call: %v", err)
		}
		if _, err := srv.Call(ctx, addr(cli), &Request{}, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call after shutdown: %v", err)
		}
		srv.Close() // twice is fine
	}},
	{"closed peer is unavailable", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", &echo{}, nil)
		cli := n.endpoint("edge", nil, func(c *Config) { c.HandshakeTimeout = time.Second })
		to := addr(srv)
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cli.Call(ctx, to, &Request{}, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	}},
	{"peer vanishing mid-request", func(t *testing.T, n *testNet) {
		started := make(chan struct{})
		srv := n.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
			w.Write([]byte("partial"))
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}), nil)
		cli := n.endpoint("edge", nil, func(c *Config) { c.IdleTimeout = time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Call(ctx, addr(srv), &Request{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		srv.Close()
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if c := CodeOf(err); c != CodePeerGone && c != CodeCanceled {
			t.Fatalf("err = %v, want peer gone", err)
		}
	}},
	{"untrusted peer is refused", func(t *testing.T, n *testNet) {
		srv := n.endpoint("cloud", &echo{}, nil)
		other, err := pki.NewCA(pki.CAOptions{Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		id, err := other.Issue("intruder", pki.IssueOptions{Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		cli := n.open(Config{Identity: id, Logger: quietLogger(), HandshakeTimeout: time.Second})
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err = callBytes(ctx, cli, addr(srv), &Request{}, nil)
		if c := CodeOf(err); c != CodeUnauthenticated && c != CodeUnavailable {
			t.Fatalf("err = %v, want unauthenticated", err)
		}
	}},
}

// TestConformance runs one table against every Transport implementation.
func TestConformance(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range conformance {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, impl.net(t)) })
			}
		})
	}
}
