package node_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"gorgonia.org/tensor"
)

// throughputMode is one way an edge with one worker takes a load.
type throughputMode struct {
	name       string
	policy     string
	sequential bool
	queue      int // Config.ThroughputQueue
}

var throughputModes = []throughputMode{
	{"sequential, fixed:3", "fixed:3", true, -1},
	{"pipelined, fixed:3", "fixed:3", false, -1},
	{"pipelined, auto (latency)", "auto", false, -1},
	{"pipelined, auto (throughput under load)", "auto", false, 0},
}

// throughputRun is what one mode achieved.
type throughputRun struct {
	answers    int
	perSecond  float64
	objectives map[string]int
	cuts       map[int]int
}

// runThroughputMode loads an edge (a device 100× slower than this
// machine, one worker, a 50 Mbit/s link with 5 ms each way) with clients
// concurrent requests for d.
func runThroughputMode(tb testing.TB, mode throughputMode, clients int, d time.Duration) throughputRun {
	tb.Helper()
	m := testModel(tb)
	link := linkem.LinkSettings{Rate: 50e6, Delay: 5 * time.Millisecond}
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: mode.policy,
		EdgeDevice: node.Device{Name: "slow", Slowdown: 100}, Uplink: link, Downlink: link,
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) {
			c.ProfileRuns = 3
			c.Hedge = -1
			c.Workers = 2
			if c.Role == node.RoleEdge {
				c.EdgeWorkers, c.Sequential, c.ThroughputQueue = 1, mode.sequential, mode.queue
			}
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer lc.Kill()
	edge := lc.Edges[0]
	x := randInput(3, m.Graph.Inputs[0].Shape)
	want := node.Argmax(localRun(tb, m, x))
	// Warm up: every plan's pieces compiled, the link learned.
	for range 20 {
		if _, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
			tb.Fatal(err)
		}
	}
	run := throughputRun{objectives: map[string]int{}, cuts: map[int]int{}}
	var mu sync.Mutex
	var n atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
				if err != nil {
					tb.Error(err)
					return
				}
				if res.Class != want {
					tb.Errorf("class %d, want %d", res.Class, want)
				}
				n.Add(1)
				mu.Lock()
				run.objectives[res.Objective]++
				run.cuts[res.Cut]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	run.answers = int(n.Load())
	run.perSecond = float64(run.answers) / d.Seconds()
	return run
}

// TestThroughputModes: with one edge worker, sequential requests never
// plan for throughput, and under a queue an edge left to switch plans some
// requests for throughput (offloading more) while one told never to
// switch plans none; every answer stays the model's.
func TestThroughputModes(t *testing.T) {
	if testing.Short() {
		t.Skip("load on an emulated cluster")
	}
	for _, mode := range throughputModes {
		r := runThroughputMode(t, mode, 6, 1500*time.Millisecond)
		t.Logf("%-42s %6.1f req/s  objectives %v  cuts %v", mode.name, r.perSecond, r.objectives, r.cuts)
		switched := r.objectives["throughput"]
		if mode.queue < 0 && switched != 0 {
			t.Errorf("%s: %d plans for throughput with the switch off", mode.name, switched)
		}
		if mode.queue == 0 && switched == 0 {
			t.Errorf("%s: no plan for throughput under a queue of 6 clients", mode.name)
		}
	}
}

// BenchmarkThroughputModes reports each mode's requests per second under
// 6 concurrent clients, and the ratios that matter: pipelined ÷ sequential
// on the same plan, and auto planning for throughput under load ÷ auto
// planning for latency.
func BenchmarkThroughputModes(b *testing.B) {
	rates := make([]float64, len(throughputModes))
	for range b.N {
		for i, mode := range throughputModes {
			rates[i] += runThroughputMode(b, mode, 6, 3*time.Second).perSecond / float64(b.N)
		}
	}
	names := []string{"seq-fixed3", "pipe-fixed3", "pipe-auto-latency", "pipe-auto-throughput"}
	for i, r := range rates {
		b.ReportMetric(r, names[i]+"-req/s")
	}
	b.ReportMetric(rates[1]/rates[0], "pipelined/sequential")
	b.ReportMetric(rates[3]/rates[2], "throughput/latency")
}
