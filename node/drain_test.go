package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
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
// answers every request it accepted — each one that got a status got
// 200 — and only refuses connections once it stopped listening.
func TestShutdownDrains(t *testing.T) {
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		CloudDevice: node.Device{Name: "slowish", Slowdown: 50},
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			if c.Role == node.RoleEdge {
				c.HTTPAddr, c.API = "127.0.0.1:0", access.Open()
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
	var answered, failedStatus, refused atomic.Int64
	var unexpected sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}}
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
				default:
					unexpected.Store(i, err.Error())
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
	unexpected.Range(func(k, v any) bool {
		t.Errorf("client %v: %v (a request lost in the shutdown)", k, v)
		return true
	})
	if failedStatus.Load() != 0 {
		t.Errorf("%d requests answered with an error status during the shutdown", failedStatus.Load())
	}
	if refused.Load() == 0 {
		t.Errorf("no connection was refused after the shutdown: the test did not cover it")
	}
	t.Logf("%d answered (%d after the shutdown began), %d connections refused after it", answered.Load(), answered.Load()-before, refused.Load())
}
