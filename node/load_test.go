package node_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/cluster"
)

// TestAPIUnderLoad: 1000 requests at 200 concurrency with a valid token
// all get their answer (the in-flight cap queues the burst); a greedy
// client hammering alongside gets 429s at its rate limit without touching
// the others; the audit log holds exactly one line per request, answered
// or refused.
func TestAPIUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 requests through a real cluster skipped with -short")
	}
	good, gd, _ := access.NewToken()
	greedy, rd, _ := access.NewToken()
	guard, _ := access.New(access.Config{Clients: []access.Client{
		{Name: "fleet", TokenSHA256: gd, Scopes: []access.Scope{access.ScopeInfer}, Rate: 1e6, Burst: 1000},
		{Name: "greedy", TokenSHA256: rd, Scopes: []access.Scope{access.ScopeInfer}, Rate: 2, Burst: 4},
	}})
	var audit syncBuffer
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "auto", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			if c.Role == node.RoleEdge {
				c.API, c.Audit = guard, jsonLogger(&audit)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	srv := httptest.NewServer(lc.Edges[0].Handler())
	defer srv.Close()
	body := npyBytes(t, randInput(2, m.Graph.Inputs[0].Shape))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	post := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/infer", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("POST: %v", err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var ok, other, greedyOK, greedy429 atomic.Int64
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for range jobs {
				if post(good) == http.StatusOK {
					ok.Add(1)
				} else {
					other.Add(1)
				}
			}
		})
	}
	stop := make(chan struct{})
	var gwg sync.WaitGroup
	for range 4 {
		gwg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch post(greedy) {
				case http.StatusOK:
					greedyOK.Add(1)
				case http.StatusTooManyRequests:
					greedy429.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	for range 1000 {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	close(stop)
	gwg.Wait()
	if ok.Load() != 1000 || other.Load() != 0 {
		t.Fatalf("fleet: %d of 1000 answered; %d unexpected statuses", ok.Load(), other.Load())
	}
	if greedy429.Load() == 0 {
		t.Errorf("the greedy client was never limited (%d answered)", greedyOK.Load())
	}
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	requests, refused := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, `"msg":"request"`):
			requests++
		case strings.Contains(l, `"msg":"refused"`):
			refused++
		}
	}
	answered := int(ok.Load() + greedyOK.Load())
	if requests != answered || refused != int(greedy429.Load()) || len(lines) != answered+refused {
		t.Errorf("audit log: %d request and %d refused lines (%d in all) for %d answered and %d refused requests",
			requests, refused, len(lines), answered, greedy429.Load())
	}
	t.Logf("fleet 1000/1000 answered at 200 concurrency; greedy: %d answered, %d refused (429); audit: %d + %d lines",
		greedyOK.Load(), greedy429.Load(), requests, refused)
}
