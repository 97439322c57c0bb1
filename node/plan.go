package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

// Plan returns the plan the node would use now for model id under policy
// (e.g. for `edgesplit plan` against a live node, and tests).
func (n *Node) Plan(ctx context.Context, id, policy string) (scheduler.Plan, error) {
	if n.cfg.Role != RoleEdge {
		return scheduler.Plan{}, ErrNotEdge
	}
	m, err := n.model(id)
	if err != nil {
		return scheduler.Plan{}, err
	}
	if policy == "" {
		policy = n.cfg.Policy
	}
	p, _, err := n.plan(ctx, m, policy, "", n.cfg.Accuracy)
	return p, err
}

// Inputs assembles what the scheduler decides from: this edge's profile,
// the model DAG, the codec table, and every live cloud serving the model
// with its profile, link estimate and queue.
func (n *Node) Inputs(ctx context.Context, id string) (*scheduler.Inputs, error) {
	if n.cfg.Role != RoleEdge {
		return nil, ErrNotEdge
	}
	m, err := n.model(id)
	if err != nil {
		return nil, err
	}
	return n.inputs(ctx, m, "", n.cfg.Accuracy), nil
}

func (n *Node) inputs(ctx context.Context, m *Model, codec string, budget scheduler.AccuracyBudget) *scheduler.Inputs {
	st := n.state(m)
	in := &scheduler.Inputs{Edge: st.profile, DAG: st.dag, Codecs: st.table.snapshot(),
		Overhead: st.overhead.value(), Accuracy: budget,
		Objective: n.objective(), Power: n.cfg.Power, EnergyWeight: n.cfg.EnergyWeight,
		InFlight: int(n.edge.workers.inFlight.Load())}
	if codec != "" {
		in.Codecs = slices.DeleteFunc(in.Codecs, func(c scheduler.CodecModel) bool { return c.Name != codec })
	}
	var hops []serverHops
	for _, p := range n.members.Peers() {
		if !n.usableCloud(p, m) {
			continue
		}
		prof, err := n.remoteProfile(ctx, p, m, true)
		if err != nil {
			n.log.Debug("no profile from cloud yet", "cloud", p.Name, "err", err)
			continue
		}
		n.edge.bans.Forgive(p.Name, p.Joined) // a restarted cloud starts clean
		ci := scheduler.CloudInput{ID: p.Name, Profile: prof, Link: n.linkEstimate(p)}
		ci.Queue = time.Duration(p.Meta.Queue) * time.Duration(p.Meta.ServiceMicros) * time.Microsecond
		in.Clouds = append(in.Clouds, ci)
		if p.Meta.Role == RoleEdgeServer && n.cfg.Tiers != 2 {
			hops = append(hops, serverHops{i: len(in.Clouds) - 1, hops: p.Meta.Hops})
		}
	}
	n.edge.bans.Apply(in.Clouds)
	// Three tiers: each edge server with the clouds behind it that this
	// edge plans on too (their profiles, queues and bans), over the links
	// the server measured.
	for _, s := range hops {
		si := scheduler.ServerInput{CloudInput: in.Clouds[s.i], Correction: n.viaCorrection(in.Clouds[s.i].ID)}
		for _, h := range s.hops {
			for _, c := range in.Clouds {
				if c.ID == h.Cloud && c.ID != si.ID {
					c.Link = scheduler.HopLink(h.UpKbps, h.DnKbps, h.RTTus)
					si.Next = append(si.Next, c)
				}
			}
		}
		if len(si.Next) > 0 {
			in.Servers = append(in.Servers, si)
		}
	}
	return in
}

// serverHops is an edge server among a plan's clouds and its gossiped hops.
type serverHops struct {
	i    int
	hops []Hop
}

// usableCloud reports whether the edge may plan on (or probe) peer p for
// model m (nil: any model): an alive cloud serving m's version that is not
// quarantined.
func (n *Node) usableCloud(p Peer, m *Model) bool {
	if !p.Alive || p.Meta.Draining || !n.offloadsTo(p.Meta.Role) || len(p.Meta.Models) == 0 || m != nil && !servesVersion(p.Meta, m) {
		return false
	}
	return n.quarantined.reason(p) == ""
}

// offloadsTo reports whether this node sends pieces to nodes of role r:
// an edge to clouds and edge servers, an edge server to clouds.
func (n *Node) offloadsTo(r Role) bool {
	return r == RoleCloud || r == RoleEdgeServer && n.cfg.Role == RoleEdge
}

func servesVersion(meta Meta, m *Model) bool {
	for _, r := range meta.Models {
		if r.ID == m.ID && r.Version == m.Version {
			return true
		}
	}
	return false
}

// linkEstimate is what the edge knows of its path to cloud p: the RTT from
// its pings and uploads, the uplink goodput its own
// transfers and probes achieved, the downlink goodput transport measured;
// the configured access link is the prior for what is not measured yet.
func (n *Node) linkEstimate(p Peer) scheduler.LinkEstimate {
	le := scheduler.LinkEstimate{RTT: n.cfg.Uplink.Delay + n.cfg.Downlink.Delay, Up: 10e6 / 8, Down: 50e6 / 8}
	if r := n.cfg.Uplink.MeanRate(); r > 0 {
		le.Up = r / 8
	}
	if r := n.cfg.Downlink.MeanRate(); r > 0 {
		le.Down = r / 8
	}
	if le.RTT <= 0 {
		le.RTT = time.Millisecond
	}
	n.edge.access.mu.Lock()
	if p.Meta.Role == RoleEdgeServer {
		// An edge server sits on this side of the access link the
		// clouds' paths share: its path is its own.
		le = n.edge.access.learn.PathLink(p.Name, le)
	} else {
		le = n.edge.access.learn.Link(p.Name, time.Now(), le)
	}
	n.edge.access.mu.Unlock()
	if est, ok := n.ep.Estimate(p.Meta.QUICAddr); ok && est.RecvGoodput > 0 {
		le.Down = est.RecvGoodput / 8
	}
	return le
}

// plan asks the policy for a plan.
func (n *Node) plan(ctx context.Context, m *Model, policyName, codec string, budget scheduler.AccuracyBudget) (scheduler.Plan, scheduler.Objective, error) {
	in := n.inputs(ctx, m, codec, budget)
	if strings.EqualFold(policyName, ThreeTierPolicy) {
		t, ok := in.ThreeTier(ThreeTierPolicy)
		if !ok {
			return scheduler.Plan{}, in.Objective, fmt.Errorf("%w: policy %s: no edge server with a cloud behind it serves model %s (or none can carry it under %v)",
				ErrBadRequest, ThreeTierPolicy, m.ID, budget)
		}
		return t, in.Objective, nil
	}
	pol, err := n.policy(m, policyName, budget, in.Objective)
	if err != nil {
		return scheduler.Plan{}, in.Objective, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if codec != "" && len(in.Codecs) == 0 {
		return scheduler.Plan{}, in.Objective, fmt.Errorf("%w: unknown codec %q", ErrBadRequest, codec)
	}
	if codec != "" && !anyCodecAllowed(in) {
		return scheduler.Plan{}, in.Objective, fmt.Errorf("%w: codec %s is not allowed at any cut of model %s under %v (%s codecs need a calibration that certifies them)",
			ErrBadRequest, codec, m.ID, budget, in.Codecs[0].Fidelity)
	}
	if len(in.Clouds) == 0 || allUnavailable(in.Clouds) {
		p, err := scheduler.EdgeOnly{}.Plan(in)
		return p, in.Objective, err
	}
	plan, err := pol.Plan(in)
	if errors.Is(err, scheduler.ErrNoCloud) {
		plan, err = scheduler.EdgeOnly{}.Plan(in)
	}
	if err == nil && len(in.Servers) > 0 && choosesCut(policyName) {
		// A plan with two cuts, when one beats the policy's. Both sides
		// are compared as measured: the three-tier plan carries the
		// learned correction of its second hop, and the policy's offload
		// the learned error of its target's predictions (the policy chose
		// among two-tier plans, which share their biases, without it).
		rival := plan
		if !plan.EdgeOnly() && plan.Via == "" {
			rival.Predicted.Total = max(0, rival.Predicted.Total+n.correction(n.edge.twoCorr, plan.Target()))
		}
		if t, ok := in.ThreeTier(plan.Policy); ok && in.Score(t) < in.Score(rival) {
			plan = t
		}
	}
	if errors.Is(err, scheduler.ErrAccuracy) {
		return scheduler.Plan{}, in.Objective, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return plan, in.Objective, err
}

// ThreeTierPolicy is the policy name that forces the best three-tier plan
// (the edge's head, an edge server's piece, a cloud's tail), for
// measurements: auto, neurosurgeon and dads choose it themselves when it is
// the best plan.
const ThreeTierPolicy = "three-tier"

// choosesCut reports whether policy name picks its cut (auto, neurosurgeon,
// dads) rather than being told it (edge-only, cloud-only, fixed:K): only
// those may answer with a three-tier plan.
func choosesCut(name string) bool {
	switch strings.ToLower(name) {
	case "auto", "neurosurgeon", "dads":
		return true
	}
	return false
}

func allUnavailable(cs []scheduler.CloudInput) bool {
	for _, c := range cs {
		if !c.Unavailable {
			return false
		}
	}
	return true
}

// maxAutos bounds the decision streams (model × accuracy budget) an edge
// keeps hysteresis for; requests with further budgets get plans without it.
const maxAutos = 64

// policy returns the named policy for model m. auto keeps one decision
// stream per model version, accuracy budget and objective, so requests with
// a stricter budget (or planned for throughput under load) do not knock
// the default stream off its plan.
func (n *Node) policy(m *Model, name string, budget scheduler.AccuracyBudget, obj scheduler.Objective) (scheduler.Policy, error) {
	if strings.EqualFold(name, "auto") {
		key := m.key()
		if budget != n.cfg.Accuracy {
			key = fmt.Sprintf("%s|%v", m.key(), budget)
		}
		if obj != n.cfg.Objective {
			key += "|" + obj.String()
		}
		n.edge.autoMu.Lock()
		defer n.edge.autoMu.Unlock()
		a, ok := n.edge.autos[key]
		if !ok {
			if len(n.edge.autos) >= maxAutos {
				return scheduler.NewAuto(scheduler.AutoConfig{Threshold: 0, Consecutive: 1, Label: "auto"}), nil
			}
			a = scheduler.NewAuto(scheduler.DefaultAutoConfig())
			n.edge.autos[key] = a
		}
		return a, nil
	}
	return scheduler.ParsePolicy(name)
}

// anyCodecAllowed reports whether some codec of in may carry some cut.
func anyCodecAllowed(in *scheduler.Inputs) bool {
	for i := range in.Codecs {
		c := &in.Codecs[i]
		for k := 0; k < len(in.Edge.Nodes); k++ {
			if c.AllowedAt(k, in.Accuracy) {
				return true
			}
		}
	}
	return false
}
