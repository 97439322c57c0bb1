package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"gorgonia.org/tensor"
)

// TestHedgeOvertakesStuckCloud: the cloud a cloud-only plan uses stops
// running segments (its workers held, as if SIGSTOPped). The edge hedges
// to the other cloud once the first has taken twice its prediction: the
// request is answered by the second cloud, well before the first call's
// own deadline, and the stuck cloud is not banned (slow is not failed).
// It is suspected instead: the requests that follow go to the other cloud
// at once, without waiting the hedge delay on the stuck one, as long as
// the suspicion lasts.
func TestHedgeOvertakesStuckCloud(t *testing.T) {
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 2, Models: []*node.Model{m}, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge := lc.Edges[0]
	x := randInput(8, m.Graph.Inputs[0].Shape)
	var res *node.InferResult
	for range 3 {
		if res, err = edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
			t.Fatal(err)
		}
	}
	// The cloud the next request will be planned on is the one to stick.
	plan, err := edge.Plan(context.Background(), m.ID, "")
	if err != nil || plan.Cloud == "" {
		t.Fatalf("plan: %v %v", plan, err)
	}
	stuckName := plan.Cloud
	var stuck *node.Node
	for _, c := range lc.Clouds {
		if c.Name() == stuckName {
			stuck = c
		}
	}
	release := stuck.HoldWorkers()
	defer release()
	start := time.Now()
	res, err = edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cloud == "" || res.Cloud == stuckName || res.Fallback != "" {
		t.Fatalf("answered by %q (fallback %q, errors %v) while %s was stuck; want the other cloud, no fallback", res.Cloud, res.Fallback, res.Errors, stuckName)
	}
	if limit := 3*res.Predicted + 500*time.Millisecond; took >= limit {
		t.Errorf("took %v: no sooner than the stuck call's own deadline %v", took, limit)
	}
	if edge.Banned(stuckName) {
		t.Errorf("the slow cloud %s was banned", stuckName)
	}
	if n := counterValue(t, edge, "edgesplit_hedged_offloads_total", "winner", "backup"); n != 1 {
		t.Errorf("%v backup hedges counted, want 1", n)
	}
	t.Logf("stuck %s; answered by %s in %v (predicted %v)", stuckName, res.Cloud, took, res.Predicted)
	if !edge.Suspected(stuckName) {
		t.Errorf("the overtaken cloud %s is not suspected", stuckName)
	}
	in, err := edge.Inputs(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range in.Clouds {
		if c.Unavailable != (c.ID == stuckName) {
			t.Errorf("after the hedge the scheduler sees %s unavailable=%v, want %v", c.ID, c.Unavailable, c.ID == stuckName)
		}
	}
	for i := range 5 {
		start := time.Now()
		res, err = edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Cloud == stuckName || res.Fallback != "" {
			t.Errorf("request %d after the hedge: answered by %q (fallback %q), want the other cloud planned at once", i, res.Cloud, res.Fallback)
		}
		t.Logf("request %d after the hedge: %s in %v", i, res.Cloud, time.Since(start))
	}
	if n := counterValue(t, edge, "edgesplit_hedged_offloads_total", "winner", "backup"); n != 1 {
		t.Errorf("%v backup hedges counted after the requests that followed, want still 1 (none planned on the suspect)", n)
	}
}
