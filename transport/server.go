package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/quic-go/quic-go"
)

// Handler serves "run segment" requests, in the style of net/http.
//
// ServeSegment reads the request's opaque header (req.Header) and body (the
// payload; for nodes a tensorcodec message) and writes the result to w. ctx
// carries the caller's deadline and is cancelled if the caller gives up, the
// connection drops or the endpoint closes. If it returns an error before
// writing, the caller receives that error (use [Errorf] to choose its
// code); after the first write, the stream is reset with the error's code. A handler should read the body before streaming a
// large result. ServeSegment is called concurrently.
//
// When the caller's deadline expires on the caller's side first, ctx may end
// with ctx.Err() == context.Canceled; context.Cause(ctx) is then
// context.DeadlineExceeded.
type Handler interface {
	ServeSegment(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error

// ServeSegment calls f.
func (f HandlerFunc) ServeSegment(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) error {
	return f(ctx, req, body, w)
}

// ResponseWriter streams a result body. The first Write (or the handler's
// return) sends the success header; SetHeader must be called before it.
type ResponseWriter interface {
	io.Writer
	// SetHeader sets the opaque application header sent in the success
	// header (the caller's Response.Header), replacing any set before; it
	// is copied. Calls after the first Write are ignored. A header over the
	// endpoint's MaxHeaderBytes fails the response with CodeTooLarge.
	SetHeader(h []byte)
}

// PeerInfo describes the caller of a request; see [PeerFromContext].
type PeerInfo struct {
	Addr net.Addr
	Name string   // the node name in the caller's certificate
	Role pki.Role // the role its certificate carries ("" for none)
}

type peerKey struct{}

// PeerFromContext returns the caller of the request whose handler ctx is.
func PeerFromContext(ctx context.Context) (PeerInfo, bool) {
	p, ok := ctx.Value(peerKey{}).(PeerInfo)
	return p, ok
}

// refuse answers a stream with an error without reading it.
func (e *core) refuse(str stream, code Code, msg string) {
	str.SetWriteDeadline(time.Now().Add(e.cfg.HeaderTimeout))
	b := appendResponse(nil, &responseHeader{status: statusError, code: code, message: msg})
	str.Write(b)
	str.CancelRead(quic.StreamErrorCode(code))
	str.Close()
}

// serveStream serves one request stream from peer p. connCtx ends when the
// connection does; observe samples its statistics.
func (e *core) serveStream(p *peer, str stream, info PeerInfo, connCtx context.Context, observe func()) {
	br := bufio.NewReaderSize(str, 4096)
	str.SetReadDeadline(time.Now().Add(e.cfg.HeaderTimeout))
	req, err := readRequest(br, e.cfg.MaxHeaderBytes)
	if err != nil {
		ce := classify(nil, "read request header", err)
		if ce.Code == CodeStalled {
			ce.Message = fmt.Sprintf("no complete request header within %v", e.cfg.HeaderTimeout)
		}
		e.log.Debug("transport: bad request", "peer", p.key, "err", ce)
		e.refuse(str, ce.Code, ce.Message)
		return
	}
	p.setTxRate(req.PeerGoodput)
	if e.cfg.Handler == nil {
		e.refuse(str, CodeUnavailable, "this node serves no segments")
		return
	}

	ctx, cancelCause := context.WithCancelCause(e.ctx)
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	if req.Timeout > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, req.Timeout)
		defer c2()
	}
	ctx = context.WithValue(ctx, peerKey{}, info)
	// The caller cancelled (STOP_SENDING) or the connection dropped. If the
	// caller's deadline fired first on its side, the cause says so.
	stop1 := context.AfterFunc(str.Context(), func() {
		var se *quic.StreamError
		if errors.As(context.Cause(str.Context()), &se) && Code(se.ErrorCode) == CodeDeadlineExceeded {
			cancelCause(context.DeadlineExceeded)
			return
		}
		cancel()
	})
	defer stop1()
	stop2 := context.AfterFunc(connCtx, cancel)
	defer stop2()

	body := &bodyReader{
		r: br, str: str, ctx: ctx, limit: e.cfg.MaxBodyBytes, idle: e.cfg.ReadIdleTimeout,
		m: &p.rx, what: "request body",
	}
	w := &responseWriter{str: str, ctx: ctx, id: req.ID, idle: e.cfg.ReadIdleTimeout, p: p, max: e.cfg.MaxHeaderBytes}

	herr := e.callHandler(ctx, req, body, w)
	body.finish()
	if !body.eof {
		str.CancelRead(quic.StreamErrorCode(CodeCanceled))
	}
	if herr == nil {
		if !w.wrote {
			if err := w.writeHeader(); err != nil {
				str.CancelWrite(quic.StreamErrorCode(CodeOf(err)))
				return
			}
		}
		str.Close()
		observe()
		return
	}
	code := CodeOf(herr)
	if ctx.Err() != nil && code == CodeInternal {
		code = classify(ctx, "", ctx.Err()).Code
	}
	e.log.Debug("transport: handler failed", "peer", p.key, "request", req.ID, "code", code, "err", herr)
	if w.wrote {
		str.CancelWrite(quic.StreamErrorCode(code))
		return
	}
	msg := herr.Error()
	var te *Error
	if errors.As(herr, &te) && te.Message != "" {
		msg = te.Message
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	str.SetWriteDeadline(time.Now().Add(e.cfg.ReadIdleTimeout))
	str.Write(appendResponse(nil, &responseHeader{status: statusError, id: req.ID, code: code, message: msg, peerGoodput: p.rxRate()}))
	str.Close()
}

func (e *core) callHandler(ctx context.Context, req *Request, body io.Reader, w ResponseWriter) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("transport: handler panicked", "request", req.ID, "panic", r, "stack", string(debug.Stack()))
			err = Errorf(CodeInternal, "handler panicked: %v", r)
		}
	}()
	return e.cfg.Handler.ServeSegment(ctx, req, body, w)
}

// bodyReader reads a streamed body with a size limit, an idle timeout and
// goodput metering.
type bodyReader struct {
	r       io.Reader
	str     stream
	ctx     context.Context
	limit   int64
	n       int64
	idle    time.Duration
	m       *meter
	what    string
	started bool
	eof     bool
	err     error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	dl := time.Now().Add(b.idle)
	if d, ok := b.ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	b.str.SetReadDeadline(dl)
	if rem := b.limit - b.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.r.Read(p)
	if n > 0 {
		now := time.Now()
		if !b.started {
			b.started = true
			b.m.begin(now)
		}
		b.n += int64(n)
		b.m.add(now, n)
		if b.n > b.limit {
			b.err = Errorf(CodeTooLarge, "%s exceeds %d bytes", b.what, b.limit)
			b.str.CancelRead(quic.StreamErrorCode(CodeTooLarge))
			b.finish()
			return n - int(b.n-b.limit), b.err
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.eof = true
		b.err = io.EOF
		b.finish()
	default:
		ce := classify(b.ctx, "read "+b.what, err)
		if ce.Code == CodeStalled {
			ce.Message = fmt.Sprintf("read %s: peer sent nothing for %v", b.what, b.idle)
		}
		b.err = ce
		b.finish()
	}
	return n, b.err
}

// finish closes the meter's active period.
func (b *bodyReader) finish() {
	if b.started {
		b.started = false
		b.m.end(time.Now())
	}
}

// responseWriter writes the success header lazily, then the body.
type responseWriter struct {
	str   stream
	ctx   context.Context
	id    uint64
	idle  time.Duration
	p     *peer
	max   int // MaxHeaderBytes
	hdr   []byte
	wrote bool
}

func (w *responseWriter) SetHeader(h []byte) {
	if w.wrote {
		return
	}
	w.hdr = append(w.hdr[:0], h...)
}

func (w *responseWriter) deadline() {
	dl := time.Now().Add(w.idle)
	if d, ok := w.ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	w.str.SetWriteDeadline(dl)
}

func (w *responseWriter) writeHeader() error {
	if len(w.hdr) > w.max {
		// Nothing sent yet: the handler's error reaches the caller as an
		// error response.
		return Errorf(CodeTooLarge, "response header is %d bytes, limit %d", len(w.hdr), w.max)
	}
	w.wrote = true
	w.deadline()
	_, err := w.str.Write(appendResponse(nil, &responseHeader{status: statusOK, id: w.id, peerGoodput: w.p.rxRate(), header: w.hdr}))
	if err != nil {
		return classify(w.ctx, "write response header", err)
	}
	return nil
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		if err := w.writeHeader(); err != nil {
			return 0, err
		}
	}
	w.deadline()
	n, err := w.str.Write(b)
	if err != nil {
		return n, classify(w.ctx, "write response", err)
	}
	return n, nil
}

// stream is what the request and response code needs of one bidirectional
// stream: a *quic.Stream, or a [MemNetwork] stream with the same semantics.
type stream interface {
	io.ReadWriteCloser
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	Context() context.Context
}

var _ stream = (*quic.Stream)(nil)

// ReadFrom lets io.Copy stream into the response without an extra buffer
// layer beyond io.Copy's own.
var _ io.Writer = (*responseWriter)(nil)
