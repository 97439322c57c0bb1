package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/edgesplit/edgesplit/node/access"
)

// generateBody is POST /v1/generate's request.
type generateBody struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	Tokens int    `json:"tokens"`
	// Cut, DecodeCut and Cloud replace the edge's plan: they need scope
	// override. DecodeCut (≥ Cut) decodes at another cut than the prefill.
	Cut       *int   `json:"cut"`
	DecodeCut *int   `json:"decode_cut"`
	Cloud     string `json:"cloud"`
}

// MaxGenerateDuration bounds one POST /v1/generate stream.
const MaxGenerateDuration = 10 * time.Minute

// handleGenerate is POST /v1/generate: it continues the body's prompt and
// streams the tokens as server-sent events — "token" events (GenerateEvent)
// as they are decided, then one "done" event (GenerateResult), or an
// "error" event if the generation fails after the stream began. Errors
// before the first token are plain JSON answers with a status code.
func (n *Node) handleGenerate(w http.ResponseWriter, r *http.Request, lim apiLimits) {
	sw := &statusWriter{ResponseWriter: w}
	var req generateBody
	var res *GenerateResult
	defer func() { n.auditRequest(r, sw.code, req.Model, nil, sw.errMsg()) }()
	if !lim.acquire(r.Context()) {
		w.Header().Set("Retry-After", "1")
		writeJSON(sw, http.StatusTooManyRequests, apiError{"too many requests in flight on this edge; retry later"})
		return
	}
	defer func() { <-lim.inflight }()
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxPromptBytes+4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(sw, http.StatusBadRequest, apiError{fmt.Sprintf("request body: %v (want JSON: {\"prompt\": …, \"tokens\": N})", err)})
		return
	}
	id, _ := access.FromContext(r.Context())
	if (req.Cut != nil || req.DecodeCut != nil || req.Cloud != "") && !id.Has(access.ScopeOverride) {
		ref := access.Refusal{Status: http.StatusForbidden, Client: id.Name,
			Reason: fmt.Sprintf("cut, decode_cut and cloud replace the edge's plan: client %q needs scope %s", id.Name, access.ScopeOverride)}
		n.refuse(sw, r, ref)
		return
	}
	greq := GenerateRequest{Model: req.Model, Prompt: req.Prompt, Tokens: req.Tokens, Cut: -1, DecodeCut: -1, Cloud: req.Cloud}
	if req.Cut != nil {
		greq.Cut = *req.Cut
	}
	if req.DecodeCut != nil {
		if req.Cut == nil {
			writeJSON(sw, http.StatusBadRequest, apiError{"decode_cut needs cut (the prefill's cut) too"})
			return
		}
		greq.DecodeCut = *req.DecodeCut
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(MaxGenerateDuration))
	started := false
	event := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !started {
			started = true
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-store")
			h.Set("X-Accel-Buffering", "no")
			sw.WriteHeader(http.StatusOK)
		}
		if _, err := fmt.Fprintf(sw, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	res, err := n.Generate(r.Context(), greq, func(e GenerateEvent) error { return event("token", e) })
	switch {
	case err == nil:
		_ = event("done", res)
	case started:
		_ = event("error", apiError{err.Error()})
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrNotLM):
		writeJSON(sw, http.StatusBadRequest, apiError{err.Error()})
	case errors.Is(err, ErrUnknownModel):
		writeJSON(sw, http.StatusNotFound, apiError{err.Error()})
	case errors.Is(err, ErrNoCloud):
		writeJSON(sw, http.StatusServiceUnavailable, apiError{err.Error()})
	default:
		writeJSON(sw, http.StatusBadGateway, apiError{err.Error()})
	}
}
