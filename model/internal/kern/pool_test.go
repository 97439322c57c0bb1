package kern

import (
	"sync"
	"sync/atomic"
	"testing"
)

var (
	testPoolsMu sync.Mutex
	testPools   = map[int]*Pool{}
)

// testPool returns a shared Pool of the given size, kept for the test
// binary's life.
func testPool(threads int) *Pool {
	testPoolsMu.Lock()
	defer testPoolsMu.Unlock()
	p, ok := testPools[threads]
	if !ok {
		p = NewPool(threads)
		testPools[threads] = p
	}
	return p
}

type countTask struct {
	hits [maxThreads]atomic.Int32
	n    atomic.Int32
}

func (c *countTask) Part(t, n int) {
	c.hits[t].Add(1)
	c.n.Store(int32(n))
}

func TestPoolRunsEveryPartOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		for parts := 1; parts <= threads+1; parts++ {
			for range 200 {
				var c countTask
				p.Run(&c, parts)
				want := min(parts, threads)
				if int(c.n.Load()) != want {
					t.Fatalf("threads=%d parts=%d: Part saw n=%d, want %d", threads, parts, c.n.Load(), want)
				}
				for i := range maxThreads {
					if h, w := c.hits[i].Load(), int32(0); i < want && h != 1 || i >= want && h != w {
						t.Fatalf("threads=%d parts=%d: part %d ran %d times", threads, parts, i, h)
					}
				}
			}
		}
		p.Close()
		p.Close()
		var c countTask
		p.Run(&c, threads) // closed: everything on the caller
		if c.n.Load() != 1 || c.hits[0].Load() != 1 {
			t.Fatalf("closed pool: n=%d hits[0]=%d", c.n.Load(), c.hits[0].Load())
		}
	}
}

// nestTask starts a task from inside a part: the busy pool runs it inline.
type nestTask struct {
	p     *Pool
	inner countTask
}

func (n *nestTask) Part(t, _ int) {
	if t == 0 {
		n.p.Run(&n.inner, 2)
	}
}

func TestPoolBusyRunsInline(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	var n nestTask
	n.p = p
	p.Run(&n, 2)
	if n.inner.hits[0].Load() != 1 || n.inner.hits[1].Load() != 1 {
		t.Fatalf("nested task parts ran %d, %d times", n.inner.hits[0].Load(), n.inner.hits[1].Load())
	}
	// Many goroutines sharing one pool.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				var c countTask
				p.Run(&c, 2)
				if c.hits[0].Load() != 1 || c.hits[1].Load() != 1 {
					t.Errorf("parts ran %d, %d times", c.hits[0].Load(), c.hits[1].Load())
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestPoolRunAllocatesNothing(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	var c countTask
	if n := testing.AllocsPerRun(100, func() { p.Run(&c, 2) }); n != 0 {
		t.Fatalf("Run allocates %v times", n)
	}
}

type nopTask struct{}

func (nopTask) Part(int, int) {}

// BenchmarkPoolRun is the fixed cost of handing one empty task to a
// 2-thread pool: what a parallel op must save to pay for itself.
func BenchmarkPoolRun(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	var t nopTask
	for b.Loop() {
		p.Run(t, 2)
	}
}
