package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"gorgonia.org/tensor"
)

func testModel(t testing.TB) *node.Model {
	t.Helper()
	m, err := node.NewModel("lenet5", "", zoo.LeNet5(7), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randInput(seed uint64, shape []int) *tensor.Dense { return model.UniformTensor(shape, seed) }

func localRun(t testing.TB, m *node.Model, x *tensor.Dense) []float32 {
	t.Helper()
	net, err := model.Compile(m.Graph, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := net.NewExtractor().Run(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(outs[len(outs)-1].Data().([]float32))
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// counterValue sums the samples of the counter (or gauge) family name in
// n's metrics registry whose labels include label=value ("" matches every sample).
func counterValue(t testing.TB, n *node.Node, name, label, value string) float64 {
	t.Helper()
	fams, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// segmentsServed is how many segments cloud c has run to completion for
// edges (edgesplit_segments_served_total{code="ok"}).
func segmentsServed(t testing.TB, c *node.Node) int {
	return int(counterValue(t, c, "edgesplit_segments_served_total", "code", "ok"))
}

// servedByCloud maps each cloud of lc to segmentsServed.
func servedByCloud(t testing.TB, lc *cluster.Local) map[string]int {
	m := map[string]int{}
	for _, c := range lc.Clouds {
		m[c.Name()] = segmentsServed(t, c)
	}
	return m
}

func startTestCluster(t *testing.T, clouds int, policy string) (*cluster.Local, *node.Model) {
	t.Helper()
	m := testModel(t)
	ctx := context.Background()
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: clouds, Models: []*node.Model{m},
		EdgeDevice: node.Device{Name: "slow", Slowdown: 4}, Policy: policy,
		GossipKey: []byte("0123456789abcdef"),
		Logger:    quietLogger(),
		// No hedging: these tests count the segments each cloud ran.
		Tune: func(c *node.Config) { c.ProfileRuns = 3; c.BanBase = 2 * time.Second; c.Hedge = -1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	return lc, m
}

func TestSplitInferenceMatchesLocal(t *testing.T) {
	lc, m := startTestCluster(t, 2, "auto")
	edge := lc.Edges[0]
	x := randInput(1, m.Graph.Inputs[0].Shape)
	want := localRun(t, m, x)
	ctx := context.Background()
	offloaded := 0
	for _, pol := range []string{"cloud-only", "fixed:3", "neurosurgeon", "dads", "edge-only", "auto"} {
		before := servedByCloud(t, lc)
		res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: pol, Codec: "lossless"})
		if err != nil {
			t.Fatalf("%s: %v", pol, err)
		}
		got := res.Outputs[len(res.Outputs)-1].Data().([]float32)
		if !slices.Equal(got, want) {
			t.Errorf("%s (cut %d on %q): output %v, local %v", pol, res.Cut, res.Cloud, got, want)
		}
		// A cloud counts a segment just after sending its answer: give the
		// count a moment to land.
		var after map[string]int
		for wait := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
			after = servedByCloud(t, lc)
			if res.Cloud == "" || after[res.Cloud] > before[res.Cloud] || time.Now().After(wait) {
				break
			}
		}
		t.Logf("%-12s cut=%d cloud=%s bytes=%d predicted=%v measured=%v", pol, res.Cut, res.Cloud, res.BytesSent, res.Predicted, res.Measured.Total)
		// What the result claims ran where must be what the clouds did:
		// an offloaded plan sent bytes and its cloud (only) ran one
		// segment; an edge-only one touched no cloud.
		for _, c := range lc.Clouds {
			wantRuns := 0
			if c.Name() == res.Cloud {
				wantRuns = 1
			}
			if d := after[c.Name()] - before[c.Name()]; d != wantRuns {
				t.Errorf("%s (cut %d on %q): %s ran %d segments, want %d", pol, res.Cut, res.Cloud, c.Name(), d, wantRuns)
			}
		}
		if res.Cloud != "" {
			offloaded++
			if res.BytesSent == 0 || res.Cut >= m.Nodes() || res.Fallback != "" {
				t.Errorf("%s: offloaded to %q at cut %d sending %d bytes (fallback %q)", pol, res.Cloud, res.Cut, res.BytesSent, res.Fallback)
			}
		} else if res.Cut != m.Nodes() || res.BytesSent != 0 {
			t.Errorf("%s: no cloud, but cut %d of %d and %d bytes sent", pol, res.Cut, m.Nodes(), res.BytesSent)
		}
		switch pol {
		case "cloud-only":
			if res.Cloud == "" || res.Cut != 0 {
				t.Errorf("cloud-only: ran cut %d on %q", res.Cut, res.Cloud)
			}
		case "fixed:3": // the split path proper: head here, tail on a cloud
			if res.Cloud == "" || res.Cut != 3 {
				t.Errorf("fixed:3 ran cut %d on %q", res.Cut, res.Cloud)
			}
		case "edge-only":
			if res.Cloud != "" {
				t.Errorf("edge-only offloaded to %q", res.Cloud)
			}
		}
	}
	if offloaded < 2 {
		t.Errorf("%d requests offloaded, want at least cloud-only and fixed:3", offloaded)
	}
	// A lossy codec on an uncalibrated model is refused as a client error
	// naming why (TestCalibratedLossyCodec runs one that is calibrated).
	_, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: "fixed:2", Codec: "int8"})
	if !errors.Is(err, node.ErrBadRequest) || !strings.Contains(err.Error(), "calibration") {
		t.Errorf("uncalibrated int8: %v, want ErrBadRequest naming the calibration", err)
	}
}

func TestCloudFailureFallsBack(t *testing.T) {
	lc, m := startTestCluster(t, 2, "cloud-only")
	edge := lc.Edges[0]
	x := randInput(2, m.Graph.Inputs[0].Shape)
	want := localRun(t, m, x)
	ctx := context.Background()
	res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Codec: "lossless"})
	if err != nil {
		t.Fatal(err)
	}
	// Kill the cloud that served the request; the next requests must still
	// be answered, correctly, by the other cloud or locally.
	for _, c := range lc.Clouds {
		if c.Name() == res.Cloud {
			c.Kill()
		}
	}
	for i := range 5 {
		res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Codec: "lossless"})
		if err != nil {
			t.Fatalf("request %d after the kill: %v", i, err)
		}
		if got := res.Outputs[len(res.Outputs)-1].Data().([]float32); !slices.Equal(got, want) {
			t.Fatalf("request %d: wrong answer", i)
		}
		t.Logf("after kill #%d: cloud=%q fallback=%q errors=%v", i, res.Cloud, res.Fallback, res.Errors)
	}
}

func TestConcurrentRequestsWithChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped with -short")
	}
	lc, m := startTestCluster(t, 2, "cloud-only")
	edge := lc.Edges[0]
	ctx := context.Background()
	const clients, minRequests = 4, 1000
	inputs := make([]*tensor.Dense, 8)
	wants := make([][]float32, len(inputs))
	for i := range inputs {
		inputs[i] = randInput(uint64(10+i), m.Graph.Inputs[0].Shape)
		wants[i] = localRun(t, m, inputs[i])
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, wrong := 0, 0
	var lat []time.Duration
	served := map[string]int{} // cloud name ("" = finished on the edge)
	fallbacks, failedAttempts := 0, 0
	sent := 0
	answers := map[[2]int]int{} // (client, request) → answers returned
	stop := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (c + i) % len(inputs)
				time.Sleep(8 * time.Millisecond) // spread the stream over the churn
				res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{inputs[k]}, Codec: "lossless"})
				mu.Lock()
				sent++
				if err != nil {
					t.Errorf("client %d request %d: %v", c, i, err)
				} else {
					answered++
					answers[[2]int{c, i}]++
					served[res.Cloud]++
					if res.Fallback != "" {
						fallbacks++
					}
					failedAttempts += len(res.Errors)
					lat = append(lat, res.Measured.Total)
					if !slices.Equal(res.Outputs[len(res.Outputs)-1].Data().([]float32), wants[k]) {
						wrong++
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Kill the cloud serving the stream, let a new one join, then kill the
	// other original cloud so the newcomer must take over.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	first, second := lc.Clouds[0], lc.Clouds[1]
	if served[second.Name()] > served[first.Name()] {
		first, second = second, first
	}
	mu.Unlock()
	first.Kill()
	time.Sleep(300 * time.Millisecond)
	if _, err := lc.AddCloud(ctx, "cloud-3"); err != nil {
		t.Fatal(err)
	}
	if err := lc.WaitConverged(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	second.Kill()
	// Keep the stream going until the newcomer has served and the total
	// reaches minRequests.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		done := sent >= minRequests && served["cloud-3"] >= 50
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if answered != sent || wrong != 0 || sent < minRequests {
		t.Fatalf("answered %d of %d sent, %d wrong", answered, sent, wrong)
	}
	if served["cloud-3"] == 0 {
		t.Errorf("the cloud that joined mid-stream served nothing: %v", served)
	}
	// Duplicates. Each request must be answered once, and counted once by
	// the edge; each answer from a cloud must come from a segment that
	// cloud ran (one run delivered as two answers is a duplicate). A cloud
	// may run a segment whose answer never arrives (it was killed while
	// sending it, or the edge gave up on it): the edge then retried, so such
	// extra runs are at most the failed attempts the answers report.
	duplicated := 0
	for _, n := range answers {
		duplicated += n - 1
	}
	if len(answers) != answered || duplicated != 0 {
		t.Errorf("%d answers for %d distinct requests: %d duplicated", answered, len(answers), duplicated)
	}
	if got := int(counterValue(t, edge, "edgesplit_requests_total", "", "")); got != answered {
		t.Errorf("the edge counted %d requests, %d were answered", got, answered)
	}
	var runs map[string]int
	for wait := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// A cloud counts a segment just after sending its answer.
		runs = servedByCloud(t, lc)
		short := false
		for name, n := range served {
			short = short || name != "" && runs[name] < n
		}
		if !short || time.Now().After(wait) {
			break
		}
	}
	offloaded, extra := answered-served[""], 0
	for name, n := range runs {
		if n < served[name] {
			t.Errorf("%s answered %d requests but ran %d segments: answers duplicated", name, served[name], n)
		}
		extra += n - served[name]
	}
	if extra > failedAttempts {
		t.Errorf("clouds ran %d segments for %d offloaded answers: %d extra runs, but only %d attempts failed", extra+offloaded, offloaded, extra, failedAttempts)
	}
	slices.Sort(lat)
	t.Logf("%d requests from %d clients, 0 lost, %d duplicated, %d wrong; served by %v; clouds ran %v (%d runs whose answer was lost, %d failed attempts); %d retried after a failure; p50 %v p99 %v",
		answered, clients, duplicated, wrong, served, runs, extra, failedAttempts, fallbacks, lat[len(lat)/2], lat[len(lat)*99/100])
}

// TestClientDeadlineDoesNotBan: a request whose own deadline passes while a
// (slow, healthy) cloud works on it fails, but the cloud stays in service.
func TestClientDeadlineDoesNotBan(t *testing.T) {
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "cloud-only",
		CloudDevice: node.Device{Name: "slow-cloud", Slowdown: 400}, // the tail takes tens of ms
		GossipKey:   []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge, cloud := lc.Edges[0], lc.Clouds[0].Name()
	x := randInput(1, m.Graph.Inputs[0].Shape)
	// Two warm-ups: the first also compiles the pieces (seconds under
	// -race), so only the second is a round trip's time.
	var res *node.InferResult
	for range 2 {
		var err error
		res, err = edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
		if err != nil || res.Cloud != cloud {
			t.Fatalf("warm-up: %v (cloud %+v)", err, res)
		}
	}
	// A quarter of the slow cloud's profiled compute time: its device
	// emulation never answers sooner than that profile, so no round trip
	// can be that short, however fast or loaded the machine.
	short := res.Plan.Predicted.CloudCompute / 4
	ctx, cancel := context.WithTimeout(context.Background(), short)
	defer cancel()
	if _, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}}); err == nil {
		t.Fatalf("a request with a quarter of the cloud's compute time (%v) as deadline succeeded", short)
	}
	if edge.Banned(cloud) {
		t.Errorf("the client's deadline banned %s", cloud)
	}
	if res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil || res.Cloud != cloud {
		t.Errorf("next request: %v, want it on %s", err, cloud)
	}
}
