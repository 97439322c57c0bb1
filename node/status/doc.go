// Package status serves a node's live status page: GET / returns one
// embedded HTML page (no external scripts, styles or fonts), which opens
// GET /events, a server-sent-events stream that pushes the node's status
// snapshot as JSON once a second and whenever the node says it changed.
// The page renders the cluster members, the plan per model with predicted
// against measured latency, the link estimates, recent requests and bans.
// The snapshot is the caller's: any value that encodes to the JSON the
// page reads (node.StatusSnapshot). Subscribers are capped; each stream
// ends with the client or the server's context.
package status
