package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// TestAttacksOnProcesses replays, against real `edgesplit node` processes
// on loopback, the attacks of the security review (docs/security.md): each
// subtest is one attack, and each now fails. The cluster: cloud1 (the
// gossip seed) and an edge serving HTTPS to a clients file, both with
// audit logs; attackers are further processes (a node without the gossip
// key, one with another cluster's key, one under a taken name, a rogue
// cloud with a valid certificate of another name) or this test itself
// speaking HTTP and QUIC to them.
func TestAttacksOnProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process attack suite skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ca := newCA(t, bin, dir, "ca", map[string]string{"edge": "edge", "cloud1": "cloud", "mallory": "cloud", "tester": "edge"})
	clients := filepath.Join(dir, "clients.yaml")
	firstLine := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
	opTok := firstLine(run(t, bin, "token", "new", "--name", "operator", "--scopes", "infer,override,cluster,metrics", "--clients", clients,
		"--rate", "100000", "--burst", "2000"))
	fleetTok := firstLine(run(t, bin, "token", "new", "--name", "fleet", "--scopes", "infer", "--clients", clients, "--rate", "100000", "--burst", "2000"))
	greedyTok := firstLine(run(t, bin, "token", "new", "--name", "greedy", "--scopes", "infer", "--clients", clients, "--rate", "2", "--burst", "4"))

	const mdl = "lenet5"
	common := []string{"--ca", ca, "--model", mdl, "--bind", "127.0.0.1:0"}
	cloudAudit, edgeAudit := filepath.Join(dir, "cloud-audit.log"), filepath.Join(dir, "edge-audit.log")
	seed := launchNode(t, bin, append([]string{"--role", "cloud", "--name", "cloud1", "--audit-log", cloudAudit}, common...)...)
	const readTimeout = 2 * time.Second
	edge := launchNode(t, bin, append([]string{"--role", "edge", "--name", "edge", "--join", seed.gossip, "--http", "127.0.0.1:0",
		"--api-clients", clients, "--api-tls", "--audit-log", edgeAudit, "--api-read-timeout", readTimeout.String()}, common...)...)
	base := "https://" + edge.http
	caCert := filepath.Join(ca, "ca.crt")
	useAPI(t, caCert, opTok)
	defer useAPI(t, "", "")
	waitFor(t, 20*time.Second, func() bool { return clusterMember(t, base, "cloud1").Alive }, "the edge to see cloud1")

	x := filepath.Join(dir, "x.npy")
	writeRandomNPY(t, x, []int{1, 1, 28, 28})
	body, err := os.ReadFile(x)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("gossip without the cluster key is refused and audited", func(t *testing.T) {
		// The intruders hold certificates of their own CA: one has no
		// gossip key at all (--insecure-gossip), one another cluster's.
		other := newCA(t, bin, dir, "other-ca", map[string]string{"intruder": "cloud"})
		withKey := filepath.Join(dir, "other-key")
		if err := os.CopyFS(withKey, os.DirFS(other)); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(other, pki.GossipKeyFile)); err != nil {
			t.Fatal(err)
		}
		before := auditCount(t, cloudAudit, `"event":"gossip_key"`)
		for i, caDir := range []string{other, withKey} {
			out, err := startNodeErr(bin, "--role", "cloud", "--name", "intruder", "--ca", caDir, "--model", mdl, "--bind", "127.0.0.1:0",
				"--insecure-gossip", "--join", seed.gossip)
			if err == nil || !strings.Contains(out, "gossip key") {
				t.Errorf("intruder %d: %v, want a failed join naming the gossip key:\n%s", i, err, out)
			}
			waitFor(t, 5*time.Second, func() bool { return auditCount(t, cloudAudit, `"event":"gossip_key"`) >= before+i+1 },
				"the seed to audit the refused join")
		}
		if n := auditCount(t, cloudAudit, `"event":"gossip_key"`) - before; n != 2 {
			t.Errorf("%d gossip_key refusals audited for 2 refused joins", n)
		}
		if m := clusterMember(t, base, "intruder"); m.Name != "" {
			t.Errorf("the edge lists the intruder: %+v", m)
		}
	})

	t.Run("an edge with another CA's certificate is told loudly, not silently local", func(t *testing.T) {
		// It has the gossip key (so it joins) but its certificate comes
		// from another CA: every QUIC handshake with cloud1 fails.
		foreign := newCA(t, bin, dir, "foreign-ca", map[string]string{"edge2": "edge"})
		key, err := os.ReadFile(filepath.Join(ca, pki.GossipKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(foreign, pki.GossipKeyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
		audit2 := filepath.Join(dir, "edge2-audit.log")
		e2 := launchNode(t, bin, "--role", "edge", "--name", "edge2", "--ca", foreign, "--model", mdl, "--bind", "127.0.0.1:0",
			"--join", seed.gossip, "--http", "127.0.0.1:0", "--insecure-api", "--audit-log", audit2)
		waitFor(t, 20*time.Second, func() bool { return auditCount(t, audit2, `"event":"handshake_failed"`) >= 1 },
			"edge2 to audit its failed handshake with cloud1")
		code, metrics := getStatus(t, "http://"+e2.http+"/metrics")
		if code != http.StatusOK || !strings.Contains(metrics, `edgesplit_api_refusals_total{node="edge2",reason="handshake_failed"}`) {
			t.Errorf("edge2's /metrics (%d) does not count the failed handshakes", code)
		}
	})

	t.Run("a second node under a taken name fails loudly", func(t *testing.T) {
		before := auditCount(t, cloudAudit, `"event":"name_conflict"`)
		out, err := startNodeErr(bin, append([]string{"--role", "cloud", "--name", "cloud1", "--join", seed.gossip}, common...)...)
		if err == nil || !strings.Contains(out, "already taken") {
			t.Errorf("a second cloud1: %v, want a refusal saying the name is taken:\n%s", err, out)
		}
		waitFor(t, 5*time.Second, func() bool { return auditCount(t, cloudAudit, `"event":"name_conflict"`) > before },
			"cloud1 to audit the process claiming its name")
		if m := clusterMember(t, base, "cloud1"); !m.Alive || m.QUICAddr != seed.quic {
			t.Errorf("after the conflict the edge sees cloud1 as %+v, want the original at %s", m, seed.quic)
		}
	})

	t.Run("a rogue cloud with a valid certificate of another name gets no activation", func(t *testing.T) {
		// mallory holds a real cloud certificate and the gossip key: it
		// gossips as cloud2 (a name no node has), advertising a QUIC
		// endpoint of its own that presents mallory's certificate and
		// counts what reaches it. (edgesplit node itself refuses to run
		// under a name its certificate does not carry, so the rogue is
		// this test.)
		id, err := pki.LoadIdentityDir(ca, "mallory")
		if err != nil {
			t.Fatal(err)
		}
		var reached atomic.Int64
		ep, err := transport.ListenAddr("127.0.0.1:0", transport.Config{Identity: id, Handler: transport.HandlerFunc(
			func(context.Context, *transport.Request, io.Reader, transport.ResponseWriter) error {
				reached.Add(1)
				return errors.New("rogue")
			})})
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		key, err := pki.ReadGossipKey(filepath.Join(ca, pki.GossipKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		mc := node.DefaultMembershipConfig("cloud2")
		mc.BindPort, mc.SecretKey = 0, key
		cm := clusterMember(t, base, "cloud1")
		rogue, err := node.NewMembership(mc, node.Meta{Role: node.RoleCloud, Device: "server", QUICAddr: ep.Addr().String(),
			Models: []node.ModelRef{{ID: mdl, Version: cm.Models[0].Version}}, ProfileDigest: cm.ProfileDigest})
		if err != nil {
			t.Fatal(err)
		}
		defer rogue.Shutdown()
		if _, err := rogue.Join(context.Background(), []string{seed.gossip}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, func() bool { return strings.Contains(clusterMember(t, base, "cloud2").Refused, "mallory") },
			"the edge to quarantine cloud2 (its endpoint presents mallory's certificate)")
		for i := range 20 {
			var res node.InferResponse
			postJSON(t, base+"/v1/infer?policy=cloud-only&codec=lossless", body, &res)
			if res.Cloud != "cloud1" {
				t.Errorf("request %d answered by %q (fallback %q), want cloud1", i, res.Cloud, res.Fallback)
			}
		}
		if n := reached.Load(); n != 0 {
			t.Errorf("%d requests (activations or probes) reached the rogue's endpoint", n)
		}
		if auditCount(t, edgeAudit, `"event":"quarantine"`) < 1 || auditCount(t, edgeAudit, `"peer":"cloud2"`) < 1 {
			t.Errorf("the edge's audit log has no quarantine of cloud2")
		}
	})

	t.Run("unauthorised clients get 401 or 403 and no inference", func(t *testing.T) {
		before := auditCount(t, edgeAudit, `"msg":"refused"`)
		for _, c := range []struct {
			name, token, path string
			code              int
		}{
			{"no token", "", "/v1/infer", http.StatusUnauthorized},
			{"forged token", "es_" + strings.Repeat("0", 40), "/v1/infer", http.StatusUnauthorized},
			{"infer-only token choosing the policy", fleetTok, "/v1/infer?policy=cloud-only", http.StatusForbidden},
			{"infer-only token reading metrics", fleetTok, "/metrics", http.StatusForbidden},
		} {
			useAPI(t, caCert, c.token)
			var code int
			var msg string
			if c.path == "/metrics" {
				code, msg = getStatus(t, base+c.path)
			} else {
				code, msg = postStatus(t, base+c.path, body)
			}
			if code != c.code || strings.Contains(msg, `"output"`) {
				t.Errorf("%s: %d %s, want %d and no answer", c.name, code, msg, c.code)
			}
		}
		useAPI(t, caCert, opTok)
		if n := auditCount(t, edgeAudit, `"msg":"refused"`) - before; n != 4 {
			t.Errorf("%d refused lines audited for 4 refused requests", n)
		}
	})

	t.Run("tokens added, expiring or revoked take effect on SIGHUP without a restart", func(t *testing.T) {
		code := func(tok string) int {
			useAPI(t, caCert, tok)
			defer useAPI(t, caCert, opTok)
			c, _ := postStatus(t, base+"/v1/infer", body)
			return c
		}
		late := firstLine(run(t, bin, "token", "new", "--name", "late", "--scopes", "infer", "--clients", clients))
		brief := firstLine(run(t, bin, "token", "new", "--name", "brief", "--scopes", "infer", "--clients", clients, "--ttl", "8s"))
		if c := code(late); c != http.StatusUnauthorized {
			t.Fatalf("a token added to the file before any SIGHUP: %d, want 401", c)
		}
		if err := syscall.Kill(edge.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, func() bool { return code(late) == http.StatusOK }, "the edge to admit the new token after SIGHUP")
		if c := code(brief); c != http.StatusOK {
			t.Errorf("a token with up to 8 s left: %d", c)
		}
		waitFor(t, 15*time.Second, func() bool { return code(brief) == http.StatusUnauthorized }, "the brief token to expire")
		run(t, bin, "token", "revoke", "--name", "late", "--clients", clients)
		if err := syscall.Kill(edge.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, func() bool { return code(late) == http.StatusUnauthorized }, "the revoked token to be refused after SIGHUP")
		if c := code(fleetTok); c != http.StatusOK {
			t.Errorf("an untouched client after the reloads: %d", c)
		}
	})

	t.Run("non-finite input is a 400 that says where", func(t *testing.T) {
		v := model.UniformTensor([]int{1, 1, 28, 28}, 3)
		v.Data().([]float32)[100] = float32(math.NaN())
		var b bytes.Buffer
		if err := npy.Write(&b, v); err != nil {
			t.Fatal(err)
		}
		if code, msg := postStatus(t, base+"/v1/infer", b.Bytes()); code != http.StatusBadRequest || !strings.Contains(msg, "element 100") {
			t.Errorf("NaN input: %d %s, want 400 naming element 100", code, msg)
		}
	})

	t.Run("bombs and garbage bodies are refused in bounded memory", func(t *testing.T) {
		// 8 PNG bombs (4096×4096 16-bit RGBA: 128 MiB decoded, 45 bytes
		// sent) and 8 × 64 MiB garbage bodies to the edge's API, and 8 ×
		// 64 MiB garbage segments to cloud1 over QUIC from a valid edge
		// certificate, all at once.
		id, err := pki.LoadIdentityDir(ca, "tester")
		if err != nil {
			t.Fatal(err)
		}
		ep, err := transport.ListenAddr("127.0.0.1:0", transport.Config{Identity: id, Handler: transport.HandlerFunc(
			func(context.Context, *transport.Request, io.Reader, transport.ResponseWriter) error {
				return errors.New("not serving")
			})})
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		g, _, err := loadModel(mdl)
		if err != nil {
			t.Fatal(err)
		}
		nodes := make([]int, len(g.Nodes))
		for i := range nodes {
			nodes[i] = i
		}
		cm := clusterMember(t, base, "cloud1")
		hdr, err := node.RunRequestHeader(mdl, cm.Models[0].Version, "lossless", nodes)
		if err != nil {
			t.Fatal(err)
		}
		bomb := pngBomb(4096, 4096)
		edgeRSS, cloudRSS := watchRSS(t, edge.pid), watchRSS(t, seed.pid)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if code, msg := postStatus(t, base+"/v1/infer", bomb); code != http.StatusBadRequest || !strings.Contains(msg, "pixels") {
					t.Errorf("PNG bomb: %d %s, want 400 naming the pixel budget", code, msg)
				}
			})
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/infer", io.LimitReader(&garbageReader{x: uint64(i) + 1}, 64<<20))
				req.Header.Set("Authorization", "Bearer "+opTok)
				resp, err := api.client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
						t.Errorf("64 MiB garbage to the API: %s, want 400 or 413", resp.Status)
					}
				} // else the edge closed the connection mid-body: refused too
			})
			wg.Go(func() {
				_, err := ep.Call(context.Background(), seed.quic, &transport.Request{ID: uint64(i) + 1, Header: hdr, Peer: "cloud1",
					PeerRoles: []pki.Role{pki.RoleCloud}}, io.LimitReader(&garbageReader{x: uint64(i) + 100}, 64<<20))
				if !errors.Is(err, transport.ErrTooLarge) {
					t.Errorf("64 MiB garbage segment to cloud1: %v, want it refused as too large", err)
				}
			})
		}
		wg.Wait()
		eg, cg := edgeRSS(), cloudRSS()
		t.Logf("peak RSS growth under the attack: edge %.1f MB, cloud1 %.1f MB", eg, cg)
		if eg >= 50 || cg >= 50 {
			t.Errorf("peak RSS growth edge %.1f MB, cloud1 %.1f MB; want < 50 MB each", eg, cg)
		}
		var res node.InferResponse
		postJSON(t, base+"/v1/infer?policy=cloud-only&codec=lossless", body, &res) // both still serve
	})

	t.Run("slow-body connections are closed at the read timeout", func(t *testing.T) {
		tlsCfg := api.client.Transport.(*http.Transport).TLSClientConfig
		const conns = 50
		closedAfter := make(chan time.Duration, conns)
		start := time.Now()
		for range conns {
			c, err := tls.Dial("tcp", edge.http, tlsCfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /v1/infer HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", opTok, len(body))
			go func() { // a byte every 100 ms: the body would take minutes
				for i := range body {
					if _, err := c.Write(body[i : i+1]); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			go func() {
				c.SetReadDeadline(time.Now().Add(4 * readTimeout))
				io.Copy(io.Discard, c) // returns when the edge closes the connection
				closedAfter <- time.Since(start)
			}()
		}
		var worst time.Duration
		for range conns {
			worst = max(worst, <-closedAfter)
		}
		t.Logf("%d slow-body connections: the last closed after %v (read timeout %v)", conns, worst, readTimeout)
		if worst > readTimeout+1500*time.Millisecond {
			t.Errorf("slow-body connections held for %v, read timeout %v", worst, readTimeout)
		}
	})

	t.Run("1000 requests at 200 concurrency lose none while an over-limit client gets 429", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: api.client.Transport.(*http.Transport).TLSClientConfig,
			MaxIdleConnsPerHost: 256}}
		post := func(tok string) (int, string) {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/infer", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("POST: %v", err)
				return 0, ""
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, resp.Header.Get("Retry-After")
		}
		reqsBefore, refusedBefore := auditCount(t, edgeAudit, `"msg":"request"`), auditCount(t, edgeAudit, `"msg":"refused"`)
		const total, conc = 1000, 200
		var ok, other, greedyOK, greedy429, greedyOther atomic.Int64
		var retryAfter atomic.Value
		stop := make(chan struct{})
		var gw sync.WaitGroup
		for range 4 {
			gw.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					switch code, ra := post(greedyTok); code {
					case http.StatusOK:
						greedyOK.Add(1)
					case http.StatusTooManyRequests:
						greedy429.Add(1)
						retryAfter.Store(ra)
					default:
						greedyOther.Add(1)
					}
				}
			})
		}
		jobs := make(chan struct{}, total)
		for range total {
			jobs <- struct{}{}
		}
		close(jobs)
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for range jobs {
					if code, _ := post(fleetTok); code == http.StatusOK {
						ok.Add(1)
					} else {
						other.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		gw.Wait()
		t.Logf("fleet: %d answered, %d not; greedy: %d answered, %d × 429 (Retry-After %v), %d other",
			ok.Load(), other.Load(), greedyOK.Load(), greedy429.Load(), retryAfter.Load(), greedyOther.Load())
		if ok.Load() != total {
			t.Errorf("%d of %d requests answered", ok.Load(), total)
		}
		if greedy429.Load() == 0 || greedyOther.Load() != 0 {
			t.Errorf("the over-limit client got %d × 429 and %d other errors", greedy429.Load(), greedyOther.Load())
		}
		if ra, _ := retryAfter.Load().(string); ra == "" {
			t.Error("429 without Retry-After")
		}
		// One audit line per request: answered ones are "request", the
		// rate-limited ones "refused".
		waitFor(t, 5*time.Second, func() bool {
			return auditCount(t, edgeAudit, `"msg":"request"`)-reqsBefore == total+int(greedyOK.Load())
		}, "the audit log to hold one request line per answered request")
		if n := auditCount(t, edgeAudit, `"msg":"refused"`) - refusedBefore; n != int(greedy429.Load()) {
			t.Errorf("%d refused lines audited for %d × 429", n, greedy429.Load())
		}
	})

	t.Run("metrics count every refusal and error by reason", func(t *testing.T) {
		code, metrics := getStatus(t, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		for _, want := range []string{
			`edgesplit_api_refusals_total{node="edge",reason="untrusted_peer"}`,
			`edgesplit_api_refusals_total{node="edge",reason="unauthenticated"}`,
			`edgesplit_api_refusals_total{node="edge",reason="forbidden"}`,
			`edgesplit_api_refusals_total{node="edge",reason="rate_limited"}`,
			`edgesplit_api_errors_total{node="edge",status="400"}`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}
