package node_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/browser"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/cluster"
	"gorgonia.org/tensor"
)

var statusScreenshot = flag.String("status-screenshot", "", "also write a screenshot of the status page to this PNG (docs/figures/status-page.png)")

// TestStatusPageInChromium loads the edge's status page in headless
// Chromium against a running cluster (1 edge, 2 clouds, real gossip and
// QUIC, the API guarded by a token that the page gets in its URL
// fragment): after some requests, one cloud killed and banned, the page
// must show every member, the plan, the link estimates, the ban and the
// recent requests, streamed live.
func TestStatusPageInChromium(t *testing.T) {
	if _, err := browser.Path(); errors.Is(err, browser.ErrNoBrowser) {
		if browser.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	tok, digest, _ := access.NewToken()
	guard, _ := access.New(access.Config{Clients: []access.Client{{Name: "dashboard", TokenSHA256: digest, Scopes: access.AllScopes()}}})
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 2, Models: []*node.Model{m}, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1; c.API = guard; c.BanBase = time.Minute; c.Hedge = -1 }, // no hedge: the killed cloud must fail and be banned
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge := lc.Edges[0]
	x := randInput(5, m.Graph.Inputs[0].Shape)
	for range 6 {
		if _, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
			t.Fatal(err)
		}
	}
	// Kill the cloud the next request is planned on: it fails over and
	// bans it.
	res, err := edge.Plan(context.Background(), m.ID, "")
	if err != nil || res.Cloud == "" {
		t.Fatalf("plan: %v %v", res, err)
	}
	for _, c := range lc.Clouds {
		if c.Name() == res.Cloud {
			c.Kill()
		}
	}
	if _, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
		t.Fatal(err)
	}
	if !edge.Banned(res.Cloud) {
		t.Fatalf("%s not banned after it was killed", res.Cloud)
	}
	srv := httptest.NewServer(edge.Handler())
	defer srv.Close()
	// One request through the API: the page names its client.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/infer", bytes.NewReader(npyBytes(t, x)))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/infer with the token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	url := srv.URL + "/#token=" + tok
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom, err := browser.DOM(ctx, url, browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"● live", edge.Name() + " (edge)", res.Cloud, "banned", "lenet5", "cloud-only", "dashboard", "RTT ms"}
	for _, c := range lc.Clouds {
		want = append(want, c.Name())
	}
	for _, w := range want {
		if !strings.Contains(dom, w) {
			t.Errorf("the rendered page lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	// Without the token the page asks for one and shows no data.
	dom, err = browser.DOM(ctx, srv.URL+"/", browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, "401: need a token") || strings.Contains(dom, res.Cloud) {
		t.Errorf("the page without a token: want the 401 notice and no cluster data")
	}
	// The page's data endpoints refuse a request without the token.
	if resp, err := http.Get(srv.URL + "/v1/status"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/status without a token: %v %v", resp.StatusCode, err)
	}
	if *statusScreenshot != "" {
		if err := browser.Screenshot(ctx, url, *statusScreenshot, browser.Options{Width: 1400, Height: 900}); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", *statusScreenshot)
	}
}
