package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/scheduler"
)

// DefaultThroughputQueue is how many requests must wait for an edge worker
// before an edge plans for throughput (Config.ThroughputQueue).
const DefaultThroughputQueue = 2

// edgeWorkers are the edge device's compute slots (Config.EdgeWorkers): a
// head, or a model finished locally, runs only on a free one, as on a
// device with that many cores. With requests pipelined (the default) a
// request holds a slot only while it computes here, so the head of one runs
// while the tail of another is on the link or in a cloud; sequential
// requests hold it from their start to their answer.
type edgeWorkers struct {
	slots    chan struct{} // nil: no limit
	waiting  atomic.Int64  // requests waiting for a slot
	inFlight atomic.Int64  // requests under way on this edge
}

func newEdgeWorkers(n int) *edgeWorkers {
	w := &edgeWorkers{}
	if n > 0 {
		w.slots = make(chan struct{}, n)
	}
	return w
}

// acquire takes a slot (nothing without a limit), or fails when ctx ends
// first.
func (w *edgeWorkers) acquire(ctx context.Context) (release func(), err error) {
	if w.slots == nil {
		return func() {}, nil
	}
	select {
	case w.slots <- struct{}{}:
		return func() { <-w.slots }, nil
	default:
	}
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	select {
	case w.slots <- struct{}{}:
		return func() { <-w.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// enterEdge counts a request in flight and, for sequential requests, takes
// its worker (the wait goes to res.edgeWait); leave undoes both.
func (n *Node) enterEdge(ctx context.Context, m *Model, res *InferResult) (leave func(), err error) {
	n.edge.workers.inFlight.Add(1)
	held := time.Now()
	release, err := n.holdRequest(ctx)
	if err != nil {
		n.edge.workers.inFlight.Add(-1)
		return nil, fmt.Errorf("node: %s: waiting for the edge: %w", m.ID, err)
	}
	res.edgeWait = time.Since(held)
	return func() {
		release()
		n.edge.workers.inFlight.Add(-1)
	}, nil
}

// holdRequest takes a worker for a whole request when requests are not
// pipelined (Config.Sequential); otherwise it holds nothing.
func (n *Node) holdRequest(ctx context.Context) (release func(), err error) {
	if !n.cfg.Sequential {
		return func() {}, nil
	}
	return n.edge.workers.acquire(ctx)
}

// onEdge runs f, edge compute, on a worker of the edge device (pipelined
// requests take one for f only; sequential ones hold theirs already).
func onEdge[T any](ctx context.Context, n *Node, f func() (T, error)) (T, error) {
	if n.cfg.Sequential {
		return f()
	}
	release, err := n.edge.workers.acquire(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer release()
	return f()
}

// objective is what the edge's next plan minimises: the configured
// objective, or throughput (scheduler.ObjectiveThroughput) while the
// latency objective is configured and at least Config.ThroughputQueue
// requests wait for an edge worker — under that load the slowest stage of
// the pipeline, not the sum of the stages, bounds how fast requests are
// answered (DADS's heavy-load mode).
func (n *Node) objective() scheduler.Objective {
	q := n.cfg.ThroughputQueue
	if q == 0 {
		q = DefaultThroughputQueue
	}
	if n.cfg.Objective == scheduler.ObjectiveLatency && q > 0 && n.edge.workers.slots != nil &&
		n.edge.workers.waiting.Load() >= int64(q) {
		return scheduler.ObjectiveThroughput
	}
	return n.cfg.Objective
}

// runHeadOnEdge runs the plan's head on an edge worker (nothing to wait
// for when the head is empty or already computed), counting the wait.
func (n *Node) runHeadOnEdge(ctx context.Context, m *Model, p scheduler.Plan, inputs []*tensor.Dense, prev *headResult, res *InferResult) (*headResult, error) {
	set := headSet(p)
	if len(set) == 0 || prev != nil && prev.set == formatRanges(set) {
		return n.runHead(ctx, m, p, inputs, prev)
	}
	asked := time.Now()
	return onEdge(ctx, n, func() (*headResult, error) {
		res.edgeWait += time.Since(asked)
		return n.runHead(ctx, m, p, inputs, prev)
	})
}

// runLocalOnEdge finishes the model here on an edge worker.
func (n *Node) runLocalOnEdge(ctx context.Context, m *Model, inputs []*tensor.Dense, h *headResult, res *InferResult) error {
	asked := time.Now()
	_, err := onEdge(ctx, n, func() (struct{}, error) {
		res.edgeWait += time.Since(asked)
		return struct{}{}, n.runLocal(ctx, m, inputs, h, res)
	})
	return err
}
