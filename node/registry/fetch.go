package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ChunkSource is a peer that holds a version and serves its chunks (a node
// over the cluster transport). Chunk returns the plain bytes of chunk i; a
// wrong chunk is caught by the Download.
type ChunkSource interface {
	// Name identifies the source in errors and logs.
	Name() string
	Chunk(ctx context.Context, name string, v Version, i int) ([]byte, error)
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Parallel is how many chunks are in flight at once (default 4): the
	// memory a fetch holds is Parallel chunks.
	Parallel int
	// Attempts is how many sources a chunk is tried from before Fetch
	// gives up (default 3 × the number of sources).
	Attempts int
	// Progress, when set, is called after each chunk with the chunks done
	// and the total.
	Progress func(done, total int)
}

// ErrNoSource is returned when every source failed or was dropped.
var ErrNoSource = errors.New("registry: no source could serve the version")

// Fetch downloads e into s from sources, resuming a partial download and
// spreading chunks over the sources round-robin. A source that sends a
// chunk failing its digest is dropped for the rest of the fetch; one that
// errors is tried again only after the others. The version is committed
// (and checked whole) when every chunk is in; on error the chunks written
// so far stay for a later Fetch to resume.
func Fetch(ctx context.Context, s *Store, e Entry, sources []ChunkSource, opts FetchOptions) (Entry, error) {
	d, err := s.Begin(e)
	if err != nil {
		return Entry{}, err
	}
	missing := d.Missing()
	if len(missing) == 0 {
		return d.Commit()
	}
	if len(sources) == 0 {
		d.Abort()
		return Entry{}, fmt.Errorf("%w: %s@%s: no sources given", ErrNoSource, e.Name, e.Version.Short())
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3 * len(sources)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu      sync.Mutex // guards the fields below and d
		bad     = make([]bool, len(sources))
		fails   = make([]int, len(sources))
		next    int // round-robin start
		done    = len(e.Chunks) - len(missing)
		lastErr error
	)
	// pick returns the usable source with the fewest failures, starting
	// the search at the round-robin position.
	pick := func() int {
		best := -1
		for j := range sources {
			k := (next + j) % len(sources)
			if !bad[k] && (best < 0 || fails[k] < fails[best]) {
				best = k
			}
		}
		next++
		return best
	}
	jobs := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(opts.Parallel, len(missing)) {
		wg.Go(func() {
			for i := range jobs {
				if err := fetchChunk(ctx, d, e, i, sources, opts.Attempts, &mu, pick, bad, fails, &lastErr); err != nil {
					select {
					case errc <- err:
					default:
					}
					cancel()
					continue
				}
				mu.Lock()
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(e.Chunks))
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, i := range missing {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		d.Abort()
		return Entry{}, err
	default:
	}
	if err := ctx.Err(); err != nil {
		d.Abort()
		return Entry{}, fmt.Errorf("registry: fetch %s@%s: %w", e.Name, e.Version.Short(), err)
	}
	return d.Commit()
}

func fetchChunk(ctx context.Context, d *Download, e Entry, i int, sources []ChunkSource, attempts int,
	mu *sync.Mutex, pick func() int, bad []bool, fails []int, lastErr *error) error {
	for a := 0; a < attempts; a++ {
		mu.Lock()
		k := pick()
		mu.Unlock()
		if k < 0 {
			break
		}
		data, err := sources[k].Chunk(ctx, e.Name, e.Version, i)
		if err == nil {
			mu.Lock()
			err = d.Write(i, data)
			mu.Unlock()
			if err == nil {
				return nil
			}
			if errors.Is(err, ErrBadChunk) {
				mu.Lock()
				bad[k] = true
				*lastErr = fmt.Errorf("%s: %w", sources[k].Name(), err)
				mu.Unlock()
				continue
			}
			return err // the local disk failed
		}
		if ctx.Err() != nil {
			return fmt.Errorf("registry: fetch %s@%s: %w", e.Name, e.Version.Short(), ctx.Err())
		}
		mu.Lock()
		fails[k]++
		*lastErr = fmt.Errorf("%s: %w", sources[k].Name(), err)
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	if *lastErr == nil {
		return fmt.Errorf("%w: %s@%s chunk %d: every source was dropped", ErrNoSource, e.Name, e.Version.Short(), i)
	}
	return fmt.Errorf("%w: %s@%s chunk %d after %d attempts: last error: %w", ErrNoSource, e.Name, e.Version.Short(), i, attempts, *lastErr)
}
