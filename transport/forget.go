package transport

import (
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// Forget closes the endpoint's connection to the peer at addr if it was
// made before since (calls still on it fail with CodePeerGone), and clears
// its dial backoff, so the next call dials afresh. Call it when the peer is
// known to be gone or restarted at since (membership says so): a dead
// peer's connection would otherwise stall calls until its idle timeout, and
// a restarted one never answers on the old connection; a connection made
// after since is to the new process and is kept.
func (e *Endpoint) Forget(addr string, since time.Time) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return
	}
	e.mu.Lock()
	p, ok := e.peers[ua.String()]
	e.mu.Unlock()
	if ok {
		p.mu.Lock()
		c := p.conn
		fresh := c != nil && p.connAt.After(since)
		p.mu.Unlock()
		if !fresh {
			p.drop(c)
		}
	}
}

// drop forgets p's connection c (nothing when p holds another by now) and
// its dial backoff, and closes c; a nil c clears the backoff only.
func (p *peer) drop(c *quic.Conn) {
	p.mu.Lock()
	if p.conn != c {
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
func (e *MemEndpoint) Forget(string, time.Time) {}
