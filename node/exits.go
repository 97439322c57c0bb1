package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"gorgonia.org/tensor"
)

// Early exits under a latency SLO (Edgent, SPINN). A model whose
// calibration holds an exit table (scheduler.Calibration.Exits) is planned
// by scheduler.EarlyExit whenever a request has a deadline: its own
// (InferRequest.Deadline, or what is left of its context's deadline, as
// POST /v1/infer?deadline= sets it) or the node's default (Config.SLO).
// The edge then runs its head stage by stage and answers from the first
// edge-side exit whose confidence reaches the plan's threshold, sending
// nothing; otherwise the cloud runs the model right-sized at the plan's
// terminal exit. Requests without a deadline, or with an explicit policy
// other than "early-exit", take the ordinary path and the final exit.

// ExitReport is the early-exit part of an answer (InferResult.Exit and the
// API's "exit" field).
type ExitReport struct {
	// Name is the exit output that answered; Index its place among the
	// model's exits (partition.Exits order, the final exit last).
	Name  string `json:"name"`
	Index int    `json:"index"`
	// Confidence is that exit's largest softmax probability.
	Confidence float32 `json:"confidence"`
	// Terminal is the exit the plan right-sized the model at; Threshold the
	// confidence its edge-side exits needed (Early of them may answer).
	Terminal  string  `json:"terminal"`
	Early     int     `json:"early_exits"`
	Threshold float64 `json:"threshold"`
	// OnEdge is true when the edge answered (nothing was sent).
	OnEdge bool `json:"on_edge"`
	// DeadlineMS is the deadline planned for; Meets whether the plan's
	// worst case was predicted within it, Guarded whether it was with the
	// margin of recent prediction errors on its path too (exitGuards).
	DeadlineMS float64 `json:"deadline_ms"`
	Meets      bool    `json:"predicted_within_deadline"`
	Guarded    bool    `json:"guarded"`
	// ExpectedAccuracy is the plan's calibrated accuracy, ExpectedMS its
	// predicted mean latency.
	ExpectedAccuracy float64 `json:"expected_accuracy"`
	ExpectedMS       float64 `json:"expected_ms"`
}

// exitPolicy is the policy name that asks for the early-exit planner.
const exitPolicy = "early-exit"

// exitDeadline says whether request req for model m takes the early-exit
// path, and under which deadline: m must have an exit calibration and the
// request a deadline (its own, its context's, or the node's SLO), and no
// other policy forced.
func (n *Node) exitDeadline(ctx context.Context, m *Model, req InferRequest) (time.Duration, bool) {
	if m.Calibration == nil || m.Calibration.Exits == nil {
		// Asked for by name, it fails with a clear error (inferExits).
		return req.Deadline, req.Policy == exitPolicy
	}
	if req.Policy != "" && req.Policy != exitPolicy {
		return 0, false
	}
	switch {
	case req.Deadline > 0:
		return req.Deadline, true
	case hasDeadline(ctx):
		dl, _ := ctx.Deadline()
		return max(time.Until(dl), time.Nanosecond), true
	case n.cfg.SLO > 0:
		return n.cfg.SLO, true
	case req.Policy == exitPolicy:
		return 0, true // asked for by name: the most accurate plan
	}
	return 0, false
}

func hasDeadline(ctx context.Context) bool {
	_, ok := ctx.Deadline()
	return ok
}

// exitModel builds the planner's view of m's exits.
func exitModel(m *Model) (*scheduler.ExitModel, []partition.Exit, error) {
	exits, err := partition.Exits(m.Graph)
	if err != nil {
		return nil, nil, err
	}
	cuts := make([][]partition.PrefixCut, len(exits))
	for i, e := range exits {
		if cuts[i], err = partition.PrefixCuts(m.Graph, e.End); err != nil {
			return nil, nil, err
		}
	}
	em, err := scheduler.NewExitModel(exits, cuts, m.Calibration.Exits)
	if err != nil {
		return nil, nil, fmt.Errorf("node: model %s: %w", m.ID, err)
	}
	return em, exits, nil
}

// span lists the node indices [from, to).
func span(from, to int) []int {
	idx := make([]int, 0, max(0, to-from))
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	return idx
}

// inferExits serves one request with an early-exit plan (see the comment
// at the top of this file). start is when Infer began.
func (n *Node) inferExits(ctx context.Context, m *Model, req InferRequest, deadline time.Duration, start time.Time) (*InferResult, error) {
	budget := n.cfg.Accuracy
	if req.Accuracy != nil {
		budget = *req.Accuracy
	}
	if m.Calibration == nil || m.Calibration.Exits == nil {
		return nil, fmt.Errorf("%w: policy %s: model %s has no exit calibration (calibrate it on labelled data, e.g. --calibration mnist, with more than one output)",
			ErrBadRequest, exitPolicy, m.ID)
	}
	// Plans here bound latency (they maximise accuracy within it).
	res := &InferResult{Policy: exitPolicy, Objective: scheduler.ObjectiveLatency.String()}
	leave, err := n.enterEdge(ctx, m, res)
	if err != nil {
		return nil, err
	}
	defer leave()
	planStart := time.Now()
	em, exits, err := exitModel(m)
	if err != nil {
		return nil, err
	}
	in := n.inputs(ctx, m, req.Codec, budget)
	if req.Codec != "" && len(in.Codecs) == 0 {
		return nil, fmt.Errorf("%w: unknown codec %q", ErrBadRequest, req.Codec)
	}
	// Deadline: what is left of it after the request's own handling so far.
	left := deadline
	if deadline > 0 {
		left = max(deadline-time.Since(start), time.Nanosecond)
	}
	eg, cg := n.edge.exits.margins(m.ID, time.Now())
	plan, err := scheduler.EarlyExit{Model: em, Deadline: left, EdgeGuard: eg, CloudGuard: cg}.Plan(in)
	res.Measured.Planning = time.Since(planStart)
	if err != nil {
		return nil, fmt.Errorf("node: plan %s: %w", m.ID, err)
	}
	ch := plan.Exit
	term := exits[ch.Terminal]
	rep := &ExitReport{Terminal: term.Name, Early: ch.Early, Threshold: ch.Threshold, DeadlineMS: ms(deadline),
		Meets: ch.Meets, Guarded: ch.Guarded, ExpectedAccuracy: ch.Accuracy, ExpectedMS: ms(ch.Expected)}
	res.Exit = rep

	// The head, stage by stage.
	values := make(map[string]*tensor.Dense, 8)
	for i, vi := range m.Graph.Inputs {
		values[vi.Name] = req.Inputs[i]
	}
	headStart := time.Now()
	from := 0
	runStage := func(to int) error {
		if to <= from {
			return nil
		}
		err := n.runSpan(ctx, m, from, to, values)
		from = to
		return err
	}
	answer := func(e int, onEdge bool) error {
		_, conf, err := partition.Confidence(values[exits[e].Name], exits[e].Probs)
		if err != nil {
			return fmt.Errorf("node: model %s: %w", m.ID, err)
		}
		rep.Name, rep.Index, rep.Confidence, rep.OnEdge = exits[e].Name, e, conf, onEdge
		res.Outputs = []*tensor.Dense{values[exits[e].Name]}
		return nil
	}
	for i := 0; i < ch.Early; i++ {
		if err := runStage(exits[i].End); err != nil {
			return nil, err
		}
		_, conf, err := partition.Confidence(values[exits[i].Name], exits[i].Probs)
		if err != nil {
			return nil, fmt.Errorf("node: model %s: %w", m.ID, err)
		}
		if float64(conf) >= ch.Threshold {
			if err := answer(i, true); err != nil {
				return nil, err
			}
			res.Measured.EdgeCompute = time.Since(headStart)
			plan.K, plan.Codec, plan.Cloud, plan.Bytes, plan.WireBytes = exits[i].End, "", "", 0, 0
			plan.Predicted = scheduler.Breakdown{Overhead: in.Overhead, EdgeCompute: ch.Stops[i], Total: ch.Stops[i]}
			res.Plan = plan
			n.maybeProbe(m) // nothing went up: keep the link estimate fresh
			n.finish(ctx, m, res, start, "exit_edge")
			n.edge.exits.observe(time.Now(), m.ID, fmt.Sprintf("exit %d", i), false, res.Measured.Total, res.Predicted)
			return res, nil
		}
	}
	if err := runStage(plan.K); err != nil {
		return nil, err
	}
	res.Measured.EdgeCompute = time.Since(headStart)
	if plan.K == term.End {
		n.maybeProbe(m)
		if err := answer(ch.Terminal, true); err != nil {
			return nil, err
		}
		res.Plan = plan
		n.finish(ctx, m, res, start, "edge")
		n.edge.exits.observe(time.Now(), m.ID, fmt.Sprintf("cut %d of exit %d", plan.K, ch.Terminal), false, res.Measured.Total, res.Predicted)
		return res, nil
	}

	// The tail [K, End) of the model right-sized at the terminal exit.
	err = n.offloadSpan(ctx, m, plan, term.End, values, res)
	if err == nil {
		n.edge.bans.Succeed(res.Plan.Cloud)
		if err := answer(ch.Terminal, false); err != nil {
			return nil, err
		}
		n.finish(ctx, m, res, start, "offloaded")
		n.edge.exits.observe(time.Now(), m.ID, fmt.Sprintf("cut %d of exit %d on %s with %s", plan.K, ch.Terminal, res.Plan.Cloud, res.Plan.Codec), true, res.Measured.Total, res.Predicted)
		return res, nil
	}
	res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", plan.Cloud, err))
	if errors.Is(err, errClientDeadline) || ctx.Err() != nil {
		return nil, fmt.Errorf("node: %s: %w", m.ID, err)
	}
	ban := n.edge.bans.Fail(plan.Cloud)
	n.metrics.bans.WithLabelValues(plan.Cloud).Inc()
	n.statusLog.banned(plan.Cloud, err.Error())
	n.log.Warn("cloud failed; banned", "cloud", plan.Cloud, "for", ban, "err", err)
	// Finish the right-sized model here.
	localStart := time.Now()
	if err := n.runSpan(ctx, m, plan.K, term.End, values); err != nil {
		return nil, err
	}
	res.Measured = Measured{Planning: res.Measured.Planning, EdgeCompute: res.Measured.EdgeCompute + time.Since(localStart)}
	if err := answer(ch.Terminal, true); err != nil {
		return nil, err
	}
	res.Fallback = "local"
	res.BytesSent = 0
	plan.Predicted = scheduler.Breakdown{Overhead: in.Overhead, EdgeCompute: n.deviceLatency(m, span(0, term.End))}
	plan.Predicted.Total = plan.Predicted.Overhead + plan.Predicted.EdgeCompute
	plan.K, plan.Codec, plan.Cloud, plan.Bytes, plan.WireBytes = term.End, "", "", 0, 0
	res.Plan = plan
	n.finish(ctx, m, res, start, "fallback_local")
	return res, nil
}

// runSpan runs nodes [from, to) of m here (device-stretched) on values,
// adding what they produce.
func (n *Node) runSpan(ctx context.Context, m *Model, from, to int, values map[string]*tensor.Dense) error {
	idx := span(from, to)
	pr, err := m.pieceSet(idx)
	if err != nil {
		return err
	}
	in := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		t, ok := values[vi.Name]
		if !ok {
			return fmt.Errorf("node: model %s: tensor %q missing for nodes [%d,%d)", m.ID, vi.Name, from, to)
		}
		in[i] = t
	}
	// On a worker of the edge device (Config.EdgeWorkers), as heads are.
	outs, err := onEdge(ctx, n, func() ([]*tensor.Dense, error) {
		start := time.Now()
		outs, err := pr.run(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("node: model %s nodes [%d,%d): %w", m.ID, from, to, err)
		}
		return outs, n.cfg.Device.Emulate(ctx, time.Since(start), n.deviceLatency(m, idx))
	})
	if err != nil {
		return err
	}
	for i, vi := range pr.piece.Graph.Outputs {
		values[vi.Name] = outs[i]
	}
	return nil
}

// offloadSpan sends the inputs of nodes [p.K, end) to p's cloud, which
// runs them, and adds the answer to values; it fills res's plan and
// measurements.
func (n *Node) offloadSpan(ctx context.Context, m *Model, p scheduler.Plan, end int, values map[string]*tensor.Dense, res *InferResult) error {
	tail := span(p.K, end)
	pr, err := m.pieceSet(tail)
	if err != nil {
		return err
	}
	h := &headResult{k: p.K, values: values}
	b, err := encodeBoundary(pr, h, p.Codec)
	if err != nil {
		return err
	}
	x, used, err := n.callHedged(ctx, m, p, tail, b, maxSegmentBody(pr.piece.Graph.Outputs))
	if err != nil {
		return err
	}
	decStart := time.Now()
	outs, err := tensorcodec.Decode(nil, x.body)
	if err != nil {
		return fmt.Errorf("node: result from %s: %w", used.Cloud, err)
	}
	if err := checkInputs(pr.piece.Graph.Outputs, outs); err != nil {
		return fmt.Errorf("node: result from %s does not fit nodes [%d,%d): %w", used.Cloud, p.K, end, err)
	}
	decode := time.Since(decStart)
	for i, vi := range pr.piece.Graph.Outputs {
		values[vi.Name] = outs[i]
	}
	q, c, d, e := x.hdr.Queue, x.hdr.Compute, x.hdr.Decode, x.hdr.Encode
	res.Measured = Measured{Planning: res.Measured.Planning, EdgeCompute: res.Measured.EdgeCompute, Encode: b.encode,
		Queue: q, CloudCompute: c, Decode: d + e + decode, Transfer: max(0, x.took-q-c-d-e)}
	res.BytesSent = int64(len(b.payload))
	res.TailVersion = x.hdr.Version // callCloud refuses another version's answer
	n.metrics.bytesSent.Add(float64(len(b.payload)))
	// The codec ratio at K is the full model's; the link is the same.
	down := time.Duration(float64(len(x.body)) / x.est.Down * float64(time.Second))
	x.link.learnUpload(int64(len(b.payload)), res.Measured.Transfer, down, x.est, x.hdr, x.loaded)
	res.Plan = used
	return nil
}

// exitGuards keeps, per model, how much later than predicted the recent
// early-exit answers arrived on each path (answered on the edge, or
// offloaded), so that plans keep that margin to the deadline: the SLO is
// met on the share of requests the quantile says, not on average. The zero
// value is ready; it is safe for concurrent use.
type exitGuards struct {
	mu      sync.Mutex
	byModel map[string]*[2]errWindow // [0] edge, [1] cloud
	// seen holds the plans answered before: the first answer of a plan
	// also compiles its pieces (on the edge and the cloud), which says
	// nothing about the path's errors, so it is not kept.
	seen map[string]bool
}

// maxSeenPlans bounds exitGuards.seen (forgotten all at once past it).
const maxSeenPlans = 1024

// exitGuardQuantile is the quantile of recent errors kept as the margin:
// the SLO target is 99 % of requests within their deadline.
const exitGuardQuantile = 0.99

// errWindowSize is how many recent errors each path keeps: a spike is
// forgotten after this many requests.
const errWindowSize = 128

// exitGuardTTL is how long an error counts: a path the plans avoid (its
// margin too large) gets no new errors, so its old ones must expire for it
// to be tried again.
const exitGuardTTL = 20 * time.Second

// errWindow is a ring of recent errors (measured − predicted) and when
// they were seen.
type errWindow struct {
	v    [errWindowSize]time.Duration
	at   [errWindowSize]time.Time
	n    int
	next int
}

func (w *errWindow) add(now time.Time, d time.Duration) {
	w.v[w.next], w.at[w.next] = d, now
	w.next = (w.next + 1) % len(w.v)
	w.n = min(w.n+1, len(w.v))
}

// quantile is the q-quantile of the errors seen within exitGuardTTL of now
// (0 when there are none; with fewer than 1/(1−q), the largest), never
// negative.
func (w *errWindow) quantile(now time.Time, q float64) time.Duration {
	s := make([]time.Duration, 0, w.n)
	for i := 0; i < w.n; i++ {
		if now.Sub(w.at[i]) <= exitGuardTTL {
			s = append(s, w.v[i])
		}
	}
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return max(s[min(max(i, 0), len(s)-1)], 0)
}

// margins returns model id's edge and cloud guards at now.
func (g *exitGuards) margins(id string, now time.Time) (edge, cloud time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.byModel[id]
	if !ok {
		return 0, 0
	}
	return w[0].quantile(now, exitGuardQuantile), w[1].quantile(now, exitGuardQuantile)
}

// observe records the error of one answer of plan (its key: what it ran)
// on its path, unless it is the plan's first.
func (g *exitGuards) observe(now time.Time, id, plan string, offloaded bool, measured, predicted time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byModel == nil {
		g.byModel = make(map[string]*[2]errWindow)
		g.seen = make(map[string]bool)
	}
	key := id + "|" + plan
	if !g.seen[key] {
		if len(g.seen) >= maxSeenPlans {
			clear(g.seen)
		}
		g.seen[key] = true
		return
	}
	w, ok := g.byModel[id]
	if !ok {
		w = new([2]errWindow)
		g.byModel[id] = w
	}
	i := 0
	if offloaded {
		i = 1
	}
	w[i].add(now, measured-predicted)
}
