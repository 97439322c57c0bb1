// Package access guards a node's client HTTP API. A Guard says who a
// request comes from — a bearer token listed (by its SHA-256 digest, never
// the secret) in a clients file, or a TLS client certificate that the
// cluster CA issued with role client — whether that identity holds the
// scope the route needs (infer, override, cluster, metrics), and whether it
// is within its request rate. Refusals are 401 (with WWW-Authenticate), 403
// or 429 (with Retry-After), each reported to a hook so the node's audit
// log records it. Per-client limiters are made once, for the listed
// clients, so no request can grow the Guard's memory.
package access
