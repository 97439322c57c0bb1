package transport

import (
	"errors"
	"log/slog"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
)

// Config configures an [Endpoint]. Zero fields take the documented defaults;
// only Identity is required.
type Config struct {
	// Identity is this node's certificate, key and cluster CA. Required.
	Identity *pki.Identity
	// Handler serves incoming requests. If nil, the endpoint only makes
	// calls, and incoming requests get CodeUnavailable.
	Handler Handler
	// MaxHeaderBytes limits request and response headers. Default 16 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes limits an incoming request body. Default 1 GiB.
	MaxBodyBytes int64
	// MaxResponseBytes limits a response body read by Call. Default 1 GiB.
	MaxResponseBytes int64
	// MaxConcurrentStreams limits concurrent requests a peer may have open
	// on one connection (QUIC MaxIncomingStreams). Default 64.
	MaxConcurrentStreams int64
	// IdleTimeout closes a connection with no network activity. Default 30 s.
	IdleTimeout time.Duration
	// KeepAlivePeriod pings idle connections. Default IdleTimeout/3.
	KeepAlivePeriod time.Duration
	// HandshakeTimeout bounds the QUIC/TLS handshake. Default 5 s.
	HandshakeTimeout time.Duration
	// HeaderTimeout bounds receiving a request header. Default 5 s.
	HeaderTimeout time.Duration
	// ReadIdleTimeout fails a body (request or response) whose sender goes
	// quiet this long (slowloris). Also applies to writes that cannot make
	// progress. Default 10 s.
	ReadIdleTimeout time.Duration
	// DialBackoffMin and DialBackoffMax bound the wait between failed dials
	// to one peer (doubling, with jitter). Defaults 50 ms and 5 s.
	DialBackoffMin, DialBackoffMax time.Duration
	// StreamReceiveWindow and ConnectionReceiveWindow cap QUIC flow control
	// windows. Defaults 16 MiB and 48 MiB.
	StreamReceiveWindow, ConnectionReceiveWindow uint64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() (Config, error) {
	if c == nil || c.Identity == nil {
		return Config{}, errors.New("transport: Config.Identity is required")
	}
	return c.populate(), nil
}

// populate returns a copy of c with defaults filled in.
func (c *Config) populate() Config {
	d := *c
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	if d.MaxHeaderBytes <= 0 {
		d.MaxHeaderBytes = 16 << 10
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 30
	}
	if d.MaxResponseBytes <= 0 {
		d.MaxResponseBytes = 1 << 30
	}
	if d.MaxConcurrentStreams <= 0 {
		d.MaxConcurrentStreams = 64
	}
	def(&d.IdleTimeout, 30*time.Second)
	def(&d.KeepAlivePeriod, d.IdleTimeout/3)
	def(&d.HandshakeTimeout, 5*time.Second)
	def(&d.HeaderTimeout, 5*time.Second)
	def(&d.ReadIdleTimeout, 10*time.Second)
	def(&d.DialBackoffMin, 50*time.Millisecond)
	def(&d.DialBackoffMax, 5*time.Second)
	if d.StreamReceiveWindow == 0 {
		d.StreamReceiveWindow = 16 << 20
	}
	if d.ConnectionReceiveWindow == 0 {
		d.ConnectionReceiveWindow = 48 << 20
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d
}
