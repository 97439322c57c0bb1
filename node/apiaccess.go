package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/status"
	"golang.org/x/net/netutil"
)

// overrideParams are the query parameters of POST /v1/infer that replace
// the operator's choices (policy, codec, accuracy budget); they need
// access.ScopeOverride.
var overrideParams = []string{"policy", "codec", "max_loss"}

// initAPI sets up the client API's guard and status page.
func (n *Node) initAPI() {
	n.guard = n.cfg.API
	if n.guard == nil {
		n.guard = access.Open() // only without HTTPAddr (validate): the embedding server authenticates
	}
	page := status.New(status.DefaultConfig(), func(context.Context) any { return n.Status() })
	n.statusLog.mu.Lock()
	n.statusLog.page = page
	n.statusLog.mu.Unlock()
}

// require serves h only to clients holding scope; refusals are answered,
// audited, counted and shown on the status page.
func (n *Node) require(scope access.Scope, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ref := n.guard.Check(r, scope)
		if ref != nil {
			n.refuse(w, r, *ref)
			return
		}
		h(w, r.WithContext(access.NewContext(r.Context(), id)))
	})
}

// refuse answers a refused request and records it as a security event.
func (n *Node) refuse(w http.ResponseWriter, r *http.Request, ref access.Refusal) {
	n.guard.Refuse(w, r, ref)
	n.metrics.refusals.WithLabelValues(refusalReason(ref.Status)).Inc()
	n.recordRefusal(r, "", ref.Status, ref.Reason)
	if a := n.cfg.Audit; a != nil {
		a.LogAttrs(context.Background(), slog.LevelWarn, "refused", slog.String("client", ref.Client),
			slog.String("remote", r.RemoteAddr), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", ref.Status), slog.String("reason", ref.Reason))
	}
}

// refusalReason is a refusal's metrics label.
func refusalReason(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	return strconv.Itoa(code)
}

// checkOverride returns the refusal for a request that sets an override
// parameter without access.ScopeOverride.
func checkOverride(r *http.Request) *access.Refusal {
	id, _ := access.FromContext(r.Context())
	if id.Has(access.ScopeOverride) {
		return nil
	}
	q := r.URL.Query()
	for _, p := range overrideParams {
		if q.Has(p) {
			return &access.Refusal{Status: http.StatusForbidden, Client: id.Name,
				Reason: fmt.Sprintf("?%s= replaces the operator's choice: client %q needs scope %s", p, id.Name, access.ScopeOverride)}
		}
	}
	return nil
}

// handleHealth is GET /healthz: 200 while the node runs, for probes; it
// says nothing about the cluster, so it needs no credentials.
func (n *Node) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if n.Closed() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

// apiListener wraps the client API's listener: at most MaxAPIConns open
// connections, TLS when configured.
func (n *Node) apiListener(ln net.Listener) net.Listener {
	ln = netutil.LimitListener(ln, n.cfg.MaxAPIConns)
	if n.cfg.APITLS != nil {
		ln = tls.NewListener(ln, n.cfg.APITLS)
	}
	return ln
}
