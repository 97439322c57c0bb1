// Package node is the edgesplit daemon: gossip membership (hashicorp
// memberlist) carrying each node's capabilities, cloud nodes serving model
// segments over transport, edge nodes taking client requests, planning each
// split with the scheduler and falling back when a cloud fails, and
// Prometheus metrics.
//
// One file per job:
//   - node.go: the [Node] (shared parts; edge-only state in edgeRole),
//     start-up, endpoint, load gossip and shutdown.
//   - edge.go: the edge's request orchestrator ([Node.Infer]): plan, run the
//     head, offload, fall back.
//   - plan.go: what the scheduler decides from and the policy it asks.
//   - offload.go: one offload (encode → call → decode → learn); hedge.go:
//     a second cloud when the first is slow.
//   - exec.go: running a head, a tail or the whole model on this node.
//   - probe.go, links.go: pings and probes, and what they teach the edge's
//     learning core (scheduler.EdgeLearner).
//   - codectable.go: per-model codec ratios at every cut and the
//     per-request overhead.
//   - cloud.go: the segment server (every node runs it; clouds for edges).
//   - protocol.go: the node protocol carried by transport.
//   - calibration.go: calibration tables, served and fetched.
//   - membership.go, meta.go: gossip membership and the metadata it carries;
//     quarantine.go: calls to peers, which must be who they claim, and the
//     quarantine of those that are not.
//   - api.go, input.go, apiaccess.go, clusterview.go, statuspage.go,
//     audit.go, metrics.go: the client HTTP API (routes, input decoding,
//     access control, the cluster view, the status page), its audit log,
//     metrics.
//   - measure.go, device.go, models.go, config.go: profiles and codecs
//     measured at start, device emulation, models, configuration.
//
// The in-process cluster harness (tests, the demo, benchmarks) is package
// node/cluster; the tests that run on it are the external package
// node_test (export_test.go gives them a few hooks).
package node
