package node_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// TestOpenAPIMatchesResponses validates the document served at
// /v1/openapi.json and then real answers of a running edge against it:
// successes of every policy, the cluster view, and each error status.
func TestOpenAPIMatchesResponses(t *testing.T) {
	lc, m := startTestCluster(t, 1, "auto")
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
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	good := npyBytes(t, randInput(1, m.Graph.Inputs[0].Shape))
	for _, tc := range []struct {
		method, target string
		body           []byte
		code           int
	}{
		{http.MethodPost, "/v1/infer", good, http.StatusOK},
		{http.MethodPost, "/v1/infer?policy=cloud-only&codec=lossless", good, http.StatusOK},
		{http.MethodPost, "/v1/infer?policy=fixed:3&max_loss=0.01", good, http.StatusOK},
		{http.MethodPost, "/v1/infer?policy=edge-only", good, http.StatusOK},
		{http.MethodPost, "/v1/infer", []byte("garbage"), http.StatusBadRequest},
		{http.MethodPost, "/v1/infer?model=nope", good, http.StatusNotFound},
		{http.MethodPost, "/v1/infer?deadline=1ns", good, http.StatusGatewayTimeout},
		{http.MethodGet, "/v1/cluster", nil, http.StatusOK},
	} {
		req := httptest.NewRequest(tc.method, tc.target, bytes.NewReader(tc.body))
		if tc.body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
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
			Options: &openapi3filter.Options{ExcludeRequestBody: true}}
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
