package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestAuditOneLinePerRequest: every API request, answered or refused, leaves
// exactly one JSON audit record naming its client, model, plan and outcome.
func TestAuditOneLinePerRequest(t *testing.T) {
	var buf lockedBuffer
	m := testModel(t)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"),
		Logger: quietLogger(),
		Tune: func(c *node.Config) {
			c.ProfileRuns = 1
			if c.Role == node.RoleEdge {
				c.Audit = slog.New(slog.NewJSONHandler(&buf, nil))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	h := lc.Edges[0].Handler()
	good := npyBytes(t, randInput(1, m.Graph.Inputs[0].Shape))
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, q := good, ""
			if i%10 == 0 {
				body = []byte("not an input")
			}
			if i%10 == 1 {
				q = "?model=nope"
			}
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/infer"+q, bytes.NewReader(body)))
		}()
	}
	wg.Wait()
	lines := buf.lines()
	if len(lines) != n {
		t.Fatalf("%d audit lines for %d requests", len(lines), n)
	}
	codes := map[int]int{}
	for _, l := range lines {
		var rec struct {
			Msg     string  `json:"msg"`
			Client  string  `json:"client"`
			Status  int     `json:"status"`
			Model   string  `json:"model"`
			Version string  `json:"model_version"`
			Cloud   string  `json:"cloud"`
			Bytes   int64   `json:"bytes_sent"`
			Error   string  `json:"error"`
			Total   float64 `json:"total_ms"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		codes[rec.Status]++
		switch rec.Status {
		case http.StatusOK:
			if rec.Msg != "request" || rec.Client == "" || rec.Model != m.ID || rec.Version != m.Version || rec.Cloud == "" || rec.Bytes <= 0 || rec.Total <= 0 {
				t.Errorf("answered request's audit record %s", l)
			}
		default:
			if rec.Error == "" {
				t.Errorf("failed request's audit record names no error: %s", l)
			}
		}
	}
	if codes[http.StatusOK] != n-8 || codes[http.StatusBadRequest] != 4 || codes[http.StatusNotFound] != 4 {
		t.Errorf("audit status counts %v", codes)
	}
}

func TestNewAuditLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, c, err := node.NewAuditLog(node.AuditConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("refused", "reason", "test")
	c.Close()
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"reason":"test"`) {
		t.Errorf("audit file %q, %v", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v", st.Mode())
	}
	if _, _, err := node.NewAuditLog(node.AuditConfig{}); err == nil {
		t.Error("no path accepted")
	}
}
