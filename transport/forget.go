package transport

import (
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// Forget closes the endpoint's connection to the peer at addr, if any
// (calls still on it fail with CodePeerGone), and clears its dial backoff,
// so the next call dials afresh. Call it when the peer is known to be gone
// or restarted (membership says so): a dead peer's connection would
// otherwise stall calls until its idle timeout, and a restarted one never
// answers on the old connection.
func (e *Endpoint) Forget(addr string) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return
	}
	e.mu.Lock()
	p, ok := e.peers[ua.String()]
	e.mu.Unlock()
	if ok {
		p.drop(nil)
	}
}

// drop forgets p's connection — only c when c is not nil (a failed call's
// connection, which may already have been replaced) — and its dial
// backoff, and closes the connection.
func (p *peer) drop(c *quic.Conn) {
	p.mu.Lock()
	if c != nil && p.conn != c {
		p.mu.Unlock()
		return
	}
	c, p.conn = p.conn, nil
	p.failures, p.lastErr, p.nextDial = 0, nil, time.Time{}
	p.mu.Unlock()
	if c != nil {
		_ = c.CloseWithError(quic.ApplicationErrorCode(CodePeerGone), "peer forgotten")
	}
}

// Forget is a no-op on a MemEndpoint: it keeps no connections.
func (e *MemEndpoint) Forget(string) {}
