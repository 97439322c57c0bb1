package kern

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a statically partitioned piece of work: Part(part, parts, slot)
// does part `part` of `parts`. The partition is fixed by the caller, so the
// result cannot depend on which goroutine runs which part; slot (in [0,
// Pool.Threads())) names the goroutine running it, for per-goroutine
// scratch. Parts must write disjoint memory.
type Task interface {
	Part(part, parts, slot int)
}

// maxParts bounds the parts of one task (they are counted in 8 bits).
const maxParts = 255

// spinFor is how long an idle worker (or a caller waiting for a part still
// running on a worker) polls before it parks on a channel: long enough to
// cover the gap between two parallel ops of one Run, short enough that
// workers are parked between runs.
const spinFor = 50 * time.Microsecond

// Pool is a fixed set of Threads()-1 parked worker goroutines that, together
// with the calling goroutine, run the parts of one [Task] at a time. Nothing
// is started or allocated per task: the caller publishes the task in one
// atomic word, wakes parked workers, and then it and the workers claim parts
// one by one until none are left. A worker that the OS has not scheduled yet
// simply claims nothing (the caller runs its parts), so a loaded machine
// degrades towards serial speed rather than waiting on a sleeping thread.
//
// A Pool is safe for concurrent use. It runs one task at a time; a Run (or a
// Conv.Forward) that finds the Pool busy — another goroutine's task, or a
// task started from inside a part — runs every part on its own goroutine
// instead, with the same results. A nil *Pool is valid and runs everything on
// the caller. Close stops the workers; a closed Pool runs everything on the
// caller.
type Pool struct {
	n int
	w *poolWorkers
}

// poolWorkers is the state the worker goroutines share (kept apart from
// Pool so that an unreachable Pool can be cleaned up while workers run).
type poolWorkers struct {
	mu     sync.Mutex // held for one task
	closed atomic.Bool
	// state is gen<<16 | parts<<8 | next: the task generation, its part
	// count and the next part to claim. A successful CAS that bumps next
	// claims a part of the current task.
	state  atomic.Uint64
	_      [56]byte
	done   atomic.Int32 // parts finished in the current task
	waitng atomic.Bool  // the caller is parked on doneCh
	task   Task
	wake   []chan struct{} // per worker, buffered 1
	asleep []atomic.Bool   // per worker: parked on wake
	doneCh chan struct{}   // buffered 1: a worker's signal to a parked caller
	wg     sync.WaitGroup
	conv   convTask   // Conv.Forward's task, used under mu
	sgemm  sgemmTask  // SgemmOn's task, used under mu
	planes planesTask // RunPlanes's task, used under mu
}

func stateGen(s uint64) uint64 { return s >> 16 }

// NewPool starts threads-1 workers (threads is clamped to [1, 64]). With
// threads ≤ 1 it starts none and every task runs on the caller.
func NewPool(threads int) *Pool {
	threads = clampThreads(threads)
	p := &Pool{n: threads, w: &poolWorkers{}}
	w := p.w
	w.wake = make([]chan struct{}, threads-1)
	w.asleep = make([]atomic.Bool, threads-1)
	w.doneCh = make(chan struct{}, 1)
	for i := range w.wake {
		w.wake[i] = make(chan struct{}, 1)
	}
	w.wg.Add(threads - 1)
	for i := 1; i < threads; i++ {
		go w.loop(i)
	}
	return p
}

// Threads is the number of goroutines a task runs on, the caller included:
// 1 for a nil or closed Pool.
func (p *Pool) Threads() int {
	if p == nil || p.w.closed.Load() {
		return 1
	}
	return p.n
}

// Close stops the workers and waits for them to exit. It is safe to call
// twice and while other goroutines use the Pool (their tasks finish first;
// later tasks run on the caller).
func (p *Pool) Close() {
	if p == nil {
		return
	}
	w := p.w
	w.mu.Lock()
	if w.closed.Swap(true) {
		w.mu.Unlock()
		return
	}
	for i := range w.wake {
		select {
		case w.wake[i] <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// Run runs task.Part(i, parts, slot) for i in [0, parts) and returns when
// all are done; parts is clamped to [1, 255]. With one part, or a pool that
// is nil, closed, single-threaded or busy, every part runs on the caller.
func (p *Pool) Run(task Task, parts int) {
	parts = max(1, min(parts, maxParts))
	if parts == 1 || !p.tryAcquire() {
		for i := range parts {
			task.Part(i, parts, 0)
		}
		return
	}
	p.w.run(task, parts)
	p.release()
}

// tryAcquire locks the Pool for one task and returns true, or returns false
// when it is nil, closed, single-threaded or busy.
func (p *Pool) tryAcquire() bool {
	if p == nil || p.n < 2 || p.w.closed.Load() {
		return false
	}
	if !p.w.mu.TryLock() {
		return false
	}
	if p.w.closed.Load() {
		p.w.mu.Unlock()
		return false
	}
	return true
}

func (p *Pool) release() { p.w.mu.Unlock() }

// run publishes task, claims parts alongside the workers and waits for the
// last one. Called with mu held.
func (w *poolWorkers) run(task Task, parts int) {
	w.task = task
	w.done.Store(0)
	g := stateGen(w.state.Load()) + 1
	w.state.Store(g<<16 | uint64(parts)<<8)
	for i := range w.wake {
		if w.asleep[i].Load() {
			select {
			case w.wake[i] <- struct{}{}:
			default:
			}
		}
	}
	w.claim(g, 0)
	start := time.Now()
	for spins := 0; int(w.done.Load()) != parts; spins++ {
		if spins&63 == 63 && time.Since(start) > spinFor {
			w.waitng.Store(true)
			for int(w.done.Load()) != parts {
				<-w.doneCh // a stale signal only makes us look again
			}
			w.waitng.Store(false)
			break
		}
	}
	w.task = nil
}

// claim runs parts of generation g until none are left (or a newer task is
// published), as slot.
func (w *poolWorkers) claim(g uint64, slot int) {
	for {
		s := w.state.Load()
		if stateGen(s) != g {
			return
		}
		parts, next := int(s>>8&0xff), int(s&0xff)
		if next >= parts {
			return
		}
		if !w.state.CompareAndSwap(s, s+1) {
			continue
		}
		// The claim keeps the task current: the caller waits for this
		// part before it publishes another.
		w.task.Part(next, parts, slot)
		if int(w.done.Add(1)) == parts && w.waitng.Load() {
			select {
			case w.doneCh <- struct{}{}:
			default:
			}
		}
	}
}

// loop is worker i's life: wait for a new generation, claim its parts,
// repeat; spin briefly, then park.
func (w *poolWorkers) loop(i int) {
	defer w.wg.Done()
	var seen uint64 // generation 0 is no task
	for {
		g := stateGen(w.state.Load())
		if g == seen {
			start := time.Now()
			for spins := 0; ; spins++ {
				if g = stateGen(w.state.Load()); g != seen || w.closed.Load() {
					break
				}
				if spins&63 == 63 {
					if time.Since(start) > spinFor {
						w.asleep[i-1].Store(true)
						if g = stateGen(w.state.Load()); g == seen && !w.closed.Load() {
							<-w.wake[i-1]
						}
						w.asleep[i-1].Store(false)
						start = time.Now()
					} else {
						runtime.Gosched()
					}
				}
			}
		}
		if g == seen { // closed
			return
		}
		seen = g
		w.claim(g, i)
	}
}
