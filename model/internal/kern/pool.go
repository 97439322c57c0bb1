package kern

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a statically partitioned piece of work: Part(t, n) does part t of
// n. Parts must write disjoint memory and must not depend on which
// goroutine runs them or in which order.
type Task interface {
	Part(t, n int)
}

// spinFor is how long an idle worker (or a caller waiting for its workers)
// polls before it parks on a channel: long enough to cover the gap between
// two parallel ops of one Run, short enough that workers are parked between
// runs.
const spinFor = 50 * time.Microsecond

// Pool is a fixed set of Threads()-1 parked worker goroutines that, together
// with the calling goroutine, run the parts of one [Task] at a time. Nothing
// is started or allocated per task: the caller publishes the task, wakes the
// workers and runs part 0 itself.
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
	gen    atomic.Uint64 // bumped once per task
	left   atomic.Int32  // parts still running on workers
	task   Task
	parts  int
	wake   []chan struct{} // per worker, buffered 1
	asleep []atomic.Bool   // per worker: parked on wake
	done   chan struct{}   // buffered 1: the last worker's signal to a parked caller
	waitng atomic.Bool     // the caller is parked on done
	wg     sync.WaitGroup
	conv   convTask // Conv.Forward's task, used under mu
}

// NewPool starts threads-1 workers (threads is clamped to [1, 64]). With
// threads ≤ 1 it starts none and every task runs on the caller.
func NewPool(threads int) *Pool {
	threads = clampThreads(threads)
	p := &Pool{n: threads, w: &poolWorkers{}}
	w := p.w
	w.wake = make([]chan struct{}, threads-1)
	w.asleep = make([]atomic.Bool, threads-1)
	w.done = make(chan struct{}, 1)
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

// Run runs task.Part(t, parts) for t in [0, parts) and returns when all
// are done; parts is clamped to [1, Threads()]. Part 0 runs on the caller.
func (p *Pool) Run(task Task, parts int) {
	parts = max(1, min(parts, p.Threads()))
	if parts == 1 || !p.w.mu.TryLock() {
		for t := range parts {
			task.Part(t, parts)
		}
		return
	}
	p.w.run(task, parts)
	p.w.mu.Unlock()
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

// run publishes task to workers 1..parts-1, runs part 0 and waits. Called
// with mu held.
func (w *poolWorkers) run(task Task, parts int) {
	if w.closed.Load() {
		for t := range parts {
			task.Part(t, parts)
		}
		return
	}
	w.task, w.parts = task, parts
	// Every worker takes part in every task (those past parts-1 only
	// check in), so none can still be reading task when it changes.
	nw := len(w.wake)
	w.left.Store(int32(nw))
	w.gen.Add(1)
	for i := 0; i < nw; i++ {
		if w.asleep[i].Load() {
			select {
			case w.wake[i] <- struct{}{}:
			default:
			}
		}
	}
	task.Part(0, parts)
	start := time.Now()
	for spins := 0; w.left.Load() != 0; spins++ {
		if spins&63 == 63 && time.Since(start) > spinFor {
			w.waitng.Store(true)
			for w.left.Load() != 0 {
				<-w.done // a stale signal only makes us look again
			}
			w.waitng.Store(false)
			break
		}
	}
	w.task = nil
}

// loop is worker i's life: wait for a new generation, run part i if the task
// has one, repeat; spin briefly, then park.
func (w *poolWorkers) loop(i int) {
	defer w.wg.Done()
	var seen uint64 // gen is 0 until the first task, which may precede this line
	for {
		g := w.gen.Load()
		if g == seen {
			start := time.Now()
			for spins := 0; ; spins++ {
				if g = w.gen.Load(); g != seen || w.closed.Load() {
					break
				}
				if spins&63 == 63 {
					if time.Since(start) > spinFor {
						w.asleep[i-1].Store(true)
						if g = w.gen.Load(); g == seen && !w.closed.Load() {
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
		if w.closed.Load() && g == seen {
			return
		}
		seen = g
		if i < w.parts {
			w.task.Part(i, w.parts)
		}
		if w.left.Add(-1) == 0 && w.waitng.Load() {
			select {
			case w.done <- struct{}{}:
			default:
			}
		}
	}
}
