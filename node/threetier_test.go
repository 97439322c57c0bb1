package node_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"gorgonia.org/tensor"
)

// threeTierRun is what one cluster configuration measured.
type threeTierRun struct {
	median time.Duration
	plans  map[string]int // "via→cloud" or the two-tier target
	cuts   map[[2]int]int
}

// runThreeTier starts a device (40× slower than this machine, a 200 Mbit/s
// LAN), an edge server (10× slower, on the LAN) and a cloud (this machine,
// behind a 30 Mbit/s WAN with 15 ms each way: the device's traffic to it
// crosses both links) with AlexNet, and measures requests after a warm-up.
// tiers is the device's Config.Tiers.
func runThreeTier(tb testing.TB, tiers, requests int) threeTierRun {
	tb.Helper()
	m, err := node.NewModel("alexnet", "", zoo.AlexNet(1), nil)
	if err != nil {
		tb.Fatal(err)
	}
	lan := linkem.LinkSettings{Rate: 200e6, Delay: time.Millisecond}
	wan := linkem.LinkSettings{Rate: 30e6, Delay: 15 * time.Millisecond}
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, EdgeServers: 1, Models: []*node.Model{m}, Policy: "auto", Codecs: []string{"lossless"},
		EdgeDevice: node.Device{Name: "slow", Slowdown: 40}, Uplink: lan, Downlink: lan,
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			c.Hedge = -1
			switch c.Role {
			case node.RoleEdgeServer:
				c.Device = node.Device{Name: "edge-box", Slowdown: 10}
			case node.RoleCloud:
				c.Uplink, c.Downlink = wan, wan
			case node.RoleEdge:
				c.Tiers = tiers
			}
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer lc.Kill()
	edge := lc.Edges[0]
	x := randInput(11, m.Graph.Inputs[0].Shape)
	want := node.Argmax(localRun(tb, m, x))
	// The server must gossip its hop to the cloud; the device must learn
	// its links (forced plans through each first, then auto settles).
	deadline := time.Now().Add(10 * time.Second)
	for tiers != 2 && time.Now().Before(deadline) {
		var hops []node.Hop
		for _, p := range edge.Members() {
			if p.Name == lc.Servers[0].Name() {
				hops = p.Meta.Hops
			}
		}
		if len(hops) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pol := range []string{"cloud-only", "fixed:3", "auto", "auto", "auto", "auto", "auto", "auto", "auto", "auto", "auto", "auto"} {
		if _, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: pol}); err != nil {
			tb.Fatal(err)
		}
	}
	run := threeTierRun{plans: map[string]int{}, cuts: map[[2]int]int{}}
	var lat []time.Duration
	for range requests {
		start := time.Now()
		res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
		if err != nil {
			tb.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		if res.Class != want {
			tb.Errorf("class %d, want %d", res.Class, want)
		}
		key := res.Cloud
		if res.Via != "" {
			key = res.Via + "→" + res.Cloud
		}
		if key == "" {
			key = "edge-only"
		}
		run.plans[key]++
		run.cuts[[2]int{res.Cut, res.Cut2}]++
	}
	slices.Sort(lat)
	run.median = lat[len(lat)/2]
	return run
}

// BenchmarkThreeTier reports the median latency with three tiers allowed
// and with two only, and their ratio, on the cluster of runThreeTier.
func BenchmarkThreeTier(b *testing.B) {
	var r3, r2 time.Duration
	for range b.N {
		r3 += runThreeTier(b, 3, 20).median / time.Duration(b.N)
		r2 += runThreeTier(b, 2, 20).median / time.Duration(b.N)
	}
	b.ReportMetric(float64(r3.Microseconds())/1e3, "three-tier-ms")
	b.ReportMetric(float64(r2.Microseconds())/1e3, "two-tier-ms")
	b.ReportMetric(float64(r2)/float64(r3), "two/three")
}
