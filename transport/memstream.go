package transport

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesplit/edgesplit/transport/linkem"
)

// memChunk is the largest piece a memory stream hands to its link at once.
const memChunk = 16 << 10

var errWriteClosed = errors.New("transport: write on closed stream")

// memHalf is one direction of a memory stream: bytes written at one end
// travel the link path (the sender's uplink, then the receiver's downlink)
// and wait at the other end to be read. The writer may have at most window
// bytes unread (flow control). Errors mimic quic-go's: a reset or a stop
// arrives as a *quic.StreamError, a deadline as os.ErrDeadlineExceeded, a
// closed endpoint as an error that wraps net.ErrClosed.
type memHalf struct {
	path   []*linkem.Shaper
	window int

	mu        sync.Mutex
	buf       []byte // arrived, unread
	unread    int    // sent, not yet read
	fin       bool   // writer closed
	finIn     bool   // the FIN arrived
	reset     *quic.StreamError
	stopped   *quic.StreamError // reader sent STOP_SENDING
	rcanceled *quic.StreamError // reader cancelled locally
	wcanceled *quic.StreamError // writer cancelled locally
	connErr   error
	rdl, wdl  time.Time
	rsig      chan struct{}
	wsig      chan struct{}
	wctx      context.Context // the write side's context
	wcancel   context.CancelCauseFunc
}

func newMemHalf(path []*linkem.Shaper, window int) *memHalf {
	h := &memHalf{path: path, window: window, rsig: make(chan struct{}, 1), wsig: make(chan struct{}, 1)}
	h.wctx, h.wcancel = context.WithCancelCause(context.Background())
	return h
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// wait blocks until sig fires or the deadline dl passes; it reports false
// on the deadline. Called without the lock.
func wait(sig chan struct{}, dl time.Time) bool {
	if dl.IsZero() {
		<-sig
		return true
	}
	d := time.Until(dl)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sig:
		return true
	case <-t.C:
		return false
	}
}

// send moves b (or the FIN, when b is nil) down the link path.
func (h *memHalf) send(b []byte, fin bool) {
	var hop func(i int, b []byte)
	hop = func(i int, b []byte) {
		if i == len(h.path) {
			h.arrive(b, fin)
			return
		}
		h.path[i].Send(b, func(c []byte) { hop(i+1, c) })
	}
	if len(h.path) == 0 {
		b = append([]byte(nil), b...)
	}
	hop(0, b)
}

func (h *memHalf) arrive(b []byte, fin bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reset != nil || h.rcanceled != nil || h.connErr != nil {
		h.unread -= len(b)
		signal(h.wsig)
		return
	}
	h.buf = append(h.buf, b...)
	if fin {
		h.finIn = true
	}
	signal(h.rsig)
}

func (h *memHalf) Read(p []byte) (int, error) {
	for {
		h.mu.Lock()
		switch {
		case h.rcanceled != nil:
			err := h.rcanceled
			h.mu.Unlock()
			return 0, err
		case h.reset != nil:
			err := h.reset
			h.mu.Unlock()
			return 0, err
		case len(h.buf) > 0:
			n := copy(p, h.buf)
			h.buf = h.buf[n:]
			if len(h.buf) == 0 {
				h.buf = nil
			}
			h.unread -= n
			h.mu.Unlock()
			signal(h.wsig)
			return n, nil
		case h.finIn:
			h.mu.Unlock()
			return 0, io.EOF
		case h.connErr != nil:
			err := h.connErr
			h.mu.Unlock()
			return 0, err
		}
		dl := h.rdl
		h.mu.Unlock()
		if !wait(h.rsig, dl) {
			h.mu.Lock()
			expired := h.rdl.Equal(dl) && len(h.buf) == 0 && !h.finIn
			h.mu.Unlock()
			if expired {
				return 0, os.ErrDeadlineExceeded
			}
		}
	}
}

func (h *memHalf) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		h.mu.Lock()
		var err error
		switch {
		case h.wcanceled != nil:
			err = h.wcanceled
		case h.stopped != nil:
			err = h.stopped
		case h.connErr != nil:
			err = h.connErr
		case h.fin:
			err = errWriteClosed
		}
		if err != nil {
			h.mu.Unlock()
			return written, err
		}
		n := min(len(p), memChunk)
		if h.unread > 0 && h.unread+n > h.window {
			dl := h.wdl
			h.mu.Unlock()
			if !wait(h.wsig, dl) {
				h.mu.Lock()
				expired := h.wdl.Equal(dl)
				h.mu.Unlock()
				if expired {
					return written, os.ErrDeadlineExceeded
				}
			}
			continue
		}
		h.unread += n
		h.mu.Unlock()
		h.send(p[:n], false)
		p = p[n:]
		written += n
	}
	return written, nil
}

// Close sends the FIN.
func (h *memHalf) Close() error {
	h.mu.Lock()
	if h.fin || h.wcanceled != nil {
		h.mu.Unlock()
		return nil
	}
	h.fin = true
	h.mu.Unlock()
	h.wcancel(context.Canceled)
	h.send(nil, true)
	return nil
}

// CancelWrite resets the direction: unread data is discarded and the reader
// gets the code.
func (h *memHalf) CancelWrite(code quic.StreamErrorCode) {
	h.mu.Lock()
	if h.wcanceled != nil || h.finIn && len(h.buf) == 0 {
		h.mu.Unlock()
		return
	}
	local := &quic.StreamError{ErrorCode: code}
	h.wcanceled = local
	if h.reset == nil {
		h.reset = &quic.StreamError{ErrorCode: code, Remote: true}
		h.buf = nil
	}
	h.mu.Unlock()
	h.wcancel(local)
	signal(h.rsig)
	signal(h.wsig)
}

// CancelRead stops the direction from the reading end: the writer gets the
// code (STOP_SENDING).
func (h *memHalf) CancelRead(code quic.StreamErrorCode) {
	h.mu.Lock()
	if h.rcanceled != nil || h.finIn && len(h.buf) == 0 {
		h.mu.Unlock()
		return
	}
	h.rcanceled = &quic.StreamError{ErrorCode: code}
	remote := &quic.StreamError{ErrorCode: code, Remote: true}
	if h.stopped == nil && !h.fin {
		h.stopped = remote
	}
	h.buf = nil
	h.mu.Unlock()
	h.wcancel(remote)
	signal(h.rsig)
	signal(h.wsig)
}

// fail ends the direction with err (the endpoint or its peer closed).
func (h *memHalf) fail(err error) {
	h.mu.Lock()
	if h.connErr == nil {
		h.connErr = err
	}
	h.mu.Unlock()
	h.wcancel(err)
	signal(h.rsig)
	signal(h.wsig)
}

func (h *memHalf) setReadDeadline(t time.Time) {
	h.mu.Lock()
	h.rdl = t
	h.mu.Unlock()
	signal(h.rsig)
}

func (h *memHalf) setWriteDeadline(t time.Time) {
	h.mu.Lock()
	h.wdl = t
	h.mu.Unlock()
	signal(h.wsig)
}

// memStream is one end of a bidirectional memory stream.
type memStream struct {
	in, out *memHalf
}

var _ stream = (*memStream)(nil)

func (s *memStream) Read(p []byte) (int, error)         { return s.in.Read(p) }
func (s *memStream) Write(p []byte) (int, error)        { return s.out.Write(p) }
func (s *memStream) Close() error                       { return s.out.Close() }
func (s *memStream) CancelRead(c quic.StreamErrorCode)  { s.in.CancelRead(c) }
func (s *memStream) CancelWrite(c quic.StreamErrorCode) { s.out.CancelWrite(c) }
func (s *memStream) SetReadDeadline(t time.Time) error  { s.in.setReadDeadline(t); return nil }
func (s *memStream) SetWriteDeadline(t time.Time) error { s.out.setWriteDeadline(t); return nil }
func (s *memStream) Context() context.Context           { return s.out.wctx }
