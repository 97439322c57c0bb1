package transport

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgesplit/edgesplit/transport/linkem"
)

// TestMemNetworkShapesLinks checks that a MemEndpoint's link delays and
// paces what it carries.
func TestMemNetworkShapesLinks(t *testing.T) {
	c := newCluster(t)
	mn := NewMemNetwork()
	srv, err := mn.ListenMem("cloud:0", Config{Identity: c.identity("cloud"), Handler: &echo{}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := mn.ListenMem("", Config{Identity: c.identity("edge"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Delay only: one round trip of 2 × (10 + 10) ms.
	if err := cli.SetLink(linkem.LinkSettings{Delay: 10 * time.Millisecond}, linkem.LinkSettings{Delay: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, _, err := callBytes(ctx, cli, srv.Addr().String(), &Request{}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 20*time.Millisecond || el > 200*time.Millisecond {
		t.Fatalf("tiny call took %v over a 20 ms RTT", el)
	}
	if est, ok := cli.Estimate(srv.Addr().String()); !ok || est.SmoothedRTT != 20*time.Millisecond || est.Name != "cloud" {
		t.Fatalf("estimate %+v", est)
	}
	// Rate: 1 MiB up at 80 Mbit/s takes ≈ 105 ms.
	if err := cli.SetLink(linkem.LinkSettings{Rate: linkem.Mbps(80)}, linkem.LinkSettings{}); err != nil {
		t.Fatal(err)
	}
	sink := HandlerFunc(func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
		_, err := io.Copy(io.Discard, body)
		return err
	})
	srv2, err := mn.ListenMem("", Config{Handler: sink, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	cli2, err := mn.ListenMem("", Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	cli2.SetLink(linkem.LinkSettings{Rate: linkem.Mbps(80)}, linkem.LinkSettings{})
	t0 = time.Now()
	if _, _, err := callBytes(ctx, cli2, srv2.Addr().String(), &Request{}, payload(1<<20)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(t0)
	want := time.Duration(float64(1<<20) * 8 / 80e6 * float64(time.Second))
	// The upper bound is loose: under -race the copies alone take ≈ 3×.
	if el < want*9/10 || el > want*10 {
		t.Fatalf("1 MiB at 80 Mbit/s took %v, want ≈ %v", el, want)
	}
	t.Logf("1 MiB at 80 Mbit/s: %v (ideal %v)", el, want)
}

// TestMemNetworkConformanceSynctest runs the table on a MemNetwork inside a
// testing/synctest bubble: with no sockets, the deadlines, idle timeouts and
// sleeps run on the bubble's fake clock, so the slow cases take no real time.
// (Shaped links stay out of the bubble: the shaper's goroutine spins on the
// clock for sub-millisecond precision.)
func TestMemNetworkConformanceSynctest(t *testing.T) {
	for _, tc := range conformance {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { tc.run(t, implementations[1].net(t)) })
		})
	}
}
