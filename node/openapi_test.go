package node_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// TestOpenAPIMatchesResponses validates the document served at
// /v1/openapi.json and then real answers of a running edge (its API
// guarded by tokens) against it: successes of every policy, the cluster
// view, the status page and snapshot, health, and each error status.
func TestOpenAPIMatchesResponses(t *testing.T) {
	ops, opsDigest, _ := access.NewToken()
	cam, camDigest, _ := access.NewToken()
	guard, err := access.New(access.Config{Clients: []access.Client{
		{Name: "ops", TokenSHA256: opsDigest, Scopes: access.AllScopes()},
		{Name: "cam", TokenSHA256: camDigest, Scopes: []access.Scope{access.ScopeInfer}, Rate: 0.001, Burst: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "auto", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 1; c.API = guard },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	h := lc.Edges[0].Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("served document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	good := npyBytes(t, randInput(1, m.Graph.Inputs[0].Shape))
	for _, tc := range []struct {
		method, target string
		body           []byte
		code           int
		token          string // "" means ops
	}{
		{http.MethodPost, "/v1/infer", good, http.StatusOK, ""},
		{http.MethodPost, "/v1/infer?policy=cloud-only&codec=lossless", good, http.StatusOK, ""},
		{http.MethodPost, "/v1/infer?policy=fixed:3&max_loss=0.01", good, http.StatusOK, ""},
		{http.MethodPost, "/v1/infer?policy=edge-only", good, http.StatusOK, ""},
		{http.MethodPost, "/v1/infer", []byte("garbage"), http.StatusBadRequest, ""},
		{http.MethodPost, "/v1/infer?model=nope", good, http.StatusNotFound, ""},
		{http.MethodPost, "/v1/infer?deadline=1ns", good, http.StatusGatewayTimeout, ""},
		{http.MethodGet, "/v1/cluster", nil, http.StatusOK, ""},
		{http.MethodGet, "/v1/status", nil, http.StatusOK, ""},
		{http.MethodGet, "/v1/models", nil, http.StatusOK, ""},
		{http.MethodPut, "/v1/models/lenet5", []byte("onnx"), http.StatusConflict, ""}, // no model store
		{http.MethodPost, "/v1/models/lenet5/rollout?version=abcdef", nil, http.StatusConflict, ""},
		{http.MethodPut, "/v1/models/lenet5", []byte("onnx"), http.StatusForbidden, cam},
		{http.MethodGet, "/healthz", nil, http.StatusOK, "-"},
		{http.MethodGet, "/", nil, http.StatusOK, "-"},
		{http.MethodPost, "/v1/infer", good, http.StatusUnauthorized, "-"},
		{http.MethodGet, "/metrics", nil, http.StatusUnauthorized, "es_unknown"},
		{http.MethodPost, "/v1/infer?policy=edge-only", good, http.StatusForbidden, cam},
		{http.MethodGet, "/v1/cluster", nil, http.StatusForbidden, cam},
		{http.MethodPost, "/v1/infer", good, http.StatusOK, cam},
		{http.MethodPost, "/v1/infer", good, http.StatusTooManyRequests, cam}, // its burst of 2 is spent (the 403 on ?policy took one)
	} {
		req := httptest.NewRequest(tc.method, tc.target, bytes.NewReader(tc.body))
		if tc.body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		switch tc.token {
		case "":
			req.Header.Set("Authorization", "Bearer "+ops)
		case "-":
		default:
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.target, rec.Code, rec.Body, tc.code)
			continue
		}
		vreq := httptest.NewRequest(tc.method, "http://edge"+tc.target, bytes.NewReader(tc.body))
		route, params, err := router.FindRoute(vreq)
		if err != nil {
			t.Errorf("%s %s: no route in the document: %v", tc.method, tc.target, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: request does not match the document: %v", tc.method, tc.target, err)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(rec.Body.Bytes())
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s: %d response does not match the document: %v\n%s", tc.method, tc.target, rec.Code, err, rec.Body)
		}
	}
}
