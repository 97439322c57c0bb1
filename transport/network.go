package transport

import (
	"context"
	"io"
	"net"
	"time"
)

// Transport is what a node needs of its endpoint: calls to peers, live
// estimates of their links, its address and its lifetime. The handler that
// serves incoming requests is fixed when the endpoint is opened
// (Config.Handler). [*Endpoint] (QUIC over UDP, mutual TLS) and
// [*MemEndpoint] (an in-process [MemNetwork]) implement it with the same
// request/response semantics, limits, errors and deadlines. Implementations
// are safe for concurrent use.
type Transport interface {
	// Call sends a request to the endpoint at addr; see [Endpoint.Call].
	Call(ctx context.Context, addr string, req *Request, body io.Reader) (*Response, error)
	// Estimate returns the live estimate of the link to the peer at addr.
	Estimate(addr string) (PeerEstimate, bool)
	// Addr returns the address peers call this endpoint at.
	Addr() net.Addr
	// Forget drops the connection to the peer at addr made before since
	// (the peer left or restarted then): the next call dials afresh.
	Forget(addr string, since time.Time)
	// Shutdown lets in-flight requests finish (or ctx end), then closes.
	Shutdown(ctx context.Context) error
	// Close closes at once, failing in-flight requests.
	Close() error
}

// Network opens endpoints that can call each other: [QUICNetwork] (UDP
// sockets) or a [MemNetwork] (in process).
type Network interface {
	// Listen opens an endpoint at addr (host:port; port 0 picks one) that
	// serves cfg.Handler.
	Listen(addr string, cfg Config) (Transport, error)
}

// QUICNetwork opens QUIC endpoints on UDP sockets ([ListenAddr]); Config
// needs an Identity. The zero value is ready to use.
type QUICNetwork struct{}

// Listen calls [ListenAddr].
func (QUICNetwork) Listen(addr string, cfg Config) (Transport, error) {
	e, err := ListenAddr(addr, cfg)
	if err != nil {
		return nil, err
	}
	return e, nil
}

var (
	_ Transport = (*Endpoint)(nil)
	_ Transport = (*MemEndpoint)(nil)
	_ Network   = QUICNetwork{}
	_ Network   = (*MemNetwork)(nil)
)
