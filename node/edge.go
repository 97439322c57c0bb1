package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// InferRequest asks an edge node to run a model on one input.
type InferRequest struct {
	// Model is the model id; empty means the node's first model.
	Model string
	// Inputs follow the model's inputs (usually one NCHW tensor).
	Inputs []*tensor.Dense
	// Policy overrides the node's policy for this request ("" = node's).
	Policy string
	// Codec forces a codec preset ("" = the scheduler chooses). A forced
	// codec still obeys the accuracy budget.
	Codec string
	// Accuracy overrides the node's accuracy budget for this request (nil:
	// the node's).
	Accuracy *scheduler.AccuracyBudget
}

// ErrBadRequest is wrapped by Infer for a request that cannot be served as
// asked (unknown policy or codec, a codec the accuracy budget forbids): a
// client error, unlike a failure of the cluster.
var ErrBadRequest = errors.New("node: bad request")

// Measured is the measured latency of one request, split as the cost model
// splits its prediction. Transfer is the network time (upload, propagation,
// download) seen by the edge: the call's duration less the cloud's reported
// queue and work.
type Measured struct {
	EdgeCompute  time.Duration `json:"edge_compute"`
	Encode       time.Duration `json:"encode"`
	Transfer     time.Duration `json:"transfer"`
	Queue        time.Duration `json:"queue"`
	CloudCompute time.Duration `json:"cloud_compute"`
	Decode       time.Duration `json:"decode"`
	Total        time.Duration `json:"total"`
}

// InferResult is the answer to an InferRequest.
type InferResult struct {
	Outputs []*tensor.Dense `json:"-"`
	// Class is the argmax of the last output; Label its name when known.
	Class int     `json:"class"`
	Label string  `json:"label,omitempty"`
	Score float32 `json:"score"`
	// Plan is what ran (after any fallback); Predicted its predicted cost.
	Plan      scheduler.Plan `json:"-"`
	Policy    string         `json:"policy"`
	Cut       int            `json:"cut"`
	Codec     string         `json:"codec,omitempty"`
	Cloud     string         `json:"cloud,omitempty"`
	BytesSent int64          `json:"bytes_sent"`
	Predicted time.Duration  `json:"predicted"`
	Measured  Measured       `json:"measured"`
	// ModelVersion is the version of the model that produced the answer.
	ModelVersion string `json:"model_version"`
	// Accuracy is what the plan that ran risks: its codec's fidelity, the
	// calibration behind it and the budget it was chosen under.
	Accuracy scheduler.Accuracy `json:"accuracy"`
	// Fallback says what happened when the planned cloud failed: "" (none),
	// "retried:<cloud>", "local".
	Fallback string   `json:"fallback,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// ErrNotEdge is returned by Infer on a cloud node.
var ErrNotEdge = errors.New("node: only edge nodes take inference requests")

// Infer runs one request: plan, run the head here, send the boundary to the
// chosen cloud, receive the result. If the cloud fails or misses the
// deadline, the cloud is banned for a while and the request is retried on
// another cloud or finished here. Exactly one result (or error) is returned
// per call.
func (n *Node) Infer(ctx context.Context, req InferRequest) (*InferResult, error) {
	if n.cfg.Role != RoleEdge {
		return nil, ErrNotEdge
	}
	start := time.Now()
	m, err := n.model(req.Model)
	if err != nil {
		return nil, err
	}
	if len(req.Inputs) != len(m.Graph.Inputs) {
		return nil, fmt.Errorf("node: model %s takes %d inputs, got %d", m.ID, len(m.Graph.Inputs), len(req.Inputs))
	}
	if err := checkInputs(m.Graph.Inputs, req.Inputs); err != nil {
		return nil, fmt.Errorf("node: model %s: %w", m.ID, err)
	}
	policyName := req.Policy
	if policyName == "" {
		policyName = n.cfg.Policy
	}
	budget := n.cfg.Accuracy
	if req.Accuracy != nil {
		budget = *req.Accuracy
	}
	res := &InferResult{Policy: policyName}
	var lastHead *headResult
	for attempt := 0; attempt < n.cfg.Attempts; attempt++ {
		plan, err := n.plan(ctx, m, policyName, req.Codec, budget)
		if err != nil {
			return nil, err
		}
		if plan.EdgeOnly() || len(tailSet(m, headSet(plan))) == 0 {
			n.maybeProbe(m)
			break
		}
		head, err := n.runHead(ctx, m, plan, req.Inputs, lastHead)
		if err != nil {
			return nil, err
		}
		lastHead = head
		err = n.offload(ctx, m, plan, head, res)
		if err == nil {
			n.bans.Succeed(plan.Cloud)
			res.Plan = plan
			n.finish(m, res, start, "offloaded")
			return res, nil
		}
		res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", plan.Cloud, err))
		if ctx.Err() != nil {
			// The client's own deadline or cancellation: not the
			// cloud's fault, so no ban.
			break
		}
		ban := n.bans.Fail(plan.Cloud)
		n.log.Warn("cloud failed; banned", "cloud", plan.Cloud, "for", ban, "err", err)
		res.Fallback = "retried"
	}
	// Edge-only, or every cloud tried failed: finish here.
	if err := n.runLocal(ctx, m, req.Inputs, lastHead, res); err != nil {
		return nil, err
	}
	res.Plan.Accuracy.Budget = budget
	outcome := "edge"
	if res.Fallback != "" {
		res.Fallback = "local"
		outcome = "fallback_local"
	} else {
		n.overheads[m.ID].observe(time.Since(start) - n.profiles[m.ID].HeadLatency(m.Nodes()))
	}
	n.finish(m, res, start, outcome)
	return res, nil
}

func (n *Node) model(id string) (*Model, error) {
	if id == "" {
		return n.cfg.Models[0], nil
	}
	m, ok := n.models[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModel, id)
	}
	return m, nil
}

// finish fills the result's summary fields and metrics.
func (n *Node) finish(m *Model, res *InferResult, start time.Time, outcome string) {
	res.Measured.Total = time.Since(start)
	res.Cut = res.Plan.K
	res.Codec = res.Plan.Codec
	res.Cloud = res.Plan.Cloud
	res.Predicted = res.Plan.Predicted.Total
	res.ModelVersion = m.Version
	res.Accuracy = res.Plan.Accuracy
	out := res.Outputs[len(res.Outputs)-1]
	data := out.Data().([]float32)
	res.Class = argmax(data)
	if len(data) > 0 {
		res.Score = data[res.Class]
	}
	if m.Sidecar != nil && res.Class < len(m.Sidecar.Labels) {
		res.Label = m.Sidecar.Labels[res.Class]
	}
	n.metrics.requests.WithLabelValues(outcome).Inc()
	n.metrics.latency.WithLabelValues("total").Observe(res.Measured.Total.Seconds())
	n.metrics.latency.WithLabelValues("edge").Observe(res.Measured.EdgeCompute.Seconds())
	n.metrics.latency.WithLabelValues("transfer").Observe(res.Measured.Transfer.Seconds())
	n.metrics.cut.Set(float64(res.Plan.K))
	n.metrics.accuracy.WithLabelValues(m.ID).Set(res.Accuracy.Lower)
	n.metrics.codecs.WithLabelValues(codecLabel(res.Codec), res.Accuracy.Fidelity.String()).Inc()
}

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
	return n.plan(ctx, m, policy, "", n.cfg.Accuracy)
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
	in := &scheduler.Inputs{Edge: n.profiles[m.ID], DAG: n.dags[m.ID], Codecs: n.tables[m.ID].snapshot(),
		Overhead: n.overheads[m.ID].value(), Accuracy: budget}
	if codec != "" {
		in.Codecs = slices.DeleteFunc(in.Codecs, func(c scheduler.CodecModel) bool { return c.Name != codec })
	}
	for _, p := range n.members.Peers() {
		if !p.Alive || p.Meta.Role != RoleCloud || !servesVersion(p.Meta, m) {
			continue
		}
		prof, err := n.remoteProfile(ctx, p, m)
		if err != nil {
			n.log.Debug("no profile from cloud yet", "cloud", p.Name, "err", err)
			continue
		}
		n.bans.Forgive(p.Name, p.Joined) // a restarted cloud starts clean
		ci := scheduler.CloudInput{ID: p.Name, Profile: prof, Link: n.linkEstimate(p)}
		ci.Queue = time.Duration(p.Meta.Queue) * time.Duration(p.Meta.ServiceMicros) * time.Microsecond
		in.Clouds = append(in.Clouds, ci)
	}
	n.bans.Apply(in.Clouds)
	return in
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
	n.access.mu.Lock()
	le = n.access.learn.Link(p.Name, time.Now(), le)
	n.access.mu.Unlock()
	if est, ok := n.ep.Estimate(p.Meta.QUICAddr); ok && est.RecvGoodput > 0 {
		le.Down = est.RecvGoodput / 8
	}
	return le
}

// remoteProfile returns the cloud's profile of m, fetching it over
// transport when the cloud's gossiped digest changed.
func (n *Node) remoteProfile(ctx context.Context, p Peer, m *Model) (*partition.Profile, error) {
	key := p.Name + "/" + m.ID
	n.remoteMu.Lock()
	rp, ok := n.remote[key]
	n.remoteMu.Unlock()
	if ok && rp.digest == p.Meta.ProfileDigest {
		return rp.profile, nil
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := n.ep.Call(fctx, p.Meta.QUICAddr, &transport.Request{
		ID: n.reqID.Add(1), Model: m.ID, Version: m.Version, From: 0, To: 0,
		Meta: map[string]string{metaOp: opProfile},
	}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var prof partition.Profile
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&prof); err != nil {
		return nil, fmt.Errorf("node: profile from %s: %w", p.Name, err)
	}
	if len(prof.Nodes) != m.Nodes() || len(prof.Cuts) != m.Nodes()+1 {
		return nil, fmt.Errorf("node: profile from %s has %d nodes, model %s has %d", p.Name, len(prof.Nodes), m.ID, m.Nodes())
	}
	n.remoteMu.Lock()
	n.remote[key] = remoteProfile{digest: p.Meta.ProfileDigest, profile: &prof}
	n.remoteMu.Unlock()
	return &prof, nil
}

// plan asks the policy for a plan.
func (n *Node) plan(ctx context.Context, m *Model, policyName, codec string, budget scheduler.AccuracyBudget) (scheduler.Plan, error) {
	pol, err := n.policy(m, policyName, budget)
	if err != nil {
		return scheduler.Plan{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	in := n.inputs(ctx, m, codec, budget)
	if codec != "" && len(in.Codecs) == 0 {
		return scheduler.Plan{}, fmt.Errorf("%w: unknown codec %q", ErrBadRequest, codec)
	}
	if codec != "" && !anyCodecAllowed(in) {
		return scheduler.Plan{}, fmt.Errorf("%w: codec %s is not allowed at any cut of model %s under %v (%s codecs need a calibration that certifies them)",
			ErrBadRequest, codec, m.ID, budget, in.Codecs[0].Fidelity)
	}
	if len(in.Clouds) == 0 || allUnavailable(in.Clouds) {
		return scheduler.EdgeOnly{}.Plan(in)
	}
	plan, err := pol.Plan(in)
	if errors.Is(err, scheduler.ErrNoCloud) {
		return scheduler.EdgeOnly{}.Plan(in)
	}
	if errors.Is(err, scheduler.ErrAccuracy) {
		return scheduler.Plan{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return plan, err
}

func allUnavailable(cs []scheduler.CloudInput) bool {
	for _, c := range cs {
		if !c.Unavailable {
			return false
		}
	}
	return true
}

// policy returns the policy to use: the shared Auto instance of the model
// (which keeps hysteresis state) or a fresh stateless one.
// maxAutos bounds the decision streams (model × accuracy budget) an edge
// keeps hysteresis for; requests with further budgets get plans without it.
const maxAutos = 64

// policy returns the named policy for model m. auto keeps one decision
// stream per model and accuracy budget, so requests with a stricter budget
// do not knock the default stream off its plan.
func (n *Node) policy(m *Model, name string, budget scheduler.AccuracyBudget) (scheduler.Policy, error) {
	if strings.EqualFold(name, "auto") {
		key := m.ID
		if budget != n.cfg.Accuracy {
			key = fmt.Sprintf("%s|%v", m.ID, budget)
		}
		n.autoMu.Lock()
		defer n.autoMu.Unlock()
		a, ok := n.autos[key]
		if !ok {
			if len(n.autos) >= maxAutos {
				return scheduler.NewAuto(scheduler.AutoConfig{Threshold: 0, Consecutive: 1, Label: "auto"}), nil
			}
			a = scheduler.NewAuto(scheduler.DefaultAutoConfig())
			n.autos[key] = a
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

// headResult is what the edge computed for a plan: every tensor the head
// produced or was given, by name.
type headResult struct {
	k       int
	idx     []int  // the head's node set
	set     string // formatRanges of idx
	values  map[string]*tensor.Dense
	elapsed time.Duration
}

// headSet returns the edge's node set of plan p.
func headSet(p scheduler.Plan) []int {
	if p.K >= 0 {
		idx := make([]int, p.K)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return p.Head
}

// runHead runs the plan's head on the inputs (device-stretched).
func (n *Node) runHead(ctx context.Context, m *Model, p scheduler.Plan, inputs []*tensor.Dense, prev *headResult) (*headResult, error) {
	set := headSet(p)
	key := formatRanges(set)
	if prev != nil && prev.set == key {
		return prev, nil
	}
	h := &headResult{k: p.K, idx: set, set: key, values: make(map[string]*tensor.Dense)}
	for i, in := range m.Graph.Inputs {
		h.values[in.Name] = inputs[i]
	}
	if len(set) == 0 {
		return h, nil
	}
	pr, err := m.pieceSet(set)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	hin := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		hin[i] = h.values[vi.Name]
	}
	outs, err := pr.run(ctx, hin)
	if err != nil {
		return nil, fmt.Errorf("node: head of %s: %w", m.ID, err)
	}
	if err := n.cfg.Device.Emulate(ctx, time.Since(start), n.deviceLatency(m, set)); err != nil {
		return nil, err
	}
	h.elapsed = time.Since(start)
	for i, vi := range pr.piece.Graph.Outputs {
		h.values[vi.Name] = outs[i]
	}
	return h, nil
}

// tailSet is the complement of the head set.
func tailSet(m *Model, head []int) []int {
	in := make([]bool, m.Nodes())
	for _, i := range head {
		in[i] = true
	}
	var idx []int
	for i := range in {
		if !in[i] {
			idx = append(idx, i)
		}
	}
	return idx
}

// offload sends the tail's inputs to the plan's cloud and fills res.
func (n *Node) offload(ctx context.Context, m *Model, p scheduler.Plan, h *headResult, res *InferResult) error {
	tail := tailSet(m, headSet(p))
	pr, err := m.pieceSet(tail)
	if err != nil {
		return err
	}
	tin := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		t, ok := h.values[vi.Name]
		if !ok {
			return fmt.Errorf("node: boundary tensor %q missing", vi.Name)
		}
		tin[i] = t
	}
	preset, err := tensorcodec.ParsePreset(p.Codec)
	if err != nil {
		return err
	}
	encStart := time.Now()
	payload, _, err := tensorcodec.EncodePreset(nil, preset, tin...)
	if err != nil {
		return fmt.Errorf("node: encode boundary: %w", err)
	}
	encode := time.Since(encStart)
	peer, ok := n.members.Peer(p.Cloud)
	if !ok || !peer.Alive {
		return fmt.Errorf("node: cloud %s is gone", p.Cloud)
	}
	req := &transport.Request{ID: n.reqID.Add(1), Model: m.ID, Version: m.Version, Codec: p.Codec,
		From: uint32(tail[0]), To: uint32(tail[len(tail)-1] + 1)}
	if p.K < 0 {
		req.Meta = map[string]string{metaNodes: formatRanges(tail)}
	}
	// Give the cloud a deadline proportional to the prediction so a stuck
	// cloud is abandoned in time to finish elsewhere.
	limit := 3*p.Predicted.Total + 500*time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	link := n.linkTo(p.Cloud)
	est := n.linkEstimate(peer)
	loaded := link.busy()
	callStart := time.Now()
	up := link.upload(bytes.NewReader(payload))
	resp, err := n.ep.Call(cctx, peer.Meta.QUICAddr, req, up)
	up.done()
	if err != nil {
		if transport.CodeOf(err) == transport.CodeDeadlineExceeded {
			// The boundary did not get through in time: whatever else went
			// wrong, the uplink delivered at most this much.
			link.observeUp(int64(len(payload)), time.Since(callStart), est.Up)
		}
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	resp.Body.Close()
	if err != nil {
		return err
	}
	call := time.Since(callStart)
	decStart := time.Now()
	outs, err := tensorcodec.Decode(nil, body)
	if err != nil {
		return fmt.Errorf("node: result from %s: %w", p.Cloud, err)
	}
	if len(outs) != len(pr.piece.Graph.Outputs) {
		return fmt.Errorf("node: result from %s has %d tensors, want %d", p.Cloud, len(outs), len(pr.piece.Graph.Outputs))
	}
	decode := time.Since(decStart)
	for i, vi := range pr.piece.Graph.Outputs {
		h.values[vi.Name] = outs[i]
	}
	res.Outputs = res.Outputs[:0]
	for _, o := range m.Graph.Outputs {
		t, ok := h.values[o.Name]
		if !ok {
			return fmt.Errorf("node: output %q not produced", o.Name)
		}
		res.Outputs = append(res.Outputs, t)
	}
	q, c, d, e := metaDur(resp.Meta, metaQueue), metaDur(resp.Meta, metaCompute), metaDur(resp.Meta, metaDecode), metaDur(resp.Meta, metaEncode)
	res.Measured = Measured{
		EdgeCompute: h.elapsed, Encode: encode, Queue: q, CloudCompute: c, Decode: d + e + decode,
		Transfer: max(0, call-q-c-d-e),
	}
	res.BytesSent = int64(len(payload))
	n.metrics.bytesSent.Add(float64(len(payload)))
	// Learn from what this send achieved: the codec's ratio at this cut,
	// the RTT and the uplink goodput.
	var raw int64
	for _, t := range tin {
		raw += int64(4 * t.Shape().TotalSize())
	}
	if p.K >= 0 {
		n.tables[m.ID].observe(p.Codec, p.K, raw, int64(len(payload)))
	}
	down := time.Duration(float64(len(body)) / est.Down * float64(time.Second))
	link.learnUpload(int64(len(payload)), res.Measured.Transfer, down, est, resp.Meta, loaded)
	return nil
}

func metaDur(m map[string]string, k string) time.Duration {
	v, err := strconv.ParseInt(m[k], 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return time.Duration(v)
}

// runLocal finishes the model here: the whole model, or the tail after a
// head already computed for a failed offload.
func (n *Node) runLocal(ctx context.Context, m *Model, inputs []*tensor.Dense, h *headResult, res *InferResult) error {
	var set []int
	if h == nil {
		set = make([]int, m.Nodes())
		for i := range set {
			set[i] = i
		}
		h = &headResult{values: make(map[string]*tensor.Dense)}
		for i, in := range m.Graph.Inputs {
			h.values[in.Name] = inputs[i]
		}
	} else {
		set = tailSet(m, h.idx)
	}
	start := time.Now()
	if len(set) > 0 {
		pr, err := m.pieceSet(set)
		if err != nil {
			return err
		}
		in := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
		for i, vi := range pr.piece.Graph.Inputs {
			in[i] = h.values[vi.Name]
		}
		outs, err := pr.run(ctx, in)
		if err != nil {
			return fmt.Errorf("node: run %s locally: %w", m.ID, err)
		}
		if err := n.cfg.Device.Emulate(ctx, time.Since(start), n.deviceLatency(m, set)); err != nil {
			return err
		}
		for i, vi := range pr.piece.Graph.Outputs {
			h.values[vi.Name] = outs[i]
		}
	}
	res.Outputs = res.Outputs[:0]
	for _, o := range m.Graph.Outputs {
		res.Outputs = append(res.Outputs, h.values[o.Name])
	}
	compute := n.profiles[m.ID].HeadLatency(m.Nodes())
	var over time.Duration
	if o, ok := n.overheads[m.ID]; ok {
		over = o.value()
	}
	res.Plan = scheduler.Plan{Policy: res.Policy, K: m.Nodes(), Predicted: scheduler.Breakdown{
		Overhead: over, EdgeCompute: compute, Total: over + compute},
		Accuracy: scheduler.Accuracy{Fidelity: scheduler.Exact, Lower: 1, Budget: res.Plan.Accuracy.Budget}}
	res.Measured = Measured{EdgeCompute: h.elapsed + time.Since(start)}
	res.BytesSent = 0
	return nil
}

// maybeProbe keeps the link estimates fresh while requests run on the edge:
// with nothing offloaded, transport measures no goodput and an improved link
// would never be noticed. When a probe is due (scheduler.ProbeWait after
// the last), it sends one sized to the current estimate
// (scheduler.ProbeSize) in the background; the cloud discards it and says
// how long it took to arrive.
func (n *Node) maybeProbe(m *Model) {
	if n.isClosed() {
		return
	}
	// One probe at a time, to the cloud probed least recently
	// (scheduler.EdgeLearner.ProbeTarget). Banned clouds are probed too, so
	// their estimate is fresh when the ban ends.
	n.access.mu.Lock()
	due := n.access.learn.ProbeDue(time.Now())
	n.access.mu.Unlock()
	if !due {
		return
	}
	var names []string
	peers := map[string]Peer{}
	for _, p := range n.members.Peers() {
		if !p.Alive || p.Meta.Role != RoleCloud || !servesVersion(p.Meta, m) {
			continue
		}
		names = append(names, p.Name)
		peers[p.Name] = p
	}
	n.access.mu.Lock()
	name, ok := n.access.learn.ProbeTarget(time.Now(), names)
	n.access.mu.Unlock()
	if !ok {
		return
	}
	target := peers[name]
	est := n.linkEstimate(target)
	size := scheduler.ProbeSize(est.Up)
	n.wg.Add(1)
	go func(p Peer) {
		defer n.wg.Done()
		l := n.linkTo(p.Name)
		loaded := l.busy()
		d, meta, err := n.probe(p, l.upload(bytes.NewReader(probePayload[:size])))
		var air time.Duration
		if err == nil {
			air = d - est.RTT
			if rd, _, ok := parseRecv(meta); ok {
				air = rd // the cloud's timing of the arrival is the better measure
			}
		}
		u := uploadSample(int64(size), d, 0, est, meta, loaded)
		now := time.Now()
		n.access.mu.Lock()
		n.access.learn.ProbeDone(now, air, err == nil)
		if err == nil {
			n.access.learn.ObserveUpload(p.Name, now, u)
		}
		n.access.mu.Unlock()
	}(target)
}

// probePayload is incompressible-looking filler (QUIC does not compress,
// but keep it realistic for any middlebox that would).
var probePayload = func() (b [scheduler.MaxProbeBytes]byte) {
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// codecLabel is the codec's metrics label ("none" for edge-only).
func codecLabel(c string) string {
	if c == "" {
		return "none"
	}
	return c
}

// argmax is the index of v's largest element (the first of equals; 0 for an
// empty v).
func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
