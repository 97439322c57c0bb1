package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/prometheus/client_golang/prometheus"
	"gorgonia.org/tensor"
)

// InferRequest asks an edge node to run a model on one input.
type InferRequest struct {
	// Model is the model id; empty means the node's first model.
	Model string
	// Version pins a version of the model the node serves; empty means
	// the node's choice (its active version, or a canary's for the
	// canary's share of requests).
	Version string
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
	// Deadline is the request's latency SLO for models with calibrated
	// early exits (0: its context's deadline, else Config.SLO; exits.go).
	Deadline time.Duration
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
	// Planning is the time the edge spent choosing the plan (fetching a
	// cloud's profile on first contact included).
	Planning     time.Duration `json:"planning"`
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
	Plan   scheduler.Plan `json:"-"`
	Policy string         `json:"policy"`
	Cut    int            `json:"cut"`
	Codec  string         `json:"codec,omitempty"`
	Cloud  string         `json:"cloud,omitempty"`
	// Via is the edge server of a three-tier answer (it ran nodes
	// [Cut, Cut2) and sent the rest to Cloud).
	Via       string        `json:"via,omitempty"`
	Cut2      int           `json:"cut2,omitempty"`
	BytesSent int64         `json:"bytes_sent"`
	Predicted time.Duration `json:"predicted"`
	Measured  Measured      `json:"measured"`
	// ModelVersion is the version of the model that produced the answer;
	// TailVersion the version the cloud ran the tail with (offloaded
	// answers; always ModelVersion: an answer from another version is
	// refused and the request retried).
	ModelVersion string `json:"model_version"`
	TailVersion  string `json:"tail_version,omitempty"`
	// Accuracy is what the plan that ran risks: its codec's fidelity, the
	// calibration behind it and the budget it was chosen under.
	Accuracy scheduler.Accuracy `json:"accuracy"`
	// Fallback says what happened when the planned cloud failed: "" (none),
	// "retried:<cloud>", "local".
	Fallback string   `json:"fallback,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	// Exit says which exit answered an early-exit plan (exits.go).
	Exit *ExitReport `json:"exit,omitempty"`
	// Objective is what the plan minimised (the configured objective, or
	// throughput while requests queue for the edge: Config.ThroughputQueue).
	Objective string `json:"objective"`

	edgeWait time.Duration // waited for an edge worker (not overhead)
}

// ErrNotEdge is returned by Infer on a cloud node.
var ErrNotEdge = errors.New("node: only edge nodes take inference requests")

// edgeRole is what only an edge holds: the bans on failing clouds, the
// auto policy's hysteresis, the clouds' profiles it fetched, what it
// learned of its links, and per model the codec table and the per-request
// overhead. Node.edge is nil on clouds.
type edgeRole struct {
	bans     *scheduler.BanList
	autoMu   sync.Mutex
	autos    map[string]*scheduler.Auto // per model version (budget, objective), keeps hysteresis
	profiles *profileCache              // the clouds' profiles (profiles.go)
	workers  *edgeWorkers               // the device's compute slots (throughput.go)
	viaMu    sync.Mutex
	viaCorr  map[string]*scheduler.EWMA // per edge server: measured − predicted of its piece and second hop
	twoCorr  map[string]*scheduler.EWMA // per target of two-tier offloads: measured − predicted total
	access   accessLink                 // what the edge learned of its links (scheduler.EdgeLearner), and probes
	exits    exitGuards                 // early exits' recent prediction errors (exits.go)
}

// startEdge gives the node its edge role (the per-model codec tables and
// overheads are measured when each model version loads).
func (n *Node) startEdge() {
	n.edge = &edgeRole{
		bans:     scheduler.NewBanList(scheduler.BanConfig{Base: n.cfg.BanBase}),
		autos:    make(map[string]*scheduler.Auto),
		profiles: newProfileCache(),
		workers:  newEdgeWorkers(n.cfg.EdgeWorkers),
		viaCorr:  make(map[string]*scheduler.EWMA),
		twoCorr:  make(map[string]*scheduler.EWMA),
	}
	w := n.edge.workers
	n.cfg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edgesplit_edge_waiting", Help: "Requests waiting for an edge worker (Config.EdgeWorkers).",
		ConstLabels: prometheus.Labels{"node": n.cfg.Name},
	}, func() float64 { return float64(w.waiting.Load()) }))
}

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
	m, err := n.pick(req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	if len(req.Inputs) != len(m.Graph.Inputs) {
		return nil, fmt.Errorf("node: model %s takes %d inputs, got %d", m.ID, len(m.Graph.Inputs), len(req.Inputs))
	}
	if err := checkInputs(m.Graph.Inputs, req.Inputs); err != nil {
		return nil, fmt.Errorf("node: model %s: %w", m.ID, err)
	}
	if d, ok := n.exitDeadline(ctx, m, req); ok {
		return n.inferExits(ctx, m, req, d, start) // early exits under an SLO (exits.go)
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
	leave, err := n.enterEdge(ctx, m, res)
	if err != nil {
		return nil, err
	}
	defer leave()
	var lastHead *headResult
	for attempt := 0; attempt < n.cfg.Attempts; attempt++ {
		planStart := time.Now()
		plan, obj, err := n.plan(ctx, m, policyName, req.Codec, budget)
		res.Objective = obj.String()
		res.Measured.Planning += time.Since(planStart)
		if err != nil {
			return nil, err
		}
		if plan.EdgeOnly() || len(tailSet(m, headSet(plan))) == 0 {
			n.maybeProbe(m)
			break
		}
		head, err := n.runHeadOnEdge(ctx, m, plan, req.Inputs, lastHead, res)
		if err != nil {
			return nil, err
		}
		lastHead = head
		used, err := n.offload(ctx, m, plan, head, res)
		if err == nil {
			n.edge.bans.Succeed(used.Target())
			res.Plan = used
			n.finish(ctx, m, res, start, "offloaded")
			if used.Via == "" {
				// How far the prediction (as corrected when compared with
				// three-tier plans) was off.
				corrected := used.Predicted.Total + n.correction(n.edge.twoCorr, used.Target())
				n.learnCorrection(n.edge.twoCorr, used.Target(), res.Measured.Total-res.edgeWait-corrected)
			}
			n.compareCanary(m, req.Inputs, res.Class)
			return res, nil
		}
		target := plan.Target()
		res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", target, err))
		if errors.Is(err, errClientDeadline) {
			// The cloud ran out of the client's time: no ban, and no
			// late local answer either.
			return nil, fmt.Errorf("node: %s: %w", m.ID, err)
		}
		if ctx.Err() != nil {
			// The client's own deadline or cancellation: not the
			// cloud's fault, so no ban.
			break
		}
		ban := n.edge.bans.Fail(target)
		n.metrics.bans.WithLabelValues(target).Inc()
		n.statusLog.banned(target, err.Error())
		n.log.Warn("cloud failed; banned", "cloud", target, "for", ban, "err", err)
		res.Fallback = "retried"
	}
	// The client's deadline passed (or it gave up) while a cloud worked:
	// a late local answer is no answer.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("node: %s: %w", m.ID, context.Cause(ctx))
	}
	// Edge-only, or every cloud tried failed: finish here.
	if err := n.runLocalOnEdge(ctx, m, req.Inputs, lastHead, res); err != nil {
		return nil, err
	}
	res.Plan.Accuracy.Budget = budget
	outcome := "edge"
	if res.Fallback != "" {
		res.Fallback = "local"
		outcome = "fallback_local"
	} else {
		st := n.state(m)
		st.overhead.observe(time.Since(start) - res.edgeWait - st.profile.HeadLatency(m.Nodes()))
	}
	n.finish(ctx, m, res, start, outcome)
	n.compareCanary(m, req.Inputs, res.Class)
	return res, nil
}

// errClientDeadline is a cloud's deadline error when the deadline it ran
// out of was the client's (it wraps context.DeadlineExceeded).
var errClientDeadline = fmt.Errorf("the client's deadline passed while the cloud worked: %w", context.DeadlineExceeded)

// pick returns version of model id (any: model's choice).
func (n *Node) pick(id, version string) (*Model, error) {
	if version == "" {
		return n.model(id)
	}
	if id == "" {
		n.cat.mu.RLock()
		if len(n.cat.ids) > 0 {
			id = n.cat.ids[0]
		}
		n.cat.mu.RUnlock()
	}
	m, ok := n.lookup(id, version)
	if !ok {
		return nil, fmt.Errorf("%w: %q version %q", ErrUnknownModel, id, version)
	}
	return m, nil
}

// model returns the version of model id (default: the first loaded) that a
// new request uses: the active one, or for a canary's share of requests
// the canary's.
func (n *Node) model(id string) (*Model, error) {
	n.cat.mu.RLock()
	if id == "" && len(n.cat.ids) > 0 {
		id = n.cat.ids[0]
	}
	h, c := n.cat.active[id], n.cat.canary[id]
	n.cat.mu.RUnlock()
	if h == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModel, id)
	}
	if c != nil && c.take() {
		return c.next.m, nil
	}
	return h.m, nil
}

// finish fills the result's summary fields, metrics and the status page's
// log.
func (n *Node) finish(ctx context.Context, m *Model, res *InferResult, start time.Time, outcome string) {
	res.Measured.Total = time.Since(start)
	res.Cut = res.Plan.K
	res.Codec = res.Plan.Codec
	res.Cloud = res.Plan.Cloud
	res.Via, res.Cut2 = res.Plan.Via, res.Plan.K2
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
	n.recordAnswer(ctx, m, res)
}

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
