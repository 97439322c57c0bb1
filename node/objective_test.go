package node_test

import (
	"context"
	"testing"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/scheduler"
	"gorgonia.org/tensor"
)

// TestEnergyObjective: two edges on the same slow device and LTE radio, one
// minimising latency and one the device's energy. With a processor that
// costs almost nothing and a radio that costs a lot, the latency edge
// offloads and the energy edge keeps the model home; both report their
// plan's predicted energy, and the energy edge's is the lower.
func TestEnergyObjective(t *testing.T) {
	m := testModel(t)
	radio, _ := scheduler.RadioFor("lte")
	power := scheduler.PowerModel{ComputeW: 0.01, Radio: radio}
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 2, Clouds: 1, Models: []*node.Model{m}, Policy: "auto", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		EdgeDevice: node.Device{Name: "slow", Slowdown: 400},
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			c.Power = power
			if c.Name == "edge-2" {
				c.Objective = scheduler.ObjectiveEnergy
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	x := randInput(4, m.Graph.Inputs[0].Shape)
	var plans [2]scheduler.Plan
	for i, e := range lc.Edges {
		var res *node.InferResult
		for range 3 { // past auto's first decision
			if res, err = e.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
				t.Fatal(err)
			}
		}
		plans[i] = res.Plan
		t.Logf("%s (%s): %s, %.1f mJ predicted", e.Name(), []string{"latency", "energy"}[i], res.Plan.Summary(), 1e3*res.Plan.Energy.Total)
	}
	if plans[0].EdgeOnly() {
		t.Errorf("the latency edge kept a 400× slower device's work home: %v", plans[0])
	}
	if !plans[1].EdgeOnly() {
		t.Errorf("the energy edge offloaded over a costly radio: %v", plans[1])
	}
	if !(plans[1].Energy.Total < plans[0].Energy.Total) || plans[0].Energy.Total == 0 {
		t.Errorf("energy: %v J (energy objective) vs %v J (latency objective)", plans[1].Energy.Total, plans[0].Energy.Total)
	}
}
