package access

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
	"golang.org/x/time/rate"
)

// Identity is who a request comes from.
type Identity struct {
	// Name is the client's name (its clients-file entry or certificate
	// common name; "anonymous" on an open Guard).
	Name string
	// Via says how it was authenticated: "token", "certificate" or "open".
	Via    string
	Scopes []Scope
}

// Has reports whether the identity holds scope s.
func (id Identity) Has(s Scope) bool { return slices.Contains(id.Scopes, s) }

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity Require put in a request's context.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Refusal is why a Guard turned a request away.
type Refusal struct {
	// Status is the HTTP status sent: 401, 403 or 429.
	Status int
	// Reason says what was wrong, for the audit log and the client.
	Reason string
	// Client is the identity's name when it was known ("" for 401s).
	Client string
	// RetryAfter is how long a rate-limited client should wait.
	RetryAfter time.Duration
}

// Option configures a Guard.
type Option func(*Guard)

// WithRefusalHook calls f for every refused request (the node's audit log).
func WithRefusalHook(f func(*http.Request, Refusal)) Option { return func(g *Guard) { g.hook = f } }

// WithClock makes the Guard's rate limiters read time from now (tests).
func WithClock(now func() time.Time) Option { return func(g *Guard) { g.now = now } }

type entry struct {
	id      Identity
	lim     *rate.Limiter
	rate    float64
	burst   int
	expires time.Time // zero: never
}

// clients is one clients file's tables; Reload swaps them whole.
type clients struct {
	byDigest   map[string]*entry
	byName     map[string]*entry
	certShared *entry // certificates without an entry, when CertScopes allow them
}

// Guard authenticates and authorises API requests. Its methods are safe
// for concurrent use.
type Guard struct {
	open *entry
	cur  atomic.Pointer[clients]
	mu   sync.Mutex // serialises Reload
	hook func(*http.Request, Refusal)
	now  func() time.Time
}

func limiter(r float64, burst int) *rate.Limiter {
	if r == 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	return rate.NewLimiter(rate.Limit(r), max(burst, 1))
}

// New returns a Guard admitting the clients of c (validated first).
func New(c Config, opts ...Option) (*Guard, error) {
	g := &Guard{now: time.Now}
	for _, o := range opts {
		o(g)
	}
	if err := g.Reload(c); err != nil {
		return nil, err
	}
	return g, nil
}

// Reload replaces the admitted clients with c's (validated first; on error
// nothing changes), at once for every later request: removed clients and
// changed tokens are refused from then on. A client whose name, rate and
// burst stay the same keeps its rate limiter, so reloading does not reset
// anyone's rate.
func (g *Guard) Reload(c Config) error {
	if g.open != nil {
		return fmt.Errorf("access: an open guard has no clients to reload")
	}
	if err := c.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.cur.Load()
	t := &clients{byDigest: map[string]*entry{}, byName: map[string]*entry{}}
	for _, cl := range c.Clients {
		r, b := cl.Rate, cl.Burst
		if r == 0 {
			r = c.DefaultRate
		}
		if b == 0 {
			b = c.DefaultBurst
		}
		lim := limiter(r, b)
		if old != nil {
			if prev, ok := old.byName[cl.Name]; ok && prev.rate == r && prev.burst == b {
				lim = prev.lim
			}
		}
		e := &entry{id: Identity{Name: cl.Name, Scopes: slices.Clone(cl.Scopes)}, lim: lim, rate: r, burst: b, expires: cl.Expires}
		t.byName[cl.Name] = e
		if cl.TokenSHA256 != "" {
			t.byDigest[strings.ToLower(cl.TokenSHA256)] = e
		}
	}
	if len(c.CertScopes) > 0 {
		t.certShared = &entry{id: Identity{Scopes: slices.Clone(c.CertScopes)}, lim: limiter(c.DefaultRate, c.DefaultBurst)}
	}
	g.cur.Store(t)
	return nil
}

// Open returns a Guard that admits every request as "anonymous" with every
// scope and no rate limit: for an API the operator explicitly left open
// (edgesplit node --insecure-api) and for in-process harnesses.
func Open(opts ...Option) *Guard {
	g := &Guard{open: &entry{id: Identity{Name: "anonymous", Via: "open", Scopes: AllScopes()}, lim: limiter(0, 0)}, now: time.Now}
	for _, o := range opts {
		o(g)
	}
	return g
}

// IsOpen reports whether g admits everyone.
func (g *Guard) IsOpen() bool { return g.open != nil }

// maxTokenLen bounds a bearer token (ours are 46 characters).
const maxTokenLen = 256

// authenticate finds the request's client: a bearer token when one is
// sent, else a verified client certificate.
func (g *Guard) authenticate(r *http.Request) (*entry, Identity, *Refusal) {
	if g.open != nil {
		return g.open, g.open.id, nil
	}
	t := g.cur.Load()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return nil, Identity{}, &Refusal{Status: http.StatusUnauthorized, Reason: "Authorization header is not \"Bearer TOKEN\""}
		}
		if len(tok) > maxTokenLen {
			return nil, Identity{}, &Refusal{Status: http.StatusUnauthorized, Reason: fmt.Sprintf("bearer token over %d bytes", maxTokenLen)}
		}
		// The map is keyed by the token's SHA-256: a lookup's timing
		// tells nothing about a token that is not known.
		d := Digest(tok)
		e, ok := t.byDigest[d]
		if !ok {
			return nil, Identity{}, &Refusal{Status: http.StatusUnauthorized, Reason: "unknown bearer token"}
		}
		if !e.expires.IsZero() && !g.now().Before(e.expires) {
			return nil, Identity{}, &Refusal{Status: http.StatusUnauthorized, Client: e.id.Name,
				Reason: fmt.Sprintf("the token of client %q expired at %s", e.id.Name, e.expires.UTC().Format(time.RFC3339))}
		}
		id := e.id
		id.Via = "token"
		return e, id, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		name := pki.PeerName(leaf)
		if err := pki.CheckRole(leaf, pki.RoleClient); err != nil {
			return nil, Identity{}, &Refusal{Status: http.StatusForbidden, Reason: err.Error(), Client: name}
		}
		e, ok := t.byName[name]
		if !ok {
			if t.certShared == nil {
				return nil, Identity{}, &Refusal{Status: http.StatusForbidden, Reason: fmt.Sprintf("client certificate %q has no entry in the clients file", name), Client: name}
			}
			e = t.certShared
		}
		id := e.id
		id.Name, id.Via = name, "certificate"
		return e, id, nil
	}
	return nil, Identity{}, &Refusal{Status: http.StatusUnauthorized, Reason: "no credentials (send Authorization: Bearer TOKEN or a client certificate)"}
}

// Check authenticates r, checks it holds scope and takes one request from
// its rate. It returns the identity, or the refusal to send.
func (g *Guard) Check(r *http.Request, scope Scope) (Identity, *Refusal) {
	e, id, ref := g.authenticate(r)
	if ref != nil {
		return id, ref
	}
	if !id.Has(scope) {
		return id, &Refusal{Status: http.StatusForbidden, Reason: fmt.Sprintf("client %q lacks scope %s", id.Name, scope), Client: id.Name}
	}
	now := g.now()
	res := e.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); !res.OK() || d > 0 {
		res.CancelAt(now)
		if !res.OK() {
			d = time.Second
		}
		return id, &Refusal{Status: http.StatusTooManyRequests, Reason: fmt.Sprintf("client %q over its rate of %g requests/s", id.Name, float64(e.lim.Limit())), Client: id.Name, RetryAfter: d}
	}
	return id, nil
}

// Require wraps next so that it runs only for clients holding scope, with
// their Identity in the request's context; others get the refusal as a
// JSON error ({"error": reason}).
func (g *Guard) Require(scope Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ref := g.Check(r, scope)
		if ref != nil {
			g.Refuse(w, r, *ref)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Refuse writes ref as the response and reports it to the refusal hook.
func (g *Guard) Refuse(w http.ResponseWriter, r *http.Request, ref Refusal) {
	if g.hook != nil {
		g.hook(r, ref)
	}
	switch ref.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="edgesplit"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(ref.RetryAfter, time.Second).Seconds()))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ref.Status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{ref.Reason})
}

// ServerTLS returns the API's TLS configuration: it presents cert and asks
// for (but does not require) a client certificate, which must chain to
// clientCAs when given; bearer-token clients need none.
func ServerTLS(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    clientCAs,
	}
}
