package access

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
)

func TestReadConfig(t *testing.T) {
	d := Digest("es_secret")
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"ok", "clients:\n- name: alice\n  token_sha256: " + d + "\n  scopes: [infer, cluster]\n", ""},
		{"empty file", "", ""},
		{"unknown key", "clients:\n- name: a\n  token: x\n  scopes: [infer]\n", "field token not found"},
		{"unknown scope", "clients:\n- name: a\n  scopes: [root]\n", `unknown scope "root"`},
		{"no scopes", "clients:\n- name: a\n", "no scopes"},
		{"token in clear", "clients:\n- name: a\n  token_sha256: es_secret\n  scopes: [infer]\n", "64 hex digits"},
		{"bad name", "clients:\n- name: 'a b'\n  scopes: [infer]\n", "name must be"},
		{"duplicate name", "clients:\n- name: a\n  scopes: [infer]\n- name: a\n  scopes: [infer]\n", "listed twice"},
		{"shared token", "clients:\n- name: a\n  token_sha256: " + d + "\n  scopes: [infer]\n- name: b\n  token_sha256: " + strings.ToUpper(d) + "\n  scopes: [infer]\n", "used by another client"},
		{"negative rate", "clients:\n- name: a\n  scopes: [infer]\n  rate: -1\n", "negative rate"},
		{"bad cert scope", "cert_scopes: [everything]\n", "cert_scopes"},
		{"not yaml", "clients: [", "clients file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ReadConfig(strings.NewReader(tc.yaml))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.DefaultRate != DefaultConfig().DefaultRate {
					t.Errorf("default rate %v not filled in", c.DefaultRate)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one naming %q", err, tc.err)
			}
		})
	}
	big := strings.NewReader(strings.Repeat("#", MaxConfigBytes+1))
	if _, err := ReadConfig(big); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestNewToken(t *testing.T) {
	a, da, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 || da != Digest(a) || len(da) != 64 {
		t.Fatalf("tokens %q %q digest %q", a, b, da)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time           { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)      { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestGuardTokens(t *testing.T) {
	alice, da, _ := NewToken()
	bob, db, _ := NewToken()
	clk := &clock{t: time.Unix(1e9, 0)}
	var refused []Refusal
	g, err := New(Config{Clients: []Client{
		{Name: "alice", TokenSHA256: da, Scopes: []Scope{ScopeInfer, ScopeOverride}},
		{Name: "bob", TokenSHA256: db, Scopes: []Scope{ScopeCluster}, Rate: 1, Burst: 2},
	}}, WithClock(clk.now), WithRefusalHook(func(_ *http.Request, r Refusal) { refused = append(refused, r) }))
	if err != nil {
		t.Fatal(err)
	}
	h := func(scope Scope) http.Handler {
		return g.Require(scope, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := FromContext(r.Context())
			io.WriteString(w, id.Name+"/"+id.Via)
		}))
	}
	for _, tc := range []struct {
		name   string
		scope  Scope
		header map[string]string
		code   int
		want   string
	}{
		{"alice infers", ScopeInfer, bearer(alice), 200, "alice/token"},
		{"scheme is case-insensitive", ScopeInfer, map[string]string{"Authorization": "bearer " + alice}, 200, "alice/token"},
		{"alice lacks cluster", ScopeCluster, bearer(alice), 403, `lacks scope cluster`},
		{"no credentials", ScopeInfer, nil, 401, "no credentials"},
		{"unknown token", ScopeInfer, bearer("es_guess"), 401, "unknown bearer token"},
		{"basic auth", ScopeInfer, map[string]string{"Authorization": "Basic YTpi"}, 401, "Bearer TOKEN"},
		{"huge token", ScopeInfer, bearer(strings.Repeat("x", 300)), 401, "over 256 bytes"},
		{"bob 1", ScopeCluster, bearer(bob), 200, "bob/token"},
		{"bob 2 (burst)", ScopeCluster, bearer(bob), 200, "bob/token"},
		{"bob over rate", ScopeCluster, bearer(bob), 429, "over its rate of 1 requests/s"},
		{"alice unaffected", ScopeInfer, bearer(alice), 200, "alice/token"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/infer", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		h(tc.scope).ServeHTTP(rec, req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
		switch tc.code {
		case 401:
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
			}
		case 429:
			if rec.Header().Get("Retry-After") != "1" {
				t.Errorf("%s: Retry-After %q", tc.name, rec.Header().Get("Retry-After"))
			}
		}
		if tc.code != 200 {
			var e struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Errorf("%s: body %q is not a JSON error", tc.name, rec.Body.String())
			}
		}
	}
	if len(refused) != 6 {
		t.Errorf("refusal hook saw %d refusals, want 6: %+v", len(refused), refused)
	}
	clk.add(time.Second)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	h(ScopeCluster).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("bob a second later: %d %s", rec.Code, rec.Body.String())
	}
}

// TestGuardCertificates runs a real TLS server: a CA-issued client
// certificate of role client is admitted with its entry's scopes; other
// roles, unknown names and foreign CAs are not.
func TestGuardCertificates(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pki.NewCA(pki.CAOptions{})
	issue := func(ca *pki.CA, name string, role pki.Role) *pki.Identity {
		id, err := ca.Issue(name, pki.IssueOptions{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	srvID := issue(ca, "edge-1", pki.RoleEdge)
	g, err := New(Config{Clients: []Client{{Name: "dashboard", Scopes: []Scope{ScopeCluster}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Require(ScopeCluster, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := FromContext(r.Context())
		io.WriteString(w, id.Name+"/"+id.Via)
	})))
	srv.TLS = ServerTLS(srvID.Certificate, ca.Pool())
	srv.StartTLS()
	defer srv.Close()
	get := func(client *pki.Identity) (int, string, error) {
		tc := &tls.Config{RootCAs: ca.Pool(), ServerName: pki.ClusterDNSName}
		if client != nil {
			tc.Certificates = []tls.Certificate{client.Certificate}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get(srv.URL)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for _, tc := range []struct {
		name   string
		client *pki.Identity
		code   int
		want   string
	}{
		{"listed client", issue(ca, "dashboard", pki.RoleClient), 200, "dashboard/certificate"},
		{"unlisted client", issue(ca, "stranger", pki.RoleClient), 403, "no entry"},
		{"edge certificate", issue(ca, "dashboard", pki.RoleEdge), 403, "role edge"},
		{"no certificate", nil, 401, "no credentials"},
	} {
		code, body, err := get(tc.client)
		if err != nil || code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q %v, want %d with %q", tc.name, code, body, err, tc.code, tc.want)
		}
	}
	if _, _, err := get(issue(other, "dashboard", pki.RoleClient)); err == nil {
		t.Error("a certificate of another CA was accepted by the TLS handshake")
	}
}

// TestGuardConcurrent: 1000 requests at 200 concurrency with valid tokens
// all pass; an over-limit client sharing the server gets 429s and the
// others are unaffected.
func TestGuardConcurrent(t *testing.T) {
	good, dg, _ := NewToken()
	greedy, dr, _ := NewToken()
	g, _ := New(Config{Clients: []Client{
		{Name: "good", TokenSHA256: dg, Scopes: []Scope{ScopeInfer}, Rate: 1e6, Burst: 1000},
		{Name: "greedy", TokenSHA256: dr, Scopes: []Scope{ScopeInfer}, Rate: 1, Burst: 10},
	}})
	var served atomic.Int64
	srv := httptest.NewServer(g.Require(ScopeInfer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) })))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	var ok, limited, other atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan string)
	for range 200 {
		wg.Go(func() {
			for tok := range jobs {
				req, _ := http.NewRequest("POST", srv.URL, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case tok == good && resp.StatusCode == 200:
					ok.Add(1)
				case tok == greedy && resp.StatusCode == 429:
					limited.Add(1)
				case tok == greedy && resp.StatusCode == 200:
				default:
					other.Add(1)
				}
			}
		})
	}
	for i := range 1200 {
		if i%6 == 5 {
			jobs <- greedy
		} else {
			jobs <- good
		}
	}
	close(jobs)
	wg.Wait()
	if ok.Load() != 1000 || other.Load() != 0 || limited.Load() < 150 {
		t.Fatalf("good client: %d of 1000 answered; greedy: %d of 200 limited; %d unexpected", ok.Load(), limited.Load(), other.Load())
	}
	t.Logf("1000/1000 good requests served, greedy client limited on %d of 200", limited.Load())
}

func TestOpenGuard(t *testing.T) {
	g := Open()
	if !g.IsOpen() {
		t.Fatal("not open")
	}
	for _, s := range AllScopes() {
		if id, ref := g.Check(httptest.NewRequest("GET", "/", nil), s); ref != nil || id.Name != "anonymous" {
			t.Errorf("%s: %+v %+v", s, id, ref)
		}
	}
}

// Reload swaps the clients at once: a removed client and an old token are
// refused, a new one admitted, an unchanged client keeps its rate limiter
// (reloading resets nobody's rate), a bad file changes nothing; a token
// past its expiry is a 401 saying so.
func TestGuardReloadAndExpiry(t *testing.T) {
	alice, da, _ := NewToken()
	bob, db, _ := NewToken()
	carol, dc, _ := NewToken()
	clk := &clock{t: time.Unix(1e9, 0)}
	first := Config{Clients: []Client{
		{Name: "alice", TokenSHA256: da, Scopes: []Scope{ScopeInfer}, Rate: 1, Burst: 1},
		{Name: "bob", TokenSHA256: db, Scopes: []Scope{ScopeInfer}, Expires: clk.t.Add(time.Hour)},
	}}
	g, err := New(first, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	check := func(tok string) int {
		r := httptest.NewRequest(http.MethodPost, "/v1/infer", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, ref := g.Check(r, ScopeInfer); ref != nil {
			return ref.Status
		}
		return http.StatusOK
	}
	if c := check(alice); c != http.StatusOK {
		t.Fatalf("alice: %d", c)
	}
	if c := check(bob); c != http.StatusOK {
		t.Fatalf("bob before expiry: %d", c)
	}
	second := Config{Clients: []Client{
		{Name: "alice", TokenSHA256: da, Scopes: []Scope{ScopeInfer}, Rate: 1, Burst: 1},
		{Name: "carol", TokenSHA256: dc, Scopes: []Scope{ScopeInfer}},
	}}
	if err := g.Reload(second); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who  string
		tok  string
		want int
	}{
		{"alice, her burst spent before the reload", alice, http.StatusTooManyRequests},
		{"bob, removed", bob, http.StatusUnauthorized},
		{"carol, added", carol, http.StatusOK},
	} {
		if got := check(c.tok); got != c.want {
			t.Errorf("%s: %d, want %d", c.who, got, c.want)
		}
	}
	bad := Config{Clients: []Client{{Name: "x", TokenSHA256: "not hex", Scopes: []Scope{ScopeInfer}}}}
	if err := g.Reload(bad); err == nil {
		t.Error("a bad clients file was accepted")
	}
	if c := check(carol); c != http.StatusOK {
		t.Errorf("carol after a failed reload: %d", c)
	}
	if err := g.Reload(first); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour)
	r := httptest.NewRequest(http.MethodPost, "/v1/infer", nil)
	r.Header.Set("Authorization", "Bearer "+bob)
	if _, ref := g.Check(r, ScopeInfer); ref == nil || ref.Status != http.StatusUnauthorized || !strings.Contains(ref.Reason, "expired") {
		t.Errorf("bob's token at its expiry: %+v, want 401 expired", ref)
	}
	if err := Open().Reload(first); err == nil {
		t.Error("an open guard accepted clients")
	}
}
