// Package node is the edgesplit daemon: gossip membership (hashicorp
// memberlist) carrying each node's capabilities, cloud nodes serving model
// segments over transport, edge nodes taking client requests, planning each
// split with the scheduler and falling back when a cloud fails, and
// Prometheus metrics.
package node
