package node

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Role is what a node does in the cluster.
type Role string

// The roles a node can take.
const (
	RoleEdge  Role = "edge"  // runs heads, takes client requests
	RoleCloud Role = "cloud" // runs tails for edges
	// RoleEdgeServer sits between edges and clouds: it runs the middle of
	// a model for an edge and sends the rest on to a cloud (a three-tier
	// plan), or runs a whole tail like a cloud.
	RoleEdgeServer Role = "edge-server"
)

// ParseRole checks s is a known role.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleEdge, RoleCloud, RoleEdgeServer:
		return Role(s), nil
	}
	return "", fmt.Errorf("node: unknown role %q (want edge, cloud or edge-server)", s)
}

// MaxMetaSize is memberlist's limit on node metadata; a larger Meta is an
// error, never a panic.
const MaxMetaSize = 512

// ErrMetaTooLarge is returned when a node's metadata does not fit in
// MaxMetaSize bytes.
var ErrMetaTooLarge = errors.New("node: metadata over 512 bytes")

// ModelRef names a model version a node serves.
type ModelRef struct {
	ID      string `json:"i"`
	Version string `json:"v,omitempty"`
	// Calibration is the digest of the calibration table the node holds
	// for this version ("" when uncalibrated); edges without one fetch it.
	Calibration string `json:"c,omitempty"`
}

// Meta is the capability metadata a node gossips. It is encoded as compact
// JSON and must fit in MaxMetaSize bytes.
type Meta struct {
	Role          Role       `json:"r"`
	QUICAddr      string     `json:"q,omitempty"` // host:port of the node's QUIC endpoint
	HTTPAddr      string     `json:"h,omitempty"` // client API (edges)
	Device        string     `json:"d,omitempty"` // device profile name
	Slowdown      float64    `json:"s,omitempty"` // compute slowdown factor (1 = native)
	Models        []ModelRef `json:"m,omitempty"`
	ProfileDigest string     `json:"p,omitempty"`  // digest of the node's latency profile
	Load          float64    `json:"l,omitempty"`  // busy fraction of the workers, 0..1
	Queue         int        `json:"qd,omitempty"` // requests waiting
	ServiceMicros int64      `json:"st,omitempty"` // mean segment service time, µs
	Seq           uint64     `json:"n,omitempty"`  // bumped on each update
	// Draining is set by a node shutting down gracefully, just before it
	// leaves: it finishes what it was given and takes nothing new.
	Draining bool `json:"dr,omitempty"`
	// Hops are an edge server's estimates of its links to clouds (at most
	// maxHops), for the three-tier plans of edges.
	Hops []Hop `json:"x,omitempty"`
}

// Hop is an edge server's link to one cloud as it measured it.
type Hop struct {
	Cloud  string `json:"c"`
	UpKbps int64  `json:"u"` // uplink goodput, kbit/s
	DnKbps int64  `json:"d"` // downlink goodput, kbit/s
	RTTus  int64  `json:"r"` // round trip, µs
}

// maxHops bounds the hops an edge server gossips (metadata is ≤ 512 bytes).
const maxHops = 4

// Encode returns the gossip form of m, or ErrMetaTooLarge.
func (m Meta) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("node: encode metadata: %w", err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes (%d models)", ErrMetaTooLarge, len(b), len(m.Models))
	}
	return b, nil
}

// DecodeMeta parses gossiped metadata.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > MaxMetaSize {
		return m, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("node: decode metadata: %w", err)
	}
	if _, err := ParseRole(string(m.Role)); err != nil {
		return m, err
	}
	return m, nil
}

// Serves reports whether m lists model id.
func (m Meta) Serves(id string) bool {
	for _, r := range m.Models {
		if r.ID == id {
			return true
		}
	}
	return false
}
