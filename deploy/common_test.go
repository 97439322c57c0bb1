package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/nodeline"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/transport/pki"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// edgesplitBin builds the binary once, with the Dockerfile's own build
// command (so every test runs what the image would hold).
func edgesplitBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		df, err := readDockerfile()
		if err != nil {
			buildErr = err
			return
		}
		cmdline, out, err := df.buildCommand()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "edgesplit-deploy-"); err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(buildDir, "edgesplit")
		cmdline = strings.ReplaceAll(cmdline, out, buildBin)
		c := exec.Command("sh", "-c", cmdline)
		c.Dir = ".." // the build context: the repository root
		if b, err := c.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("the Dockerfile's build command %q: %v\n%s", cmdline, err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// loopbackNet returns a random "127.N.M." prefix: the tests give their
// nodes fixed ports (as the deployment files do) on addresses of their own
// in 127.0.0.0/8, so two test runs on one machine do not collide.
func loopbackNet() string {
	return fmt.Sprintf("127.%d.%d.", 1+rand.IntN(254), rand.IntN(256))
}

// run runs the binary and returns its combined output, failing on error.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("edgesplit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// proc is one started `edgesplit node`.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
	err    error
}

// startNode starts bin with args (env added to the environment) and waits
// for the node's start line. The process is stopped at cleanup if still
// running; its stderr is logged when the test failed.
func startNode(t *testing.T, name, bin string, env, args []string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := nodeline.First(stdout)
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s: %s\nstderr:\n%s", name, strings.Join(args, " "), p.stderr.String())
		}
	})
	select {
	case l, ok := <-lines:
		if _, err := nodeline.Parse(l); !ok || err != nil {
			<-p.done
			t.Fatalf("%s did not start (first line %q, exit %v); stderr:\n%s", name, l, p.err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start in 60 s; stderr:\n%s", name, p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and waits (SIGKILL after 20 s); it returns the exit
// error, nil for status 0.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// waitClouds polls the edge's /v1/cluster until it sees n live clouds.
func waitClouds(t *testing.T, base string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var members []struct {
			Name  string `json:"name"`
			Role  string `json:"role"`
			Alive bool   `json:"alive"`
		}
		alive := 0
		if err := getJSON(base+"/v1/cluster", &members); err == nil {
			for _, m := range members {
				if m.Alive && m.Role == "cloud" {
					alive++
				}
			}
		}
		if alive == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s sees %d live clouds after 30 s, want %d: %+v", base, alive, n, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api is how the helpers reach a node's API: a client trusting the
// cluster CA (node certificates name the cluster, not an address) and the
// bearer token (useAPI sets both).
var api = struct {
	client *http.Client
	token  string
}{client: http.DefaultClient}

// useAPI makes the helpers trust the CA certificate in caCert and send
// token; it returns the token.
func useAPI(t *testing.T, caCert, token string) string {
	t.Helper()
	pem, err := os.ReadFile(caCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", caCert)
	}
	api.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: pki.ClusterDNSName}}}
	api.token = token
	return token
}

// newToken adds a client with every scope to the clients file and returns
// its token (token new prints it on its first line).
func newToken(t *testing.T, bin, clients string) string {
	t.Helper()
	out := run(t, bin, "token", "new", "--name", "operator", "--scopes", "infer,override,cluster,metrics", "--clients", clients)
	tok, _, _ := strings.Cut(out, "\n")
	return tok
}

func apiGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if api.token != "" {
		req.Header.Set("Authorization", "Bearer "+api.token)
	}
	return api.client.Do(req)
}

func getJSON(url string, v any) error {
	resp, err := apiGet(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// inferAnswer is the part of POST /v1/infer's answer the tests read.
type inferAnswer struct {
	Model  string    `json:"model"`
	Class  int       `json:"class"`
	Cut    int       `json:"cut"`
	Cloud  string    `json:"cloud"`
	Output []float32 `json:"output"`
}

// inferCloudOnly posts a random input of the model's shape to the edge,
// forced onto a cloud, and returns the answer.
func inferCloudOnly(t *testing.T, base string, shape []int) inferAnswer {
	t.Helper()
	var body bytes.Buffer
	if err := npy.Write(&body, model.UniformTensor(shape, 3)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/infer?policy=cloud-only", &body)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+api.token)
	resp, err := api.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s/v1/infer: %s: %s", base, resp.Status, b)
	}
	var a inferAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if a.Cloud == "" || len(a.Output) == 0 {
		t.Fatalf("cloud-only answer not offloaded or empty: %s", b)
	}
	return a
}

// httpOK checks that GET url answers 200.
func httpOK(t *testing.T, url string) {
	t.Helper()
	resp, err := apiGet(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// knownFlags checks that every --flag in args is one that `bin sub… --help`
// documents.
func knownFlags(t *testing.T, bin string, sub []string, args []string) {
	t.Helper()
	help := run(t, bin, append(append([]string{}, sub...), "--help")...)
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		f, _, _ := strings.Cut(a, "=")
		if !regexp.MustCompile(`(^|\s|, )` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
			t.Errorf("edgesplit %s has no flag %s", strings.Join(sub, " "), f)
		}
	}
}
