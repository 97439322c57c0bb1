package scheduler

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestAgreementLower(t *testing.T) {
	tests := []struct {
		a        Agreement
		min, max float64
	}{
		{Agreement{}, 0, 0},
		{Agreement{Agree: 20, Samples: 20}, 0.87, 0.89}, // 20 samples cannot certify 99.9 %
		{Agreement{Agree: 2700, Samples: 2700}, 0.9989, 0.99901},
		{Agreement{Agree: 10000, Samples: 10000}, 0.9997, 0.99974},
		{Agreement{Agree: 9990, Samples: 10000}, 0.998, 0.9990},
		{Agreement{Agree: 0, Samples: 10}, 0, 1e-12},
	}
	for _, tc := range tests {
		if got := tc.a.Lower(0.95); got < tc.min || got > tc.max {
			t.Errorf("Lower(%+v) = %v, want in [%v, %v]", tc.a, got, tc.min, tc.max)
		}
		if got := tc.a.Lower(0.95); got > tc.a.Rate() {
			t.Errorf("Lower(%+v) = %v above the rate %v", tc.a, got, tc.a.Rate())
		}
	}
	// More confidence, lower bound.
	a := Agreement{Agree: 995, Samples: 1000}
	if a.Lower(0.99) >= a.Lower(0.9) {
		t.Errorf("Lower(0.99) %v ≥ Lower(0.9) %v", a.Lower(0.99), a.Lower(0.9))
	}
}

func TestNewBudget(t *testing.T) {
	for _, bad := range []float64{-0.1, 1.5, 2, math.NaN()} {
		if _, err := NewBudget(bad); err == nil {
			t.Errorf("NewBudget(%v) accepted", bad)
		}
	}
	b, err := NewBudget(0)
	if err != nil || !b.ExactOnly || b.Loss() != 0 {
		t.Errorf("NewBudget(0) = %+v, %v: want exact only", b, err)
	}
	if b, _ := NewBudget(0.01); b.Loss() != 0.01 || b.ExactOnly {
		t.Errorf("NewBudget(0.01) = %+v", b)
	}
	if (AccuracyBudget{}).Loss() != DefaultMaxLoss || (AccuracyBudget{}).Conf() != DefaultConfidence {
		t.Error("zero budget is not the default")
	}
	in, _ := tiny()
	in.Accuracy.MaxLoss = 1.5
	var ie *InputError
	if err := in.Validate(); !errors.As(err, &ie) || ie.Field != "Accuracy.MaxLoss" {
		t.Errorf("bad budget: %v", err)
	}
	in.Accuracy.MaxLoss = 0
	in.Codecs[0].CutAgreement = []Agreement{{Agree: 5, Samples: 3}}
	if err := in.Validate(); !errors.As(err, &ie) || ie.Field != "Codecs[0].CutAgreement[0]" {
		t.Errorf("agree > samples: %v", err)
	}
}

func TestAllows(t *testing.T) {
	def := AccuracyBudget{}
	exact := AccuracyBudget{ExactOnly: true}
	loose, _ := NewBudget(0.05)
	good := Agreement{Agree: 10000, Samples: 10000}
	few := Agreement{Agree: 20, Samples: 20}
	bad := Agreement{Agree: 9000, Samples: 10000}
	tests := []struct {
		f    Fidelity
		b    AccuracyBudget
		a    Agreement
		want bool
	}{
		{Exact, exact, Agreement{}, true},
		{Exact, def, bad, true},
		{Bounded, def, Agreement{}, false}, // uncalibrated: a near-tie flips under fp16 too
		{Bounded, exact, Agreement{}, false},
		{Bounded, def, few, true}, // calibration saw no change
		{Bounded, def, bad, false},
		{Lossy, def, Agreement{}, false}, // uncalibrated lossy: never
		{Lossy, def, few, false},         // 20 samples cannot certify 99.9 %
		{Lossy, def, good, true},
		{Lossy, def, bad, false},
		{Lossy, loose, Agreement{Agree: 990, Samples: 1000}, true},
		{Lossy, exact, good, false},
	}
	for _, tc := range tests {
		c := CodecModel{Name: "c", Ratio: 2, Fidelity: tc.f}
		if got := c.Allows(tc.b, tc.a); got != tc.want {
			t.Errorf("%v codec, %v, %+v: allowed %v, want %v", tc.f, tc.b, tc.a, got, tc.want)
		}
	}
}

// allPolicies returns a fresh instance of every policy.
func allPolicies() []Policy {
	return []Policy{EdgeOnly{}, CloudOnly{}, Fixed{K: 0}, Fixed{K: 3}, Neurosurgeon{}, &DADS{}, NewAuto(AutoConfig{}), NewAuto(DefaultAutoConfig())}
}

// TestBudgetExcludesCodec: a codec whose calibration misses the budget is
// never chosen by any policy, on chains and on DAGs, at any bandwidth; where
// it would have been the fastest, the plans change to allowed ones.
func TestBudgetExcludesCodec(t *testing.T) {
	models := []testModel{vggLike(), resnetLike(2, 3), resnetLike(3, 7)}
	excluded := 0
	for mi, m := range models {
		for _, up := range []float64{0.5, 5, 40, 300} {
			// int4 is the fastest codec by far, but calibration saw it
			// change 3 % of the answers at every cut.
			int4 := CodecModel{Name: "int4", Ratio: 14, EncodeBps: 1e9, DecodeBps: 1e9, CutAgreement: make([]Agreement, 1024)}
			for i := range int4.CutAgreement {
				int4.CutAgreement[i] = Agreement{Agree: 9700, Samples: 10000}
			}
			codecs := append(append([]CodecModel(nil), testCodecs...), int4)
			in := m.inputs(up, 10*time.Millisecond, codecs...)
			for _, pol := range allPolicies() {
				p, err := pol.Plan(in)
				if err != nil {
					t.Fatalf("model %d %v Mbit/s %s: %v", mi, up, pol.Name(), err)
				}
				if p.Codec == "int4" {
					t.Fatalf("model %d %v Mbit/s %s chose int4 (97 %% agreement) under the default budget: %v", mi, up, pol.Name(), p)
				}
				if !p.EdgeOnly() && p.Accuracy.Lower < 1-DefaultMaxLoss {
					t.Errorf("%s: plan's accuracy %v below the budget", pol.Name(), p.Accuracy)
				}
			}
			// A loose budget lets it in, and then somebody takes it.
			in.Accuracy, _ = NewBudget(0.05)
			p, _ := NewAuto(AutoConfig{}).Plan(in)
			if p.Codec == "int4" {
				excluded++
			}
		}
	}
	if excluded == 0 {
		t.Error("int4 was never chosen even under a 5 % budget: the test does not exercise the budget")
	}
}

// TestUncalibratedNeverLossy: a model with no calibration never gets a lossy
// quantiser, whatever the link; exact and bounded codecs remain.
func TestUncalibratedNeverLossy(t *testing.T) {
	for _, m := range []testModel{vggLike(), resnetLike(2, 5)} {
		for _, up := range []float64{0.1, 1, 10, 100, 1000} {
			codecs := []CodecModel{
				{Name: "lossless", Ratio: 1.2, EncodeBps: 1e9, DecodeBps: 2e9, Fidelity: Exact},
				{Name: "fp16", Ratio: 2, EncodeBps: 6e8, DecodeBps: 9e8, Fidelity: Bounded},
				{Name: "int8", Ratio: 7, EncodeBps: 2e9, DecodeBps: 5e9},
				{Name: "int4", Ratio: 14, EncodeBps: 2e9, DecodeBps: 5e9},
			}
			in := m.inputs(up, 5*time.Millisecond, codecs...)
			for _, pol := range allPolicies() {
				p, err := pol.Plan(in)
				if err != nil {
					t.Fatal(err)
				}
				if p.Codec == "int8" || p.Codec == "int4" {
					t.Fatalf("%v Mbit/s %s chose uncalibrated %s", up, pol.Name(), p.Codec)
				}
			}
			in.Accuracy = AccuracyBudget{ExactOnly: true}
			for _, pol := range allPolicies() {
				p, err := pol.Plan(in)
				if err != nil {
					t.Fatal(err)
				}
				if !p.EdgeOnly() && p.Codec != "lossless" {
					t.Fatalf("exact-only budget: %s chose %s", pol.Name(), p.Codec)
				}
			}
		}
	}
	// Only lossy codecs offered: cut-forcing policies say why they cannot.
	m := vggLike()
	in := m.inputs(10, 5*time.Millisecond, CodecModel{Name: "int8", Ratio: 7})
	if _, err := (CloudOnly{}).Plan(in); !errors.Is(err, ErrAccuracy) {
		t.Errorf("cloud-only with only an uncalibrated int8: %v, want ErrAccuracy", err)
	}
	if p, err := NewAuto(AutoConfig{}).Plan(in); err != nil || !p.EdgeOnly() {
		t.Errorf("auto with only an uncalibrated int8: %v, %v, want edge-only", p, err)
	}
}

// TestBudgetPerCut: calibration certifies a codec at some cuts only; plans
// use it exactly there.
func TestBudgetPerCut(t *testing.T) {
	m := vggLike()
	n := len(m.edge.Nodes)
	int8 := CodecModel{Name: "int8", Ratio: 7, EncodeBps: 2e9, DecodeBps: 5e9, CutAgreement: make([]Agreement, n+1)}
	for k := range int8.CutAgreement {
		if k%2 == 0 {
			int8.CutAgreement[k] = Agreement{Agree: 5000, Samples: 5000}
		} else {
			int8.CutAgreement[k] = Agreement{Agree: 4980, Samples: 5000}
		}
	}
	raw := RawCodec
	for _, up := range []float64{0.5, 2, 8, 30, 100, 1000} {
		in := m.inputs(up, 5*time.Millisecond, raw, int8)
		for k := 0; k < n; k++ {
			p, err := (Fixed{K: k}).Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			if p.Codec == "int8" && k%2 == 1 {
				t.Fatalf("fixed:%d used int8 where calibration saw 0.4 %% changed", k)
			}
		}
		p, _ := NewAuto(AutoConfig{}).Plan(in)
		if p.Codec == "int8" && (p.K < 0 || p.K%2 == 1) {
			t.Fatalf("auto used int8 at %v", p)
		}
	}
}

// TestBudgetDADS: on DAGs with a lossy codec certified only at prefix cuts,
// dads never returns a set whose tensors are uncertified, and auto is never
// worse than the best allowed split found by brute force over prefix sets.
func TestBudgetDADS(t *testing.T) {
	for seed := uint64(1); seed <= 15; seed++ {
		m := resnetLike(2, seed)
		for _, up := range []float64{0.5, 5, 40, 300} {
			in := m.inputs(up, 10*time.Millisecond, testCodecs...)
			p, err := (&DADS{}).Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := in.Evaluate(p); err != nil {
				t.Fatalf("dads plan %v does not evaluate under its own inputs: %v", p, err)
			}
			want := bruteForce(in)
			if p.Predicted.Total < want {
				t.Fatalf("dads %v beats the brute-force optimum %v of allowed splits", p, want)
			}
			a, _ := NewAuto(AutoConfig{}).Plan(in)
			if a.Predicted.Total > p.Predicted.Total {
				t.Fatalf("auto %v worse than dads %v", a, p)
			}
		}
	}
}

// TestAutoLeavesDisallowedPlan: when the budget tightens, auto drops a plan
// whose codec it no longer allows at once (no hysteresis).
func TestAutoLeavesDisallowedPlan(t *testing.T) {
	m := vggLike()
	in := m.inputs(2, 10*time.Millisecond, testCodecs...)
	a := NewAuto(DefaultAutoConfig())
	p, err := a.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Codec != "uint8" {
		t.Skipf("plan %v does not use the lossy codec; nothing to drop", p)
	}
	in.Accuracy = AccuracyBudget{ExactOnly: true}
	if _, err := in.Evaluate(p); !errors.Is(err, ErrAccuracy) {
		t.Fatalf("Evaluate under exact-only: %v, want ErrAccuracy", err)
	}
	q, err := a.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if q.Codec == "uint8" {
		t.Fatalf("auto kept %v under an exact-only budget", q)
	}
}

func TestExplainAccuracyColumn(t *testing.T) {
	m := vggLike()
	in := m.inputs(2, 10*time.Millisecond, testCodecs[0], testCodecs[1], CodecModel{Name: "int8", Ratio: 7})
	ex, err := Explain(NewAuto(AutoConfig{}), in)
	if err != nil {
		t.Fatal(err)
	}
	disallowed := 0
	for _, r := range ex.Rows {
		if r.Codec == "int8" {
			if r.Allowed {
				t.Errorf("uncalibrated int8 row at cut %d allowed", r.K)
			}
			disallowed++
		}
	}
	if disallowed == 0 {
		t.Fatal("no int8 rows")
	}
	var buf bytes.Buffer
	if err := ex.Format(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"accuracy", "uncalibrated", "exact", "≥100.00% (10000/10000)", "not allowed by the accuracy budget", "chosen by auto under max loss 0.1% @95%"} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 200 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
}
