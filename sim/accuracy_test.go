package sim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

// accuracyScenario offloads through uint8 whenever it is allowed: a slow
// device on a slow link, a fast cloud.
func accuracyScenario(uint8Extra, top string) string {
	return `
name: acc
duration: 5s
policy: auto
` + top + `
codecs: [{name: raw, ratio: 1}, {name: uint8, ratio: 7, encode_mbps: 300, decode_mbps: 1200` + uint8Extra + `}]
models: [{name: r, synthetic: resnet18}]
edges:
  - {name: pi, count: 4, model: r, slowdown: 1, link: {profile: lte}, arrivals: {rate: 2}}
clouds: [{name: c, workers: 4, slowdown: 0.05}]
`
}

func runScenario(t *testing.T, y string, cfg Config) *Summary {
	t.Helper()
	s := mustParse(t, y)
	sum, err := Run(context.Background(), s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestAccuracyBudget: a lossy codec is planned only where its calibrated
// agreement certifies the budget, exactly as on a node.
func TestAccuracyBudget(t *testing.T) {
	loose, err := scheduler.NewBudget(0.01)
	if err != nil {
		t.Fatal(err)
	}
	exact, _ := scheduler.NewBudget(0)
	for _, tc := range []struct {
		name      string
		extra     string // uint8 spec tail
		top       string // scenario keys
		cfg       Config
		wantLossy bool
		minLower  float64 // AgreementLower at least
	}{
		{name: "uncalibrated", wantLossy: false},
		{name: "certified", extra: `, agreement: {agree: 3000, samples: 3000}`, wantLossy: true, minLower: 0.999},
		{name: "too few samples", extra: `, agreement: {agree: 20, samples: 20}`, wantLossy: false},
		{name: "changed answers", extra: `, agreement: {agree: 2980, samples: 3000}`, wantLossy: false},
		{name: "changed answers, looser scenario budget", extra: `, agreement: {agree: 2980, samples: 3000}`, top: `max_accuracy_loss: 0.02`, wantLossy: true, minLower: 0.98},
		{name: "changed answers, looser flag", extra: `, agreement: {agree: 2980, samples: 3000}`, cfg: Config{Accuracy: &loose}, wantLossy: true, minLower: 0.99},
		{name: "exact only", extra: `, agreement: {agree: 3000, samples: 3000}`, top: `max_accuracy_loss: 0`, wantLossy: false},
		{name: "exact only by flag", extra: `, agreement: {agree: 3000, samples: 3000}`, cfg: Config{Accuracy: &exact}, wantLossy: false},
		{name: "declared exact", extra: `, fidelity: exact`, wantLossy: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := runScenario(t, accuracyScenario(tc.extra, tc.top), tc.cfg)
			if got := sum.LossyRequests > 0; got != tc.wantLossy {
				t.Fatalf("lossy requests %d of %d offloaded, want lossy=%v", sum.LossyRequests, sum.Offloaded, tc.wantLossy)
			}
			if tc.wantLossy && sum.AgreementLower < tc.minLower {
				t.Errorf("agreement lower bound %.4f, want ≥ %.4f", sum.AgreementLower, tc.minLower)
			}
			if !tc.wantLossy && tc.name != "declared exact" && sum.AgreementLower != 1 {
				t.Errorf("no lossy plan, yet agreement lower bound %.4f", sum.AgreementLower)
			}
		})
	}
}

// TestCutAgreement: calibration per cut allows the codec only where it was
// certified; a calibration table applies per model.
func TestCutAgreement(t *testing.T) {
	m, err := SyntheticModel("resnet18")
	if err != nil {
		t.Fatal(err)
	}
	n := len(m.Profile.Nodes)
	// Certified nowhere but at cut 0 (the input).
	cut := `, cut_agreement: [{agree: 3000, samples: 3000}]`
	s := mustParse(t, accuracyScenario(cut, ""))
	var csv strings.Builder
	sum, err := Run(context.Background(), s, Config{CSV: &csv})
	if err != nil {
		t.Fatal(err)
	}
	if sum.LossyRequests == 0 {
		t.Fatalf("uint8 certified at the input was never used: %+v", sum)
	}
	for _, l := range strings.Split(strings.TrimSpace(csv.String()), "\n")[1:] {
		f := strings.Split(l, ",")
		if f[5] == "uint8" && f[4] != "0" {
			t.Fatalf("uint8 at cut %s, certified only at 0: %s", f[4], l)
		}
	}

	// The same through a calibration table beside the scenario.
	dir := t.TempDir()
	tab := scheduler.NewCalibration("resnet18", "v", n, scheduler.CalibrationData{Source: "test", Samples: 3000}, time.Unix(0, 0))
	tab.Codecs = []scheduler.CalibratedCodec{{Name: "uint8", Fidelity: "lossy", EncodeMBps: 300, DecodeMBps: 1200}}
	tab.Cuts = []scheduler.CalibratedCut{{K: 0, Codecs: map[string]scheduler.CutMeasure{"uint8": {Ratio: 7, Agreement: scheduler.Agreement{Agree: 3000, Samples: 3000}}}}}
	if err := tab.Save(filepath.Join(dir, "r.calib.json")); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(accuracyScenario("", ""), "synthetic: resnet18}", "synthetic: resnet18, calibration: r.calib.json}", 1)
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = LoadScenario(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err = Run(context.Background(), s, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.LossyRequests == 0 {
		t.Fatalf("uint8 certified by the table was never used: %+v", sum)
	}

	// A table for another model is refused, naming the field.
	tab.Model.Nodes = n + 1
	if err := tab.Save(filepath.Join(dir, "r.calib.json")); err != nil {
		t.Fatal(err)
	}
	s, _ = LoadScenario(filepath.Join(dir, "s.yaml"))
	if _, err := Run(context.Background(), s, Config{}); err == nil || !strings.Contains(err.Error(), "models[0].calibration") {
		t.Fatalf("table of another model: %v", err)
	}
}
