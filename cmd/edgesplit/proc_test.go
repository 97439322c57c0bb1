package main

// Helpers of the process tests: start a node process, read its RSS, read
// the edge's view and audit log, and make hostile bodies.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/nodeline"
	"github.com/edgesplit/edgesplit/node"
)

// newCA makes a cluster CA in dir/name with 'ca init' and issues a
// certificate per node (name → role); it returns the CA folder.
func newCA(t testing.TB, bin, dir, name string, nodes map[string]string) string {
	t.Helper()
	ca := filepath.Join(dir, name)
	run(t, bin, "ca", "init", "--dir", ca)
	for n, role := range nodes {
		run(t, bin, "ca", "issue", "--dir", ca, "--node", n, "--role", role)
	}
	return ca
}

// nodeProc is a running `edgesplit node` process.
type nodeProc struct {
	gossip, quic, http string
	pid                int
}

// launchNode starts `edgesplit node` and waits for its start line; it is
// interrupted when the test ends.
func launchNode(t testing.TB, bin string, args ...string) nodeProc {
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
	select {
	case l, ok := <-nodeline.First(stdout):
		st, err := nodeline.Parse(l)
		if !ok || err != nil {
			t.Fatalf("node %v did not start (first line %q); stderr:\n%s", args, l, stderr.String())
		}
		return nodeProc{gossip: st.Gossip, quic: st.QUIC, http: st.HTTP, pid: cmd.Process.Pid}
	case <-time.After(60 * time.Second):
		t.Fatalf("node %v did not start; stderr:\n%s", args, stderr.String())
	}
	return nodeProc{}
}

// clusterMember is the edge's /v1/cluster entry of name (zero when absent).
func clusterMember(t testing.TB, base, name string) node.ClusterMember {
	t.Helper()
	var members []node.ClusterMember
	getJSON(t, base+"/v1/cluster", &members)
	for _, m := range members {
		if m.Name == name {
			return m
		}
	}
	return node.ClusterMember{}
}

// auditCount counts the audit log's lines holding s.
func auditCount(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	n := 0
	for l := range bytes.Lines(b) {
		if bytes.Contains(l, []byte(s)) {
			n++
		}
	}
	return n
}

// watchRSS samples process pid's resident set every 5 ms from now on; the
// returned function stops and returns the peak growth over the first
// sample, in MB.
func watchRSS(t *testing.T, pid int) func() float64 {
	t.Helper()
	base := procRSSMB(t, pid)
	var peak atomic.Int64 // KB
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				if kb := int64(procRSSMB(t, pid) * 1024); kb > peak.Load() {
					peak.Store(kb)
				}
			}
		}
	}()
	return func() float64 {
		close(done)
		<-stopped
		return max(0, float64(peak.Load())/1024-base)
	}
}

// procRSSMB reads VmRSS of pid from /proc (Linux; the test skips elsewhere).
func procRSSMB(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skip("no /proc status:", err)
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// pngBomb is a PNG's signature and header declaring w×h 16-bit RGBA: a few
// bytes claiming w·h·8 bytes of pixels.
func pngBomb(w, h uint32) []byte {
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	b := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

// garbageReader is an endless stream of pseudo-random bytes (xorshift).
type garbageReader struct{ x uint64 }

func (g *garbageReader) Read(p []byte) (int, error) {
	for i := range p {
		g.x ^= g.x << 13
		g.x ^= g.x >> 7
		g.x ^= g.x << 17
		p[i] = byte(g.x)
	}
	return len(p), nil
}

// edgeAndClouds is a running cluster of one edge ("edge") and two clouds
// ("cloud1", "cloud2") as `edgesplit node` processes, with the API helpers
// set to talk to the edge.
type edgeAndClouds struct {
	c1, c2, edge          nodeProc
	base, caCert, tokFile string
}

// startEdgeAndClouds makes a CA in dir, a client token with scopes, and
// starts two clouds serving model and an edge serving it over the API
// (--api-tls) with edgeArgs (its link, device, …); it waits until the
// edge sees both clouds alive.
func startEdgeAndClouds(t *testing.T, bin, dir, model, scopes string, edgeArgs ...string) edgeAndClouds {
	t.Helper()
	ca := newCA(t, bin, dir, "ca", map[string]string{"edge": "edge", "cloud1": "cloud", "cloud2": "cloud"})
	clients := filepath.Join(dir, "clients.yaml")
	tok, _, _ := strings.Cut(run(t, bin, "token", "new", "--name", "client", "--scopes", scopes, "--clients", clients), "\n")
	var c edgeAndClouds
	c.tokFile = filepath.Join(dir, "token")
	if err := os.WriteFile(c.tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.c1 = launchNode(t, bin, "--role", "cloud", "--name", "cloud1", "--bind", "127.0.0.1:0", "--quic", "127.0.0.1:0", "--ca", ca, "--model", model)
	c.c2 = launchNode(t, bin, "--role", "cloud", "--name", "cloud2", "--bind", "127.0.0.1:0", "--quic", "127.0.0.1:0", "--ca", ca, "--model", model, "--join", c.c1.gossip)
	c.edge = launchNode(t, bin, append([]string{"--role", "edge", "--name", "edge", "--bind", "127.0.0.1:0", "--join", c.c1.gossip + "," + c.c2.gossip,
		"--http", "127.0.0.1:0", "--api-clients", clients, "--api-tls", "--ca", ca, "--model", model}, edgeArgs...)...)
	c.base = "https://" + c.edge.http
	c.caCert = filepath.Join(ca, "ca.crt")
	useAPI(t, c.caCert, tok)
	t.Cleanup(func() { useAPI(t, "", "") })
	alive := func(name string) bool { return clusterMember(t, c.base, name).Alive }
	waitFor(t, 20*time.Second, func() bool { return alive("cloud1") && alive("cloud2") }, "the edge to see both clouds")
	return c
}
