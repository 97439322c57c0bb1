package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/scheduler"
)

func testModel(t testing.TB) *node.Model {
	t.Helper()
	m, err := node.NewModel("lenet5", "", zoo.LeNet5(7), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestRunDemo runs the demo quickly — LeNet-5 instead of MobileNetV2, an
// edge 1000× slower than this machine so that offloading clearly wins, two
// phases (the second kills a cloud), 4 requests per phase — and checks the
// rows it returns and the table it prints.
func TestRun(t *testing.T) {
	dev, err := node.ParseDevice("slowdown:1000")
	if err != nil {
		t.Fatal(err)
	}
	phases := []Phase{
		{Name: "wifi", Profile: "wifi"},
		{Name: "ethernet-kill", Profile: "ethernet", KillCloud: true},
	}
	m := testModel(t)
	var out bytes.Buffer
	rows, err := Run(context.Background(), Config{
		Model: m, EdgeDevice: dev, Clouds: 2, Phases: phases, Requests: 4, Baseline: 1, Logger: quietLogger(),
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("demo output:\n%s", text)

	killed := regexp.MustCompile(`\[phase ethernet-kill\] killed (\S+) \(crash, no leave\)`).FindStringSubmatch(text)
	if killed == nil {
		t.Fatalf("no kill reported in phase ethernet-kill")
	}
	if len(rows) != len(phases) {
		t.Fatalf("%d rows for %d phases", len(rows), len(phases))
	}
	for i, r := range rows {
		ph := phases[i]
		if r.Phase != ph.Name || r.Link != ph.Profile || r.Policy != "auto" {
			t.Errorf("row %d: phase %q link %q policy %q, want %q %q auto", i, r.Phase, r.Link, r.Policy, ph.Name, ph.Profile)
		}
		// Offloading is the only sensible plan for an edge this slow: the
		// row must show a cut before the end, a codec, a cloud and bytes.
		if r.Cloud == "" || r.Codec == "" || r.Bytes <= 0 || strings.Contains(r.Cut, "edge") || r.Cut == "" {
			t.Errorf("phase %s did not offload: cut %q codec %q cloud %q bytes %d", r.Phase, r.Cut, r.Codec, r.Cloud, r.Bytes)
		}
		if r.Predicted <= 0 || r.Measured <= 0 || r.EdgeOnly <= 0 || r.CloudOnly <= 0 {
			t.Errorf("phase %s: predicted %v measured %v edge-only %v cloud-only %v, want all > 0", r.Phase, r.Predicted, r.Measured, r.EdgeOnly, r.CloudOnly)
		}
		if r.Measured >= r.EdgeOnly {
			t.Errorf("phase %s: the plan took %v, no faster than edge-only %v", r.Phase, r.Measured, r.EdgeOnly)
		}
		// The model is uncalibrated: only exact codecs may run, and an
		// exact plan (lossless, or edge-only) answers as the unsplit
		// model does.
		if r.Requests != 4 || r.Agree != r.Requests || r.Accuracy.Fidelity != scheduler.Exact {
			t.Errorf("phase %s: %d of %d answers equal the unsplit model's", r.Phase, r.Agree, r.Requests)
		}
		if r.Clouds < 1 || r.Clouds > 2 {
			t.Errorf("phase %s: %d clouds alive", r.Phase, r.Clouds)
		}
	}
	if rows[0].Clouds != 2 {
		t.Errorf("phase %s: %d clouds alive before any kill, want 2", rows[0].Phase, rows[0].Clouds)
	}
	if last := rows[1]; last.Cloud == killed[1] {
		t.Errorf("phase %s ended on %s, the cloud it killed", last.Phase, last.Cloud)
	}

	// The table: a header of 17 columns and one line per row (tabwriter
	// pads with at least two spaces; single spaces sit inside cells).
	cols := regexp.MustCompile(`\s{2,}`)
	header := []string{"phase", "link", "policy", "cut", "codec", "cloud", "accuracy", "top-1 = unsplit", "predicted ms", "measured ms", "bytes up",
		"edge-only ms", "cloud-only ms", "vs edge", "vs cloud", "fallbacks", "clouds alive"}
	lines := strings.Split(text, "\n")
	at := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "phase ") {
			at = i
			break
		}
	}
	if at < 0 || at+len(rows) >= len(lines) {
		t.Fatalf("no table header in the output")
	}
	if got := cols.Split(strings.TrimSpace(lines[at]), -1); strings.Join(got, "|") != strings.Join(header, "|") {
		t.Errorf("header %q, want %q", got, header)
	}
	for i, r := range rows {
		cells := cols.Split(strings.TrimSpace(lines[at+1+i]), -1)
		if len(cells) != len(header) {
			t.Errorf("table line %d has %d cells, want %d: %q", i, len(cells), len(header), lines[at+1+i])
			continue
		}
		if cells[0] != r.Phase || cells[1] != r.Link || cells[3] != r.Cut || cells[5] != dash(r.Cloud) || cells[6] != r.Accuracy.String() ||
			cells[7] != fmt.Sprintf("%d/%d", r.Agree, r.Requests) || !strings.HasSuffix(cells[13], "×") {
			t.Errorf("table line %d %q does not show row %+v", i, cells, r)
		}
	}
	if !strings.Contains(text, "demo finished in") {
		t.Error("no closing line")
	}
}

func TestRunDemoBadConfig(t *testing.T) {
	if _, err := Run(context.Background(), Config{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("no model: err = %v", err)
	}
	_, err := Run(context.Background(), Config{Model: testModel(t), Phases: []Phase{{Name: "x", Profile: "no-such-link"}}}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no-such-link") {
		t.Errorf("unknown link profile: err = %v", err)
	}
}

func TestVerdicts(t *testing.T) {
	ms := time.Millisecond
	rows := []Row{
		{Phase: "ok", Cut: "0", Codec: "lossless", Cloud: "c2", Measured: 100 * ms, EdgeOnly: 300 * ms, CloudOnly: 98 * ms, CloudOnlyPlan: "cut 0, lossless, c2"},
		{Phase: "same", Cut: "0", Codec: "lossless", Cloud: "c2", Measured: 150 * ms, Predicted: 120 * ms, EdgeOnly: 300 * ms, CloudOnly: 120 * ms, CloudOnlyPlan: "cut 0, lossless, c2"},
		{Phase: "other", Cut: "100 (edge)", Measured: 350 * ms, Predicted: 340 * ms, EdgeOnly: 350 * ms, CloudOnly: 200 * ms, CloudOnlyPredicted: 380 * ms, CloudOnlyPlan: "cut 0, lossless, c2"},
		{Phase: "edge best", Cut: "4", Codec: "lossless", Cloud: "c1", Measured: 130 * ms, Predicted: 80 * ms, EdgeOnly: 100 * ms, EdgeOnlyPredicted: 90 * ms, CloudOnly: 400 * ms},
		{Phase: "kept", Cut: "4", Codec: "lossless", Cloud: "c1", Measured: 130 * ms, Predicted: 99 * ms, EdgeOnly: 100 * ms, EdgeOnlyPredicted: 95 * ms, CloudOnly: 400 * ms},
	}
	v := Verdicts(rows, 0.05)
	if len(v) != 4 {
		t.Fatalf("%d verdicts, want 4 (all but ok): %q", len(v), v)
	}
	for i, want := range []string{
		"phase same: auto 150.0 ms, cloud-only 120.0 ms (+25%): auto ran the same plan (cut 0, lossless, c2)",
		"phase other: auto 350.0 ms, cloud-only 200.0 ms (+75%): auto ran another plan (edge-only), predicted 340.0 ms against 380.0 ms for cloud-only",
		"phase edge best: auto 130.0 ms, edge-only 100.0 ms (+30%): auto ran another plan (cut 4, lossless, c1), predicted 80.0 ms against 90.0 ms",
		"phase kept: auto 130.0 ms, edge-only 100.0 ms (+30%): auto kept its plan (cut 4, lossless, c1, predicted 99.0 ms) though it predicted edge-only at 95.0 ms: hysteresis",
	} {
		if !strings.HasPrefix(v[i], want) {
			t.Errorf("verdict %d:\n got %s\nwant %s…", i, v[i], want)
		}
	}
}
