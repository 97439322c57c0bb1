package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"gorgonia.org/tensor"
)

// exitsModel is lenet-exits with exit 1's classifier weights scaled up, so
// that it is confident (≈ 1) on any input, and an exit table that says
// what the test wants of each exit: right is the share of samples each exit
// (exit1, exit2, probs) answers right, each confident exactly when right.
func exitsModel(t *testing.T, right [3]float64) *node.Model {
	t.Helper()
	g := zoo.LenetExits(7)
	for _, nd := range g.Nodes {
		if nd.Name == "fc1" {
			for _, w := range nd.Inputs[1:] {
				d := g.Initializers[w].Data().([]float32)
				for i := range d {
					d[i] *= 400
				}
			}
		}
	}
	m, err := node.NewModel("lenet-exits", "", g, nil)
	if err != nil {
		t.Fatal(err)
	}
	var samples []scheduler.ExitSample
	for j := 0; j < 1000; j++ {
		s := scheduler.ExitSample{Correct: make([]bool, 3), Confidence: make([]float32, 3)}
		for i, r := range right {
			s.Correct[i] = float64(j) < r*1000
			s.Confidence[i] = 0.3
			if s.Correct[i] {
				s.Confidence[i] = 0.999
			}
		}
		samples = append(samples, s)
	}
	tab, err := scheduler.NewExitCalibration("test table", []string{zoo.Exit1Name, zoo.Exit2Name, zoo.ProbsName}, []int{9, 15, 22}, nil, samples)
	if err != nil {
		t.Fatal(err)
	}
	cal := scheduler.NewCalibration(m.ID, m.Version, m.Nodes(), scheduler.CalibrationData{Source: "test table", Samples: 1000}, time.Unix(0, 0))
	cal.Exits = tab
	if err := m.SetCalibration(cal); err != nil {
		t.Fatal(err)
	}
	return m
}

func startExitsCluster(t *testing.T, m *node.Model, edge node.Device) *cluster.Local {
	t.Helper()
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, EdgeDevice: edge,
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 3; c.Hedge = -1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	return lc
}

// localOutputs runs the whole model here: every exit's output.
func localOutputs(t *testing.T, m *node.Model, x *tensor.Dense) map[string][]float32 {
	t.Helper()
	net, err := model.Compile(m.Graph, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := net.NewExtractor().Run(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for i, o := range m.Graph.Outputs {
		res[o.Name] = slices.Clone(outs[i].Data().([]float32))
	}
	return res
}

// TestEarlyExitOnTheEdge: exit 1 is right whenever it is sure, so under a
// deadline the edge answers from it, sends nothing, and says so.
func TestEarlyExitOnTheEdge(t *testing.T) {
	m := exitsModel(t, [3]float64{0.95, 0.97, 1})
	lc := startExitsCluster(t, m, node.Device{Name: "slow", Slowdown: 4})
	edge := lc.Edges[0]
	x := randInput(5, m.Graph.Inputs[0].Shape)
	want := localOutputs(t, m, x)
	before := segmentsServed(t, lc.Clouds[0])
	res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}, Deadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Exit
	if e == nil {
		t.Fatal("no exit report")
	}
	if e.Name != zoo.Exit1Name || e.Index != 0 || !e.OnEdge || e.Early == 0 || float64(e.Confidence) < e.Threshold || !e.Meets || e.DeadlineMS != 1000 {
		t.Fatalf("exit report %+v: want exit1 taken on the edge within the deadline", *e)
	}
	if e.ExpectedAccuracy != 1 {
		t.Errorf("expected accuracy %v, want 1 (exit 1 takes the sure 95 %%, the final exit the rest)", e.ExpectedAccuracy)
	}
	if res.BytesSent != 0 || res.Cloud != "" || segmentsServed(t, lc.Clouds[0]) != before {
		t.Errorf("an early exit sent %d bytes to %q", res.BytesSent, res.Cloud)
	}
	if got := res.Outputs[len(res.Outputs)-1].Data().([]float32); !slices.Equal(got, want[zoo.Exit1Name]) {
		t.Errorf("answer %v, exit 1 of the whole model %v", got, want[zoo.Exit1Name])
	}
	if res.Class != argmax(want[zoo.Exit1Name]) || res.Cut != 9 {
		t.Errorf("class %d at cut %d, want %d at 9", res.Class, res.Cut, argmax(want[zoo.Exit1Name]))
	}
	if n := counterValue(t, edge, "edgesplit_requests_total", "outcome", "exit_edge"); n != 1 {
		t.Errorf("%v requests counted as exit_edge, want 1", n)
	}

	// The context's deadline is the request's when it sets none.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err = edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit == nil || res.Exit.DeadlineMS <= 4000 || res.Exit.DeadlineMS > 5000 {
		t.Fatalf("exit report %+v: want the context's deadline, ≈ 5 s", res.Exit)
	}
	// Without any deadline (no SLO configured) the ordinary path answers
	// from the final exit.
	res, err = edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit != nil || !slices.Equal(res.Outputs[len(res.Outputs)-1].Data().([]float32), want[zoo.ProbsName]) {
		t.Fatalf("no deadline: exit %+v, want the final exit's answer", res.Exit)
	}
	// An explicit other policy also takes the ordinary path.
	res, err = edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}, Deadline: time.Second, Policy: "edge-only"})
	if err != nil || res.Exit != nil {
		t.Fatalf("policy edge-only: %v, exit %+v", err, res.Exit)
	}
}

// TestEarlyExitOffloads: the early exits are never right, the edge is slow
// and the cloud near: the final exit answers from the cloud, exactly as the
// whole model does.
func TestEarlyExitOffloads(t *testing.T) {
	m := exitsModel(t, [3]float64{0, 0, 1})
	lc := startExitsCluster(t, m, node.Device{Name: "very-slow", Slowdown: 400})
	edge := lc.Edges[0]
	x := randInput(6, m.Graph.Inputs[0].Shape)
	want := localOutputs(t, m, x)
	before := segmentsServed(t, lc.Clouds[0])
	res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: "early-exit", Codec: "lossless"})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Exit
	if e == nil || e.Name != zoo.ProbsName || e.Terminal != zoo.ProbsName || e.OnEdge || e.DeadlineMS != 0 {
		t.Fatalf("plan %v, exit %+v: want the final exit from the cloud", res.Plan, e)
	}
	if res.BytesSent == 0 || res.Cloud != lc.Clouds[0].Name() || segmentsServed(t, lc.Clouds[0]) != before+1 {
		t.Errorf("sent %d bytes to %q", res.BytesSent, res.Cloud)
	}
	if got := res.Outputs[len(res.Outputs)-1].Data().([]float32); !slices.Equal(got, want[zoo.ProbsName]) {
		t.Errorf("answer %v, the whole model %v", got, want[zoo.ProbsName])
	}
}

// TestEarlyExitNeedsCalibration: asking for the early-exit policy on a
// model without exit calibration is a clear client error.
func TestEarlyExitNeedsCalibration(t *testing.T) {
	lc, m := startTestCluster(t, 1, "auto")
	x := randInput(9, m.Graph.Inputs[0].Shape)
	_, err := lc.Edges[0].Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: "early-exit"})
	if !errors.Is(err, node.ErrBadRequest) || !strings.Contains(err.Error(), "exit calibration") {
		t.Fatalf("err %v, want ErrBadRequest naming the missing exit calibration", err)
	}
	// With a deadline but no policy, such a model takes the ordinary path.
	res, err := lc.Edges[0].Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}, Deadline: time.Second})
	if err != nil || res.Exit != nil {
		t.Fatalf("deadline on a single-exit model: %v, exit %+v", err, res)
	}
}

func TestSLOConfig(t *testing.T) {
	cfg := node.DefaultConfig("e", node.RoleEdge)
	cfg.SLO = -time.Millisecond
	cfg.Models = []*node.Model{testModel(t)}
	if _, err := node.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "SLO") {
		t.Fatalf("a negative SLO: err %v, want one naming the SLO", err)
	}
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// TestEarlyExitAPI: ?deadline= on a multi-exit model answers with the exit
// report, as the OpenAPI document describes it.
func TestEarlyExitAPI(t *testing.T) {
	tok, digest, _ := access.NewToken()
	guard, err := access.New(access.Config{Clients: []access.Client{{Name: "ops", TokenSHA256: digest, Scopes: access.AllScopes()}}})
	if err != nil {
		t.Fatal(err)
	}
	m := exitsModel(t, [3]float64{0.95, 0.97, 1})
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1; c.API = guard },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	h := lc.Edges[0].Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	body := npyBytes(t, randInput(8, m.Graph.Inputs[0].Shape))
	for _, target := range []string{"/v1/infer?deadline=2s", "/v1/infer?policy=early-exit", "/v1/infer?deadline=1s&policy=early-exit&codec=lossless"} {
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		var resp node.InferResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Exit == nil || resp.Exit.Name != zoo.Exit1Name || !resp.Exit.OnEdge || resp.BytesSent != 0 || resp.Policy != "early-exit" {
			t.Fatalf("%s: answer %s, want exit1 on the edge", target, rec.Body)
		}
		vreq := httptest.NewRequest(http.MethodPost, "http://edge"+target, bytes.NewReader(body))
		route, params, err := router.FindRoute(vreq)
		if err != nil {
			t.Fatal(err)
		}
		in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(rec.Body.Bytes())
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s: the answer does not match the document: %v\n%s", target, err, rec.Body)
		}
	}
}
