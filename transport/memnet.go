package transport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/edgesplit/edgesplit/transport/linkem"
)

// MemNetwork is an in-process network of [MemEndpoint]s, in the style of
// memberlist's MockNetwork and quic-go's simnet: endpoints call each other
// through in-memory streams instead of QUIC over UDP, with the same request
// and response frames, limits, errors and deadlines as [Endpoint] (the
// request/response code is shared), and no sockets.
//
// Each endpoint has an access link ([MemEndpoint.SetLink]): a request's bytes
// travel the caller's uplink and the server's downlink, the reply the other
// way, shaped by [linkem.Shaper] (rate or trace, delay, jitter; the streams
// are reliable, so loss and queue limits do not apply). Unshaped links
// deliver at once.
//
// Endpoints need no Identity. When both ends have one, the caller's
// certificate must chain to the server's cluster CA, or the call fails with
// CodeUnauthenticated as a QUIC handshake would. The zero value is not
// usable; call [NewMemNetwork]. It is safe for concurrent use.
type MemNetwork struct {
	mu   sync.Mutex
	eps  map[string]*MemEndpoint
	next int
}

// NewMemNetwork returns an empty in-process network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{eps: map[string]*MemEndpoint{}}
}

// MemAddr is an endpoint's address on a [MemNetwork].
type MemAddr string

// Network returns "memnet".
func (MemAddr) Network() string { return "memnet" }

func (a MemAddr) String() string { return string(a) }

// Listen calls [MemNetwork.ListenMem]; it implements [Network].
func (n *MemNetwork) Listen(addr string, cfg Config) (Transport, error) {
	e, err := n.ListenMem(addr, cfg)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ListenMem opens an endpoint at addr ("host:port"; port 0 or an empty addr
// picks a free port, the host defaulting to "mem") serving cfg.Handler. The
// endpoint's link is unshaped until SetLink.
func (n *MemNetwork) ListenMem(addr string, cfg Config) (*MemEndpoint, error) {
	host, port := "mem", "0"
	if addr != "" {
		var err error
		if host, port, err = net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == "0" {
		for {
			n.next++
			a := net.JoinHostPort(host, strconv.Itoa(n.next))
			if _, ok := n.eps[a]; !ok {
				addr = a
				break
			}
		}
	} else {
		addr = net.JoinHostPort(host, port)
		if _, ok := n.eps[addr]; ok {
			return nil, fmt.Errorf("transport: listen %s: address in use", addr)
		}
	}
	c := cfg.populate()
	e := &MemEndpoint{
		core:  core{cfg: c, log: c.Logger},
		net:   n,
		addr:  MemAddr(addr),
		up:    linkem.NewShaper(linkem.LinkSettings{}),
		down:  linkem.NewShaper(linkem.LinkSettings{}),
		peers: map[string]*memPeer{},
		open:  map[*memExchange]struct{}{},
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	n.eps[addr] = e
	return e, nil
}

func (n *MemNetwork) lookup(addr string) *MemEndpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.eps[addr]
}

func (n *MemNetwork) remove(e *MemEndpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.eps[string(e.addr)] == e {
		delete(n.eps, string(e.addr))
	}
}
