package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"gorgonia.org/tensor"
)

// TestCalibratedLossyCodec: only the cloud holds the model's calibration;
// the edge fetches it through gossip + QUIC, after which a lossy codec the
// table certifies under the request's budget runs (its answer reported with
// the calibration behind it), and the same codec is refused under a budget
// the table cannot meet.
func TestCalibratedLossyCodec(t *testing.T) {
	ctx := context.Background()
	cm := testModel(t)
	var inputs calib.Slice
	for i := range 300 {
		inputs = append(inputs, []*tensor.Dense{randInput(uint64(100+i), cm.Graph.Inputs[0].Shape)})
	}
	res, err := calib.Run(ctx, calib.Config{Graph: cm.Graph, ModelID: cm.ID, ModelVersion: cm.Version, Inputs: inputs,
		Cuts: []int{0, 2}, Presets: []tensorcodec.Preset{tensorcodec.PresetLossless, tensorcodec.PresetInt8}, SpeedTime: time.Millisecond, StopBelow: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := cm.SetCalibration(res.Table); err != nil {
		t.Fatal(err)
	}
	if a := res.Table.Cuts[1].Codecs["int8"]; a.Samples != 300 || a.Lower(0.95) < 0.95 {
		t.Fatalf("int8 at cut 2: %d of %d agree; the test needs ≥ 95 %% certified", a.Agree, a.Samples)
	}
	em, err := node.NewModel("lenet5", "", zoo.LeNet5(7), nil) // same version, no table
	if err != nil || em.Version != cm.Version {
		t.Fatalf("edge model: %v (version %s vs %s)", err, em.Version, cm.Version)
	}
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{cm}, EdgeDevice: node.Device{Name: "slow", Slowdown: 4},
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) {
			c.ProfileRuns = 3
			if c.Role == node.RoleEdge {
				c.Models = []*node.Model{em}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge := lc.Edges[0]
	deadline := time.Now().Add(10 * time.Second)
	for edge.Calibration(em.ID) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the edge never fetched the cloud's calibration")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := edge.Calibration(em.ID).Digest(); got != res.Table.Digest() {
		t.Fatalf("fetched digest %s, cloud's %s", got, res.Table.Digest())
	}
	x := randInput(1, em.Graph.Inputs[0].Shape)
	want := localRun(t, em, x)
	// 300 samples certify about 98 %: allowed under a 5 % budget ...
	loose, _ := scheduler.NewBudget(0.05)
	r, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: "fixed:2", Codec: "int8", Accuracy: &loose})
	if err != nil {
		t.Fatal(err)
	}
	if r.Cut != 2 || r.Cloud == "" || r.Codec != "int8" {
		t.Fatalf("ran cut %d on %q with %q, want int8 at cut 2 offloaded", r.Cut, r.Cloud, r.Codec)
	}
	if r.Accuracy.Fidelity != scheduler.Lossy || r.Accuracy.Calibration.Samples != 300 || r.Accuracy.Lower < 0.95 || r.ModelVersion != em.Version {
		t.Errorf("accuracy report %+v, version %q", r.Accuracy, r.ModelVersion)
	}
	if node.Argmax(r.Outputs[len(r.Outputs)-1].Data().([]float32)) != node.Argmax(want) {
		t.Error("int8 changed the answer")
	}
	// ... but not under the default 0.1 %: auto and cloud-only avoid it.
	if _, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: "fixed:2", Codec: "int8"}); err == nil {
		t.Error("int8 with 300 samples ran under the default budget")
	}
	for _, pol := range []string{"auto", "cloud-only", "neurosurgeon", "dads"} {
		r, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		if r.Codec == "int8" || r.Codec == "int8-sparse-zstd" || r.Codec == "int4-zstd" {
			t.Errorf("%s used %s under the default budget", pol, r.Codec)
		}
		if got := r.Outputs[len(r.Outputs)-1].Data().([]float32); !slices.Equal(got, want) && r.Accuracy.Fidelity == scheduler.Exact {
			t.Errorf("%s: exact plan changed the output", pol)
		}
	}
	// The HTTP API reports the same, and max_loss reaches the scheduler.
	h := edge.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer?policy=fixed:2&codec=int8&max_loss=0.05", bytes.NewReader(npyBytes(t, x))))
	var resp node.InferResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s (%v)", rec.Code, rec.Body.String(), err)
	}
	if resp.Accuracy.Fidelity != "lossy" || resp.Accuracy.Samples != 300 || resp.Accuracy.MaxLoss != 0.05 || resp.ModelVersion != em.Version {
		t.Errorf("response accuracy %+v, version %q", resp.Accuracy, resp.ModelVersion)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer?policy=fixed:2&codec=int8&max_loss=0", bytes.NewReader(npyBytes(t, x))))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("int8 under an exact-only budget: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"edgesplit_plan_agreement_lower", `edgesplit_requests_by_codec_total{codec="int8",fidelity="lossy"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
