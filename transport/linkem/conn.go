package linkem

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxDatagram is the largest datagram the downlink reader accepts.
const maxDatagram = 64 << 10

// DefaultReceiveQueue is the number of delivered downlink packets a Conn
// buffers for ReadFrom before it drops (like a socket receive buffer).
const DefaultReceiveQueue = 8192

// ErrPassThroughDownlink is returned by [Conn.SetLink] when the downlink was
// created as a pass-through and cannot be shaped later.
var ErrPassThroughDownlink = errors.New("linkem: downlink was created as a pass-through; create the Conn with Options.ShapeableDownlink to change it later")

// Options tunes a [Conn]. The zero value is valid.
type Options struct {
	// ReceiveQueue is the number of delivered downlink packets buffered
	// for ReadFrom. Default DefaultReceiveQueue.
	ReceiveQueue int
	// ShapeableDownlink keeps the downlink's shaping machinery running even
	// when it starts as a pass-through, so SetLink can shape it later.
	ShapeableDownlink bool
}

// Stats reports both directions of a link.
type Stats struct {
	Up, Down DirStats
}

// Conn is an emulated link in front of a real [net.PacketConn]. It is safe for
// concurrent use. It owns the wrapped connection: Close closes it.
type Conn struct {
	pc    net.PacketConn
	epoch time.Time
	up    atomic.Pointer[pipe] // nil: pass-through
	down  *pipe                // nil: pass-through, reads go straight to pc

	upCnt   counters // used when up is nil
	downCnt counters // used when down is nil

	upMu       sync.Mutex // guards up creation
	upSettings atomic.Pointer[LinkSettings]

	recv   chan *packet
	rd     deadline
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	pool   sync.Pool
}

var _ net.PacketConn = (*Conn)(nil)

// New wraps pc (usually a *net.UDPConn) in an emulated link with the given
// uplink (writes) and downlink (reads) settings.
func New(pc net.PacketConn, up, down LinkSettings, opts Options) (*Conn, error) {
	if pc == nil {
		return nil, errors.New("linkem: nil PacketConn")
	}
	if err := up.Validate(); err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if err := down.Validate(); err != nil {
		return nil, fmt.Errorf("downlink: %w", err)
	}
	if opts.ReceiveQueue <= 0 {
		opts.ReceiveQueue = DefaultReceiveQueue
	}
	c := &Conn{
		pc:     pc,
		epoch:  time.Now(),
		closed: make(chan struct{}),
		rd:     makeDeadline(),
	}
	c.pool.New = func() any { b := make([]byte, 0, 1500); return &b }
	c.upSettings.Store(&up)
	if !up.PassThrough() {
		c.up.Store(newPipe(up, c.epoch, c.sendNow, c.release))
	}
	if !down.PassThrough() || opts.ShapeableDownlink {
		c.recv = make(chan *packet, opts.ReceiveQueue)
		c.down = newPipe(down, c.epoch, c.toReader, c.release)
		c.wg.Add(1)
		go c.readLoop()
	}
	return c, nil
}

// Epoch returns the instant the link's clock started; trace time 0.
func (c *Conn) Epoch() time.Time { return c.epoch }

// Unwrap returns the wrapped connection.
func (c *Conn) Unwrap() net.PacketConn { return c.pc }

// Settings returns the current settings of one direction.
func (c *Conn) Settings(d Direction) LinkSettings {
	switch {
	case d == Uplink:
		return *c.upSettings.Load()
	case c.down != nil:
		return c.down.settings()
	default:
		return LinkSettings{}
	}
}

// SetLink changes one direction's settings at run time (for example, Loss: 1
// makes the peer vanish). Packets already in flight keep their schedule.
func (c *Conn) SetLink(d Direction, s LinkSettings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%v: %w", d, err)
	}
	switch d {
	case Uplink:
		c.upMu.Lock()
		defer c.upMu.Unlock()
		if up := c.up.Load(); up != nil {
			up.set(s)
		} else if !s.PassThrough() {
			select {
			case <-c.closed:
				return net.ErrClosed
			default:
			}
			c.up.Store(newPipe(s, c.epoch, c.sendNow, c.release))
		}
		c.upSettings.Store(&s)
		return nil
	case Downlink:
		if c.down == nil {
			return ErrPassThroughDownlink
		}
		c.down.set(s)
		return nil
	default:
		return fmt.Errorf("linkem: unknown direction %v", d)
	}
}

// Stats returns packet counts for both directions.
func (c *Conn) Stats() Stats {
	var st Stats
	st.Up = c.upCnt.snapshot()
	if up := c.up.Load(); up != nil {
		add(&st.Up, up.cnt.snapshot())
	}
	if c.down != nil {
		st.Down = c.down.cnt.snapshot()
	} else {
		st.Down = c.downCnt.snapshot()
	}
	return st
}

func add(a *DirStats, b DirStats) {
	a.Packets += b.Packets
	a.Bytes += b.Bytes
	a.Delivered += b.Delivered
	a.DroppedLoss += b.DroppedLoss
	a.DroppedQueue += b.DroppedQueue
	a.DroppedMTU += b.DroppedMTU
	a.DroppedOther += b.DroppedOther
}

func (c *Conn) getPacket(b []byte, addr net.Addr) *packet {
	bp := c.pool.Get().(*[]byte)
	*bp = append((*bp)[:0], b...)
	return &packet{buf: bp, n: len(b), addr: addr}
}

func (c *Conn) release(p *packet) {
	if p.buf != nil && cap(*p.buf) <= maxDatagram {
		c.pool.Put(p.buf)
	}
	p.buf = nil
}

// sendNow writes a packet that finished its uplink trip to the socket.
func (c *Conn) sendNow(p *packet) bool {
	_, err := c.pc.WriteTo((*p.buf)[:p.n], p.addr)
	c.release(p)
	return err == nil
}

// toReader hands a packet that finished its downlink trip to ReadFrom.
func (c *Conn) toReader(p *packet) bool {
	select {
	case c.recv <- p:
		return true
	default:
		c.release(p)
		return false
	}
}

// readLoop pulls datagrams off the socket into the downlink.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := c.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-c.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				c.once.Do(func() { close(c.closed) })
				return
			}
			continue // transient (e.g. ICMP port unreachable)
		}
		c.down.enqueue(c.getPacket(buf[:n], addr))
	}
}

// WriteTo sends p through the uplink. It never blocks: like a UDP socket, a
// packet the link cannot take is silently dropped.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	up := c.up.Load()
	if up == nil {
		c.upCnt.packets.Add(1)
		c.upCnt.bytes.Add(uint64(len(p)))
		n, err := c.pc.WriteTo(p, addr)
		if err == nil {
			c.upCnt.delivered.Add(1)
		} else {
			c.upCnt.other.Add(1)
		}
		return n, err
	}
	up.enqueue(c.getPacket(p, addr))
	return len(p), nil
}

// ReadFrom returns the next packet that finished its downlink trip.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.down == nil {
		n, addr, err := c.pc.ReadFrom(b)
		if err == nil {
			c.downCnt.packets.Add(1)
			c.downCnt.bytes.Add(uint64(n))
			c.downCnt.delivered.Add(1)
		}
		return n, addr, err
	}
	select {
	case p := <-c.recv:
		return c.copyOut(b, p)
	default:
	}
	select {
	case p := <-c.recv:
		return c.copyOut(b, p)
	case <-c.rd.wait():
		return 0, nil, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *Conn) copyOut(b []byte, p *packet) (int, net.Addr, error) {
	n := copy(b, (*p.buf)[:p.n])
	addr := p.addr
	c.release(p)
	return n, addr, nil
}

// Close stops the link, drops packets in flight and closes the wrapped
// connection.
func (c *Conn) Close() error {
	first := false
	c.once.Do(func() { close(c.closed); first = true })
	err := c.pc.Close()
	if !first {
		err = nil
	}
	c.wg.Wait()
	c.upMu.Lock() // no new uplink pipe after this point
	up := c.up.Load()
	c.upMu.Unlock()
	if up != nil && first {
		up.close()
	}
	if c.down != nil && first {
		c.down.close()
	}
	return err
}

// LocalAddr returns the wrapped connection's address.
func (c *Conn) LocalAddr() net.Addr { return c.pc.LocalAddr() }

// SetDeadline sets the read deadline (writes never block).
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the deadline for ReadFrom.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.down == nil {
		return c.pc.SetReadDeadline(t)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline is accepted and ignored: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer forwards to the wrapped connection, if it supports it.
func (c *Conn) SetReadBuffer(n int) error {
	if s, ok := c.pc.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return errors.New("linkem: wrapped connection cannot set its read buffer")
}

// SetWriteBuffer forwards to the wrapped connection, if it supports it.
func (c *Conn) SetWriteBuffer(n int) error {
	if s, ok := c.pc.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return errors.New("linkem: wrapped connection cannot set its write buffer")
}

// SyscallConn forwards to the wrapped connection so buffer sizes and the DF
// bit can be inspected and set. It does not give access to reads or writes
// that bypass the link: quic-go only uses it for socket options when the
// connection lacks ReadMsgUDP/WriteMsgUDP, as Conn does.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if s, ok := c.pc.(syscall.Conn); ok {
		return s.SyscallConn()
	}
	return nil, errors.New("linkem: wrapped connection has no SyscallConn")
}

// deadline is a resettable read deadline, in the style of net.Pipe.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // wait for the timer callback to finish and close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
