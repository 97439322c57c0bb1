package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
)

// TestFailoverOnProcesses is issue 14's failover evidence on real
// `edgesplit node` processes on loopback (one edge, two clouds, real QUIC
// and gossip), under continuous load from 3 clients, every answer checked
// against local inference. cloud1 is the faster cloud, which the scheduler
// prefers; cloud2 the backup.
//
//   - kill -9 of cloud1 while it carries the traffic, then a restart under
//     the same name, on its old ports and (again) on new ones: no request
//     lost, p99 latency during the outage at most 1.5× the steady p99
//     (before the kill and after the heal), and the restarted cloud
//     answers again, and carries most requests again, within 5 s of its
//     start;
//   - SIGSTOP of cloud1 for 10 s, then SIGCONT: no request lost, and the
//     cloud answers again, and carries most requests again, within 5 s of
//     resuming;
//   - SIGTERM of the edge under load: every request that got an HTTP
//     response got 200 with the right answer, and the edge's audit log
//     holds exactly as many requests as the clients got answers.
func TestFailoverOnProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover test skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ca := newCA(t, bin, dir, "ca", map[string]string{"edge": "edge", "cloud1": "cloud", "cloud2": "cloud"})
	clients := filepath.Join(dir, "clients.yaml")
	tok, _, _ := strings.Cut(run(t, bin, "token", "new", "--name", "operator", "--scopes", "infer,cluster", "--clients", clients,
		"--rate", "100000", "--burst", "5000"), "\n")

	const mdl = "lenet5"
	common := []string{"--ca", ca, "--model", mdl}
	clouds := map[string]nodeProc{}
	// cloud1 is the faster (the scheduler's choice while it is up), cloud2
	// the backup: a restarted or resumed cloud1 must win its traffic back.
	device := map[string]string{"cloud1": "server", "cloud2": "slowdown:10"}
	startCloud := func(name string, bind, quic string, join ...string) (nodeProc, time.Time) {
		args := append([]string{"--role", "cloud", "--name", name, "--bind", bind, "--quic", quic, "--device", device[name], "--workers", "3"}, common...)
		if len(join) > 0 {
			args = append(args, "--join", strings.Join(join, ","))
		}
		p := launchNode(t, bin, args...)
		clouds[name] = p
		return p, time.Now()
	}
	c1, _ := startCloud("cloud1", "127.0.0.1:0", "127.0.0.1:0")
	c2, _ := startCloud("cloud2", "127.0.0.1:0", "127.0.0.1:0", c1.gossip)
	edgeAudit := filepath.Join(dir, "edge-audit.log")
	// Cloud-only with the lossless codec: every answer comes from a cloud
	// (or, if every cloud failed, from the edge itself) and equals local
	// inference bit for bit.
	edge := launchNode(t, bin, append([]string{"--role", "edge", "--name", "edge", "--bind", "127.0.0.1:0", "--join", c1.gossip + "," + c2.gossip,
		"--http", "127.0.0.1:0", "--api-clients", clients, "--api-tls", "--audit-log", edgeAudit,
		"--policy", "cloud-only", "--codecs", "lossless"}, common...)...)
	base := "https://" + edge.http
	caCert := filepath.Join(ca, "ca.crt")
	useAPI(t, caCert, tok)
	defer useAPI(t, "", "")
	alive := func(name string) bool { return clusterMember(t, base, name).Alive }
	waitFor(t, 20*time.Second, func() bool { return alive("cloud1") && alive("cloud2") }, "the edge to see both clouds")

	x := filepath.Join(dir, "x.npy")
	writeRandomNPY(t, x, []int{1, 1, 28, 28})
	yLocal := filepath.Join(dir, "y.npy")
	run(t, bin, "infer", "--model", mdl, "--input", x, "--output", yLocal)
	want := readNPYData(t, yLocal)
	body, err := os.ReadFile(x)
	if err != nil {
		t.Fatal(err)
	}
	// An offloaded answer before the clock starts (first contact fetches
	// the clouds' profiles).
	waitFor(t, 20*time.Second, func() bool {
		var res node.InferResponse
		postJSON(t, base+"/v1/infer", body, &res)
		return res.Cloud != ""
	}, "a first offloaded answer")

	const workers = 3
	newClient := func(keepAlive bool) *http.Client {
		tr := api.client.Transport.(*http.Transport).Clone()
		tr.DisableKeepAlives = !keepAlive
		tr.MaxIdleConnsPerHost = workers
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	l := startLoad(newClient(true), base+"/v1/infer", tok, body, want, workers)
	defer l.stop()

	// share is the fraction of ss that cloud answered.
	share := func(ss []sample, cloud string) float64 {
		n := 0
		for _, s := range ss {
			if s.cloud == cloud {
				n++
			}
		}
		return float64(n) / float64(max(1, len(ss)))
	}

	// killRestart kills cloud1 with SIGKILL while it carries the traffic,
	// restarts it (on its old ports, or on new ones) once the edge sees it
	// dead, and checks the outage and the heal: a lost or wrong answer
	// fails t; the timing targets missed are returned.
	killRestart := func(t *testing.T, newPorts bool) (missed []string) {
		const victim = "cloud1"
		p := clouds[victim]
		steadyFrom := time.Now()
		time.Sleep(3 * time.Second)
		if _, ok := l.majorityBy(victim, time.Now(), 5*time.Second); !ok {
			t.Fatalf("%s, the faster cloud, does not carry most requests: the kill would not hit the cloud carrying traffic", victim)
		}
		killed := time.Now()
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, func() bool { return !alive(victim) }, "the edge to see "+victim+" dead")
		detected := time.Now()
		time.Sleep(2 * time.Second)
		// The outage ends when the new process is launched: its start-up
		// (a profile measured on these same 2 cores) is the restart's.
		relaunched := time.Now()
		bind, quic := p.gossip, p.quic
		if newPorts {
			bind, quic = "127.0.0.1:0", "127.0.0.1:0"
		}
		np, restarted := startCloud(victim, bind, quic, c2.gossip)
		if newPorts && (np.gossip == p.gossip || np.quic == p.quic) {
			t.Fatalf("the restart got an old port: gossip %s quic %s, were %s %s", np.gossip, np.quic, p.gossip, p.quic)
		}
		back, ok := l.firstBy(victim, restarted, 10*time.Second)
		if !ok {
			back = time.Now() // ≥ 10 s: missed below
		}
		most, ok := l.majorityBy(victim, restarted, 10*time.Second)
		if !ok {
			most = time.Now()
		}
		// Steady state before the kill and after the heal (A-B-A: the
		// shared machine's load drifts over a run).
		time.Sleep(2 * time.Second)
		steady := append(l.between(steadyFrom, killed), l.between(most, time.Now())...)
		outage, restart := l.between(killed, relaunched), l.between(relaunched, restarted)
		sp, op := p99(steady), p99(outage)
		t.Logf("%s killed: steady %d requests (%.0f%% on it) p99 %.1f ms; outage %.1f s (dead to gossip after %.2f s) %d requests "+
			"p99 %.1f ms (%.2f× steady), max %.1f ms; restart took %.2f s (%d requests, p99 %.1f ms); restarted %s answered %.2f s "+
			"after its start, most requests after %.2f s", victim, len(steady), 100*share(steady, victim), ms(sp),
			relaunched.Sub(killed).Seconds(), detected.Sub(killed).Seconds(), len(outage), ms(op), float64(op)/float64(sp),
			ms(maxLatency(outage)), restarted.Sub(relaunched).Seconds(), len(restart), ms(p99(restart)), victim,
			back.Sub(restarted).Seconds(), most.Sub(restarted).Seconds())
		checkAnswered(t, "before the kill", l.between(steadyFrom, killed))
		checkAnswered(t, "outage", outage)
		checkAnswered(t, "restart and after", l.between(relaunched, time.Now()))
		if op > sp*3/2 {
			missed = append(missed, fmt.Sprintf("p99 during the outage %v > 1.5 × steady p99 %v", op, sp))
			logTimeline(t, "outage", outage, killed, victim)
		}
		if back.Sub(restarted) > 5*time.Second {
			missed = append(missed, fmt.Sprintf("the restarted %s answered its first request %v after its start, want ≤ 5 s", victim, back.Sub(restarted)))
		}
		if most.Sub(restarted) > 5*time.Second {
			missed = append(missed, fmt.Sprintf("the restarted %s carried most requests again %v after its start, want ≤ 5 s", victim, most.Sub(restarted)))
		}
		return missed
	}
	// The timing targets are judged on a shared 2-core machine, where
	// other work can stall every process for a while: when one is missed,
	// the scenario runs once more, and what that run misses fails. (Lost
	// or wrong answers fail at once.)
	killTwice := func(t *testing.T, newPorts bool) {
		missed := killRestart(t, newPorts)
		if len(missed) > 0 && !t.Failed() {
			t.Logf("timing target missed (%s); once more", strings.Join(missed, "; "))
			missed = killRestart(t, newPorts)
		}
		for _, m := range missed {
			t.Error(m)
		}
	}
	t.Run("kill -9 of a cloud, restart under the same name and ports", func(t *testing.T) { killTwice(t, false) })
	t.Run("kill -9 of a cloud, restart under the same name on new ports", func(t *testing.T) { killTwice(t, true) })

	t.Run("SIGSTOP of a cloud for 10 s, then SIGCONT", func(t *testing.T) {
		const victim = "cloud1"
		p := clouds[victim]
		if _, ok := l.majorityBy(victim, time.Now(), 5*time.Second); !ok {
			t.Fatalf("%s, the faster cloud, does not carry most requests: SIGSTOP would not hit the cloud carrying traffic", victim)
		}
		before := l.between(time.Now().Add(-time.Second), time.Now())
		stopped := time.Now()
		if err := syscall.Kill(p.pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		defer func() {
			if !resumed {
				syscall.Kill(p.pid, syscall.SIGCONT)
			}
		}()
		time.Sleep(10 * time.Second)
		if err := syscall.Kill(p.pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed = true
		cont := time.Now()
		back, ok := l.firstBy(victim, cont, 10*time.Second)
		if !ok {
			t.Errorf("the resumed %s answered no request within 10 s of SIGCONT", victim)
		}
		most, mok := l.majorityBy(victim, cont, 10*time.Second)
		if !mok {
			t.Errorf("the resumed %s, the faster cloud, did not win back most requests within 10 s of SIGCONT", victim)
		}
		paused := l.between(stopped, cont)
		t.Logf("%s stopped 10 s: %d requests, p99 %.1f ms (the second before: %.1f ms), max %.1f ms; it answered again %.2f s "+
			"after SIGCONT, most requests after %.2f s", victim, len(paused), ms(p99(paused)), ms(p99(before)), ms(maxLatency(paused)),
			back.Sub(cont).Seconds(), most.Sub(cont).Seconds())
		checkAnswered(t, "stopped and resumed", l.between(stopped, time.Now()))
		if ok && back.Sub(cont) > 5*time.Second {
			t.Errorf("the resumed %s answered its first request %v after SIGCONT, want ≤ 5 s", victim, back.Sub(cont))
		}
		if mok && most.Sub(cont) > 5*time.Second {
			t.Errorf("the resumed %s carried most requests again %v after SIGCONT, want ≤ 5 s", victim, most.Sub(cont))
		}
	})

	t.Run("SIGTERM of the edge under load answers every accepted request", func(t *testing.T) {
		l.stop()
		// One connection per request, as a fleet of cameras would: a
		// request sent on a kept-alive connection just as the edge closes
		// it was never accepted, but would read here as lost.
		before, before200 := auditCount(t, edgeAudit, `"msg":"request"`), auditCount(t, edgeAudit, `"status":200`)
		lt := startLoad(newClient(false), base+"/v1/infer", tok, body, want, workers)
		defer lt.stop()
		time.Sleep(1500 * time.Millisecond)
		term := time.Now()
		if err := syscall.Kill(edge.pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited := waitExit(t, edge.pid, 15*time.Second)
		time.Sleep(200 * time.Millisecond) // clients see the closed port
		lt.stop()
		all := lt.since(time.Time{})
		var answered, afterTerm, refused, other int
		var otherErr error
		var otherAt time.Duration
		for _, s := range all {
			switch {
			case s.status != 0:
				answered++
				if s.end.After(term) {
					afterTerm++
				}
			case errors.Is(s.err, syscall.ECONNREFUSED):
				refused++
			default: // reset or EOF: a connection the listener never accepted, or a lost request (the audit log tells)
				other++
				otherErr, otherAt = s.err, s.end.Sub(term)
			}
		}
		checkAnswered(t, "under SIGTERM", all)
		audited := auditCount(t, edgeAudit, `"msg":"request"`) - before
		ok200 := auditCount(t, edgeAudit, `"status":200`) - before200
		t.Logf("SIGTERM: %d requests answered (%d finished after the signal), %d refused at connect, %d failed otherwise (the last %v after the signal: %v); "+
			"the edge exited %.2f s after the signal and audited %d requests", answered, afterTerm, refused, other, otherAt.Round(time.Millisecond), otherErr,
			exited.Sub(term).Seconds(), audited)
		if audited != answered || ok200 != answered {
			t.Errorf("the edge audited %d requests (%d × 200) but the clients got %d answers", audited, ok200, answered)
		}
		if refused == 0 {
			t.Error("no request was refused at connect after the edge closed its listener: the test did not reach the end of the drain")
		}
	})
}

// sample is one request of the load: when it ran, its status (0: no HTTP
// response), and who answered.
type sample struct {
	start, end time.Time
	status     int
	err        error
	cloud      string
	fallback   string
	correct    bool
	msg        string
}

func (s sample) latency() time.Duration { return s.end.Sub(s.start) }

// load is a few clients posting one input back to back, each answer
// decoded and compared with the local output.
type load struct {
	mu      sync.Mutex
	samples []sample
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func startLoad(client *http.Client, url, token string, body []byte, want []float32, workers int) *load {
	l := &load{done: make(chan struct{})}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.done:
					return
				default:
				}
				s := postOnce(client, url, token, body, want)
				l.mu.Lock()
				l.samples = append(l.samples, s)
				l.mu.Unlock()
				if s.status == 0 {
					time.Sleep(5 * time.Millisecond) // a refused connection returns at once
				}
			}
		})
	}
	return l
}

func postOnce(client *http.Client, url, token string, body []byte, want []float32) sample {
	s := sample{start: time.Now()}
	defer func() { s.end = time.Now() }()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		s.err = err
		return s
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		s.err = err
		s.end = time.Now()
		return s
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.end = time.Now()
	s.status = resp.StatusCode
	if err != nil {
		s.msg = fmt.Sprintf("reading the answer: %v", err)
		return s
	}
	var res node.InferResponse
	if err := json.Unmarshal(b, &res); err != nil {
		s.msg = fmt.Sprintf("%s: %s", resp.Status, b)
		return s
	}
	s.cloud, s.fallback, s.correct = res.Cloud, res.Fallback, slices.Equal(res.Output, want)
	if !s.correct {
		s.msg = fmt.Sprintf("%s: output %v", resp.Status, res.Output)
	}
	return s
}

// stop ends the load and waits for the requests in flight.
func (l *load) stop() {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}

// between returns the requests that started in [from, to).
func (l *load) between(from, to time.Time) []sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sample
	for _, s := range l.samples {
		if !s.start.Before(from) && s.start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// since returns the requests that started at from or later.
func (l *load) since(from time.Time) []sample { return l.between(from, time.Now().Add(time.Hour)) }

// firstBy waits up to d for an answer by cloud that ended after from, and
// returns when it ended.
func (l *load) firstBy(cloud string, from time.Time, d time.Duration) (time.Time, bool) {
	deadline := from.Add(d)
	for {
		l.mu.Lock()
		var first time.Time
		for _, s := range l.samples {
			if s.cloud == cloud && s.status == http.StatusOK && s.end.After(from) && (first.IsZero() || s.end.Before(first)) {
				first = s.end
			}
		}
		l.mu.Unlock()
		if !first.IsZero() {
			return first, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// majorityBy waits up to d, from from on, for cloud to answer most of
// the requests that ended in the last 500 ms (at least 10), and returns
// when it first did.
func (l *load) majorityBy(cloud string, from time.Time, d time.Duration) (time.Time, bool) {
	for deadline := from.Add(d); ; time.Sleep(20 * time.Millisecond) {
		now := time.Now()
		l.mu.Lock()
		n, on := 0, 0
		for _, s := range l.samples {
			if s.end.After(now.Add(-500*time.Millisecond)) && s.end.After(from) {
				n++
				if s.cloud == cloud {
					on++
				}
			}
		}
		l.mu.Unlock()
		if n >= 10 && 2*on > n {
			return now, true
		}
		if now.After(deadline) {
			return time.Time{}, false
		}
	}
}

// logTimeline logs ss (requests of a phase that began at t0) per 500 ms:
// how many, their p99, the share victim answered, and the fallbacks.
func logTimeline(t *testing.T, phase string, ss []sample, t0 time.Time, victim string) {
	t.Helper()
	buckets := map[int][]sample{}
	last := 0
	for _, s := range ss {
		i := int(s.start.Sub(t0) / (500 * time.Millisecond))
		buckets[i] = append(buckets[i], s)
		last = max(last, i)
	}
	for i := 0; i <= last; i++ {
		b := buckets[i]
		fb := 0
		on := 0
		for _, s := range b {
			if s.fallback != "" {
				fb++
			}
			if s.cloud == victim {
				on++
			}
		}
		t.Logf("%s +%.1f s: %d requests, p99 %.1f ms, max %.1f ms, %d on %s, %d fallbacks", phase, float64(i)/2, len(b),
			ms(p99(b)), ms(maxLatency(b)), on, victim, fb)
	}
}

// checkAnswered fails the test for every request that got an HTTP
// response other than a 200 with the right output, and for one that got
// no response at all while the edge was up (a connection refused or reset
// is only allowed once the edge was told to stop: phase "under SIGTERM").
func checkAnswered(t *testing.T, phase string, ss []sample) {
	t.Helper()
	if len(ss) == 0 {
		t.Errorf("%s: no requests ran", phase)
	}
	bad := 0
	for _, s := range ss {
		ok := s.status == http.StatusOK && s.correct
		if s.status == 0 && phase == "under SIGTERM" {
			ok = true // never accepted: the audit log cross-check counts the accepted ones
		}
		if !ok {
			if bad++; bad <= 5 {
				t.Errorf("%s: request at %s: status %d, err %v, %s", phase, s.start.Format("15:04:05.000"), s.status, s.err, s.msg)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d requests lost or wrong", phase, bad, len(ss))
	}
}

// p99 is the 99th percentile latency of ss (nearest rank).
func p99(ss []sample) time.Duration {
	if len(ss) == 0 {
		return 0
	}
	d := make([]time.Duration, len(ss))
	for i, s := range ss {
		d[i] = s.latency()
	}
	slices.Sort(d)
	return d[int(math.Ceil(0.99*float64(len(d))))-1]
}

func maxLatency(ss []sample) time.Duration {
	var m time.Duration
	for _, s := range ss {
		m = max(m, s.latency())
	}
	return m
}

// waitExit waits up to d for process pid to exit (to be a zombie or gone:
// launchNode's cleanup reaps it) and returns when it was seen gone.
func waitExit(t *testing.T, pid int, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return time.Now()
		}
		// pid (comm) S ...: the state follows the command's closing parenthesis.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running %v after SIGTERM", pid, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / 1e6 }
