package node

import "net/http"

// ClusterMember is one entry of GET /v1/cluster: a member as this node sees
// it, with its gossiped metadata under readable names.
type ClusterMember struct {
	Name   string `json:"name"`
	Addr   string `json:"gossip_addr"`
	Alive  bool   `json:"alive"`
	Banned bool   `json:"banned,omitempty"`
	// Refused says why the member is quarantined: its endpoint presented
	// another node's certificate, or another role's ("" when it is not).
	Refused       string         `json:"refused,omitempty"`
	Role          Role           `json:"role"`
	QUICAddr      string         `json:"quic_addr,omitempty"`
	HTTPAddr      string         `json:"http_addr,omitempty"`
	Device        string         `json:"device,omitempty"`
	Slowdown      float64        `json:"slowdown,omitempty"`
	Models        []ClusterModel `json:"models,omitempty"`
	ProfileDigest string         `json:"profile_digest,omitempty"`
	Load          float64        `json:"load"`
	Queue         int            `json:"queue"`
	ServiceMS     float64        `json:"mean_service_ms"`
	Seq           uint64         `json:"meta_seq"`
	// Hops are an edge server's links to clouds, as it measured them.
	Hops []ClusterHop `json:"hops,omitempty"`
}

// ClusterHop is an edge server's link to a cloud.
type ClusterHop struct {
	Cloud  string  `json:"cloud"`
	UpMbps float64 `json:"up_mbit_s"`
	DnMbps float64 `json:"down_mbit_s"`
	RTTMS  float64 `json:"rtt_ms"`
}

// ClusterModel is a model a member serves.
type ClusterModel struct {
	ID          string `json:"id"`
	Version     string `json:"version,omitempty"`
	Calibration string `json:"calibration_digest,omitempty"`
}

func clusterMember(name, addr string, alive, banned bool, m Meta) ClusterMember {
	c := ClusterMember{Name: name, Addr: addr, Alive: alive, Banned: banned, Role: m.Role, QUICAddr: m.QUICAddr,
		HTTPAddr: m.HTTPAddr, Device: m.Device, Slowdown: m.Slowdown, ProfileDigest: m.ProfileDigest, Load: m.Load,
		Queue: m.Queue, ServiceMS: float64(m.ServiceMicros) / 1e3, Seq: m.Seq}
	for _, r := range m.Models {
		c.Models = append(c.Models, ClusterModel{ID: r.ID, Version: r.Version, Calibration: r.Calibration})
	}
	for _, h := range m.Hops {
		c.Hops = append(c.Hops, ClusterHop{Cloud: h.Cloud, UpMbps: float64(h.UpKbps) / 1e3, DnMbps: float64(h.DnKbps) / 1e3, RTTMS: float64(h.RTTus) / 1e3})
	}
	return c
}

func (n *Node) handleCluster(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.clusterMembers())
}

// clusterMembers is the cluster as this node sees it: itself first, then
// every peer.
func (n *Node) clusterMembers() []ClusterMember {
	out := []ClusterMember{clusterMember(n.cfg.Name, n.members.Addr(), true, false, n.members.Meta())}
	for _, p := range n.members.Peers() {
		banned := n.edge != nil && n.edge.bans.Banned(p.Name)
		c := clusterMember(p.Name, p.Addr, p.Alive, banned, p.Meta)
		c.Refused = n.quarantined.reason(p)
		out = append(out, c)
	}
	return out
}
