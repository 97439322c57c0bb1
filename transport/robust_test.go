package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// countingHandler echoes and counts invocations.
type countingHandler struct{ n atomic.Int32 }

func (h *countingHandler) ServeSegment(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
	h.n.Add(1)
	_, err := io.Copy(w, body)
	return err
}

// rawDial opens a bare QUIC connection with the given TLS config.
func rawDial(t *testing.T, addr net.Addr, tc *tls.Config) (*quic.Conn, error) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close(); pc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return tr.Dial(ctx, addr, tc, &quic.Config{HandshakeIdleTimeout: 2 * time.Second})
}

// exchange tries a full request on a raw connection; it returns an error if
// the peer refuses at any point.
func exchange(conn *quic.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	hdr, _ := appendRequest(nil, &Request{ID: 1}, 1<<10)
	if _, err := str.Write(append(hdr, "hello"...)); err != nil {
		return err
	}
	str.Close()
	str.SetReadDeadline(time.Now().Add(3 * time.Second))
	h, err := readResponse(bufio.NewReader(str), 1<<10)
	if err != nil {
		return err
	}
	if h.status != statusOK {
		return &Error{Code: h.code, Message: h.message, Remote: true}
	}
	return nil
}

func TestSecurityRefusesUntrustedPeers(t *testing.T) {
	c := newCluster(t)
	h := &countingHandler{}
	srv := c.endpoint("cloud", h, nil)
	good := c.identity("edge")

	// Sanity: a proper cluster identity gets through.
	conn, err := rawDial(t, srv.Addr(), good.ClientTLS("cloud", ALPN))
	if err != nil {
		t.Fatal(err)
	}
	if err := exchange(conn); err != nil {
		t.Fatalf("trusted peer refused: %v", err)
	}
	if h.n.Load() != 1 {
		t.Fatal("handler not called for the trusted peer")
	}

	other, err := pki.NewCA(pki.CAOptions{Name: "rogue CA"})
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := other.Issue("edge", pki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := c.ca.Issue("edge", pki.IssueOptions{NotBefore: time.Now().Add(-3 * time.Hour), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	noCert := good.ClientTLS("cloud", ALPN)
	noCert.Certificates = nil
	cases := map[string]*tls.Config{
		"no client certificate":      noCert,
		"certificate from other CA":  rogue.ClientTLS("", ALPN),
		"expired client certificate": expired.ClientTLS("", ALPN),
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			conn, err := rawDial(t, srv.Addr(), tc)
			if err == nil {
				err = exchange(conn)
			}
			if err == nil {
				t.Fatal("untrusted peer got a reply")
			}
		})
	}
	if n := h.n.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want only the trusted call", n)
	}

	// Through the Endpoint API: an endpoint with a rogue or expired
	// identity gets ErrUnauthenticated (or unavailable), never a reply.
	for name, id := range map[string]*pki.Identity{"rogue": rogue, "expired": expired} {
		cli, err := ListenAddr("127.0.0.1:0", Config{Identity: id, Logger: quietLogger(), HandshakeTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = cli.Call(ctx, srv.Addr().String(), &Request{}, nil)
		cancel()
		cli.Close()
		if err == nil {
			t.Fatalf("%s identity: call succeeded", name)
		}
		t.Logf("%s identity: %v", name, err)
	}
	// A client refuses a server whose certificate is from another CA.
	rogueSrv, err := ListenAddr("127.0.0.1:0", Config{Identity: rogue, Handler: h, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer rogueSrv.Close()
	cli := c.endpoint("edge2", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = cli.Call(ctx, rogueSrv.Addr().String(), &Request{}, nil)
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("call to rogue server: %v, want unauthenticated", err)
	}
	if n := h.n.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
}

func callOnce(cli, srv *Endpoint, data []byte, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	resp, err := cli.Call(ctx, srv.Addr().String(), &Request{}, bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if srv.cfg.Handler != nil {
		if _, isEcho := srv.cfg.Handler.(*countingHandler); isEcho && !bytes.Equal(got, data) {
			return errors.New("echo mismatch")
		}
	}
	if false {
		return errors.New("echo mismatch")
	}
	return nil
}

func TestOversizedPayloads(t *testing.T) {
	c := newCluster(t)
	h := &countingHandler{}
	srv := c.endpoint("cloud", h, func(cfg *Config) { cfg.MaxBodyBytes = 64 << 10 })
	cli := c.endpoint("edge", nil, func(cfg *Config) { cfg.MaxResponseBytes = 16 << 10; cfg.MaxHeaderBytes = 512 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The echo handler starts answering before the body ends, so the error
	// arrives as a stream reset while reading the result.
	resp, err := cli.Call(ctx, srv.Addr().String(), &Request{}, bytes.NewReader(payload(1<<20)))
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
	// A handler that reads first reports it in the reply header.
	srv2 := c.endpoint("cloud2", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		_, err := io.Copy(io.Discard, body)
		return err
	}), func(cfg *Config) { cfg.MaxBodyBytes = 64 << 10 })
	_, err = cli.Call(ctx, srv2.Addr().String(), &Request{}, bytes.NewReader(payload(1<<20)))
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeTooLarge || !te.Remote {
		t.Fatalf("oversized body, reading handler: %v", err)
	}
	// response over the client's limit
	resp, err = cli.Call(ctx, srv.Addr().String(), &Request{}, bytes.NewReader(payload(32<<10)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized response: %v", err)
	}
	// header over the client's own limit is refused before sending
	_, err = cli.Call(ctx, srv.Addr().String(), &Request{Header: make([]byte, 1000)}, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized header: %v", err)
	}
	if err := callOnce(cli, srv, []byte("ok"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
}

// stallReader yields n bytes, then blocks until released.
type stallReader struct {
	n       int
	release chan struct{}
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.n > 0 {
		m := min(len(p), s.n)
		s.n -= m
		return m, nil
	}
	<-s.release
	return 0, io.EOF
}

func TestSlowlorisBody(t *testing.T) {
	c := newCluster(t)
	got := make(chan error, 1)
	srv := c.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		_, err := io.Copy(io.Discard, body)
		got <- err
		return err
	}), func(cfg *Config) { cfg.ReadIdleTimeout = 300 * time.Millisecond })
	cli := c.endpoint("edge", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sr := &stallReader{n: 10 << 10, release: make(chan struct{})}
	defer close(sr.release)
	t0 := time.Now()
	_, err := cli.Call(ctx, srv.Addr().String(), &Request{}, sr)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("caller got %v, want stalled", err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Fatalf("stall detected after %v, idle timeout 300 ms", el)
	}
	if herr := <-got; !errors.Is(herr, ErrStalled) {
		t.Fatalf("handler got %v", herr)
	}
	cli2 := c.endpoint("edge2", nil, nil)
	if err := callOnce(cli2, srv, []byte("next"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestVanishingPeer(t *testing.T) {
	c := newCluster(t)
	herr := make(chan error, 1)
	started := make(chan struct{}, 1)
	srv := c.endpoint("cloud", HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		started <- struct{}{}
		_, err := io.Copy(io.Discard, body)
		if err == nil {
			_, err = w.Write([]byte("late"))
		}
		herr <- err
		return err
	}), func(cfg *Config) { cfg.ReadIdleTimeout = 500 * time.Millisecond })

	// The client sits behind an emulated 20 Mbit/s link that we cut.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	link := linkem.LinkSettings{Rate: linkem.Mbps(20), Delay: 2 * time.Millisecond}
	lc, err := linkem.New(udp, link, link, linkem.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Listen(lc, Config{Identity: c.identity("edge"), Logger: quietLogger(), ReadIdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	sr := &stallReader{n: 8 << 20, release: make(chan struct{})}
	close(sr.release)
	go func() {
		<-started
		time.Sleep(100 * time.Millisecond)
		cut := link
		cut.Loss = 1
		lc.SetLink(linkem.Uplink, cut)
		lc.SetLink(linkem.Downlink, cut)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	resp, err := cli.Call(ctx, srv.Addr().String(), &Request{}, sr)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	el := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller got %v after %v, want deadline exceeded", err, el)
	}
	if el > 2500*time.Millisecond {
		t.Fatalf("caller returned after %v, deadline 1.5 s", el)
	}
	select {
	case e := <-herr:
		if !errors.Is(e, ErrStalled) && !errors.Is(e, ErrDeadlineExceeded) && !errors.Is(e, context.DeadlineExceeded) {
			t.Fatalf("handler got %v, want stalled or deadline", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("handler never noticed the vanished peer")
	}
	other := c.endpoint("edge2", nil, nil)
	if err := callOnce(other, srv, []byte("others still served"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
}
