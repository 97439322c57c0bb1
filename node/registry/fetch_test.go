package registry

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// storeSource serves chunks from a Store, optionally misbehaving.
type storeSource struct {
	name    string
	s       *Store
	corrupt bool         // flips a byte of every chunk
	failN   atomic.Int64 // fail this many requests first
	served  atomic.Int64
	block   chan struct{} // when set, Chunk waits for it (or ctx)
}

func (src *storeSource) Name() string { return src.name }

func (src *storeSource) Chunk(ctx context.Context, name string, v Version, i int) ([]byte, error) {
	if src.block != nil {
		select {
		case <-src.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if src.failN.Add(-1) >= 0 {
		return nil, fmt.Errorf("%s: connection reset", src.name)
	}
	c, err := src.s.ReadChunk(name, v, i, nil)
	if err != nil {
		return nil, err
	}
	if src.corrupt {
		c[len(c)/2] ^= 0x40
	}
	src.served.Add(1)
	return c, nil
}

func TestFetch(t *testing.T) {
	origin, _ := Open(t.TempDir(), Options{})
	model := randBytes(6*ChunkSize+99, 5)
	e, _ := origin.Put("rec", model, nil)
	liar := &storeSource{name: "liar", s: origin, corrupt: true}
	flaky := &storeSource{name: "flaky", s: origin}
	flaky.failN.Store(3)
	good := &storeSource{name: "good", s: origin}
	dst, _ := Open(t.TempDir(), Options{Key: key()})
	var progress []int
	got, err := Fetch(context.Background(), dst, e, []ChunkSource{liar, flaky, good}, FetchOptions{Parallel: 3,
		Progress: func(done, total int) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dst.Read("rec", got.Version)
	if err != nil || string(m) != string(model) {
		t.Fatalf("fetched version: %v", err)
	}
	if liar.served.Load() > 3 {
		t.Errorf("the source that sent bad chunks served %d (it must be dropped after its first)", liar.served.Load())
	}
	if len(progress) != 7 || progress[len(progress)-1] != 7 {
		t.Errorf("progress %v", progress)
	}
	t.Logf("served: liar %d (dropped), flaky %d, good %d", liar.served.Load(), flaky.served.Load(), good.served.Load())
}

func TestFetchFailures(t *testing.T) {
	origin, _ := Open(t.TempDir(), Options{})
	e, _ := origin.Put("rec", randBytes(3*ChunkSize, 6), nil)
	dstDir := t.TempDir()
	dst, _ := Open(dstDir, Options{})
	// Every source lies: no source left.
	_, err := Fetch(context.Background(), dst, e, []ChunkSource{&storeSource{name: "a", s: origin, corrupt: true}, &storeSource{name: "b", s: origin, corrupt: true}}, FetchOptions{})
	if !errors.Is(err, ErrNoSource) {
		t.Fatalf("all sources corrupt: %v, want ErrNoSource", err)
	}
	if _, err := Fetch(context.Background(), dst, e, nil, FetchOptions{}); !errors.Is(err, ErrNoSource) {
		t.Errorf("no sources: %v", err)
	}
	// A cancelled fetch keeps what it had; the next one resumes.
	slow := &storeSource{name: "slow", s: origin, block: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err = Fetch(ctx, dst, e, []ChunkSource{slow}, FetchOptions{Parallel: 1, Progress: func(done, _ int) {
			if done == 1 {
				cancel()
			}
		}})
	})
	slow.block <- struct{}{} // one chunk, then the cancel
	wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("cancelled fetch: %v", err)
	}
	dst2, _ := Open(dstDir, Options{})
	d, _ := dst2.Begin(e)
	if n := len(d.Missing()); n != 2 {
		t.Fatalf("after the cancel %d chunks missing, want 2", n)
	}
	d.Abort()
	fresh := &storeSource{name: "fresh", s: origin}
	if _, err := Fetch(context.Background(), dst2, e, []ChunkSource{fresh}, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if fresh.served.Load() != 2 {
		t.Errorf("the resumed fetch asked for %d chunks, want the 2 missing", fresh.served.Load())
	}
}

// BenchmarkFanOut pushes a 16 MiB version to one store and spreads it to 10
// more, each new holder serving the next ones (as nodes that learn the
// version by gossip do). It reports goodput and how much the heap grew
// over the ten fetches, in MiB (chunks in flight: 4 × 1 MiB per fetch).
func BenchmarkFanOut(b *testing.B) {
	const size = 16 << 20
	model := randBytes(size, 7)
	var ms0, ms1 runtime.MemStats
	for b.Loop() {
		b.StopTimer()
		root := b.TempDir()
		origin, _ := Open(root+"/0", Options{})
		e, _ := origin.Put("m", model, nil)
		holders := []ChunkSource{&storeSource{name: "n0", s: origin}}
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		b.StartTimer()
		for n := 1; n <= 10; n++ {
			s, _ := Open(fmt.Sprintf("%s/%d", root, n), Options{})
			if _, err := Fetch(context.Background(), s, e, holders, FetchOptions{}); err != nil {
				b.Fatal(err)
			}
			holders = append(holders, &storeSource{name: fmt.Sprint("n", n), s: s})
		}
		b.StopTimer()
		runtime.ReadMemStats(&ms1)
		b.StartTimer()
	}
	b.SetBytes(10 * size)
	b.ReportMetric((float64(ms1.HeapInuse)-float64(ms0.HeapInuse))/(1<<20), "heap-growth-MiB")
}
