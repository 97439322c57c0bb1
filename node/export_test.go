package node

import (
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

// Argmax is argmax.
var Argmax = argmax
