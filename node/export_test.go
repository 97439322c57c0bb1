package node

import (
	"context"

	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// Hooks for the external tests (package node_test): they run nodes on
// node/cluster, which imports node, so they cannot live in package node.

// Endpoint returns the node's transport endpoint.
func (n *Node) Endpoint() transport.Transport { return n.ep }

// Registry returns the node's metrics registry.
func (n *Node) Registry() *prometheus.Registry { return n.cfg.Registry }

// Banned reports whether an edge bans cloud now.
func (n *Node) Banned(cloud string) bool { return n.edge != nil && n.edge.bans.Banned(cloud) }

// Suspected reports whether the edge keeps cloud out of plans for a while
// after a hedge overtook it.
func (n *Node) Suspected(cloud string) bool { return n.edge != nil && n.edge.bans.Suspected(cloud) }

// Argmax is argmax.
var Argmax = argmax

// AdvertiseQUIC makes the node gossip addr as its QUIC endpoint: a rogue
// member's lie, for the security tests.
func (n *Node) AdvertiseQUIC(ctx context.Context, addr string) error {
	m := n.members.Meta()
	m.QUICAddr = addr
	return n.members.UpdateMeta(ctx, m)
}

// ProbeHeader is the node protocol header of a probe of model id.
func ProbeHeader(id, version string) []byte {
	r := segmentRequest{Op: opProbe, Model: id, Version: version}
	b, err := r.marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// RunHeader is the node protocol header of a run of nodes [from, to) of
// model id with codec.
func RunHeader(id, version, codec string, from, to int) []byte {
	nodes := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		nodes = append(nodes, i)
	}
	b, err := RunRequestHeader(id, version, codec, nodes)
	if err != nil {
		panic(err)
	}
	return b
}

// HoldWorkers takes every worker slot of the node's segment server, as a
// cloud stuck on other work (or SIGSTOPped) would: segments queue until
// the returned release is called.
func (n *Node) HoldWorkers() (release func()) {
	k := cap(n.srv.workers)
	for range k {
		n.srv.workers <- struct{}{}
	}
	return func() {
		for range k {
			<-n.srv.workers
		}
	}
}

// ModelOpHeader is the node protocol header of a model store operation
// ("entry", "chunk", "load") on name@version; chunk is the index of a
// chunk request.
func ModelOpHeader(op, name, version string, chunk int) []byte {
	r := segmentRequest{Model: name, Version: version}
	switch op {
	case "entry":
		r.Op = opModelEntry
	case "chunk":
		r.Op, r.Nodes = opModelChunk, []int{chunk}
	case "load":
		r.Op = opModelLoad
	}
	b, err := r.marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// EnsureStored fetches name@v into the node's store from its peers.
func (n *Node) EnsureStored(ctx context.Context, name string, v registry.Version, from string) error {
	return n.ensureStored(ctx, name, v, from)
}

// StorePut puts raw bytes into the node's store as name (no model checks:
// for transfer tests and benchmarks).
func (n *Node) StorePut(name string, b []byte) (registry.Entry, error) {
	return n.store.Put(name, b, nil)
}

// StoreRead reads a version from the node's store.
func (n *Node) StoreRead(name string, v registry.Version) ([]byte, error) {
	b, _, err := n.store.Read(name, v)
	return b, err
}

// ViaHeader is the node protocol header of a three-tier request: an edge
// server runs nodes [from, split) of model id and sends [split, to) on to
// next with codec2.
func ViaHeader(id, version, codec string, from, to, split int, next, codec2 string) []byte {
	r := segmentRequest{Op: opRunVia, Model: id, Version: version, Codec: codec, Split: split, Next: next, Codec2: codec2}
	for i := from; i < to; i++ {
		r.Nodes = append(r.Nodes, i)
	}
	b, err := r.marshal()
	if err != nil {
		panic(err)
	}
	return b
}
