package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"gorgonia.org/tensor"
)

// TestLeavingCloudFinishesInFlight: a cloud shutting down gracefully (it
// announces its leave, then drains) finishes the segment an edge sent it
// before: the edge keeps its connection to a peer that left, instead of
// dropping it on the leave and failing the call.
func TestLeavingCloudFinishesInFlight(t *testing.T) {
	lc, m := startTestCluster(t, 1, "cloud-only")
	edge, cloud := lc.Edges[0], lc.Clouds[0]
	x := randInput(9, m.Graph.Inputs[0].Shape)
	if _, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
		t.Fatal(err)
	}
	release := cloud.HoldWorkers()
	type result struct {
		res *node.InferResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}})
		done <- result{res, err}
	}()
	waitUntil(t, 5*time.Second, "the segment to queue at the cloud", func() bool {
		return counterValue(t, cloud, "edgesplit_queue_depth", "", "") >= 1
	})
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- cloud.Shutdown(ctx)
	}()
	waitUntil(t, 5*time.Second, "the edge to see the cloud leave", func() bool {
		for _, p := range edge.Members() {
			if p.Name == cloud.Name() {
				return !p.Alive
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // the edge has handled the leave
	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("the request in flight failed: %v", r.err)
	}
	if r.res.Cloud != cloud.Name() || r.res.Fallback != "" {
		t.Errorf("answered by %q (fallback %q, errors %v), want the leaving cloud itself", r.res.Cloud, r.res.Fallback, r.res.Errors)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
