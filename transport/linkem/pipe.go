package linkem

import (
	"math/rand/v2"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesplit/edgesplit/internal/cellreplay"
	"github.com/edgesplit/edgesplit/internal/heap"
)

// packet is one datagram travelling through a pipe.
type packet struct {
	buf  *[]byte // pooled backing array
	n    int
	addr net.Addr
	at   time.Duration // delivery time on the pipe's clock
	done func([]byte)  // Shaper: delivers the bytes at the far end
}

// DirStats counts what one direction of a link did. All counts are totals
// since the link was created.
type DirStats struct {
	Packets      uint64 // packets that entered the direction (shaped or passed through)
	Bytes        uint64 // UDP payload bytes that entered
	Delivered    uint64 // packets delivered to the other side
	DroppedLoss  uint64 // dropped by random or bursty loss
	DroppedQueue uint64 // dropped by the full drop-tail queue
	DroppedMTU   uint64 // dropped for exceeding the MTU
	DroppedOther uint64 // receive buffer full or socket write error
}

// Dropped returns the total number of dropped packets.
func (s DirStats) Dropped() uint64 {
	return s.DroppedLoss + s.DroppedQueue + s.DroppedMTU + s.DroppedOther
}

type counters struct {
	packets, bytes, delivered, loss, queue, mtu, other atomic.Uint64
}

func (c *counters) snapshot() DirStats {
	return DirStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(), Delivered: c.delivered.Load(),
		DroppedLoss: c.loss.Load(), DroppedQueue: c.queue.Load(), DroppedMTU: c.mtu.Load(), DroppedOther: c.other.Load(),
	}
}

// backlogEntry records a packet waiting for (or in) serialisation.
type backlogEntry struct {
	depart time.Duration
	size   int
}

// pipe is one direction of a link: a shaper that computes each packet's
// departure and delivery time on entry, and a time-sorted delivery queue
// served by one goroutine and one timer.
type pipe struct {
	epoch   time.Time
	deliver func(p *packet) bool // runs on the pipe goroutine; false = dropped
	release func(p *packet)
	cnt     counters

	mu       sync.Mutex
	s        LinkSettings
	qlimit   int
	rng      *rand.Rand
	geBad    bool
	busy     time.Duration // fixed rate: when the serialiser is next free
	tIdx     int           // trace cursor: opportunity index
	tBase    int64         // trace cursor: loop base in ms
	tCredit  int           // trace cursor: bytes left in the current opportunity
	tValid   bool
	cr       *cellreplay.Replayer // Cellular's replay state
	backlog  []backlogEntry       // FIFO, head at bhead
	bhead    int
	bbytes   int
	lastAt   time.Duration                     // last delivery time, for order keeping
	heap     heap.Heap[time.Duration, *packet] // by delivery time, then send order
	wake     chan struct{}
	closed   chan struct{}
	wg       sync.WaitGroup
	draining []*packet
}

func newPipe(s LinkSettings, epoch time.Time, deliver func(*packet) bool, release func(*packet)) *pipe {
	p := &pipe{
		epoch:   epoch,
		deliver: deliver,
		release: release,
		wake:    make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	p.setLocked(s)
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *pipe) setLocked(s LinkSettings) {
	seed := s.Seed
	if seed == 0 {
		seed = 0x5eed
	}
	if p.rng == nil || s.Seed != p.s.Seed {
		p.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	if s.Trace != p.s.Trace {
		p.tValid = false
	}
	if s.Cellular == nil {
		p.cr = nil
	} else if s.Cellular != p.s.Cellular || p.cr == nil {
		p.cr = cellreplay.NewReplayer(s.Cellular.link)
	}
	p.s = s
	p.qlimit = s.queueLimit()
}

func (p *pipe) set(s LinkSettings) {
	p.mu.Lock()
	p.setLocked(s)
	p.mu.Unlock()
}

func (p *pipe) settings() LinkSettings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s
}

func (p *pipe) now() time.Duration { return time.Since(p.epoch) }

// txTime is the serialisation time of size bytes at rate bit/s.
func txTime(size int, rate float64) time.Duration {
	return time.Duration(float64(size) * 8 * 1e9 / rate)
}

// traceDepart advances the trace cursor to serve size bytes arriving at now
// and returns the departure time (the opportunity that carries the last byte).
func (p *pipe) traceDepart(now time.Duration, size int) time.Duration {
	t := p.s.Trace
	period := int64(t.ms[len(t.ms)-1])
	oppAt := func() time.Duration { return time.Duration(p.tBase+int64(t.ms[p.tIdx])) * time.Millisecond }
	if !p.tValid || oppAt() < now || p.tCredit == 0 && p.bbytes == 0 {
		// The queue is empty: unused opportunities before now are lost.
		nowMs := int64((now + time.Millisecond - 1) / time.Millisecond) // ceil
		p.tBase = nowMs / period * period
		r := uint32(nowMs - p.tBase)
		p.tIdx = sort.Search(len(t.ms), func(i int) bool { return t.ms[i] >= r })
		if p.tIdx == len(t.ms) {
			p.tIdx = 0
			p.tBase += period
		}
		p.tCredit = OpportunityBytes
		p.tValid = true
	}
	for size > p.tCredit {
		size -= p.tCredit
		p.tIdx++
		if p.tIdx == len(t.ms) {
			p.tIdx = 0
			p.tBase += period
		}
		p.tCredit = OpportunityBytes
	}
	p.tCredit -= size
	return oppAt()
}

// enqueue takes ownership of pk and schedules it, or drops it.
func (p *pipe) enqueue(pk *packet) {
	p.cnt.packets.Add(1)
	p.cnt.bytes.Add(uint64(pk.n))
	p.mu.Lock()
	s := &p.s
	if s.MTU > 0 && pk.n > s.MTU {
		p.mu.Unlock()
		p.cnt.mtu.Add(1)
		p.release(pk)
		return
	}
	now := p.now()
	// drain the backlog of packets that have left the serialiser
	for p.bhead < len(p.backlog) && p.backlog[p.bhead].depart <= now {
		p.bbytes -= p.backlog[p.bhead].size
		p.bhead++
	}
	if p.bhead == len(p.backlog) {
		p.backlog, p.bhead = p.backlog[:0], 0
	} else if p.bhead > 1024 && p.bhead > len(p.backlog)/2 {
		n := copy(p.backlog, p.backlog[p.bhead:])
		p.backlog, p.bhead = p.backlog[:n], 0
	}
	size := pk.n + s.Overhead
	depart := now
	if s.limited() {
		if p.qlimit > 0 && p.bbytes+size > p.qlimit {
			p.mu.Unlock()
			p.cnt.queue.Add(1)
			p.release(pk)
			return
		}
		switch {
		case p.cr != nil:
			// The replay's release time includes the base delay: the
			// packet leaves the queue when it is delivered.
			depart = max(p.cr.Packet(now, size), now)
		case s.Trace != nil:
			depart = p.traceDepart(now, size)
		default:
			start := max(now, p.busy)
			depart = start + txTime(size, s.Rate)
			p.busy = depart
		}
		p.backlog = append(p.backlog, backlogEntry{depart: depart, size: size})
		p.bbytes += size
	}
	// loss happens on the medium: the packet used its serialisation slot
	lost := s.Loss > 0 && p.rng.Float64() < s.Loss
	if g := s.Burst; g != nil {
		if p.geBad {
			if p.rng.Float64() < g.PBadToGood {
				p.geBad = false
			}
		} else if p.rng.Float64() < g.PGoodToBad {
			p.geBad = true
		}
		pl := g.LossGood
		if p.geBad {
			pl = g.LossBad
		}
		if pl > 0 && p.rng.Float64() < pl {
			lost = true
		}
	}
	if lost {
		p.mu.Unlock()
		p.cnt.loss.Add(1)
		p.release(pk)
		return
	}
	d := s.Delay
	if p.cr != nil {
		d = 0 // in the replay
	}
	if s.Jitter > 0 {
		d += time.Duration((p.rng.Float64()*2 - 1) * float64(s.Jitter))
		d = max(d, 0)
	}
	at := depart + d
	if !s.AllowReorder && at < p.lastAt {
		at = p.lastAt
	}
	p.lastAt = max(p.lastAt, at)
	pk.at = at
	p.heap.Push(at, pk)
	_, head := p.heap.Peek()
	first := *head == pk
	p.mu.Unlock()
	if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// maxSlack bounds the early release of packets. Go's timers sleep in whole
// milliseconds when the process is idle (epoll granularity), so they fire up
// to ≈ 1 ms late (≈ 0.9 ms measured here); under load they fire nearly on
// time. Two regimes keep the delay error small:
//
//   - light traffic (few packets queued: pings, request headers, slow links):
//     the pipe sleeps on the timer until spinWindow before the packet is due,
//     then yields in a loop (runtime.Gosched) until it is due exactly;
//   - heavy traffic: the pipe tracks its own timer lateness (an EWMA, at most
//     maxSlack) and releases packets that much early, so the error stays
//     centred on zero without burning a core.
const (
	maxSlack      = time.Millisecond
	spinWindow    = 1200 * time.Microsecond
	spinMaxQueued = 4
)

// run delivers packets when they are due. One timer serves the whole queue.
func (p *pipe) run() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	slack, target := maxSlack/2, time.Duration(0)
	measure := false // whether the pending timer measures lateness
	for {
		p.mu.Lock()
		now := p.now()
		light := p.heap.Len() <= spinMaxQueued
		early := slack
		if light {
			early = 0
		}
		due := p.draining[:0]
		for p.heap.Len() > 0 {
			if at, _ := p.heap.Peek(); at > now+early {
				break
			}
			_, pk := p.heap.Pop()
			due = append(due, pk)
		}
		var wait time.Duration = -1
		if p.heap.Len() > 0 {
			at, _ := p.heap.Peek()
			wait = max(at-now-early, 0)
		}
		p.mu.Unlock()
		for i, pk := range due {
			if p.deliver(pk) {
				p.cnt.delivered.Add(1)
			} else {
				p.cnt.other.Add(1)
			}
			due[i] = nil
		}
		p.draining = due[:0]
		switch {
		case wait < 0:
			timer.Stop()
			measure = false
		case light && wait <= spinWindow:
			// Yield until due; a new packet or close is noticed on the
			// next loop iteration.
			until := now + wait
			for p.now() < until && !isClosed(p.closed) {
				runtime.Gosched()
			}
			if isClosed(p.closed) {
				p.drainOnClose()
				return
			}
			continue
		case light:
			timer.Reset(wait - spinWindow)
			measure = false
		default:
			target = now + wait
			timer.Reset(wait)
			measure = true
		}
		select {
		case <-p.closed:
			p.drainOnClose()
			return
		case <-p.wake:
		case <-timer.C:
			if measure {
				late := min(max(p.now()-target, 0), maxSlack)
				slack += (late - slack) / 4
			}
		}
	}
}

func (p *pipe) drainOnClose() {
	p.mu.Lock()
	for p.heap.Len() > 0 {
		_, pk := p.heap.Pop()
		p.release(pk)
	}
	p.mu.Unlock()
}

func (p *pipe) close() {
	close(p.closed)
	p.wg.Wait()
}
