package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/quic-go/quic-go"
)

// Response is a successful reply. Body streams the result; the caller must
// close it.
type Response struct {
	// RequestID echoes Request.ID.
	RequestID uint64
	// Header is the handler's opaque header (ResponseWriter.SetHeader);
	// nil when it set none.
	Header []byte
	// Body streams the result. Read errors are *Error values. Closing it
	// before EOF cancels the rest of the exchange.
	Body io.ReadCloser
}

// Call sends a "run segment" request to the peer at addr and streams body as
// its payload. It returns when the reply header arrives: a *Response on
// success, or an *Error (the peer's or a local one). ctx's deadline is sent
// to the peer, which runs its handler under it; cancelling ctx cancels the
// exchange on both sides. body is read until EOF, possibly after Call
// returns; once Call fails or Response.Body is closed, the stream is cancelled
// and body is not read again after its current Read call returns. A nil body
// sends an empty payload.
func (e *Endpoint) Call(ctx context.Context, addr string, req *Request, body io.Reader) (*Response, error) {
	if req == nil {
		return nil, Errorf(CodeBadRequest, "nil request")
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, Errorf(CodeBadRequest, "bad peer address %q: %v", addr, err)
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, Errorf(CodeUnavailable, "endpoint is shutting down")
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	done := sync.OnceFunc(e.inflight.Done)
	resp, err := e.call(ctx, ua, req, body, done)
	if err != nil {
		done()
		return nil, err
	}
	return resp, nil
}

func (e *Endpoint) call(ctx context.Context, ua *net.UDPAddr, req *Request, body io.Reader, done func()) (*Response, error) {
	p := e.peerFor(ua)
	r := *req
	r.Timeout = 0
	if dl, ok := ctx.Deadline(); ok {
		r.Timeout = time.Until(dl)
		if r.Timeout <= 0 {
			return nil, wrapErr(CodeDeadlineExceeded, "deadline passed before sending", context.DeadlineExceeded)
		}
	}
	r.PeerGoodput = p.rxRate()
	hdr, err := appendRequest(make([]byte, 0, 256), &r, e.cfg.MaxHeaderBytes)
	if err != nil {
		return nil, err
	}
	conn, err := e.conn(ctx, p)
	if err != nil {
		return nil, err
	}
	name, role := peerIdentity(conn)
	if err := checkPeer(req, ua.String(), name, role); err != nil {
		return nil, err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, classify(ctx, "open stream", err)
	}
	resp, err := e.exchange(ctx, p, str, hdr, r.Timeout, body, done, func() { p.observe(conn) })
	if c := CodeOf(err); c == CodePeerGone || c == CodeStalled {
		// The connection died or went silent: the next call dials anew
		// rather than waiting out the idle timeout on it.
		p.drop(conn)
	}
	return resp, err
}

// checkPeer checks the identity a connection to addr presented against
// what req expects of it.
func checkPeer(req *Request, addr, name string, role pki.Role) error {
	if req.Peer != "" && name != req.Peer {
		return fmt.Errorf("%w: %s presented the certificate of %q, not %q", ErrUntrustedPeer, addr, name, req.Peer)
	}
	if len(req.PeerRoles) > 0 && !slices.Contains(req.PeerRoles, role) {
		return fmt.Errorf("%w: %s (%q) presented a certificate for role %q, want %v", ErrUntrustedPeer, addr, name, role, req.PeerRoles)
	}
	return nil
}

// exchange sends the request frame hdr and body on str and reads the reply
// header; timeout is the request's (0 = none), done ends the call's
// in-flight count and observe samples the connection's statistics.
func (e *core) exchange(ctx context.Context, p *peer, str stream, hdr []byte, timeout time.Duration, body io.Reader, done, observe func()) (*Response, error) {
	// Propagate cancellation to the peer: reset our side, stop theirs.
	stop := context.AfterFunc(ctx, func() {
		c := quic.StreamErrorCode(classify(ctx, "", ctx.Err()).Code)
		str.CancelWrite(c)
		str.CancelRead(c)
	})
	if dl, ok := ctx.Deadline(); ok {
		str.SetWriteDeadline(dl)
	}

	upload := make(chan error, 1)
	go func() {
		_, err := str.Write(hdr)
		if err == nil && body != nil {
			_, err = io.Copy(str, body)
			if err != nil {
				var se *quic.StreamError
				if !asStreamErr(err, &se) {
					err = fmt.Errorf("transport: read request body: %w", err)
					str.CancelWrite(quic.StreamErrorCode(CodeCanceled))
				}
			}
		}
		if err == nil {
			if cerr := str.Close(); cerr != nil {
				// The stream was cancelled meanwhile (the reply came
				// first): not the caller's body's failure.
				err = closeErr{cerr}
			}
		}
		upload <- err
	}()

	br := bufio.NewReaderSize(str, 4096)
	rdl := time.Now().Add(e.cfg.ReadIdleTimeout + timeout)
	if timeout == 0 {
		rdl = time.Time{} // the handler may take as long as it likes
	}
	str.SetReadDeadline(rdl)
	h, err := readResponse(br, e.cfg.MaxHeaderBytes)
	if err != nil {
		stop()
		str.CancelRead(quic.StreamErrorCode(CodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(CodeCanceled))
		if ue := localUploadErr(uploadResult(upload)); ue != nil {
			return nil, ue
		}
		return nil, classify(ctx, "read response", err)
	}
	p.setTxRate(h.peerGoodput)
	if h.status == statusError {
		stop()
		str.CancelRead(quic.StreamErrorCode(CodeCanceled))
		str.CancelWrite(quic.StreamErrorCode(CodeCanceled))
		if ue := localUploadErr(uploadResult(upload)); ue != nil {
			return nil, ue
		}
		observe()
		return nil, &Error{Code: h.code, Message: h.message, Remote: true}
	}
	rb := &respBody{
		bodyReader: bodyReader{r: br, str: str, ctx: ctx, limit: e.cfg.MaxResponseBytes, idle: e.cfg.ReadIdleTimeout, m: &p.rx, what: "response body"},
		stop:       stop,
		upload:     upload,
		done:       done,
		observe:    observe,
	}
	return &Response{RequestID: h.id, Header: h.header, Body: rb}, nil
}

// uploadResult returns the upload goroutine's result if it has finished (or
// finishes within a moment, as it does once its stream is cancelled); a
// caller's body reader that blocks in Read is not waited for.
func uploadResult(upload chan error) error {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case err := <-upload:
		return err
	case <-t.C:
		return nil
	}
}

func asStreamErr(err error, se **quic.StreamError) bool {
	for err != nil {
		if s, ok := err.(*quic.StreamError); ok {
			*se = s
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// closeErr is the error of closing the request stream's write side.
type closeErr struct{ err error }

func (e closeErr) Error() string { return e.err.Error() }
func (e closeErr) Unwrap() error { return e.err }

// localUploadErr returns the upload's error if it came from the caller's body
// reader rather than from the stream.
func localUploadErr(err error) error {
	if err == nil {
		return nil
	}
	var se *quic.StreamError
	if asStreamErr(err, &se) {
		return nil
	}
	if _, ok := err.(closeErr); ok {
		return nil
	}
	if _, ok := err.(*Error); ok {
		return err
	}
	if ce := classify(nil, "", err); ce.Code != CodeInternal {
		return nil // a stream or connection error, reported by the reader side
	}
	return wrapErr(CodeCanceled, err.Error(), err)
}

// respBody is Response.Body.
type respBody struct {
	bodyReader
	stop    func() bool
	upload  chan error
	done    func()
	observe func() // at EOF: sample the connection's statistics
	once    sync.Once
	uerr    error
}

func (b *respBody) Read(p []byte) (int, error) {
	n, err := b.bodyReader.Read(p)
	if err == io.EOF && b.observe != nil {
		b.observe()
	}
	return n, err
}

// Close ends the exchange: it cancels whatever is unfinished and waits for the
// request body upload to stop.
func (b *respBody) Close() error {
	b.once.Do(func() {
		if !b.eof {
			b.str.CancelRead(quic.StreamErrorCode(CodeCanceled))
		}
		b.finish()
		select {
		case b.uerr = <-b.upload:
		default:
			b.str.CancelWrite(quic.StreamErrorCode(CodeCanceled))
			b.uerr = uploadResult(b.upload)
		}
		b.stop()
		b.done()
	})
	return localUploadErr(b.uerr)
}
