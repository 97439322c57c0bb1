package model

import "github.com/edgesplit/edgesplit/model/internal/kern"

// Pool is a fixed set of parked worker goroutines that a Net's kernels split
// their work across (see Options.Pool). Each parallel op is partitioned
// statically — output channels, GEMM column blocks or row panels — so
// results are bit-identical for any thread count, and nothing is started or
// allocated per op.
//
// A Pool runs one op at a time; an op that finds it busy (another
// Extractor's, on any Net sharing it) runs on its own goroutine instead, so
// sharing a Pool is always safe, just not always parallel. A Pool is safe for
// concurrent use.
type Pool struct{ p *kern.Pool }

// NewPool starts a pool of threads goroutines, the caller's included
// (threads-1 workers; threads is clamped to [1, 64]). Close it when done.
func NewPool(threads int) *Pool { return &Pool{p: kern.NewPool(threads)} }

// Threads is the pool's thread count, the caller included: 1 once closed.
func (p *Pool) Threads() int { return p.p.Threads() }

// Close stops the workers and waits for them. It is safe to call twice;
// Nets using a closed Pool run single-threaded.
func (p *Pool) Close() error {
	p.p.Close()
	return nil
}
