package status

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

//go:embed index.html
var page []byte

// Config configures a Page.
type Config struct {
	// Interval between pushed snapshots (DefaultConfig: 1 s).
	Interval time.Duration
	// MaxSubscribers caps concurrent event streams; more get 503
	// (DefaultConfig: 32).
	MaxSubscribers int
}

// DefaultConfig returns one snapshot a second to at most 32 pages.
func DefaultConfig() Config { return Config{Interval: time.Second, MaxSubscribers: 32} }

// Page serves the status page and its event stream.
type Page struct {
	cfg      Config
	snapshot func(context.Context) any

	mu      sync.Mutex
	subs    int
	changed chan struct{} // closed and replaced by Changed
}

// New returns a Page that shows what snapshot returns.
func New(cfg Config, snapshot func(context.Context) any) *Page {
	d := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = d.MaxSubscribers
	}
	return &Page{cfg: cfg, snapshot: snapshot, changed: make(chan struct{})}
}

// Changed tells open streams to push a snapshot now (a request was
// answered, a member joined); it never blocks.
func (p *Page) Changed() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *Page) changes() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Subscribers returns the number of open event streams.
func (p *Page) Subscribers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subs
}

// ServePage writes the HTML page.
func (p *Page) ServePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The page needs nothing from anywhere else.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(page)
}

// ServeSnapshot writes one snapshot as JSON.
func (p *Page) ServeSnapshot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(p.snapshot(r.Context())); err != nil {
		http.Error(w, fmt.Sprintf(`{"error":%q}`, err.Error()), http.StatusInternalServerError)
	}
}

// ServeEvents streams snapshots as server-sent events ("event: status")
// until the client goes or the request's context ends.
func (p *Page) ServeEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, `{"error":"streaming unsupported"}`, http.StatusInternalServerError)
		return
	}
	p.mu.Lock()
	if p.subs >= p.cfg.MaxSubscribers {
		p.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf(`{"error":"%d status streams open, the limit"}`, p.cfg.MaxSubscribers), http.StatusServiceUnavailable)
		return
	}
	p.subs++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.subs--
		p.mu.Unlock()
	}()
	// A stream outlives the server's write timeout.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	var buf bytes.Buffer
	ctx := r.Context()
	for {
		changed := p.changes()
		buf.Reset()
		buf.WriteString("event: status\ndata: ")
		b, err := json.Marshal(p.snapshot(ctx))
		if err != nil {
			return
		}
		buf.Write(b) // JSON from Marshal holds no newline
		buf.WriteString("\n\n")
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changed:
		}
	}
}

// Register adds the page's routes to mux: GET / (the page: static, no
// data, served to anyone), GET /v1/status (one snapshot) and GET
// /v1/status/events (the stream), both through wrap (an access check;
// nil: none).
func (p *Page) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	if wrap == nil {
		wrap = func(h http.Handler) http.Handler { return h }
	}
	mux.HandleFunc("GET /{$}", p.ServePage)
	mux.Handle("GET /v1/status", wrap(http.HandlerFunc(p.ServeSnapshot)))
	mux.Handle("GET /v1/status/events", wrap(http.HandlerFunc(p.ServeEvents)))
}
