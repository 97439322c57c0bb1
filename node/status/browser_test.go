package status

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/browser"
)

// TestPageInChromium loads the page in headless Chromium: its script must
// open the event stream and render every section from the snapshot.
func TestPageInChromium(t *testing.T) {
	if _, err := browser.Path(); errors.Is(err, browser.ErrNoBrowser) {
		if browser.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	snapshot := map[string]any{
		"node": "edge-1", "role": "edge", "time": time.Unix(1.7e9, 0),
		"members": []map[string]any{
			{"name": "edge-1", "role": "edge", "alive": true, "models": []map[string]any{{"id": "seed-cnn", "version": "3f2a"}}},
			{"name": "cloud-1", "role": "cloud", "alive": true, "load": 0.25, "mean_service_ms": 1.5},
			{"name": "rogue", "role": "cloud", "alive": true, "refused": "certificate names \"x\""},
		},
		"plans":  []map[string]any{{"model": "seed-cnn", "policy": "auto", "cut": 3, "cloud": "cloud-1", "codec": "lossless", "predicted_ms": 4.25, "measured_ms": 4.5, "requests": 12}},
		"links":  []map[string]any{{"cloud": "cloud-1", "rtt_ms": 12.5, "uplink_mbps": 48.0, "downlink_mbps": 96.0}},
		"bans":   []map[string]any{{"peer": "cloud-2", "until": time.Unix(1.7e9+60, 0), "reason": "deadline"}},
		"recent": []map[string]any{{"time": time.Unix(1.7e9, 0), "client": "cam-7", "model": "seed-cnn", "policy": "auto", "cut": 3, "cloud": "cloud-1", "total_ms": 4.5, "status": 200}},
	}
	p := New(DefaultConfig(), func(context.Context) any { return snapshot })
	mux := http.NewServeMux()
	p.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dom, err := browser.DOM(ctx, srv.URL+"/", browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"edge-1 (edge)", "● live", "cloud-1", "seed-cnn@3f2a", "refused: certificate names", "4.25", "48.0", "cam-7", "deadline"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
