package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/node"
)

// buildBinary compiles edgesplit once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "edgesplit")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("edgesplit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var startedRe = regexp.MustCompile(`gossip=(\S+) quic=(\S+) http=(\S*)`)

// startNode starts `edgesplit node` and waits for its start line.
func startNode(t *testing.T, bin string, args ...string) (gossip, httpAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"node"}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("node %v stderr:\n%s", args, stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		m := startedRe.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected start line %q", l)
		}
		return m[1], m[3]
	case <-time.After(60 * time.Second):
		t.Fatalf("node %v did not start; stderr:\n%s", args, stderr.String())
	}
	return "", ""
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
	ca := filepath.Join(dir, "ca")
	run(t, bin, "ca", "init", "--dir", ca)
	for n, role := range map[string]string{"edge": "edge", "cloud1": "cloud", "cloud2": "cloud"} {
		run(t, bin, "ca", "issue", "--dir", ca, "--node", n, "--role", role)
	}
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
	_, httpAddr := startNode(t, bin, append([]string{"--role", "edge", "--name", "edge", "--join", seed,
		"--http", "127.0.0.1:0", "--link", "ethernet", "--device", "raspberry-pi-4", "--audit-log", auditLog}, common...)...)
	base := "http://" + httpAddr

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
	// The client command against the node.
	out := run(t, bin, "infer", "--node", base, "--policy", "cloud-only", x)
	if !strings.Contains(out, `"cloud"`) {
		t.Errorf("infer --node printed %s", out)
	}
	// host:port without a scheme, --cut as policy fixed:K, --output written.
	yRemote := filepath.Join(dir, "y-remote.npy")
	out = run(t, bin, "infer", "--node", strings.TrimPrefix(base, "http://"), "--cut", "4", "--codec", "lossless", "--output", yRemote, x)
	if !strings.Contains(out, `"cut": 4`) || !slices.Equal(readNPYData(t, yRemote), want) {
		t.Errorf("infer --node HOST:PORT --cut 4 --output: printed %s; wrote output equal to local: %v", out, slices.Equal(readNPYData(t, yRemote), want))
	}
	// Local inference without --output prints the prediction.
	if out := run(t, bin, "infer", "--model", mdl, x); !strings.Contains(out, fmt.Sprintf("argmax %d", argmaxOf(want))) {
		t.Errorf("infer without --output printed %q", out)
	}
	// Metrics are served.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("edgesplit_requests_total")) {
		t.Errorf("/metrics lacks edgesplit_requests_total")
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

func writeRandomNPY(t *testing.T, path string, shape []int) {
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

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// postStatus posts body and returns the status code and body.
func postStatus(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls ok every 100 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, ok func() bool, what string) {
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
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
