package status

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type snap struct {
	Node string `json:"node"`
	N    int64  `json:"n"`
}

func newTestPage(t *testing.T, cfg Config) (*Page, *httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	p := New(cfg, func(context.Context) any { return snap{Node: "edge-1", N: n.Load()} })
	mux := http.NewServeMux()
	p.Register(mux, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return p, srv, &n
}

func TestPageAndSnapshot(t *testing.T) {
	_, srv, n := newTestPage(t, DefaultConfig())
	n.Store(7)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<title>edgesplit status</title>") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("GET /: %d, CSP %q, %d bytes", resp.StatusCode, csp, len(b))
	}
	// Nothing from elsewhere: no absolute URL in a src/href/fetch.
	for _, bad := range []string{"src=\"http", "href=\"http", "//cdn", "fetch(\"http"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("page refers outside the node: %q", bad)
		}
	}
	resp, err = http.Get(srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var s snap
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Node != "edge-1" || s.N != 7 {
		t.Fatalf("GET /v1/status: %+v %v", s, err)
	}
	resp.Body.Close()
	if resp, _ := http.Get(srv.URL + "/nothing"); resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %d, want 404", resp.StatusCode)
	}
}

// readEvent reads one server-sent event's data line.
func readEvent(t *testing.T, r *bufio.Reader) snap {
	t.Helper()
	var ev, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev != "status" {
				t.Fatalf("event %q, want status", ev)
			}
			var s snap
			if err := json.Unmarshal([]byte(data), &s); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return s
		case strings.HasPrefix(line, "event: "):
			ev = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

func TestEvents(t *testing.T) {
	p, srv, n := newTestPage(t, Config{Interval: time.Hour, MaxSubscribers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/status/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	if s := readEvent(t, r); s.N != 0 {
		t.Fatalf("first event %+v", s)
	}
	// The interval is an hour: only Changed can push the next one.
	n.Store(3)
	p.Changed()
	if s := readEvent(t, r); s.N != 3 {
		t.Fatalf("event after Changed: %+v", s)
	}
	// The cap: a second stream is fine, a third gets 503.
	req2, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/status/events", nil)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	resp3, err := http.Get(srv.URL + "/v1/status/events")
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusServiceUnavailable || resp3.Header.Get("Retry-After") == "" {
		t.Errorf("third stream: %d, want 503 with Retry-After", resp3.StatusCode)
	}
	// Streams end with their clients.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for p.Subscribers() != 0 && time.Now().Before(deadline) {
		p.Changed() // wakes the handlers so they see their context is done
		time.Sleep(10 * time.Millisecond)
	}
	if got := p.Subscribers(); got != 0 {
		t.Errorf("%d streams still open after their clients left", got)
	}
}

func TestRegisterWrap(t *testing.T) {
	p := New(DefaultConfig(), func(context.Context) any { return snap{} })
	mux := http.NewServeMux()
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusUnauthorized) })
	}
	p.Register(mux, deny)
	for path, want := range map[string]int{"/": 200, "/v1/status": 401, "/v1/status/events": 401} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d (the page is static; its data needs access)", path, rec.Code, want)
		}
	}
}
