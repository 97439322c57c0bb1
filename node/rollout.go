package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesplit/edgesplit/node/registry"
	"gorgonia.org/tensor"
)

// ErrRolloutRunning is returned when a rollout of the same model is under
// way.
var ErrRolloutRunning = errors.New("node: a rollout of this model is under way")

// How a rollout waits on each node: its load (fetch, profile) and then
// its gossip announcing the version.
const (
	rolloutLoadTimeout   = 10 * time.Minute
	rolloutGossipTimeout = 20 * time.Second
)

// RolloutStatus is the progress of one rollout, as GET /v1/models shows it.
type RolloutStatus struct {
	Model   string        `json:"model"`
	Version string        `json:"version"`
	Canary  float64       `json:"canary,omitempty"`
	State   string        `json:"state"` // running, done, failed
	Error   string        `json:"error,omitempty"`
	Started time.Time     `json:"started"`
	Ended   time.Time     `json:"ended,omitzero"`
	Steps   []RolloutStep `json:"steps"`
}

// RolloutStep is one node's move to the new version.
type RolloutStep struct {
	Node  string  `json:"node"`
	Role  Role    `json:"role"`
	State string  `json:"state"` // waiting, loading, done, skipped, failed
	Error string  `json:"error,omitempty"`
	MS    float64 `json:"ms,omitempty"`
}

// rollouts are an edge's rollouts, the latest per model.
type rollouts struct {
	mu       sync.Mutex
	last     map[string]*RolloutStatus
	canaries map[string]CanaryReport // the last ended canary per model
}

// Rollouts returns the latest rollout of every model this node ran.
func (n *Node) Rollouts() []RolloutStatus {
	n.rollout.mu.Lock()
	defer n.rollout.mu.Unlock()
	var out []RolloutStatus
	for _, r := range n.rollout.last {
		c := *r
		c.Steps = slices.Clone(r.Steps)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b RolloutStatus) int { return a.Started.Compare(b.Started) })
	return out
}

// StartRollout moves the cluster to version v of model name one node at a
// time, in the background (Rollouts reports it): every other live node
// serving the model — clouds first, then edges — fetches v (from this node
// or any peer holding it), loads it beside the version it serves and makes
// it its active one, and is seen to gossip it before the next one starts;
// then this node activates it. Requests stay pinned to one version end to
// end throughout: an edge plans only on clouds serving its request's
// version, and clouds keep serving the version they replaced. With share
// in (0, 1), this edge sends only that share of its requests to v, as a
// canary compared with the active version (Canary); rolling out v again
// with share 0 promotes it. A rollback is a rollout of the old version.
func (n *Node) StartRollout(name string, v registry.Version, share float64) (RolloutStatus, error) {
	if n.store == nil {
		return RolloutStatus{}, ErrNoStore
	}
	if share < 0 || share >= 1 {
		return RolloutStatus{}, fmt.Errorf("node: canary share %v outside [0, 1)", share)
	}
	st := &RolloutStatus{Model: name, Version: string(v), Canary: share, State: "running", Started: time.Now()}
	n.rollout.mu.Lock()
	if r := n.rollout.last[name]; r != nil && r.State == "running" {
		n.rollout.mu.Unlock()
		return RolloutStatus{}, fmt.Errorf("%w: %s to %s", ErrRolloutRunning, name, registry.Version(r.Version).Short())
	}
	n.rollout.last[name] = st
	n.rollout.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		select {
		case <-n.stopMeta:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer n.wg.Done()
		defer cancel()
		err := n.runRollout(ctx, st, name, v, share)
		n.rollout.mu.Lock()
		st.Ended = time.Now()
		st.State = "done"
		if err != nil {
			st.State, st.Error = "failed", err.Error()
		}
		n.rollout.mu.Unlock()
		if err != nil {
			n.log.Error("rollout failed", "model", name, "version", v.Short(), "err", err)
		} else {
			n.log.Info("rollout done", "model", name, "version", v.Short(), "canary", share, "took", time.Since(st.Started).Round(time.Millisecond))
		}
	}()
	return *st, nil
}

func (n *Node) runRollout(ctx context.Context, st *RolloutStatus, name string, v registry.Version, share float64) error {
	if err := n.ensureStored(ctx, name, v, ""); err != nil {
		return err
	}
	var targets []Peer
	for _, p := range n.members.Peers() {
		if p.Name != n.cfg.Name && slices.ContainsFunc(p.Meta.Models, func(r ModelRef) bool { return r.ID == name }) {
			targets = append(targets, p)
		}
	}
	slices.SortFunc(targets, func(a, b Peer) int {
		if a.Meta.Role != b.Meta.Role {
			if a.Meta.Role == RoleCloud {
				return -1
			}
			return 1
		}
		return cmpString(a.Name, b.Name)
	})
	n.rollout.mu.Lock()
	for _, p := range targets {
		st.Steps = append(st.Steps, RolloutStep{Node: p.Name, Role: p.Meta.Role, State: "waiting"})
	}
	st.Steps = append(st.Steps, RolloutStep{Node: n.cfg.Name, Role: n.cfg.Role, State: "waiting"})
	n.rollout.mu.Unlock()
	step := func(i int, state string, err error, took time.Duration) {
		n.rollout.mu.Lock()
		st.Steps[i].State, st.Steps[i].MS = state, float64(took.Microseconds())/1e3
		if err != nil {
			st.Steps[i].Error = err.Error()
		}
		n.rollout.mu.Unlock()
	}
	for i, p := range targets {
		p, ok := n.members.Peer(p.Name)
		if !ok || !p.Alive {
			step(i, "skipped", errors.New("not alive at its turn"), 0)
			continue
		}
		start := time.Now()
		step(i, "loading", nil, 0)
		if err := n.rolloutPeer(ctx, p, name, v); err != nil {
			step(i, "failed", err, time.Since(start))
			return fmt.Errorf("node %s: %w", p.Name, err)
		}
		step(i, "done", nil, time.Since(start))
	}
	last := len(st.Steps) - 1
	start := time.Now()
	step(last, "loading", nil, 0)
	if err := n.Activate(ctx, name, v, share, ""); err != nil {
		step(last, "failed", err, time.Since(start))
		return err
	}
	step(last, "done", nil, time.Since(start))
	return nil
}

// rolloutPeer has peer p load and activate name@v, then waits until its
// gossip says it serves it.
func (n *Node) rolloutPeer(ctx context.Context, p Peer, name string, v registry.Version) error {
	lctx, cancel := context.WithTimeout(ctx, rolloutLoadTimeout)
	defer cancel()
	resp, err := n.callPeer(lctx, p, segmentRequest{Op: opModelLoad, Model: name, Version: string(v)}, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	deadline := time.Now().Add(rolloutGossipTimeout)
	for {
		if q, ok := n.members.Peer(p.Name); ok && slices.ContainsFunc(q.Meta.Models, func(r ModelRef) bool {
			return r.ID == name && r.Version == v.Short()
		}) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loaded %s@%s but its gossip does not show it after %v", name, v.Short(), rolloutGossipTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// canary sends a share of an edge's requests for one model to a new
// version, and compares the answers of as many of them as it can (one at a
// time, in the background) with the active version's, run here.
type canary struct {
	next  *held
	share float64
	seen  atomic.Uint64
	busy  atomic.Bool

	mu     sync.Mutex
	report CanaryReport
}

// CanaryReport is what a canary has shown so far: how many requests went
// to the new version, how many of their answers were compared with the
// active version's and how many agreed (same top-1 class).
type CanaryReport struct {
	Model     string    `json:"model"`
	Version   string    `json:"version"`
	Against   string    `json:"against"`
	Share     float64   `json:"share"`
	Requests  int64     `json:"requests"`
	Compared  int64     `json:"compared"`
	Agreed    int64     `json:"agreed"`
	Skipped   int64     `json:"skipped"` // not compared: a comparison was running
	Agreement float64   `json:"agreement"`
	Started   time.Time `json:"started"`
}

// take reports whether the next request goes to the canary: exactly
// ⌊i·share⌋ of the first i requests do.
func (c *canary) take() bool {
	i := float64(c.seen.Add(1))
	return math.Floor(i*c.share) > math.Floor((i-1)*c.share)
}

func (n *Node) startCanary(h *held, share float64) {
	n.cat.mu.Lock()
	defer n.cat.mu.Unlock()
	against := ""
	if a := n.cat.active[h.m.ID]; a != nil {
		against = a.m.Version
	}
	c := &canary{next: h, share: share}
	c.report = CanaryReport{Model: h.m.ID, Version: h.m.Version, Against: against, Share: share, Started: time.Now()}
	n.cat.canary[h.m.ID] = c
}

func (n *Node) stopCanary(id string) {
	n.cat.mu.Lock()
	defer n.cat.mu.Unlock()
	if c := n.cat.canary[id]; c != nil {
		c.mu.Lock()
		n.rollout.mu.Lock()
		n.rollout.canaries[id] = c.report
		n.rollout.mu.Unlock()
		c.mu.Unlock()
	}
	delete(n.cat.canary, id)
}

// Canaries reports the canaries running, and the last one of each model
// that ended (promoted or replaced).
func (n *Node) Canaries() []CanaryReport {
	n.rollout.mu.Lock()
	out := make([]CanaryReport, 0, len(n.rollout.canaries))
	seen := map[string]bool{}
	n.rollout.mu.Unlock()
	n.cat.mu.RLock()
	for id, c := range n.cat.canary {
		c.mu.Lock()
		out = append(out, c.report)
		c.mu.Unlock()
		seen[id] = true
	}
	n.cat.mu.RUnlock()
	n.rollout.mu.Lock()
	for id, r := range n.rollout.canaries {
		if !seen[id] {
			out = append(out, r)
		}
	}
	n.rollout.mu.Unlock()
	slices.SortFunc(out, func(a, b CanaryReport) int { return cmpString(a.Model, b.Model) })
	return out
}

// compareCanary counts an answer of canary version m and, unless a
// comparison is running, runs the active version on the same inputs here
// in the background and counts whether the top-1 classes agree.
func (n *Node) compareCanary(m *Model, inputs []*tensor.Dense, class int) {
	n.cat.mu.RLock()
	c, active := n.cat.canary[m.ID], n.cat.active[m.ID]
	n.cat.mu.RUnlock()
	if c == nil || c.next.m != m || active == nil {
		return
	}
	c.mu.Lock()
	c.report.Requests++
	c.mu.Unlock()
	if !c.busy.CompareAndSwap(false, true) {
		c.mu.Lock()
		c.report.Skipped++
		c.mu.Unlock()
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer c.busy.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var res InferResult
		if err := n.runLocal(ctx, active.m, inputs, nil, &res); err != nil {
			n.log.Warn("canary comparison failed", "model", m.ID, "err", err)
			return
		}
		out := res.Outputs[len(res.Outputs)-1].Data().([]float32)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.report.Compared++
		if argmax(out) == class {
			c.report.Agreed++
		}
		c.report.Agreement = float64(c.report.Agreed) / float64(c.report.Compared)
	}()
}
