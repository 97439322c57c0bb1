package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/node/registry"
	"gorgonia.org/tensor"
)

// storeWith returns a Tune that gives each node a model store in dir
// holding onnxBytes as model name, active (unless the store has versions
// already: a restarted node keeps what it had).
func storeWith(t testing.TB, dir, name string, onnxBytes []byte, tune func(*node.Config)) func(*node.Config) {
	return func(c *node.Config) {
		c.ProfileRuns = 1
		st, err := registry.Open(filepath.Join(dir, c.Name), registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Entries()) == 0 {
			e, err := st.Put(name, onnxBytes, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetActive(name, e.Version); err != nil {
				t.Fatal(err)
			}
		}
		c.Store = st
		if tune != nil {
			tune(c)
		}
	}
}

// answer is one request's outcome under load.
type answer struct {
	input         int
	version, tail string
	class         int
	cloud         string
	err           error
}

// loadGen sends requests from workers goroutines until stop, cycling
// through inputs, and records every outcome.
type loadGen struct {
	mu      sync.Mutex
	answers []answer
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLoad(edge *node.Node, model string, inputs []*tensor.Dense, workers int) *loadGen {
	g := &loadGen{stop: make(chan struct{})}
	for w := range workers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for i := w; ; i += workers {
				select {
				case <-g.stop:
					return
				default:
				}
				k := i % len(inputs)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := edge.Infer(ctx, node.InferRequest{Model: model, Inputs: []*tensor.Dense{inputs[k]}, Policy: "cloud-only"})
				cancel()
				a := answer{input: k, err: err}
				if err == nil {
					a.version, a.tail, a.class, a.cloud = res.ModelVersion, res.TailVersion, res.Class, res.Cloud
				}
				g.mu.Lock()
				g.answers = append(g.answers, a)
				g.mu.Unlock()
			}
		}()
	}
	return g
}

func (g *loadGen) end() []answer {
	close(g.stop)
	g.wg.Wait()
	return g.answers
}

func (g *loadGen) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.answers)
}

// waitRollout waits for the edge's rollout of model to end and returns it.
func waitRollout(t *testing.T, edge *node.Node, model, version string) node.RolloutStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range edge.Rollouts() {
			if r.Model == model && r.Version == version && r.State != "running" {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("rollout of %s to %s did not end in 60 s: %+v", model, version, edge.Rollouts())
	return node.RolloutStatus{}
}

func serving(n *node.Node) map[string]bool {
	out := map[string]bool{}
	for _, s := range n.Models().Serving {
		out[s.Version] = s.Active
	}
	return out
}

// TestRolloutUnderLoad pushes a second version of a model to the edge over
// its API and rolls it out over two clouds under load (every request
// offloaded): no request fails, every answer's tail ran the head's version
// and is that version's answer, the clouds serve both versions after it,
// and a canary back to the first version reports its agreement before it is
// promoted.
func TestRolloutUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster rollout under load")
	}
	g1, g2 := zoo.LeNet5(7), zoo.LeNet5(8)
	b1, err := onnx.Encode(g1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := onnx.Encode(g2)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := registry.Digest(b1, nil), registry.Digest(b2, nil)
	m1, _ := node.NewModel("lenet", "", g1, nil)
	m2, _ := node.NewModel("lenet", "", g2, nil)
	inputs := make([]*tensor.Dense, 8)
	want := map[string][]int{}
	for i := range inputs {
		inputs[i] = randInput(uint64(40+i), m1.Graph.Inputs[0].Shape)
		want[v1.Short()] = append(want[v1.Short()], argmaxF(localRun(t, m1, inputs[i])))
		want[v2.Short()] = append(want[v2.Short()], argmaxF(localRun(t, m2, inputs[i])))
	}

	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 2, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: storeWith(t, t.TempDir(), "lenet", b1, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge := lc.Edges[0]
	api := edge.Handler()

	// Bad pushes and rollouts are refused with a reason, and change nothing.
	for _, tc := range []struct {
		method, target string
		body           []byte
		code           int
		msg            string
	}{
		{"PUT", "/v1/models/lenet", []byte("not onnx"), http.StatusBadRequest, "lenet"},
		{"PUT", "/v1/models/lenet", nil, http.StatusBadRequest, "empty body"},
		{"PUT", "/v1/models/bad%20name", b2, http.StatusBadRequest, "invalid model name"},
		{"POST", "/v1/models/lenet/rollout?version=abc", nil, http.StatusBadRequest, "at least 6 hex digits"},
		{"POST", "/v1/models/lenet/rollout?version=" + strings.Repeat("0", 64), nil, http.StatusAccepted, ""},
		{"POST", "/v1/models/lenet/rollout?version=" + v1.Short() + "&canary=1.5", nil, http.StatusBadRequest, "canary"},
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, bytes.NewReader(tc.body)))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.target, rec.Code, rec.Body, tc.code, tc.msg)
		}
	}
	// The rollout of a version nobody holds fails, moving nothing.
	if r := waitRollout(t, edge, "lenet", strings.Repeat("0", 64)); r.State != "failed" || !strings.Contains(r.Error, "no live peer holds it") {
		t.Errorf("rollout of an unknown version: %+v", r)
	}

	load := startLoad(edge, "lenet", inputs, 2)
	for load.count() < 20 {
		time.Sleep(10 * time.Millisecond)
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("PUT", "/v1/models/lenet", bytes.NewReader(b2)))
	var pushed node.StoredModel
	if err := json.Unmarshal(rec.Body.Bytes(), &pushed); rec.Code != http.StatusCreated || err != nil || pushed.Version != string(v2) {
		t.Fatalf("push: %d %s (%v), want 201 with version %s", rec.Code, rec.Body, err, v2)
	}
	rollout := func(v registry.Version, canary string) node.RolloutStatus {
		t.Helper()
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/models/lenet/rollout?version="+string(v)[:10]+canary, nil))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("rollout: %d %s", rec.Code, rec.Body)
		}
		r := waitRollout(t, edge, "lenet", string(v))
		if r.State != "done" {
			t.Fatalf("rollout to %s: %+v", v.Short(), r)
		}
		return r
	}
	r := rollout(v2, "")
	if len(r.Steps) != 3 || r.Steps[0].Role != node.RoleCloud || r.Steps[2].Node != edge.Name() {
		t.Errorf("rollout steps %+v: want the two clouds, then the edge", r.Steps)
	}
	before := load.count()
	for load.count() < before+40 {
		time.Sleep(10 * time.Millisecond)
	}
	answers := load.end()

	for _, c := range lc.Clouds {
		if s := serving(c); !s[v2.Short()] || s[v1.Short()] || len(s) != 2 {
			t.Errorf("%s serves %v, want %s active and %s still served", c.Name(), s, v2.Short(), v1.Short())
		}
	}
	if s := serving(edge); !s[v2.Short()] {
		t.Errorf("edge serves %v, want %s active", s, v2.Short())
	}
	perVersion := map[string]int{}
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("request failed during the rollout: %v", a.err)
		case a.tail != a.version:
			t.Errorf("answer of version %s had its tail run by version %q", a.version, a.tail)
		case a.class != want[a.version][a.input]:
			t.Errorf("input %d: class %d from version %s, which answers %d", a.input, a.class, a.version, want[a.version][a.input])
		}
		perVersion[a.version]++
	}
	if perVersion[v1.Short()] == 0 || perVersion[v2.Short()] == 0 || len(perVersion) != 2 {
		t.Errorf("answers per version %v: want both versions", perVersion)
	}
	if last := answers[len(answers)-1]; last.version != v2.Short() {
		t.Errorf("the last answer came from %s, want %s", last.version, v2.Short())
	}
	t.Logf("rollout: %d answers %v, 0 failed, steps %+v", len(answers), perVersion, r.Steps)

	// A canary back to v1 takes half the requests and compares them with v2.
	rollout(v1, "&canary=0.5")
	canaryAnswers := map[string]int{}
	for i := range 16 {
		res, err := edge.Infer(context.Background(), node.InferRequest{Model: "lenet", Inputs: []*tensor.Dense{inputs[i%len(inputs)]}})
		if err != nil {
			t.Fatal(err)
		}
		canaryAnswers[res.ModelVersion]++
		time.Sleep(5 * time.Millisecond)
	}
	if canaryAnswers[v1.Short()] != 8 || canaryAnswers[v2.Short()] != 8 {
		t.Errorf("canary 0.5: answers %v, want 8 of each version", canaryAnswers)
	}
	deadline := time.Now().Add(10 * time.Second)
	var rep node.CanaryReport
	for time.Now().Before(deadline) {
		if cs := edge.Canaries(); len(cs) == 1 {
			rep = cs[0]
			if rep.Compared+rep.Skipped == rep.Requests {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rep.Version != v1.Short() || rep.Against != v2.Short() || rep.Requests != 8 || rep.Compared == 0 || rep.Agreed > rep.Compared {
		t.Errorf("canary report %+v", rep)
	}
	t.Logf("canary report: %+v", rep)
	rollout(v1, "")
	res, err := edge.Infer(context.Background(), node.InferRequest{Model: "lenet", Inputs: []*tensor.Dense{inputs[0]}})
	if err != nil || res.ModelVersion != v1.Short() {
		t.Fatalf("after promoting the canary: %v, version %v, want %s", err, res, v1.Short())
	}
	if cs := edge.Canaries(); len(cs) != 1 || cs[0].Requests != 8 {
		t.Errorf("the ended canary's report is kept: %+v", cs)
	}
}

func argmaxF(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
