package node_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/hashicorp/memberlist"
	"gorgonia.org/tensor"
)

// TestSplitInferenceOverMemNetwork runs an edge and a cloud whose requests
// travel a transport.MemNetwork (no QUIC), over a shaped edge link, and
// whose gossip travels memberlist's MockNetwork: no sockets at all. It checks
// that split inference answers as the unsplit model does.
func TestSplitInferenceOverMemNetwork(t *testing.T) {
	m := testModel(t)
	mn := transport.NewMemNetwork()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m},
		EdgeDevice: node.Device{Name: "slow", Slowdown: 4},
		Uplink:     linkem.LinkSettings{Rate: linkem.Mbps(50), Delay: 5 * time.Millisecond},
		Downlink:   linkem.LinkSettings{Rate: linkem.Mbps(100), Delay: 5 * time.Millisecond},
		Network:    mn,
		Gossip:     &memberlist.MockNetwork{},
		Logger:     quietLogger(),
		Tune:       func(c *node.Config) { c.ProfileRuns = 3; c.BanBase = 2 * time.Second },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge, cloud := lc.Edges[0], lc.Clouds[0]
	if _, ok := edge.Endpoint().(*transport.MemEndpoint); !ok {
		t.Fatalf("edge endpoint is %T, want *transport.MemEndpoint", edge.Endpoint())
	}
	if !strings.HasPrefix(cloud.QUICAddr(), "127.0.0.1:") || cloud.Endpoint().Addr().Network() != "memnet" {
		t.Fatalf("cloud endpoint at %s on %q", cloud.QUICAddr(), cloud.Endpoint().Addr().Network())
	}
	if g := cloud.GossipAddr(); g != "127.0.0.1:1" { // MockNetwork's first address
		t.Fatalf("cloud gossips at %s, not on the MockNetwork", g)
	}
	x := randInput(3, m.Graph.Inputs[0].Shape)
	want := localRun(t, m, x)
	for _, pol := range []string{"cloud-only", "fixed:3", "auto"} {
		res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{x}, Policy: pol, Codec: "lossless"})
		if err != nil {
			t.Fatalf("%s: %v", pol, err)
		}
		if got := res.Outputs[len(res.Outputs)-1].Data().([]float32); !slices.Equal(got, want) {
			t.Errorf("%s (cut %d on %q): output differs from the local run", pol, res.Cut, res.Cloud)
		}
		if pol != "auto" && (res.Cloud != cloud.Name() || res.BytesSent == 0 || res.Fallback != "") {
			t.Errorf("%s: ran cut %d on %q sending %d bytes, fallback %q", pol, res.Cut, res.Cloud, res.BytesSent, res.Fallback)
		}
		t.Logf("%-10s cut=%d cloud=%s bytes=%d measured=%v", pol, res.Cut, res.Cloud, res.BytesSent, res.Measured.Total)
	}
	// The edge's link is the memory endpoint's, changeable live.
	if err := edge.SetLink(linkem.LinkSettings{Delay: 20 * time.Millisecond}, linkem.LinkSettings{}); err != nil {
		t.Fatal(err)
	}
	if up, _ := edge.Endpoint().(*transport.MemEndpoint).Link(); up.Delay != 20*time.Millisecond {
		t.Fatalf("uplink after SetLink: %+v", up)
	}
	if est, ok := edge.Endpoint().Estimate(cloud.QUICAddr()); !ok || est.Name != cloud.Name() {
		t.Fatalf("edge's estimate of the cloud: %+v, %v", est, ok)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := lc.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}
