package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/node"
)

// buildBinary compiles edgesplit once for the process tests.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "edgesplit")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("edgesplit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// runErr runs edgesplit and returns its error with the output in it.
func runErr(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

// startNodeErr runs `edgesplit node` expecting it to refuse to start: its
// error (with its output), or nil when it was still running after 30 s.
func startNodeErr(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"node"}, args...)...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), nil
	}
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

// startNode starts `edgesplit node` and waits for its start line.
func startNode(t *testing.T, bin string, args ...string) (gossip, httpAddr string) {
	t.Helper()
	p := launchNode(t, bin, args...)
	return p.gossip, p.http
}

// TestMultiProcessCluster runs three `edgesplit node` OS processes on
// loopback (one edge, two clouds): they find each other by gossip, the edge
// serves /v1/infer, and split results equal local inference (lossless) or
// stay within the codec's bound (int8: same class). cloud1 calibrates the
// model at start on inputs from a file and keeps the table; the edge, which
// has none, fetches it by its gossiped digest, and only then (and only
// under a budget the table certifies) carries int8.
func TestMultiProcessCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ca := newCA(t, bin, dir, "ca", map[string]string{"edge": "edge", "cloud1": "cloud", "cloud2": "cloud"})
	const mdl = "lenet5"
	// The gossip key is the one 'ca init' wrote beside the CA.
	common := []string{"--ca", ca, "--model", mdl, "--bind", "127.0.0.1:0"}
	calibX := filepath.Join(dir, "calib.npy")
	writeRandomNPY(t, calibX, []int{200, 1, 28, 28})
	table := filepath.Join(dir, "lenet5.calib.json")
	seed, _ := startNode(t, bin, append([]string{"--role", "cloud", "--name", "cloud1",
		"--calibration", calibX, "--calibration-table", table}, common...)...)
	if _, err := os.Stat(table); err != nil {
		t.Fatalf("cloud1 did not write its calibration table: %v", err)
	}
	startNode(t, bin, append([]string{"--role", "cloud", "--name", "cloud2", "--join", seed}, common...)...)
	auditLog := filepath.Join(dir, "audit.log")
	// The API: HTTPS with the edge's certificate, bearer tokens from a
	// clients file: an operator token with every scope, a camera token
	// that may only infer under the operator's policy.
	clients := filepath.Join(dir, "clients.yaml")
	opToken := filepath.Join(dir, "operator.token")
	// token new prints the token on its first line (then, on stderr, what it did).
	firstLine := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
	tok := firstLine(run(t, bin, "token", "new", "--name", "operator", "--scopes", "infer,override,cluster,metrics", "--clients", clients))
	if err := os.WriteFile(opToken, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	camToken := firstLine(run(t, bin, "token", "new", "--name", "camera", "--scopes", "infer", "--clients", clients))
	if _, err := startNodeErr(bin, append([]string{"--role", "edge", "--name", "edge", "--join", seed, "--http", "127.0.0.1:0"}, common...)...); err == nil ||
		!strings.Contains(err.Error(), "--api-clients") {
		t.Errorf("an edge serving --http without --api-clients or --insecure-api: %v, want a refusal naming --api-clients", err)
	}
	_, httpAddr := startNode(t, bin, append([]string{"--role", "edge", "--name", "edge", "--join", seed,
		"--http", "127.0.0.1:0", "--api-clients", clients, "--api-tls", "--link", "ethernet", "--device", "raspberry-pi-4", "--audit-log", auditLog}, common...)...)
	base := "https://" + httpAddr
	caCert := filepath.Join(ca, "ca.crt")
	useAPI(t, caCert, tok)
	defer useAPI(t, "", "")

	// Gossip: the edge sees both clouds alive.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var members []node.ClusterMember
		getJSON(t, base+"/v1/cluster", &members)
		alive := 0
		for _, m := range members {
			if m.Alive && m.Role == node.RoleCloud {
				alive++
			}
		}
		if alive == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge sees %d live clouds: %+v", alive, members)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Local reference with the same binary.
	x := filepath.Join(dir, "x.npy")
	yLocal := filepath.Join(dir, "y.npy")
	writeRandomNPY(t, x, []int{1, 1, 28, 28})
	run(t, bin, "infer", "--model", mdl, "--input", x, "--output", yLocal)
	want := readNPYData(t, yLocal)

	body, err := os.ReadFile(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ policy, codec string }{
		{"cloud-only", "lossless"}, {"fixed:4", "lossless"}, {"fixed:7", "lossless"}, {"cloud-only", "lossless"},
		{"fixed:4", "int8"}, {"edge-only", ""},
	} {
		var res node.InferResponse
		url := fmt.Sprintf("%s/v1/infer?policy=%s&codec=%s", base, tc.policy, tc.codec)
		if tc.codec == "int8" {
			// 200 agreeing samples certify ≥ 98.1 % (95 % Wilson bound):
			// not the default 99.9 %, but a 5 % budget.
			if code, msg := postStatus(t, url, body); code != http.StatusBadRequest || !strings.Contains(msg, "not allowed") {
				t.Errorf("int8 under the default budget: %d %s, want 400 not allowed", code, msg)
			}
			url += "&max_loss=0.05"
			waitFor(t, 20*time.Second, func() bool { code, _ := postStatus(t, url, body); return code == http.StatusOK },
				"the edge to fetch cloud1's calibration table")
		}
		postJSON(t, url, body, &res)
		if tc.codec == "int8" && (res.Accuracy.Fidelity != "lossy" || res.Accuracy.Samples != 200 || res.Accuracy.Lower < 0.95) {
			t.Errorf("int8 answer's accuracy %+v, want lossy certified by 200 samples to ≥ 95%%", res.Accuracy)
		}
		if tc.codec == "lossless" && res.Accuracy.Fidelity != "exact" {
			t.Errorf("lossless answer's accuracy %+v", res.Accuracy)
		}
		if tc.codec == "lossless" || tc.policy == "edge-only" {
			if !slices.Equal(res.Output, want) {
				t.Errorf("%s/%s: output %v, local %v", tc.policy, tc.codec, res.Output, want)
			}
		} else if argmaxOf(res.Output) != argmaxOf(want) {
			t.Errorf("%s/%s: class %d, local %d", tc.policy, tc.codec, argmaxOf(res.Output), argmaxOf(want))
		}
		if tc.policy != "edge-only" && res.Cloud == "" {
			t.Errorf("%s/%s: not offloaded (fallback %q, errors %v)", tc.policy, tc.codec, res.Fallback, res.Errors)
		}
		t.Logf("%s/%s: cut %d on %q, %d bytes up, %.2f ms", tc.policy, tc.codec, res.Cut, res.Cloud, res.BytesSent, res.RequestMS)
	}
	// Who may do what: no token, a bad token, plain HTTP to the TLS port,
	// and the camera overriding the operator's policy are all refused,
	// and the camera's own request under the operator's policy is served.
	for _, c := range []struct {
		name, token, query string
		code               int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"unknown token", "es_forged", "", http.StatusUnauthorized},
		{"camera overrides the policy", camToken, "?policy=cloud-only", http.StatusForbidden},
		{"camera reads the cluster", camToken, "cluster", http.StatusForbidden},
		{"camera infers", camToken, "", http.StatusOK},
	} {
		useAPI(t, caCert, c.token)
		var code int
		if c.query == "cluster" {
			code, _ = getStatus(t, base+"/v1/cluster")
		} else {
			code, _ = postStatus(t, base+"/v1/infer"+c.query, body)
		}
		if code != c.code {
			t.Errorf("%s: %d, want %d", c.name, code, c.code)
		}
	}
	useAPI(t, caCert, tok)
	if resp, err := http.Post("http://"+httpAddr+"/v1/infer", "application/octet-stream", bytes.NewReader(body)); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS API was served")
		}
		resp.Body.Close()
	}
	// The client command against the node: HTTPS, the cluster CA, the token file.
	out := run(t, bin, "infer", "--node", base, "--cacert", caCert, "--token-file", opToken, "--policy", "cloud-only", x)
	if !strings.Contains(out, `"cloud"`) {
		t.Errorf("infer --node printed %s", out)
	}
	if _, err := runErr(bin, "infer", "--node", base, "--cacert", caCert, x); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("infer --node without a token: %v, want a 401", err)
	}
	// --cut as policy fixed:K, --output written; the token from the environment.
	yRemote := filepath.Join(dir, "y-remote.npy")
	t.Setenv("EDGESPLIT_TOKEN", tok)
	out = run(t, bin, "infer", "--node", base, "--cacert", caCert, "--cut", "4", "--codec", "lossless", "--output", yRemote, x)
	if !strings.Contains(out, `"cut": 4`) || !slices.Equal(readNPYData(t, yRemote), want) {
		t.Errorf("infer --node HOST:PORT --cut 4 --output: printed %s; wrote output equal to local: %v", out, slices.Equal(readNPYData(t, yRemote), want))
	}
	// Local inference without --output prints the prediction.
	if out := run(t, bin, "infer", "--model", mdl, x); !strings.Contains(out, fmt.Sprintf("argmax %d", argmaxOf(want))) {
		t.Errorf("infer without --output printed %q", out)
	}
	// Metrics are served, refusals counted.
	if code, metrics := getStatus(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(metrics, "edgesplit_requests_total") ||
		!strings.Contains(metrics, `edgesplit_api_refusals_total{node="edge",reason="unauthenticated"} 3`) {
		t.Errorf("/metrics: %d, lacks edgesplit_requests_total or the 3 unauthenticated refusals", code)
	}
	// The edge's audit trail has a JSON line per API request, 200s and
	// refusals alike (the int8 400s above among them).
	audit, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(audit, []byte(`"msg":"request"`)); n < 8 || !bytes.Contains(audit, []byte(`"status":400`)) {
		t.Errorf("audit log has %d request lines (want ≥ 8, a 400 among them):\n%s", n, audit)
	}
	if n := bytes.Count(audit, []byte(`"msg":"refused"`)); n != 5 || !bytes.Contains(audit, []byte(`"client":"camera"`)) {
		t.Errorf("audit log has %d refused lines (want 5: 3 unauthenticated, 2 of the camera's):\n%s", n, audit)
	}
}

func argmaxOf(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

func writeRandomNPY(t testing.TB, path string, shape []int) {
	t.Helper()
	x := model.UniformTensor(shape, 9)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.Write(f, x); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func readNPYData(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	y, err := npy.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return y.Data().([]float32)
}

// api is how the helpers below reach an edge's API: the client (trusting
// the cluster CA) and the bearer token (useAPI sets both).
var api = struct {
	client *http.Client
	token  string
}{client: http.DefaultClient}

// useAPI makes the helpers trust caCert (PEM; "" for none) and send token.
func useAPI(t testing.TB, caCert, token string) {
	t.Helper()
	api.client, api.token = http.DefaultClient, token
	if caCert != "" {
		c, err := apiClient(caCert)
		if err != nil {
			t.Fatal(err)
		}
		api.client = c
	}
}

func apiDo(t testing.TB, method, url string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if api.token != "" {
		req.Header.Set("Authorization", "Bearer "+api.token)
	}
	resp, err := api.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp := apiDo(t, http.MethodGet, url, nil)
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// getStatus gets url and returns the status code and body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp := apiDo(t, http.MethodGet, url, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postStatus posts body and returns the status code and body.
func postStatus(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp := apiDo(t, http.MethodPost, url, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls ok every 100 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postJSON(t *testing.T, url string, body []byte, v any) {
	t.Helper()
	resp := apiDo(t, http.MethodPost, url, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
