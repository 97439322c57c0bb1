package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// maxQuarantined bounds the quarantine (members come from gossip).
const maxQuarantined = 1024

// quarantine holds the gossip members whose QUIC endpoint presented a
// certificate of another name or role than the member claims: they are
// never planned, probed or asked for anything until they rejoin (a new
// process, which must prove itself again).
type quarantine struct {
	mu sync.Mutex
	m  map[string]quarantined
}

type quarantined struct {
	reason string
	since  time.Time
}

// add quarantines name; false when the quarantine is full.
func (q *quarantine) add(name, reason string, at time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = map[string]quarantined{}
	}
	if _, ok := q.m[name]; !ok && len(q.m) >= maxQuarantined {
		return false
	}
	q.m[name] = quarantined{reason: reason, since: at}
	return true
}

// reason returns why p is quarantined ("" when it is not). A member that
// joined again after it was quarantined is let out.
func (q *quarantine) reason(p Peer) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.m[p.Name]
	if !ok {
		return ""
	}
	if p.Joined.After(e.since) {
		delete(q.m, p.Name)
		return ""
	}
	return e.reason
}

// callPeer sends a node protocol request to peer p with body (nil: none).
// The peer's QUIC endpoint must present the certificate of the member's
// name and gossiped role before anything is sent; one that does not is
// quarantined, logged and audited.
func (n *Node) callPeer(ctx context.Context, p Peer, req segmentRequest, body io.Reader) (*transport.Response, error) {
	if why := n.quarantined.reason(p); why != "" {
		return nil, fmt.Errorf("node: %s is quarantined: %s", p.Name, why)
	}
	hdr, err := req.marshal()
	if err != nil {
		return nil, err
	}
	treq := &transport.Request{ID: n.reqID.Add(1), Header: hdr, Peer: p.Name, PeerRoles: []pki.Role{pki.Role(p.Meta.Role)}}
	resp, err := n.ep.Call(ctx, p.Meta.QUICAddr, treq, body)
	switch {
	case errors.Is(err, transport.ErrUntrustedPeer):
		n.refusePeer(p, err.Error())
	case transport.CodeOf(err) == transport.CodeUnauthenticated:
		n.handshakeFailed(p, err)
	}
	return resp, err
}

// handshakeFailed records a TLS handshake with peer p that failed: p
// refused this node's certificate (from another CA, expired, revoked) or
// this node refused p's. Every offload to p falls back meanwhile, so it
// is logged as an error and audited, at most once per peer per
// handshakeReportEvery.
func (n *Node) handshakeFailed(p Peer, err error) {
	n.metrics.refusals.WithLabelValues("handshake_failed").Inc()
	if !n.handshakes.allow(p.Name, time.Now()) {
		return
	}
	n.log.Error("TLS handshake with a member failed: requests fall back to local execution (is this node's certificate from the cluster's CA?)",
		"peer", p.Name, "quic", p.Meta.QUICAddr, "err", err)
	if a := n.cfg.Audit; a != nil {
		a.LogAttrs(context.Background(), slog.LevelWarn, "refused", slog.String("peer", p.Name),
			slog.String("quic_addr", p.Meta.QUICAddr), slog.String("event", "handshake_failed"), slog.String("reason", err.Error()))
	}
}

// handshakeReportEvery spaces out the reports of one peer's failing handshakes.
const handshakeReportEvery = 30 * time.Second

// reportLimiter lets one report per key through every handshakeReportEvery.
type reportLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *reportLimiter) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || len(r.last) >= maxQuarantined {
		r.last = make(map[string]time.Time)
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < handshakeReportEvery {
		return false
	}
	r.last[key] = now
	return true
}

// refuseCaller records a transport caller refused for its role.
func (n *Node) refuseCaller(info transport.PeerInfo, reason string) {
	n.metrics.refusals.WithLabelValues("wrong_role").Inc()
	n.log.Warn("caller refused", "peer", info.Name, "role", string(info.Role), "reason", reason)
	if a := n.cfg.Audit; a != nil {
		a.LogAttrs(context.Background(), slog.LevelWarn, "refused", slog.String("peer", info.Name), slog.String("role", string(info.Role)),
			slog.String("remote", fmt.Sprint(info.Addr)), slog.String("event", "wrong_role"), slog.String("reason", reason))
	}
}

// refusePeer quarantines p and records it as a security event.
func (n *Node) refusePeer(p Peer, reason string) {
	if !n.quarantined.add(p.Name, reason, time.Now()) {
		n.log.Warn("quarantine full; peer refused without being remembered", "peer", p.Name)
	}
	n.log.Warn("peer quarantined: its endpoint is not the member it claims", "peer", p.Name, "quic", p.Meta.QUICAddr, "reason", reason)
	n.metrics.refusals.WithLabelValues("untrusted_peer").Inc()
	if a := n.cfg.Audit; a != nil {
		a.LogAttrs(context.Background(), slog.LevelWarn, "refused", slog.String("peer", p.Name),
			slog.String("quic_addr", p.Meta.QUICAddr), slog.String("gossip_addr", p.Addr), slog.String("event", "quarantine"),
			slog.String("reason", reason))
	}
}
