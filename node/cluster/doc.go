// Package cluster runs an in-process edgesplit cluster on one machine: edge
// and cloud nodes (package node) with real gossip, QUIC with mutual TLS
// from an ephemeral CA — or a transport.MemNetwork and memberlist's
// MockNetwork — and the edges' access links emulated. Tests, the demo
// (node/demo) and the benchmarks use it; the daemon does not.
package cluster
