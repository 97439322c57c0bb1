package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/edgesplit/edgesplit/scheduler"
)

// MaxPushBytes bounds a pushed model version's body (ONNX bytes with its
// calibration table and sidecar); pushes are taken one at a time, so this
// is also the most memory they hold.
const MaxPushBytes = 1 << 30

// maxPushPart bounds a push's calibration and sidecar parts.
const maxPushPart = 16 << 20

// ModelsView is GET /v1/models: the versions this node serves (which is
// active, which a canary), the versions its store holds, its rollouts and
// canaries.
type ModelsView struct {
	Serving  []ServedModel   `json:"serving"`
	Stored   []StoredModel   `json:"stored,omitempty"`
	Rollouts []RolloutStatus `json:"rollouts,omitempty"`
	Canaries []CanaryReport  `json:"canaries,omitempty"`
	Store    string          `json:"store,omitempty"` // the store's directory
}

// ServedModel is one version a node serves.
type ServedModel struct {
	ID      string  `json:"id"`
	Version string  `json:"version"`
	Weights string  `json:"weights"`
	Active  bool    `json:"active"`
	Canary  float64 `json:"canary,omitempty"` // the share of requests sent to it
	Nodes   int     `json:"nodes"`
}

// StoredModel is one version in a node's store.
type StoredModel struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Bytes   int64     `json:"bytes"`
	Active  bool      `json:"active"`
	Added   time.Time `json:"added"`
}

// Models returns what GET /v1/models shows.
func (n *Node) Models() ModelsView {
	var v ModelsView
	n.cat.mu.RLock()
	for _, m := range n.heldModelsLocked() {
		s := ServedModel{ID: m.ID, Version: m.Version, Weights: m.Weights, Nodes: m.Nodes()}
		if a := n.cat.active[m.ID]; a != nil && a.m == m {
			s.Active = true
		}
		if c := n.cat.canary[m.ID]; c != nil && c.next.m == m {
			s.Canary = c.share
		}
		v.Serving = append(v.Serving, s)
	}
	n.cat.mu.RUnlock()
	if n.store != nil {
		v.Store = n.store.Dir()
		for _, e := range n.store.Entries() {
			a, _ := n.store.Active(e.Name)
			v.Stored = append(v.Stored, StoredModel{Name: e.Name, Version: string(e.Version), Bytes: e.Size(), Active: a == e.Version, Added: e.Added})
		}
	}
	v.Rollouts = n.Rollouts()
	v.Canaries = n.Canaries()
	return v
}

// registerModelAPI adds the model routes to the client API.
func (n *Node) registerModelAPI(mux *http.ServeMux) {
	push := make(chan struct{}, 1)
	mux.Handle("GET /v1/models", n.require(access.ScopeCluster, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, n.Models())
	}))
	mux.Handle("PUT /v1/models/{name}", n.require(access.ScopeModels, func(w http.ResponseWriter, r *http.Request) {
		select {
		case push <- struct{}{}:
			defer func() { <-push }()
		default:
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusTooManyRequests, apiError{"another model push is being stored; retry later"})
			return
		}
		n.handlePush(w, r)
	}))
	mux.Handle("POST /v1/models/{name}/rollout", n.require(access.ScopeModels, n.handleRollout))
}

// handlePush stores the body as a version of model {name}: either the
// ONNX bytes themselves (any content type but multipart) or a
// multipart/form-data body with the parts "model" (ONNX, required),
// "calibration" (a calibration table) and "sidecar" (preprocessing and
// labels, JSON).
func (n *Node) handlePush(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if n.store == nil {
		writeJSON(w, http.StatusConflict, apiError{ErrNoStore.Error() + " (start it with --model-dir)"})
		return
	}
	if r.ContentLength > MaxPushBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("body of %d bytes declared, over %d", r.ContentLength, MaxPushBytes)})
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxPushBytes)
	var onnxBytes []byte
	var calib *scheduler.Calibration
	var sc *dataset.Sidecar
	var err error
	if mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type")); perr == nil && mt == "multipart/form-data" {
		onnxBytes, calib, sc, err = readPushParts(multipart.NewReader(body, params["boundary"]))
	} else {
		onnxBytes, err = io.ReadAll(body)
		if err == nil && len(onnxBytes) == 0 {
			err = errors.New("empty body: send the ONNX bytes, or multipart parts model, calibration, sidecar")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("body over %d bytes", MaxPushBytes)})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	e, err := n.Push(r.Context(), name, onnxBytes, calib, sc)
	switch {
	case errors.Is(err, registry.ErrFull):
		writeJSON(w, http.StatusInsufficientStorage, apiError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	n.auditModel(r, "model_push", name, string(e.Version), "")
	writeJSON(w, http.StatusCreated, StoredModel{Name: e.Name, Version: string(e.Version), Bytes: e.Size(), Added: e.Added})
}

// readPushParts reads a multipart push.
func readPushParts(mr *multipart.Reader) (onnxBytes []byte, c *scheduler.Calibration, sc *dataset.Sidecar, err error) {
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("multipart body: %w", err)
		}
		switch p.FormName() {
		case "model":
			if onnxBytes, err = io.ReadAll(p); err != nil {
				return nil, nil, nil, err
			}
		case "calibration":
			if c, err = scheduler.ReadCalibration(io.LimitReader(p, maxPushPart)); err != nil {
				return nil, nil, nil, fmt.Errorf("part calibration: %w", err)
			}
		case "sidecar":
			b, err := io.ReadAll(io.LimitReader(p, maxPushPart+1))
			if err != nil {
				return nil, nil, nil, err
			}
			if len(b) > maxPushPart {
				return nil, nil, nil, fmt.Errorf("part sidecar over %d bytes", maxPushPart)
			}
			sc = new(dataset.Sidecar)
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(sc); err != nil {
				return nil, nil, nil, fmt.Errorf("part sidecar: %w", err)
			}
		default:
			return nil, nil, nil, fmt.Errorf("unknown part %q (want model, calibration, sidecar)", p.FormName())
		}
	}
	if len(onnxBytes) == 0 {
		return nil, nil, nil, errors.New("no part \"model\" (the ONNX bytes)")
	}
	return onnxBytes, c, sc, nil
}

// handleRollout starts a rollout of model {name} to ?version= (a unique
// prefix of at least 6 hex digits of a stored version, or the full 64)
// with ?canary= (a share in [0, 1), default 0) and answers 202 with its
// status; GET /v1/models follows it.
func (n *Node) handleRollout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	v, err := n.ParseVersion(name, q.Get("version"))
	switch {
	case errors.Is(err, ErrNoStore):
		writeJSON(w, http.StatusConflict, apiError{err.Error() + " (start it with --model-dir)"})
		return
	case errors.Is(err, registry.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	share := 0.0
	if s := q.Get("canary"); s != "" {
		if share, err = strconv.ParseFloat(s, 64); err != nil || share < 0 || share >= 1 {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("canary %q: want a share in [0, 1)", s)})
			return
		}
	}
	st, err := n.StartRollout(name, v, share)
	switch {
	case errors.Is(err, ErrRolloutRunning):
		writeJSON(w, http.StatusConflict, apiError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	n.auditModel(r, "model_rollout", name, string(v), strconv.FormatFloat(share, 'g', -1, 64))
	writeJSON(w, http.StatusAccepted, st)
}

// auditModel records a model operation in the audit trail.
func (n *Node) auditModel(r *http.Request, event, name, version, canary string) {
	a := n.cfg.Audit
	if a == nil {
		return
	}
	client := ""
	if id, ok := access.FromContext(r.Context()); ok {
		client = id.Name
	}
	attrs := []slog.Attr{slog.String("event", event), slog.String("client", client), slog.String("remote", r.RemoteAddr),
		slog.String("model", name), slog.String("model_version", version)}
	if canary != "" {
		attrs = append(attrs, slog.String("canary", canary))
	}
	a.LogAttrs(context.Background(), slog.LevelInfo, "model", attrs...)
}
