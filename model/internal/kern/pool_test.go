package kern

import (
	"math"
	"math/rand/v2"
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
	hits [maxParts]atomic.Int32
	n    atomic.Int32
	bad  atomic.Int32 // slots out of range
	max  int
}

func (c *countTask) Part(t, n, slot int) {
	c.hits[t].Add(1)
	c.n.Store(int32(n))
	if slot < 0 || slot >= c.max {
		c.bad.Add(1)
	}
}

func TestPoolRunsEveryPartOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		for _, parts := range []int{1, 2, 3, 4, 9, 64, 255} {
			for range 200 {
				c := countTask{max: threads}
				p.Run(&c, parts)
				if int(c.n.Load()) != parts || c.bad.Load() != 0 {
					t.Fatalf("threads=%d parts=%d: Part saw n=%d, %d bad slots", threads, parts, c.n.Load(), c.bad.Load())
				}
				for i := range maxParts {
					if h := c.hits[i].Load(); i < parts && h != 1 || i >= parts && h != 0 {
						t.Fatalf("threads=%d parts=%d: part %d ran %d times", threads, parts, i, h)
					}
				}
			}
		}
		p.Close()
		p.Close()
		c := countTask{max: 1}
		p.Run(&c, 3) // closed: everything on the caller, slot 0
		if c.n.Load() != 3 || c.hits[2].Load() != 1 || c.bad.Load() != 0 {
			t.Fatalf("closed pool: n=%d hits[2]=%d bad=%d", c.n.Load(), c.hits[2].Load(), c.bad.Load())
		}
	}
}

// nestTask starts a task from inside a part: the busy pool runs it inline.
type nestTask struct {
	p     *Pool
	inner countTask
}

func (n *nestTask) Part(t, _, _ int) {
	if t == 0 {
		n.p.Run(&n.inner, 2)
	}
}

func TestPoolBusyRunsInline(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	n := nestTask{inner: countTask{max: 2}}
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
				c := countTask{max: 2}
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
	c := countTask{max: 2}
	if n := testing.AllocsPerRun(100, func() { p.Run(&c, 2) }); n != 0 {
		t.Fatalf("Run allocates %v times", n)
	}
}

type nopTask struct{}

func (nopTask) Part(int, int, int) {}

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

// TestSgemmOnMatchesSgemm: the column split of fully connected products
// gives Sgemm's bits, and allocates nothing.
func TestSgemmOnMatchesSgemm(t *testing.T) {
	defer func(old int) { MinParallelWork = old }(MinParallelWork)
	MinParallelWork = 0
	r := rand.New(rand.NewPCG(4, 4))
	for _, d := range []struct{ m, n, k int }{{1, 1000, 1280}, {2, 37, 19}, {16, 130, 64}, {1, 2, 1}, {17, 40, 30}} {
		a, b := randSlice(r, d.m*d.k), randSlice(r, d.n*d.k)
		want, got := make([]float32, d.m*d.n), make([]float32, d.m*d.n)
		Sgemm(false, true, d.m, d.n, d.k, a, d.k, b, d.k, want, d.n, false)
		for _, threads := range []int{2, 3} {
			SgemmOn(testPool(threads), false, true, d.m, d.n, d.k, a, d.k, b, d.k, got, d.n, false)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v threads=%d: element %d is %v, want %v", d, threads, i, got[i], want[i])
				}
			}
		}
		if n := testing.AllocsPerRun(10, func() {
			SgemmOn(testPool(2), false, true, d.m, d.n, d.k, a, d.k, b, d.k, got, d.n, false)
		}); n != 0 && !raceEnabled {
			t.Errorf("%+v: SgemmOn allocates %v times", d, n)
		}
	}
}
