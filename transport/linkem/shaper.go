package linkem

import (
	"sync"
	"time"
)

// Shaper is one direction of an emulated link for a reliable transport that
// moves byte chunks rather than datagrams (an in-memory stream, for
// example): each chunk leaves after serialisation at the link's Rate (or
// Trace capacity, plus Overhead) and arrives after its Delay and Jitter, in
// the order sent, on the same time-sorted queue and timer as a [Conn]'s
// directions.
//
// A reliable transport loses nothing and holds its sender back with flow
// control, so Loss, Burst, QueueBytes, QueueDelay, MTU and AllowReorder do not
// apply to a Shaper and are ignored. A Shaper whose settings pass through
// delivers synchronously, on the sender's goroutine. It is safe for
// concurrent use.
type Shaper struct {
	mu   sync.Mutex
	s    LinkSettings
	p    *pipe // nil while passing through
	pool sync.Pool
}

// NewShaper returns a shaper with settings s (see [Shaper] for the fields
// that apply).
func NewShaper(s LinkSettings) *Shaper {
	sh := &Shaper{}
	sh.pool.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	sh.Set(s)
	return sh
}

// reliable strips what a reliable transport does not have.
func reliable(s LinkSettings) LinkSettings {
	s.Loss, s.Burst, s.QueueBytes, s.QueueDelay, s.MTU, s.AllowReorder = 0, nil, 0, 0, 0, false
	return s
}

// Set changes the settings live; chunks already on the link keep their
// delivery times.
func (sh *Shaper) Set(s LinkSettings) {
	s = reliable(s)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.s = s
	switch {
	case sh.p != nil:
		sh.p.set(s)
	case !s.PassThrough():
		sh.p = newPipe(s, time.Now(), sh.deliver, sh.release)
	}
}

// Settings returns the current settings (with the fields that do not apply
// cleared).
func (sh *Shaper) Settings() LinkSettings {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.s
}

// Send copies b onto the link; deliver receives the copy when it arrives.
// deliver runs on the shaper's goroutine (or the caller's when passing
// through): it must not block, and b is valid only during the call. After
// Close, Send delivers at once.
func (sh *Shaper) Send(b []byte, deliver func([]byte)) {
	sh.mu.Lock()
	p := sh.p
	if p == nil {
		sh.mu.Unlock()
		deliver(b)
		return
	}
	sh.mu.Unlock()
	bp := sh.pool.Get().(*[]byte)
	*bp = append((*bp)[:0], b...)
	p.enqueue(&packet{buf: bp, n: len(b), done: deliver})
}

func (sh *Shaper) deliver(pk *packet) bool {
	pk.done((*pk.buf)[:pk.n])
	sh.release(pk)
	return true
}

func (sh *Shaper) release(pk *packet) {
	if pk.buf != nil && cap(*pk.buf) <= 64<<10 {
		sh.pool.Put(pk.buf)
	}
	pk.buf, pk.done = nil, nil
}

// Stats returns what the shaper carried (zero while passing through before
// any shaping was set).
func (sh *Shaper) Stats() DirStats {
	sh.mu.Lock()
	p := sh.p
	sh.mu.Unlock()
	if p == nil {
		return DirStats{}
	}
	return p.cnt.snapshot()
}

// Close stops the shaper's goroutine; chunks still on the link are dropped.
func (sh *Shaper) Close() {
	sh.mu.Lock()
	p := sh.p
	sh.p = nil
	sh.mu.Unlock()
	if p != nil {
		p.close()
	}
}
