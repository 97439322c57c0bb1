package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/cluster"
)

// TestShutdownDrains: an edge shut down under load (what SIGTERM does)
// answers every request it accepted: the audit log (one line per request
// that reached the API) has exactly as many 200s as the clients received,
// and none with another status. A connection still in the kernel's backlog
// when the listener closes is reset without ever reaching the node; the
// clients see that as an error (or, later, a refused connection).
func TestShutdownDrains(t *testing.T) {
	var audit syncBuffer
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		CloudDevice: node.Device{Name: "slowish", Slowdown: 50},
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			if c.Role == node.RoleEdge {
				c.HTTPAddr, c.API, c.Audit = "127.0.0.1:0", access.Open(), jsonLogger(&audit)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge := lc.Edges[0]
	url := "http://" + edge.HTTPAddr() + "/v1/infer"
	body := npyBytes(t, randInput(6, m.Graph.Inputs[0].Shape))
	var answered, failedStatus, refused, reset atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			// One connection per request: a request on a kept-alive
			// connection the server closes as idle was never accepted,
			// and would read here as lost.
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
				switch {
				case err == nil:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						answered.Add(1)
					} else {
						failedStatus.Add(1)
					}
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
				default: // reset or EOF: never accepted, or lost — the audit log tells
					reset.Add(1)
				}
			}
		})
	}
	waitUntil(t, 20*time.Second, "requests to flow", func() bool { return answered.Load() >= 40 })
	before := answered.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := edge.Shutdown(ctx); err != nil {
		t.Errorf("shutdown under load: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	audited := strings.Count(audit.String(), `"msg":"request"`)
	ok200 := strings.Count(audit.String(), `"status":200`)
	if audited != ok200 || int64(ok200) != answered.Load() {
		t.Errorf("the edge accepted %d requests (%d answered 200) but the clients received %d answers: %d lost",
			audited, ok200, answered.Load(), int64(audited)-answered.Load())
	}
	if failedStatus.Load() != 0 {
		t.Errorf("%d requests answered with an error status during the shutdown", failedStatus.Load())
	}
	if refused.Load() == 0 {
		t.Errorf("no connection was refused after the shutdown: the test did not cover it")
	}
	t.Logf("%d answered (%d after the shutdown began), %d connections refused after it, %d reset before reaching the node", answered.Load(), answered.Load()-before, refused.Load(), reset.Load())
}
