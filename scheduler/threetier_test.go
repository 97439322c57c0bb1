package scheduler

import (
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// threeTierModel: a slow device, an edge server 10× faster on a fast LAN,
// a cloud 100× faster behind a slow WAN (the device's path to the cloud
// crosses the same WAN), and a model whose first node shrinks its 1 MB
// input to 10 KB.
func threeTierModel(t *testing.T) (*Inputs, testModel) {
	t.Helper()
	ms := time.Millisecond
	b := newBuilder(1_000_000, 1)
	x := b.node("Conv", 200*ms, 0, 10_000, 0)
	y := b.node("Conv", 400*ms, 0, 10_000, x)
	z := b.node("Conv", 400*ms, 0, 10_000, y)
	w := b.node("Gemm", 400*ms, 0, 40, z)
	m := b.finish("four", w, 10) // m.cloud is the edge server's profile
	cloud := *m.cloud
	cloud.Nodes = make([]partition.NodeProfile, len(m.cloud.Nodes))
	for i, nd := range m.cloud.Nodes {
		nd.Latency /= 10
		cloud.Nodes[i] = nd
	}
	raw := CodecModel{Name: "raw", Ratio: 1, Fidelity: Exact}
	lan := LinkEstimate{RTT: 2 * ms, Up: 100e6 / 8, Down: 100e6 / 8}
	wan := LinkEstimate{RTT: 30 * ms, Up: 10e6 / 8, Down: 10e6 / 8}
	in := &Inputs{Edge: m.edge, DAG: m.dag, Codecs: []CodecModel{raw},
		Clouds: []CloudInput{{ID: "cloud", Profile: &cloud, Link: wan}, {ID: "server", Profile: m.cloud, Link: lan}}}
	in.Servers = []ServerInput{{CloudInput: in.Clouds[1], Next: []CloudInput{{ID: "cloud", Profile: &cloud, Link: wan}}}}
	return in, m
}

// The three-tier plan (the 1 MB input over the LAN, the server's first node
// shrinking it, 10 KB over the WAN, the cloud's heavy tail) beats the best
// two-tier plan, which must either send 1 MB over the WAN, compute the first
// node on the slow device, or leave the heavy tail to the server.
func TestThreeTierBeatsTwoTiers(t *testing.T) {
	in, _ := threeTierModel(t)
	two, err := Neurosurgeon{}.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	three, ok := in.ThreeTier("three-tier")
	if !ok {
		t.Fatal("no three-tier plan")
	}
	if three.Via != "server" || three.Cloud != "cloud" || three.K != 0 || three.K2 != 1 {
		t.Errorf("three-tier plan %v, want cut 0 → server, cut 1 → cloud", three)
	}
	if !in.planCheaper(three, two) {
		t.Errorf("three-tier %v is not cheaper than two-tier %v", three, two)
	}
	// 80 ms over the LAN + 2 + 20 on the server + 8 over the WAN + 30 + 12 in the cloud.
	if got := three.Predicted.Total; got < 150*time.Millisecond || got > 156*time.Millisecond {
		t.Errorf("three-tier predicted %v, want ≈ 152 ms (%+v)", got, three.Predicted)
	}
	if two.Predicted.Total < 220*time.Millisecond {
		t.Errorf("best two-tier %v, want ≈ 222 ms (the server runs everything)", two)
	}
	if three.Target() != "server" || two.Target() != two.Cloud {
		t.Errorf("targets %q, %q", three.Target(), two.Target())
	}
	// A fast device makes its own first node worth it: two tiers again win.
	for i := range in.Edge.Nodes {
		in.Edge.Nodes[i].Latency /= 50
	}
	two, _ = Neurosurgeon{}.Plan(in)
	three, _ = in.ThreeTier("three-tier")
	if in.planCheaper(three, two) {
		t.Errorf("with a fast device three tiers %v still beat %v", three, two)
	}
}

// At most one of the two boundaries is lossy, and a server piece that would
// produce a model output is never planned.
func TestThreeTierCodecsAndOutputs(t *testing.T) {
	in, _ := threeTierModel(t)
	lossy := CodecModel{Name: "uint8", Ratio: 10, EncodeBps: 1e12, DecodeBps: 1e12, CutAgreement: certifiedEverywhere}
	in.Codecs = append(in.Codecs, lossy)
	in.Accuracy = AccuracyBudget{MaxLoss: 0.5}
	p, ok := in.ThreeTier("three-tier")
	if !ok {
		t.Fatal("no plan")
	}
	if p.Codec != "raw" && p.Codec2 != "raw" {
		t.Errorf("plan %v: two lossy boundaries", p)
	}
	if p.Codec == "raw" && p.Codec2 == "raw" {
		t.Errorf("plan %v: a certified 10× codec was not used on either hop", p)
	}
	// Make node 0's output a model output: the server may no longer run it.
	in.DAG.Tensors[1].Output = true
	if p, ok := in.ThreeTier("three-tier"); ok && p.K == 0 {
		t.Errorf("plan %v runs an output-producing node on the server", p)
	}
	// No usable server: no plan.
	in.Servers[0].Unavailable = true
	if p, ok := in.ThreeTier("three-tier"); ok {
		t.Errorf("plan %v through an unavailable server", p)
	}
}
