package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// TestRogueCloudGetsNoActivations: cloud-2 (a valid member, a valid cloud
// certificate) gossips cloud-1's QUIC address as its own. The edge must
// see the name on the certificate differ from the member it chose before
// it sends anything, quarantine cloud-2, show it refused, audit it, and
// serve every request from cloud-1 with no activation ever reaching a
// cloud under cloud-2's name.
func TestRogueCloudGetsNoActivations(t *testing.T) {
	var audit syncBuffer
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 2, Models: []*node.Model{m}, Policy: "cloud-only",
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			if c.Role == node.RoleEdge {
				c.Audit = jsonLogger(&audit)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge, honest, rogue := lc.Edges[0], lc.Clouds[0], lc.Clouds[1]
	if err := rogue.AdvertiseQUIC(context.Background(), honest.QUICAddr()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the edge to see the rogue's advertised address", func() bool {
		for _, p := range edge.Members() {
			if p.Name == rogue.Name() && p.Meta.QUICAddr == honest.QUICAddr() {
				return true
			}
		}
		return false
	})
	before := servedByCloud(t, lc)
	x := randInput(3, m.Graph.Inputs[0].Shape)
	for i := range 12 {
		res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.Cloud == rogue.Name() {
			t.Fatalf("request %d answered by the rogue %s", i, rogue.Name())
		}
	}
	after := servedByCloud(t, lc)
	if d := after[rogue.Name()] - before[rogue.Name()]; d != 0 {
		t.Errorf("the rogue ran %d segments", d)
	}
	if d := after[honest.Name()] - before[honest.Name()]; d != 12 {
		t.Errorf("%s ran %d segments for 12 answers (an activation sent to the rogue's address would count here)", honest.Name(), d)
	}
	var refused string
	for _, c := range clusterView(t, edge) {
		if c.Name == rogue.Name() {
			refused = c.Refused
		}
	}
	if !strings.Contains(refused, "certificate of \""+honest.Name()+"\"") {
		t.Errorf("/v1/cluster shows %s refused as %q", rogue.Name(), refused)
	}
	if !strings.Contains(audit.String(), `"event":"quarantine"`) || !strings.Contains(audit.String(), `"peer":"`+rogue.Name()+`"`) {
		t.Errorf("no quarantine event in the audit log:\n%s", audit.String())
	}
}

// TestCloudServesEdgesOnly: a cloud certificate calling another cloud's
// segment service is refused.
func TestCloudServesEdgesOnly(t *testing.T) {
	lc, m := startTestCluster(t, 2, "auto")
	a, b := lc.Clouds[0], lc.Clouds[1]
	_, err := a.Endpoint().Call(context.Background(), b.QUICAddr(), &transport.Request{ID: 1, Header: node.ProbeHeader(m.ID, m.Version)}, bytes.NewReader([]byte{0}))
	var te *transport.Error
	if !errors.As(err, &te) || te.Code != transport.CodeUnauthenticated || !strings.Contains(err.Error(), "edges only") {
		t.Fatalf("a cloud probing a cloud: %v, want unauthenticated (edges only)", err)
	}
	// The edge's own probe of the same cloud is served.
	e := lc.Edges[0]
	resp, err := e.Endpoint().Call(context.Background(), b.QUICAddr(), &transport.Request{ID: 2, Header: node.ProbeHeader(m.ID, m.Version)}, bytes.NewReader([]byte{0}))
	if err != nil {
		t.Fatalf("the edge's probe: %v", err)
	}
	resp.Body.Close()
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func jsonLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// waitUntil polls ok every 20 ms until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// clusterView is the node's GET /v1/cluster.
func clusterView(t *testing.T, n *node.Node) []node.ClusterMember {
	t.Helper()
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/cluster", nil))
	var out []node.ClusterMember
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("/v1/cluster: %d %s: %v", rec.Code, rec.Body.String(), err)
	}
	return out
}

// garbage is an endless reader of pseudo-random bytes that holds no
// buffer of its own.
type garbage struct{ x uint64 }

func (g *garbage) Read(p []byte) (int, error) {
	for i := range p {
		g.x = g.x*6364136223846793005 + 1442695040888963407
		p[i] = byte(g.x >> 56)
	}
	return len(p), nil
}

// TestCloudBoundsSegmentBodies: a run request whose body is longer than
// any encoding of the segment's inputs is refused as too large after at
// most that many bytes, not after transport's whole body limit.
func TestCloudBoundsSegmentBodies(t *testing.T) {
	lc, m := startTestCluster(t, 1, "auto")
	edge, cloud := lc.Edges[0], lc.Clouds[0]
	hdr := node.RunHeader(m.ID, m.Version, "lossless", 0, m.Nodes())
	_, err := edge.Endpoint().Call(context.Background(), cloud.QUICAddr(), &transport.Request{ID: 7, Header: hdr},
		io.LimitReader(&garbage{x: 1}, 64<<20))
	if !errors.Is(err, transport.ErrTooLarge) || !strings.Contains(err.Error(), "the most the segment's inputs") {
		t.Fatalf("a 64 MiB garbage body: %v, want too large naming the inputs' bound", err)
	}
}

// BenchmarkGarbageBodies sends, all at once, 8 × 64 MiB garbage segment
// bodies to a cloud, 8 × 64 MiB garbage bodies (chunked) to the edge's API
// and 8 PNG decompression bombs, and reports the process's peak RSS growth
// (both ends run in this process) in MB.
func BenchmarkGarbageBodies(b *testing.B) {
	m := testModel(b)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1 },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer lc.Kill()
	edge, cloud := lc.Edges[0], lc.Clouds[0]
	hdr := node.RunHeader(m.ID, m.Version, "lossless", 0, m.Nodes())
	h := edge.Handler()
	bomb := pngHeader(4096, 4096, 16, 6)
	var peak float64
	for b.Loop() {
		runtime.GC()
		base := rssMB(b)
		var hw atomic.Int64
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
					if r := int64(rssMB(b)); r > hw.Load() {
						hw.Store(r)
					}
				}
			}
		}()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				_, err := edge.Endpoint().Call(context.Background(), cloud.QUICAddr(), &transport.Request{ID: uint64(i), Header: hdr},
					io.LimitReader(&garbage{x: uint64(i)}, 64<<20))
				if !errors.Is(err, transport.ErrTooLarge) {
					b.Errorf("garbage body: %v", err)
				}
			})
			wg.Go(func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer", bytes.NewReader(bomb)))
				if rec.Code != http.StatusBadRequest {
					b.Errorf("PNG bomb: %d", rec.Code)
				}
			})
			wg.Go(func() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/v1/infer", io.LimitReader(&garbage{x: uint64(i) + 99}, 64<<20))
				req.ContentLength = -1 // sent chunked: the edge cannot refuse it from the header
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusBadRequest {
					b.Errorf("64 MiB garbage body to the API: %d", rec.Code)
				}
			})
		}
		wg.Wait()
		close(done)
		peak = max(peak, float64(hw.Load())-base)
	}
	b.ReportMetric(peak, "peak-RSS-growth-MB")
}

// rssMB reads the process's resident set size from /proc (Linux).
func rssMB(b testing.TB) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Skip("no VmRSS")
	return 0
}
