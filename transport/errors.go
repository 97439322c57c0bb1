package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/quic-go/quic-go"
)

// Code classifies a request failure. Codes travel on the wire (in error
// responses and as QUIC stream reset codes), so their values are fixed.
type Code uint64

const (
	CodeOK               Code = 0  // no error (never in an Error)
	CodeInternal         Code = 1  // the handler or the endpoint failed
	CodeBadRequest       Code = 2  // malformed frame or invalid header field
	CodeTooLarge         Code = 3  // a header or body exceeded its limit
	CodeDeadlineExceeded Code = 4  // the request's deadline passed
	CodeCanceled         Code = 5  // the caller gave up
	CodeUnavailable      Code = 6  // cannot reach the peer, or it is shutting down or overloaded
	CodeNotFound         Code = 7  // the peer does not hold the requested model or segment
	CodeStalled          Code = 8  // the peer sent nothing for longer than the idle timeout
	CodePeerGone         Code = 9  // the connection to the peer was lost mid-request
	CodeUnauthenticated  Code = 10 // the TLS handshake failed (certificate refused)
)

var codeNames = [...]string{"ok", "internal", "bad request", "too large", "deadline exceeded", "canceled",
	"unavailable", "not found", "stalled", "peer gone", "unauthenticated"}

// String returns the code's name.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code %d", uint64(c))
}

// Error is the typed error of every failed request. Match it with errors.As,
// or compare codes with errors.Is against the sentinels (ErrTooLarge, …).
// CodeDeadlineExceeded also matches context.DeadlineExceeded and CodeCanceled
// matches context.Canceled.
type Error struct {
	Code    Code
	Message string
	// Remote is true when the peer reported the error.
	Remote bool
	cause  error
}

// Sentinels for errors.Is; they match any *Error with the same code.
var (
	ErrInternal         = &Error{Code: CodeInternal}
	ErrBadRequest       = &Error{Code: CodeBadRequest}
	ErrTooLarge         = &Error{Code: CodeTooLarge}
	ErrDeadlineExceeded = &Error{Code: CodeDeadlineExceeded}
	ErrCanceled         = &Error{Code: CodeCanceled}
	ErrUnavailable      = &Error{Code: CodeUnavailable}
	ErrNotFound         = &Error{Code: CodeNotFound}
	ErrStalled          = &Error{Code: CodeStalled}
	ErrPeerGone         = &Error{Code: CodePeerGone}
	ErrUnauthenticated  = &Error{Code: CodeUnauthenticated}
	// ErrUntrustedPeer is wrapped when a peer's certificate is valid but
	// names another node or role than the call expected (Request.Peer,
	// Request.PeerRoles): nothing was sent to it.
	ErrUntrustedPeer = errors.New("transport: peer is not the node the call expected")
)

// Errorf returns an *Error with the code and a formatted message. Handlers
// return it to choose the code the caller sees.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	where := ""
	if e.Remote {
		where = " (from peer)"
	}
	switch {
	case e.Message != "":
		return fmt.Sprintf("transport: %s%s: %s", e.Code, where, e.Message)
	case e.cause != nil:
		return fmt.Sprintf("transport: %s%s: %v", e.Code, where, e.cause)
	default:
		return fmt.Sprintf("transport: %s%s", e.Code, where)
	}
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is matches an *Error with the same code whose Message is empty (the
// sentinels), and the context errors for the deadline and cancel codes.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code && t.Message == "" && t.cause == nil
	}
	switch {
	case target == context.DeadlineExceeded:
		return e.Code == CodeDeadlineExceeded
	case target == context.Canceled:
		return e.Code == CodeCanceled
	}
	return false
}

func wrapErr(code Code, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, cause: cause}
}

// CodeOf returns the code of err: its *Error's code, CodeDeadlineExceeded or
// CodeCanceled for context errors, CodeInternal for anything else, CodeOK for
// nil.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var te *Error
	if errors.As(err, &te) {
		return te.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	}
	return CodeInternal
}

// classify turns an error from quic-go or the context into an *Error. op
// names what was being done, for the message.
func classify(ctx context.Context, op string, err error) *Error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	if ctx != nil && ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
			return wrapErr(CodeDeadlineExceeded, op+": deadline exceeded", context.DeadlineExceeded)
		}
		return wrapErr(CodeCanceled, op+": canceled", context.Canceled)
	}
	var se *quic.StreamError
	if errors.As(err, &se) {
		c := Code(se.ErrorCode)
		if c == CodeOK || c > CodeUnauthenticated {
			c = CodeCanceled
		}
		e := wrapErr(c, fmt.Sprintf("%s: stream reset (%s)", op, c), err)
		e.Remote = se.Remote
		return e
	}
	var tre *quic.TransportError
	if errors.As(err, &tre) && tre.ErrorCode.IsCryptoError() {
		return wrapErr(CodeUnauthenticated, op+": TLS handshake failed", err)
	}
	var (
		ae  *quic.ApplicationError
		ite *quic.IdleTimeoutError
		sre *quic.StatelessResetError
		hte *quic.HandshakeTimeoutError
	)
	switch {
	case errors.As(err, &hte):
		return wrapErr(CodeUnavailable, op+": handshake timed out", err)
	case errors.As(err, &ae), errors.As(err, &ite), errors.As(err, &sre), errors.As(err, &tre), errors.Is(err, net.ErrClosed):
		return wrapErr(CodePeerGone, op+": connection lost", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return wrapErr(CodeStalled, op+": peer idle too long", err)
	case errors.Is(err, context.DeadlineExceeded):
		return wrapErr(CodeDeadlineExceeded, op+": deadline exceeded", err)
	case errors.Is(err, context.Canceled):
		return wrapErr(CodeCanceled, op+": canceled", err)
	}
	return wrapErr(CodeInternal, op, err)
}
