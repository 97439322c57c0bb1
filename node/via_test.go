package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// TestEdgeServerSendsOn: an edge server runs the first part of a set and
// sends the rest on to the cloud named in the request, answering exactly
// the unsplit model's outputs; when that cloud is gone it runs the rest
// itself (same answer, counted); and only edges may ask it, only edge
// servers send on.
func TestEdgeServerSendsOn(t *testing.T) {
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, EdgeServers: 1, Models: []*node.Model{m}, Policy: "auto",
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1; c.Hedge = -1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge, server, cloud := lc.Edges[0], lc.Servers[0], lc.Clouds[0]
	x := randInput(21, m.Graph.Inputs[0].Shape)
	want := localRun(t, m, x)
	lossless, _ := tensorcodec.ParsePreset("lossless")
	body, _, err := tensorcodec.EncodePreset(nil, lossless, x)
	if err != nil {
		t.Fatal(err)
	}
	hdr := node.ViaHeader(m.ID, m.Version, "lossless", 0, m.Nodes(), 4, cloud.Name(), "lossless")
	call := func(from, to *node.Node, hdr []byte) ([]float32, error) {
		resp, err := from.Endpoint().Call(context.Background(), to.QUICAddr(), &transport.Request{ID: 1, Header: hdr}, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		outs, err := tensorcodec.Decode(nil, b)
		if err != nil {
			return nil, err
		}
		return outs[len(outs)-1].Data().([]float32), nil
	}
	same := func(got []float32) bool {
		for i := range want {
			if got[i] != want[i] {
				return false
			}
		}
		return len(got) == len(want)
	}
	before := counterValue(t, cloud, "edgesplit_segments_served_total", "", "")
	got, err := call(edge, server, hdr)
	if err != nil || !same(got) {
		t.Fatalf("through the server: %v, %v, want %v", err, got, want)
	}
	if after := counterValue(t, cloud, "edgesplit_segments_served_total", "", ""); after != before+1 {
		t.Errorf("the cloud served %v segments, want 1 (the server's rest)", after-before)
	}
	for _, tc := range []struct {
		name     string
		from, to *node.Node
		hdr      []byte
		code     transport.Code
		msg      string
	}{
		{"a cloud asked to send on", edge, cloud, hdr, transport.CodeBadRequest, "not an edge server"},
		{"a server asked by a server", server, server, hdr, transport.CodeUnauthenticated, "edges only"},
	} {
		_, err := call(tc.from, tc.to, tc.hdr)
		var te *transport.Error
		if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.code, tc.msg)
		}
	}
	// The cloud dies: the server finishes the set itself.
	cloud.Kill()
	got, err = call(edge, server, hdr)
	if err != nil || !same(got) {
		t.Fatalf("with the cloud gone: %v, %v, want %v", err, got, want)
	}
	if n := counterValue(t, server, "edgesplit_via_fallbacks_total", "", ""); n != 1 {
		t.Errorf("via fallbacks %v, want 1", n)
	}
	// Requests through the edge still answer the model (two tiers or local).
	res, err := edge.Infer(context.Background(), node.InferRequest{Inputs: []*tensor.Dense{x}})
	if err != nil || res.Class != node.Argmax(want) {
		t.Fatalf("edge after the cloud died: %v %v", err, res)
	}
}
