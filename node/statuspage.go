package node

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/status"
)

// StatusSnapshot is what the status page (GET /) shows, as GET /v1/status
// returns it and GET /v1/status/events streams it.
type StatusSnapshot struct {
	Node    string          `json:"node"`
	Role    Role            `json:"role"`
	Time    time.Time       `json:"time"`
	Members []ClusterMember `json:"members"`
	// Plans holds, per model, the plan of the latest answered request
	// with its prediction and the median measured latency of the recent
	// requests that ran it.
	Plans []StatusPlan `json:"plans"`
	// Links are the edge's estimates of its path to each cloud.
	Links  []StatusLink    `json:"links"`
	Bans   []StatusBan     `json:"bans"`
	Recent []StatusRequest `json:"recent"`
}

// StatusPlan is a model's current plan.
type StatusPlan struct {
	Model       string  `json:"model"`
	Policy      string  `json:"policy"`
	Cut         int     `json:"cut"`
	Cloud       string  `json:"cloud,omitempty"`
	Codec       string  `json:"codec,omitempty"`
	PredictedMS float64 `json:"predicted_ms"`
	MeasuredMS  float64 `json:"measured_ms"`
	Requests    int     `json:"requests"`
}

// StatusLink is the edge's estimate of its path to one cloud, as the
// planner uses it (learned, else the configured access link).
type StatusLink struct {
	Cloud        string  `json:"cloud"`
	RTTMS        float64 `json:"rtt_ms"`
	UplinkMbps   float64 `json:"uplink_mbps"`
	DownlinkMbps float64 `json:"downlink_mbps"`
}

// StatusBan is a cloud the edge keeps out of its plans for now.
type StatusBan struct {
	Peer   string    `json:"peer"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// StatusRequest is one recent request.
type StatusRequest struct {
	Time     time.Time `json:"time"`
	Client   string    `json:"client,omitempty"`
	Model    string    `json:"model"`
	Policy   string    `json:"policy,omitempty"`
	Cut      int       `json:"cut"`
	Cloud    string    `json:"cloud,omitempty"`
	Codec    string    `json:"codec,omitempty"`
	TotalMS  float64   `json:"total_ms"`
	Status   int       `json:"status"`
	Fallback string    `json:"fallback,omitempty"`
	Error    string    `json:"error,omitempty"`

	predicted float64 // ms, for the plan summary
}

// recentRequests is how many requests the status page keeps.
const recentRequests = 64

// maxBanReasons bounds the remembered ban reasons (clouds come from
// gossip, so their names are not ours to trust in number).
const maxBanReasons = 256

// statusLog keeps what the status page shows beyond the live state: the
// recent requests (a ring) and why each banned cloud was banned.
type statusLog struct {
	mu      sync.Mutex
	ring    [recentRequests]StatusRequest
	next, n int
	reasons map[string]string
	page    *status.Page
}

func (s *statusLog) record(r StatusRequest) {
	s.mu.Lock()
	s.ring[s.next] = r
	s.next = (s.next + 1) % recentRequests
	s.n = min(s.n+1, recentRequests)
	page := s.page
	s.mu.Unlock()
	if page != nil {
		page.Changed()
	}
}

func (s *statusLog) banned(cloud, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reasons == nil {
		s.reasons = map[string]string{}
	}
	if _, ok := s.reasons[cloud]; ok || len(s.reasons) < maxBanReasons {
		s.reasons[cloud] = reason
	}
}

// recent returns the kept requests, newest first.
func (s *statusLog) recent() []StatusRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StatusRequest, 0, s.n)
	for i := 1; i <= s.n; i++ {
		out = append(out, s.ring[(s.next-i+recentRequests)%recentRequests])
	}
	return out
}

// recordAnswer adds an answered request to the status page's log.
func (n *Node) recordAnswer(ctx context.Context, m *Model, res *InferResult) {
	r := StatusRequest{Time: time.Now(), Model: m.ID, Policy: res.Policy, Cut: res.Plan.K, Cloud: res.Plan.Cloud,
		Codec: res.Plan.Codec, TotalMS: ms(res.Measured.Total), Status: http.StatusOK, Fallback: res.Fallback,
		predicted: ms(res.Plan.Predicted.Total)}
	if id, ok := access.FromContext(ctx); ok {
		r.Client = id.Name
	}
	n.statusLog.record(r)
}

// recordRefusal adds a request the API refused or failed.
func (n *Node) recordRefusal(r *http.Request, model string, code int, msg string) {
	sr := StatusRequest{Time: time.Now(), Model: model, Status: code, Error: msg, Cut: -1}
	if id, ok := access.FromContext(r.Context()); ok {
		sr.Client = id.Name
	}
	n.statusLog.record(sr)
}

// Status returns the node's status snapshot.
func (n *Node) Status() StatusSnapshot {
	s := StatusSnapshot{Node: n.cfg.Name, Role: n.cfg.Role, Time: time.Now().UTC(), Members: n.clusterMembers(),
		Plans: []StatusPlan{}, Links: []StatusLink{}, Bans: []StatusBan{}}
	s.Recent = n.statusLog.recent()
	// Plans: the newest request per model names its plan; the recent
	// requests that ran the same plan give its measured median.
	seen := map[string]int{}
	var measured [][]float64
	for _, r := range s.Recent {
		if r.Status != http.StatusOK {
			continue
		}
		i, ok := seen[r.Model]
		if !ok {
			i = len(s.Plans)
			seen[r.Model] = i
			s.Plans = append(s.Plans, StatusPlan{Model: r.Model, Policy: r.Policy, Cut: r.Cut, Cloud: r.Cloud, Codec: r.Codec, PredictedMS: r.predicted})
			measured = append(measured, nil)
		}
		if p := s.Plans[i]; p.Cut == r.Cut && p.Cloud == r.Cloud && p.Codec == r.Codec {
			measured[i] = append(measured[i], r.TotalMS)
		}
	}
	for i := range s.Plans {
		s.Plans[i].Requests = len(measured[i])
		s.Plans[i].MeasuredMS = stats.Median(measured[i])
	}
	if n.edge != nil {
		n.statusLog.mu.Lock()
		reasons := maps.Clone(n.statusLog.reasons) // not held while the estimates are computed
		n.statusLog.mu.Unlock()
		for _, p := range n.members.Peers() {
			if p.Meta.Role != RoleCloud {
				continue
			}
			if until, ok := n.edge.bans.Until(p.Name); ok {
				s.Bans = append(s.Bans, StatusBan{Peer: p.Name, Until: until.UTC(), Reason: reasons[p.Name]})
			}
			if p.Alive {
				le := n.linkEstimate(p)
				s.Links = append(s.Links, StatusLink{Cloud: p.Name, RTTMS: ms(le.RTT), UplinkMbps: le.Up * 8 / 1e6, DownlinkMbps: le.Down * 8 / 1e6})
			}
		}
	}
	slices.SortFunc(s.Plans, func(a, b StatusPlan) int {
		if a.Model < b.Model {
			return -1
		}
		return 1
	})
	return s
}
