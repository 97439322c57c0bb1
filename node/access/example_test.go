package access_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/edgesplit/edgesplit/node/access"
)

// A clients file lists token digests with scopes; the Guard admits the
// token's holder to the routes its scopes cover.
func Example() {
	token, digest, _ := access.NewToken() // give token to the client, keep digest
	cfg, err := access.ReadConfig(strings.NewReader(`
clients:
  - name: camera-7
    token_sha256: ` + digest + `
    scopes: [infer]
    rate: 20
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	g, _ := access.New(cfg)
	h := g.Require(access.ScopeInfer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := access.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", id.Name)
	}))
	for _, auth := range []string{"Bearer " + token, "Bearer es_wrong", ""} {
		req := httptest.NewRequest("POST", "/v1/infer", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 200 hello camera-7
	// 401 {"error":"unknown bearer token"}
	// 401 {"error":"no credentials (send Authorization: Bearer TOKEN or a client certificate)"}
}
