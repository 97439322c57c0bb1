package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	_ "image/jpeg" // decoders for POST /v1/infer
	_ "image/png"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"
	"gorgonia.org/tensor"
)

// openAPI is the API's OpenAPI 3 document (openapi.json), served at
// GET /v1/openapi.json; a test validates real responses against it.
//
//go:embed openapi.json
var openAPI []byte

// MaxInferBody limits the body of POST /v1/infer.
const MaxInferBody = 32 << 20

// MaxInferPixels limits the size of an image sent to POST /v1/infer, checked
// from its header before it is decoded (a small file can claim a huge image).
const MaxInferPixels = 4096 * 4096

// MaxDecodedImageBytes bounds the memory one decoded image may take (width ×
// height × bytes per pixel of its colour model), checked from the header
// before decoding: a 137 KB 16-bit PNG can claim 4096×4096×8 = 128 MiB.
const MaxDecodedImageBytes = 48 << 20

// MaxInflightRequests caps the POST /v1/infer requests one edge serves at
// once; up to MaxQueuedRequests more wait for a slot (at most
// MaxQueueWait), and the rest get 429 with Retry-After. At most GOMAXPROCS of them decode
// images at a time, so decoding holds at most GOMAXPROCS ×
// MaxDecodedImageBytes.
const MaxInflightRequests = 64

// MaxQueuedRequests and MaxQueueWait bound the requests waiting for one of
// the MaxInflightRequests slots: a burst is absorbed, a flood refused.
const (
	MaxQueuedRequests = 512
	MaxQueueWait      = 5 * time.Second
)

// InferResponse is the JSON answer of POST /v1/infer. Durations are in
// milliseconds.
type InferResponse struct {
	Model      string             `json:"model"`
	Class      int                `json:"class"`
	Label      string             `json:"label,omitempty"`
	Score      float32            `json:"score"`
	Output     []float32          `json:"output"`
	Policy     string             `json:"policy"`
	Cut        int                `json:"cut"`
	Codec      string             `json:"codec,omitempty"`
	Cloud      string             `json:"cloud,omitempty"`
	Via        string             `json:"via,omitempty"`  // the edge server of a three-tier answer
	Cut2       int                `json:"cut2,omitempty"` // where it sent the rest on to the cloud
	BytesSent  int64              `json:"bytes_sent"`
	Fallback   string             `json:"fallback,omitempty"`
	Errors     []string           `json:"errors,omitempty"`
	Predicted  float64            `json:"predicted_ms"`
	Breakdown  map[string]float64 `json:"breakdown_ms"`
	RequestMS  float64            `json:"total_ms"`
	EdgeDevice string             `json:"edge_device"`
	// ModelVersion is the version of the model that answered; TailVersion
	// the version the cloud ran its tail with (offloaded answers: always
	// the same, an answer from another version is refused).
	ModelVersion string `json:"model_version"`
	TailVersion  string `json:"tail_version,omitempty"`
	// Accuracy is what the plan that ran risks.
	Accuracy AccuracyReport `json:"accuracy"`
	// Objective is what the plan was chosen to minimise; EnergyMJ the edge
	// device's predicted energy for it (millijoules, under the node's
	// power model; 0 without one).
	Objective string  `json:"objective"`
	EnergyMJ  float64 `json:"predicted_energy_mj"`
	// Exit says which exit answered an early-exit plan (exits.go).
	Exit *ExitReport `json:"exit,omitempty"`
}

// AccuracyReport is the accuracy part of an infer response: the plan's
// codec fidelity (exact, bounded, lossy), the lower confidence bound on
// top-1 agreement with the unsplit model it was judged by, the calibration
// behind it (agreeing and total samples, largest output probability change;
// zero when uncalibrated) and the budget.
type AccuracyReport struct {
	Fidelity     string  `json:"fidelity"`
	Lower        float64 `json:"agreement_lower_bound"`
	Agree        int     `json:"calibration_agree"`
	Samples      int     `json:"calibration_samples"`
	MaxProbDelta float64 `json:"calibration_max_prob_delta"`
	MaxLoss      float64 `json:"budget_max_loss"`
	Confidence   float64 `json:"budget_confidence"`
}

func accuracyReport(a scheduler.Accuracy) AccuracyReport {
	return AccuracyReport{Fidelity: a.Fidelity.String(), Lower: a.Lower, Agree: a.Calibration.Agree, Samples: a.Calibration.Samples,
		MaxProbDelta: a.Calibration.MaxProbDelta, MaxLoss: a.Budget.Loss(), Confidence: a.Budget.Conf()}
}

type apiError struct {
	Error string `json:"error"`
}

// statusWriter remembers a response's status and, for errors, its body.
type statusWriter struct {
	http.ResponseWriter
	code int
	body []byte
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.code != http.StatusOK && len(w.body) < 512 {
		w.body = append(w.body, b[:min(len(b), 512-len(w.body))]...)
	}
	return w.ResponseWriter.Write(b)
}

// errMsg is the error an error response carried ("" for a success).
func (w *statusWriter) errMsg() string {
	var e apiError
	if w.code == http.StatusOK || json.Unmarshal(w.body, &e) != nil {
		return ""
	}
	return e.Error
}

// apiLimits bound the client API's concurrent work.
type apiLimits struct {
	waiting  *atomic.Int64       // requests waiting for an inflight slot
	inflight chan struct{}       // requests being served
	decode   chan struct{}       // images being decoded
	bodies   *semaphore.Weighted // bytes of bodies held (MaxBufferedBodies)
}

// acquire takes an inflight slot, waiting (with at most MaxQueuedRequests
// others, for at most MaxQueueWait or the request's end) when none is free.
func (l apiLimits) acquire(ctx context.Context) bool {
	select {
	case l.inflight <- struct{}{}:
		return true
	default:
	}
	if l.waiting.Add(1) > MaxQueuedRequests {
		l.waiting.Add(-1)
		return false
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(MaxQueueWait)
	defer t.Stop()
	select {
	case l.inflight <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Handler returns the node's client API. Routes and the scope each needs
// (Config.API decides who holds which): POST /v1/infer (infer; ?policy=,
// ?codec=, ?max_loss= need override), POST /v1/generate (infer; a cut or
// cloud needs override; server-sent events), GET /v1/cluster and /v1/status,
// /v1/status/events and GET /v1/models (cluster), PUT /v1/models/{name} and
// POST /v1/models/{name}/rollout (models), GET /metrics (metrics); GET / (the status
// page, which holds no data itself), GET /v1/openapi.json and GET /healthz
// need none.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	lim := apiLimits{waiting: new(atomic.Int64), inflight: make(chan struct{}, MaxInflightRequests), decode: make(chan struct{}, runtime.GOMAXPROCS(0)),
		bodies: semaphore.NewWeighted(MaxBufferedBodies)}
	mux.Handle("POST /v1/infer", n.require(access.ScopeInfer, func(w http.ResponseWriter, r *http.Request) {
		if ref := checkOverride(r); ref != nil {
			n.refuse(w, r, *ref)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		var model string
		var res *InferResult
		defer func() {
			n.auditRequest(r, sw.code, model, res, sw.errMsg())
			if res == nil {
				n.recordRefusal(r, model, sw.code, sw.errMsg())
				if !isRefusal(sw.code) {
					n.metrics.failed.WithLabelValues(strconv.Itoa(sw.code)).Inc()
				}
			}
		}()
		if !lim.acquire(r.Context()) {
			n.metrics.refusals.WithLabelValues("overloaded").Inc()
			w.Header().Set("Retry-After", "1")
			writeJSON(sw, http.StatusTooManyRequests, apiError{fmt.Sprintf("over %d requests in flight and %d waiting on this edge; retry later", MaxInflightRequests, MaxQueuedRequests)})
			return
		}
		defer func() { <-lim.inflight }()
		model, res = n.handleInfer(sw, r, lim)
	}))
	mux.Handle("POST /v1/generate", n.require(access.ScopeInfer, func(w http.ResponseWriter, r *http.Request) { n.handleGenerate(w, r, lim) }))
	mux.Handle("GET /v1/cluster", n.require(access.ScopeCluster, n.handleCluster))
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	mux.Handle("GET /metrics", n.require(access.ScopeMetrics, promhttp.HandlerFor(n.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP))
	mux.HandleFunc("GET /healthz", n.handleHealth)
	n.registerModelAPI(mux)
	n.statusLog.page.Register(mux, func(h http.Handler) http.Handler { return n.require(access.ScopeCluster, h.ServeHTTP) })
	return mux
}

// serveAPI serves the client API on the node's HTTP listener until
// Shutdown or Kill. Connections are bounded in number (MaxAPIConns) and
// time, so slow clients cannot hold them: headers and a whole request by
// Config.APIHeaderTimeout and APIReadTimeout (5 s and 30 s by default), an
// answer 60 s (status streams lift it), idle keep-alive 60 s.
func (n *Node) serveAPI() {
	n.httpSrv = &http.Server{Handler: n.Handler(), ReadHeaderTimeout: n.cfg.APIHeaderTimeout, ReadTimeout: n.cfg.APIReadTimeout,
		WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
	ln := n.apiListener(n.httpLn)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("client API stopped", "err", err)
		}
	}()
}

// breakdown is an answer's breakdown_ms: the measured terms, and setup —
// what the total holds beyond them: compiling a piece on its first run,
// a QUIC handshake on first contact, waiting for an inflight slot. The
// terms sum to total_ms.
func breakdown(m Measured) map[string]float64 {
	parts := m.Planning + m.EdgeCompute + m.Encode + m.Transfer + m.Queue + m.CloudCompute + m.Decode
	return map[string]float64{
		"planning": ms(m.Planning), "edge_compute": ms(m.EdgeCompute), "encode": ms(m.Encode),
		"transfer": ms(m.Transfer), "queue": ms(m.Queue), "cloud_compute": ms(m.CloudCompute), "decode": ms(m.Decode),
		"setup": ms(max(m.Total-parts, 0)),
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// handleInfer takes an image (PNG/JPEG) or a .npy body. Query parameters:
// model, version (pins one the node serves), policy, codec, deadline (a Go duration, e.g. 500ms), max_loss (the
// accuracy budget: the largest allowed loss of top-1 agreement with the
// unsplit model, a fraction; 0 allows exact codecs only). A bad body or
// parameter is a 400 (404 for an unknown model) naming what is wrong; a
// request whose deadline passes is a 504.
//
// It returns the model it served and the result, for the audit trail.
func (n *Node) handleInfer(w http.ResponseWriter, r *http.Request, lim apiLimits) (model string, result *InferResult) {
	if n.cfg.Role != RoleEdge {
		writeJSON(w, http.StatusMisdirectedRequest, apiError{ErrNotEdge.Error()})
		return
	}
	q := r.URL.Query()
	m, err := n.pick(q.Get("model"), q.Get("version"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		return q.Get("model"), nil
	}
	model = m.ID
	if r.ContentLength > MaxInferBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("body of %d bytes declared, over %d", r.ContentLength, MaxInferBody)})
		return
	}
	body, release, err := readInferBody(r.Context(), r.Body, r.ContentLength, m, lim.bodies)
	if errors.Is(err, errBodyTooLarge) {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{err.Error()})
		return
	} else if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	select {
	case lim.decode <- struct{}{}:
	case <-r.Context().Done():
		release()
		return
	}
	x, err := decodeInput(body, m)
	<-lim.decode
	release() // the body is not needed past its decoding
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	ctx := r.Context()
	if d := q.Get("deadline"); d != "" {
		dl, err := time.ParseDuration(d)
		if err != nil || dl <= 0 {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("deadline %q: want a positive duration like 500ms", d)})
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dl)
		defer cancel()
	}
	req := InferRequest{Model: m.ID, Version: m.Version, Inputs: []*tensor.Dense{x}, Policy: q.Get("policy"), Codec: q.Get("codec")}
	if s := q.Get("max_loss"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("max_loss %q: want a fraction like 0.001", s)})
			return
		}
		b, err := scheduler.NewBudget(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"max_loss: " + err.Error()})
			return
		}
		req.Accuracy = &b
	}
	res, err := n.Infer(ctx, req)
	if err != nil {
		code, msg := http.StatusInternalServerError, err.Error()
		switch {
		case errors.Is(err, ErrUnknownModel):
			code = http.StatusNotFound
		case errors.Is(err, ErrBadRequest):
			code = http.StatusBadRequest
		case errors.Is(err, context.DeadlineExceeded) && q.Get("deadline") != "":
			// Not a server fault: the request's own deadline passed.
			code, msg = http.StatusGatewayTimeout, fmt.Sprintf("deadline %s passed before the answer: %v", q.Get("deadline"), err)
		}
		writeJSON(w, code, apiError{msg})
		return
	}
	result = res
	out := res.Outputs[len(res.Outputs)-1].Data().([]float32)
	writeJSON(w, http.StatusOK, InferResponse{
		Model: m.ID, Class: res.Class, Label: res.Label, Score: res.Score, Output: out,
		Policy: res.Policy, Cut: res.Cut, Codec: res.Codec, Cloud: res.Cloud, Via: res.Via, Cut2: res.Cut2, BytesSent: res.BytesSent,
		Fallback: res.Fallback, Errors: res.Errors, Predicted: ms(res.Predicted), RequestMS: ms(res.Measured.Total),
		EdgeDevice: n.cfg.Device.Name, ModelVersion: res.ModelVersion, TailVersion: res.TailVersion, Accuracy: accuracyReport(res.Accuracy),
		Objective: res.Objective, EnergyMJ: 1e3 * res.Plan.Energy.Total,
		Breakdown: breakdown(res.Measured),
		Exit:      res.Exit,
	})
	return model, result
}
