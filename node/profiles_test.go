package node_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"gorgonia.org/tensor"
)

// TestDeadCloudAddressDoesNotStall: a member gossips itself as a cloud
// serving the model at a QUIC address that never answers (a bound UDP
// socket nobody reads: every handshake to it times out). Profile fetches
// run off the request path, so at most the request that meets the first
// fetch waits for it; every other request is answered at once by the
// honest cloud.
func TestDeadCloudAddressDoesNotStall(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the profile fetch timeout to pass: skipped with -short")
	}
	key := []byte("0123456789abcdef")
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "cloud-only", GossipKey: key, Logger: quietLogger(),
		// A short ban: on a loaded machine the honest cloud may miss a
		// deadline once, which is not what this test is about.
		Tune: func(c *node.Config) { c.ProfileRuns = 1; c.BanBase = 200 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge, honest := lc.Edges[0], lc.Clouds[0]
	x := randInput(5, m.Graph.Inputs[0].Shape)
	if _, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}}); err != nil {
		t.Fatal(err)
	}
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	mc := node.DefaultMembershipConfig("ghost")
	mc.BindPort, mc.SecretKey = 0, key
	ghost, err := node.NewMembership(mc, node.Meta{Role: node.RoleCloud, Device: "server", QUICAddr: hole.LocalAddr().String(),
		Models: []node.ModelRef{{ID: m.ID, Version: m.Version}}, ProfileDigest: "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Shutdown()
	if _, err := ghost.Join(context.Background(), []string{honest.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the edge to see the ghost", func() bool {
		for _, p := range edge.Members() {
			if p.Name == "ghost" && p.Alive {
				return true
			}
		}
		return false
	})
	slow, elsewhere, total := 0, 0, 0
	deadline := time.Now().Add(6 * time.Second) // the first fetch and its retry both time out meanwhile
	for i := 0; time.Now().Before(deadline); i++ {
		start := time.Now()
		res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			slow++
			t.Logf("request %d took %v", i, d)
		}
		total++
		if res.Cloud != honest.Name() {
			elsewhere++
			t.Logf("request %d answered by %q (fallback %q)", i, res.Cloud, res.Fallback)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if elsewhere > total/20 {
		t.Errorf("%d of %d requests not answered by the honest cloud", elsewhere, total)
	}
	if slow > 1 {
		t.Errorf("%d requests waited on the dead address's profile fetch; at most the first may", slow)
	}
}
