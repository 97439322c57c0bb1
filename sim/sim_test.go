package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
)

func mustParse(t testing.TB, y string) *Scenario {
	t.Helper()
	s, err := ParseScenario(strings.NewReader(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const base = `
name: t
duration: 10s
models:
  - {name: m, synthetic: seed-cnn}
edges:
  - {name: e, model: m, link: {profile: lte}, arrivals: {rate: 5}}
clouds:
  - {name: c}
`

func TestScenarioErrors(t *testing.T) {
	tests := []struct {
		name, yaml, field string
	}{
		{"unknown top-level key", "bogus: 1\n" + base, "bogus"},
		{"unknown nested key", strings.Replace(base, "arrivals: {rate: 5}", "arrivals: {rate: 5, burst: 2}", 1), "burst"},
		{"negative rate", strings.Replace(base, "rate: 5", "rate: -5", 1), "edges[0].arrivals.rate"},
		{"negative link rate", strings.Replace(base, "link: {profile: lte}", "link: {up_mbps: -1, down_mbps: 5}", 1), "edges[0].link.up_mbps"},
		{"missing model", strings.Replace(base, "model: m, ", "", 1), "edges[0].model"},
		{"unknown model", strings.Replace(base, "model: m, ", "model: vgg, ", 1), "edges[0].model"},
		{"no models", strings.Replace(base, "  - {name: m, synthetic: seed-cnn}\n", "", 1), "models"},
		{"unknown synthetic", strings.Replace(base, "synthetic: seed-cnn", "synthetic: gpt", 1), "models[0].synthetic"},
		{"bad duration", strings.Replace(base, "duration: 10s", "duration: ten", 1), "ten"},
		{"missing duration", strings.Replace(base, "duration: 10s\n", "", 1), "duration"},
		{"unknown link profile", strings.Replace(base, "profile: lte", "profile: 6g", 1), "edges[0].link.profile"},
		{"bad policy", "policy: best\n" + base, "policy"},
		{"unknown cell", strings.Replace(base, "link: {profile: lte}", "cell: x", 1), "edges[0].cell"},
		{"exit probability", strings.Replace(base, "synthetic: seed-cnn}", "synthetic: seed-cnn, exits: [{after: 1, prob: 1.5}]}", 1), "models[0].exits[0].prob"},
		{"negative workers", strings.Replace(base, "{name: c}", "{name: c, workers: -2}", 1), "clouds[0].workers"},
		{"wrong type", strings.Replace(base, "rate: 5", "rate: fast", 1), "fast"},
		{"negative think time", strings.Replace(base, "arrivals: {rate: 5}", "arrivals: {process: closed, think: -1s}", 1), "edges[0].arrivals.think"},
		{"unknown process", strings.Replace(base, "arrivals: {rate: 5}", "arrivals: {process: bursty}", 1), "edges[0].arrivals.process"},
		{"unknown estimation source", "estimation: {source: oracle}\n" + base, "estimation.source"},
		{"accuracy budget out of range", "max_accuracy_loss: 1.5\n" + base, "max_accuracy_loss"},
		{"unknown fidelity", "codecs: [{name: q, ratio: 2, fidelity: perfect}]\n" + base, "codecs[0].fidelity"},
		{"agreement above samples", "codecs: [{name: q, ratio: 2, agreement: {agree: 5, samples: 4}}]\n" + base, "codecs[0].agreement"},
		{"negative cut agreement", "codecs: [{name: q, ratio: 2, cut_agreement: [{agree: 1, samples: 1}, {agree: -1, samples: 3}]}]\n" + base, "codecs[0].cut_agreement[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario(strings.NewReader(tc.yaml), "test.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if !strings.Contains(msg, tc.field) || !strings.Contains(msg, "test.yaml") {
				t.Errorf("error %q does not name %q and the file", msg, tc.field)
			}
			if !errors.Is(err, ErrScenario) {
				t.Errorf("error %q is not ErrScenario", msg)
			}
			t.Log(msg)
		})
	}
	if _, err := ParseScenario(strings.NewReader(base), "ok.yaml"); err != nil {
		t.Errorf("base scenario: %v", err)
	}
}

// busy exercises every entity: a cell and trace and fixed links, Poisson,
// periodic and trace arrivals, batching, exits, noise, lag and three
// policies.
const busy = `
name: busy
seed: 11
duration: 10s
policy: neurosurgeon
estimation: {interval: 500ms, lag: 1s, noise: 0.2}
codecs:
  - {name: raw, ratio: 1}
  - {name: uint8, ratio: 7, encode_mbps: 300, decode_mbps: 1200, agreement: {agree: 3000, samples: 3000}}
models:
  - {name: r, synthetic: resnet18, exits: [{after: 20, prob: 0.3}]}
cells:
  - {name: cell, up_mbps: 40, down_mbps: 200, delay: 10ms}
edges:
  - {name: celled, count: 30, model: r, slowdown: 0.3, cell: cell, arrivals: {rate: 2}, deadline: 200ms}
  - {name: traced, count: 5, model: r, slowdown: 0.3, policy: auto, link: {trace_up: testdata/up.trace, down_mbps: 20, delay: 20ms}, arrivals: {process: periodic, fps: 5}}
  - {name: fixed, count: 5, model: r, slowdown: 0.3, policy: dads, link: {profile: wifi}, arrivals: {process: trace, file: testdata/arrivals.trace}}
backhaul: {delay: 5ms, rate_mbps: 10000}
clouds:
  - {name: gpu, count: 2, workers: 2, slowdown: 0.02, batch: {max: 4, wait: 3ms}}
  - {name: cpu, count: 1, workers: 4, slowdown: 0.2}
`

func runCSV(t testing.TB, y string, seed uint64) ([]byte, *Summary) {
	t.Helper()
	s := mustParse(t, y)
	var buf bytes.Buffer
	sum, err := Run(context.Background(), s, Config{Seed: seed, CSV: &buf})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

func TestReproducible(t *testing.T) {
	a, sa := runCSV(t, busy, 0)
	b, _ := runCSV(t, busy, 0)
	if !bytes.Equal(a, b) {
		t.Fatal("same scenario and seed gave different CSV")
	}
	c, _ := runCSV(t, busy, 99)
	if bytes.Equal(a, c) {
		t.Fatal("a different seed gave the same CSV")
	}
	lines := strings.Split(strings.TrimSpace(string(a)), "\n")
	if int64(len(lines)-1) != sa.Requests || sa.Requests < 500 {
		t.Fatalf("%d rows for %d requests", len(lines)-1, sa.Requests)
	}
	if lines[0]+"\n" != CSVHeader {
		t.Fatalf("header %q", lines[0])
	}
	cols := len(strings.Split(lines[0], ","))
	for _, l := range lines[1:] {
		if n := len(strings.Split(l, ",")); n != cols {
			t.Fatalf("row with %d columns, header %d: %q", n, cols, l)
		}
	}
	if sa.Offloaded == 0 || sa.EarlyExits == 0 || sa.CloudUtilisation <= 0 || sa.CellUtilisation <= 0 {
		t.Errorf("some entity idle: %+v", sa)
	}
	var sb strings.Builder
	sa.Format(&sb)
	t.Log("\n" + sb.String())
}

// TestMM1 drives one single-worker server with Poisson arrivals (many
// devices, cloud-only, constant network delay) and compares the mean
// queueing delay with the analytic M/M/1 value ρ/(μ−λ) (exponential
// service) and the M/D/1 value ρ/(2μ(1−ρ)) (fixed service).
// TestClosedArrivals: a closed device sends its next request when the
// previous answer is back (plus the think time), so it never has two in
// flight and makes duration ÷ (latency + think) requests.
func TestClosedArrivals(t *testing.T) {
	m, _ := SyntheticModel("seed-cnn")
	lat := m.Profile.HeadLatency(len(m.Profile.Nodes)) // edge-only, slowdown 1
	for _, think := range []time.Duration{0, 3 * time.Millisecond} {
		y := strings.NewReplacer("THINK", think.String()).Replace(`
name: closed
duration: 2s
policy: edge-only
models: [{name: m, synthetic: seed-cnn}]
edges: [{name: e, count: 3, model: m, link: {profile: lte}, arrivals: {process: closed, think: THINK}}]
clouds: [{name: c}]
`)
		_, sum := runCSV(t, y, 0)
		per := float64(2*time.Second) / float64(lat+think)
		if got, want := float64(sum.Requests)/3, per; math.Abs(got-want) > 1.5 {
			t.Errorf("think %v: %.1f requests per device, want ≈ %.1f (latency %v)", think, got, want, lat)
		}
		// Quantiles are exact to the µs below 256 µs and within 0.8 %
		// above; a queued request would wait a whole latency more.
		if sum.P99 > lat+lat/125+time.Microsecond {
			t.Errorf("think %v: p99 %v above the edge latency %v: requests queued on the device", think, sum.P99, lat)
		}
	}
}

func TestMM1(t *testing.T) {
	m, _ := SyntheticModel("seed-cnn")
	svc := m.Profile.TailLatency(0).Seconds() // slowdown 1
	mu := 1 / svc
	const rho = 0.7
	lambda := rho * mu
	devices := 200
	// The estimate's error shrinks as 1/√n: 5 % with 150 000 requests,
	// twice that with the 40 000 of -short.
	n, tol := 150_000.0, 0.05
	if testing.Short() {
		n, tol = 40_000, 0.1
	}
	dur := time.Duration(n / lambda * 1e9)
	for _, tc := range []struct {
		service string
		want    float64
	}{
		{"exponential", rho / (mu - lambda)},
		{"fixed", rho / (2 * mu * (1 - rho))},
	} {
		y := strings.NewReplacer("DUR", dur.String(), "RATE", ftoa(lambda/float64(devices)), "N", itoa(devices), "SVC", tc.service).Replace(`
name: mm1
seed: 5
duration: DUR
policy: cloud-only
models: [{name: m, synthetic: seed-cnn}]
edges: [{name: e, count: N, model: m, link: {profile: ethernet}, arrivals: {rate: RATE}}]
clouds: [{name: c, service: SVC}]
`)
		_, sum := runCSV(t, y, 0)
		got := sum.MeanQueue.Seconds()
		rel := math.Abs(got-tc.want) / tc.want
		t.Logf("%s: %d requests, utilisation %.3f, mean queueing %.4f ms, analytic %.4f ms (%.1f %% off)",
			tc.service, sum.Requests, sum.CloudUtilisation, got*1e3, tc.want*1e3, rel*100)
		if rel > tol {
			t.Errorf("%s: mean queueing delay %.4f ms, analytic %.4f ms", tc.service, got*1e3, tc.want*1e3)
		}
	}
}

func TestTrace(t *testing.T) {
	tr, err := ParseTrace(strings.NewReader("# comment\n1\n1\n3\n\n4\n"))
	if err != nil {
		t.Fatal(err)
	}
	ms := int64(time.Millisecond)
	tests := []struct {
		start, bytes, want int64
	}{
		{0, 1, 1 * ms},             // first opportunity at 1 ms
		{0, 1500 * 2, 1 * ms},      // two at 1 ms
		{0, 1501 * 2, 3 * ms},      // third at 3 ms
		{0, 1500 * 4, 4 * ms},      // fourth at 4 ms (the period)
		{0, 1500 * 5, 5 * ms},      // loops: 4+1
		{2 * ms, 1, 3 * ms},        //
		{4*ms + 1, 1, 5 * ms},      // just past the period
		{400 * ms, 1500, 401 * ms}, // 100 loops later
	}
	for _, tc := range tests {
		if got := tr.finish(tc.start, 0, tc.bytes); got != tc.want {
			t.Errorf("finish(%d, %d) = %d, want %d", tc.start, tc.bytes, got, tc.want)
		}
	}
	// 4 packets per 4 ms = 1.5 MB/s.
	if r := tr.rate(0, 400*ms, 0); math.Abs(r-1.5e6) > 1 {
		t.Errorf("rate %v", r)
	}
	for _, bad := range []string{"", "x\n", "5\n3\n", "-1\n", "0\n"} {
		if _, err := ParseTrace(strings.NewReader(bad)); err == nil {
			t.Errorf("trace %q accepted", bad)
		}
	}
	if got := TraceFromRate(12, 1000).MeanMbps(); math.Abs(got-12) > 0.1 {
		t.Errorf("TraceFromRate(12) mean %v", got)
	}
}

// TestCellSharing checks processor sharing: two flows of B bytes started
// together on a cell of rate C both finish at 2B/C; a third started when
// they are half done finishes last.
func TestCellSharing(t *testing.T) {
	c := &cell{rate: 1} // 1 byte per ns
	var now int64
	var done []int64
	add := func(b float64) {
		c.advance(now)
		c.flows.Push(c.v+b, 0)
	}
	add(1000)
	add(1000)
	now = 1000 // each has 500 left
	add(500)
	for c.flows.Len() > 0 {
		now = c.next(now)
		c.advance(now)
		for c.due() {
			c.flows.Pop()
			done = append(done, now)
		}
	}
	// From t=1000 three flows of 500 each at 1/3 B/ns: all finish at 2500.
	if len(done) != 3 || done[0] != 2500 || done[2] != 2500 {
		t.Errorf("completions %v, want all at 2500", done)
	}
}

func ftoa(f float64) string { return strings.TrimRight(strings.TrimRight(strconvF(f), "0"), ".") }

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := int64(1); i <= 100_000; i++ {
		h.add(i * 1000) // 1 µs .. 100 ms
	}
	for _, q := range []float64{0.5, 0.95, 0.99} {
		want := q * 100_000 * 1000
		got := float64(h.quantile(q))
		if math.Abs(got-want)/want > 0.008 {
			t.Errorf("q%.2f = %v, want %v", q, time.Duration(got), time.Duration(want))
		}
	}
	var e eventHeap
	for _, at := range []int64{5, 3, 9, 3, 1, 7, 7, 2, 8, 6, 4, 0} {
		e.push(at, evArrival, int32(at), 0)
	}
	prev := event{at: -1}
	for e.len() > 0 {
		x := e.pop()
		if x.at < prev.at || x.at == prev.at && x.a < prev.a {
			t.Fatalf("heap order: %+v after %+v", x, prev)
		}
		prev = x
	}
}

// TestScheduleAdapts: on a steady link auto keeps one plan; when the
// uplink drops it changes plan within the estimation lag plus three
// decisions (hysteresis), well under 2 s.
func TestScheduleAdapts(t *testing.T) {
	y := `
name: adapt
duration: 20s
policy: auto
estimation: {interval: 250ms, lag: 250ms, noise: 0.03}
codecs: [{name: raw, ratio: 1}, {name: uint8, ratio: 7, encode_mbps: 300, decode_mbps: 1200, agreement: {agree: 3000, samples: 3000}}]
models: [{name: r, synthetic: resnet18}]
edges:
  - name: pi
    model: r
    link: {profile: wifi, schedule: [{at: 10s, up_mbps: 0.3, down_mbps: 2, delay: 40ms}]}
    arrivals: {process: periodic, fps: 10}
clouds: [{name: c, workers: 4, slowdown: 0.05}]
`
	out, _ := runCSV(t, y, 0)
	type row struct {
		at  float64
		cut string
	}
	var rows []row
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		f := strings.Split(l, ",")
		at, _ := strconv.ParseFloat(f[3], 64)
		rows = append(rows, row{at, f[4] + "/" + f[5]})
	}
	var before string
	changes := 0
	switched := -1.0
	for _, r := range rows {
		if r.at < 1000 {
			continue // settling
		}
		if r.at < 10000 {
			if before != "" && r.cut != before {
				changes++
			}
			before = r.cut
			continue
		}
		if switched < 0 && r.cut != before {
			switched = r.at
		}
	}
	if changes > 0 {
		t.Errorf("plan flapped %d times on a steady link", changes)
	}
	if switched < 0 || switched-10000 > 2000 {
		t.Fatalf("plan %s kept after the drop (switched at %v ms)", before, switched)
	}
	t.Logf("plan %s until the drop at 10 s; changed %.0f ms after it", before, switched-10000)
}

func TestSyntheticModels(t *testing.T) {
	// MACs of the real networks (batch 1, 224×224): VGG-16 ≈ 15.5 G,
	// ResNet-18 ≈ 1.8 G, MobileNetV2 ≈ 0.3 G.
	want := map[string]float64{"vgg16": 15.5e9, "resnet18": 1.8e9, "mobilenetv2": 0.3e9}
	for _, name := range SyntheticModels() {
		m, err := SyntheticModel(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.check(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var macs int64
		for _, n := range m.Profile.Nodes {
			macs += n.MACs
		}
		if w, ok := want[name]; ok && math.Abs(float64(macs)-w)/w > 0.1 {
			t.Errorf("%s: %.2f GMACs, want ≈ %.2f", name, float64(macs)/1e9, w/1e9)
		}
		t.Logf("%s: %d nodes, %.2f GMACs, %v on the reference device", name, len(m.Profile.Nodes), float64(macs)/1e9, m.Profile.TailLatency(0))
	}
	if _, err := SyntheticModel("gpt"); !errors.Is(err, zoo.ErrUnknownModel) {
		t.Errorf("unknown synthetic model: %v, want zoo.ErrUnknownModel", err)
	}
}

// TestDocScenarios: every scenario in docs/scenarios parses; the demo runs.
func TestDocScenarios(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "docs", "scenarios", "*.yaml"))
	if len(files) == 0 {
		t.Skip("no docs/scenarios")
	}
	for _, f := range files {
		s, err := LoadScenario(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if filepath.Base(f) == "demo.yaml" {
			// The demo's model is resolved by the caller (edgesplit sim
			// profiles the zoo's on this machine); the synthetic one, the
			// same graph on the analytic reference device, stands in here.
			sum, err := Run(context.Background(), s, Config{Resolve: SyntheticModel})
			if err != nil || sum.Requests == 0 {
				t.Errorf("demo: %v, %+v", err, sum)
			}
		}
	}
}

// With learned estimation a device knows its link only from its own
// transfers and probes: it leaves a link that dropped within a few
// requests, probes while it computes locally, and comes back when the link
// recovers.
func TestLearnedEstimation(t *testing.T) {
	y := `
name: learned
duration: 30s
policy: auto
estimation: {source: learned, interval: 250ms}
codecs: [{name: raw, ratio: 1}, {name: uint8, ratio: 7, encode_mbps: 300, decode_mbps: 1200, agreement: {agree: 3000, samples: 3000}}]
models: [{name: r, synthetic: resnet18}]
edges:
  - name: pi
    model: r
    link: {profile: wifi, schedule: [{at: 10s, profile: 3g}, {at: 20s, profile: wifi}]}
    arrivals: {process: closed, think: 50ms}
clouds: [{name: c, workers: 4, slowdown: 0.05}]
`
	out, sum := runCSV(t, y, 0)
	again, _ := runCSV(t, y, 0)
	if !bytes.Equal(out, again) {
		t.Fatal("same scenario and seed gave different CSV")
	}
	if sum.Probes == 0 {
		t.Error("no probes while the device computed locally")
	}
	var before string
	changes, left, back := 0, -1.0, -1.0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		f := strings.Split(l, ",")
		at, _ := strconv.ParseFloat(f[3], 64)
		cut := f[4] + "/" + f[5]
		switch {
		case at < 1000:
		case at < 10000:
			if before != "" && cut != before {
				changes++
			}
			before = cut
		case at < 20000:
			if left < 0 && cut != before {
				left = at - 10000
			}
		default:
			if back < 0 && cut == before {
				back = at - 20000
			}
		}
	}
	if before == "" || strings.HasPrefix(before, "50/") {
		t.Fatalf("plan before the drop %q: want an offload on Wi-Fi", before)
	}
	if changes > 0 {
		t.Errorf("plan flapped %d times on a steady link", changes)
	}
	// On 3G a transfer of the Wi-Fi plan takes about 1.1 s: the estimate
	// falls by half per transfer, and auto moves after three decisions
	// that agree. Leaving at once would mean the device knew the link
	// without sending on it.
	if left < 1000 || left > 7000 {
		t.Errorf("left plan %s %.0f ms after the drop, want after one transfer and within 7 s", before, left)
	}
	if back < 0 || back > 5000 {
		t.Errorf("back to plan %s %.0f ms after the link recovered, want within 5 s (probes)", before, back)
	}
	t.Logf("plan %s; left it %.0f ms after the drop, back %.0f ms after recovery; %d probes", before, left, back, sum.Probes)

	// On a shared cell, probes are flows of the cell like any transfer.
	cell := strings.NewReplacer("link: {profile: wifi, schedule: [{at: 10s, profile: 3g}, {at: 20s, profile: wifi}]}", "cell: c1",
		"clouds:", "cells: [{name: c1, up_mbps: 0.5, down_mbps: 20, delay: 20ms}]\nclouds:").Replace(y)
	if _, s := runCSV(t, cell, 0); s.Requests == 0 || s.Probes == 0 {
		t.Errorf("cell: %d requests, %d probes; want both > 0", s.Requests, s.Probes)
	}
}
