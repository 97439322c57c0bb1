// Package transport moves split-inference requests between edgesplit nodes
// over QUIC (github.com/quic-go/quic-go).
//
// Each node runs one [Endpoint]: one quic.Transport over one UDP socket that
// both accepts connections and dials peers, with ALPN "edgesplit/1" and TLS
// 1.3 mutual authentication against the cluster CA (package
// transport/pki). A peer without a certificate from the cluster CA (or with
// an expired one) fails the handshake and reaches no handler.
//
// The protocol is one bidirectional stream per request (docs/wire-format.md,
// section "Request/response protocol (transport)"): a request frame (request
// id, the caller's remaining deadline, its goodput estimate, and the
// application's opaque [Request.Header], which transport bounds but never
// reads — node puts its own versioned protocol there) followed by the
// payload as an opaque streamed body until FIN; the reply is a success
// header (with the handler's opaque [Response.Header]) followed by the
// streamed result, or an error header with a [Code] and a message. A
// failure after the result started resets the stream with the code. Bodies
// stream straight between the caller's io.Reader and the QUIC stream; they
// are never buffered whole.
//
// Every failure is an *[Error] with a [Code]; errors.Is works against the
// sentinels (ErrTooLarge, ErrStalled, …) and context.DeadlineExceeded.
// Deadlines propagate: the server runs the handler under the caller's
// remaining time, and cancelling the caller's context cancels the handler.
// Limits guard the server: header and body sizes, concurrent streams per peer
// (QUIC MaxIncomingStreams), a header timeout and a body idle timeout
// (slowloris).
//
// Per-peer live estimates ([Endpoint.Estimate]) give smoothed/min RTT from
// quic-go's connection statistics, goodput in each direction measured only
// while transfers are active (so idle time never reads as a slow link), and
// recent loss. Connections are reused per peer in both directions, redialled
// with exponential backoff, closed after an idle timeout, and
// [Endpoint.Shutdown] lets in-flight requests finish.
//
// Nodes use an endpoint through the [Transport] interface, opened on a
// [Network]: [QUICNetwork] (the default, above) or a [MemNetwork], an
// in-process network in the style of memberlist's MockNetwork whose
// [MemEndpoint]s call each other through in-memory streams, shaped per
// endpoint by [linkem.Shaper], with the same frames, limits, error codes and
// deadline handling (the request/response code is shared; a conformance
// table runs against both). A MemNetwork opens no sockets, so tests on it
// can run in a testing/synctest bubble.
package transport
