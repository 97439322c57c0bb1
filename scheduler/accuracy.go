package scheduler

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Fidelity is what a codec guarantees about its reconstruction, which decides
// what the scheduler must know before a plan may use it.
type Fidelity uint8

const (
	// Lossy codecs (integer quantisers) may change a model's answer; a plan
	// uses one at a cut only where calibration certified it within the
	// accuracy budget. It is the zero value: a codec nobody vouched for is
	// treated as lossy.
	Lossy Fidelity = iota
	// Bounded codecs (fp16-class) have a per-element relative error bounded
	// by construction — which does not bound a changed answer: a model
	// whose top two scores nearly tie flips under fp16 rounding. Under a
	// non-zero budget one is allowed at a cut where calibration saw no
	// answer change, or certified its agreement like a lossy codec's;
	// uncalibrated, never.
	Bounded
	// Exact codecs reconstruct every value bit for bit; always allowed.
	Exact
)

var fidelityNames = [...]string{"lossy", "bounded", "exact"}

// String returns "lossy", "bounded" or "exact".
func (f Fidelity) String() string {
	if int(f) < len(fidelityNames) {
		return fidelityNames[f]
	}
	return fmt.Sprintf("fidelity(%d)", uint8(f))
}

// ParseFidelity reads a Fidelity name (case-insensitive).
func ParseFidelity(s string) (Fidelity, error) {
	for i, n := range fidelityNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Fidelity(i), nil
		}
	}
	return 0, fmt.Errorf("scheduler: unknown fidelity %q (want lossy, bounded or exact)", s)
}

// Agreement is one calibration measurement of a codec at a cut: of Samples
// calibration inputs, Agree gave the unsplit model's top-1 answer when the
// boundary went through the codec. MaxProbDelta is the largest change of any
// output probability (softmax of the last output) seen. Samples 0 means not
// measured.
type Agreement struct {
	Agree        int     `json:"agree"`
	Samples      int     `json:"samples"`
	MaxProbDelta float64 `json:"max_prob_delta"`
}

// Rate is Agree/Samples (1 when nothing was measured).
func (a Agreement) Rate() float64 {
	if a.Samples <= 0 {
		return 1
	}
	return float64(a.Agree) / float64(a.Samples)
}

// Lower is the one-sided Wilson score lower confidence bound on the true
// agreement rate at the given confidence (e.g. 0.95); 0 when nothing was
// measured. With every sample agreeing it is n/(n+z²): 20 samples certify at
// most 88 % at 95 %, and 99.9 % needs about 2 700.
func (a Agreement) Lower(confidence float64) float64 {
	if a.Samples <= 0 {
		return 0
	}
	n := float64(a.Samples)
	p := float64(min(max(a.Agree, 0), a.Samples)) / n
	z := zScore(confidence)
	z2 := z * z
	centre := p + z2/(2*n)
	spread := z * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Max(0, (centre-spread)/(1+z2/n))
}

// zScore is the standard normal quantile of c (one-sided).
func zScore(c float64) float64 {
	if !(c > 0 && c < 1) {
		c = DefaultConfidence
	}
	return math.Sqrt2 * math.Erfinv(2*c-1)
}

// Defaults of an AccuracyBudget.
const (
	// DefaultMaxLoss is the default accuracy budget: a plan must keep top-1
	// agreement with the unsplit model ≥ 99.9 %.
	DefaultMaxLoss = 0.001
	// DefaultConfidence is the one-sided confidence of the lower bound a
	// calibration is judged by.
	DefaultConfidence = 0.95
)

// AccuracyBudget is how much a plan may change a model's answers: a lossy
// codec is used at a cut only when the lower confidence bound of its
// calibrated top-1 agreement is ≥ 1 - MaxLoss. The zero value is the default
// budget (0.1 % at 95 % confidence); ExactOnly allows only bit-exact codecs.
type AccuracyBudget struct {
	// MaxLoss is the largest allowed loss of top-1 agreement, in [0, 1].
	// Zero means DefaultMaxLoss (use ExactOnly for no loss at all).
	MaxLoss float64
	// Confidence of the lower bound, in (0, 1). Zero means DefaultConfidence.
	Confidence float64
	// ExactOnly allows only codecs whose Fidelity is Exact.
	ExactOnly bool
}

// NewBudget returns the budget for a user's maximum accuracy loss (a
// fraction: 0.001 is 0.1 %); 0 means exact codecs only. It rejects values
// outside [0, 1] and NaN.
func NewBudget(maxLoss float64) (AccuracyBudget, error) {
	if math.IsNaN(maxLoss) || maxLoss < 0 || maxLoss > 1 {
		return AccuracyBudget{}, fmt.Errorf("scheduler: accuracy loss %v out of range [0, 1] (a fraction: 0.001 is 0.1 %%)", maxLoss)
	}
	if maxLoss == 0 {
		return AccuracyBudget{ExactOnly: true}, nil
	}
	return AccuracyBudget{MaxLoss: maxLoss}, nil
}

// Loss is the budget's maximum loss with the default filled in (0 for
// ExactOnly).
func (b AccuracyBudget) Loss() float64 {
	switch {
	case b.ExactOnly:
		return 0
	case b.MaxLoss > 0:
		return b.MaxLoss
	}
	return DefaultMaxLoss
}

// Conf is the budget's confidence with the default filled in.
func (b AccuracyBudget) Conf() float64 {
	if b.Confidence > 0 && b.Confidence < 1 {
		return b.Confidence
	}
	return DefaultConfidence
}

// String is e.g. "max loss 0.1% @95%" or "exact only".
func (b AccuracyBudget) String() string {
	if b.ExactOnly {
		return "exact only"
	}
	return fmt.Sprintf("max loss %g%% @%g%%", 100*b.Loss(), 100*b.Conf())
}

func (b AccuracyBudget) validate() error {
	if math.IsNaN(b.MaxLoss) || b.MaxLoss < 0 || b.MaxLoss > 1 {
		return &InputError{"Accuracy.MaxLoss", fmt.Sprintf("%v out of range [0, 1]", b.MaxLoss)}
	}
	if math.IsNaN(b.Confidence) || b.Confidence < 0 || b.Confidence >= 1 {
		return &InputError{"Accuracy.Confidence", fmt.Sprintf("%v out of range [0, 1)", b.Confidence)}
	}
	return nil
}

// AgreementAt is the calibration of the codec at prefix cut k (Samples 0 when
// not calibrated there).
func (c *CodecModel) AgreementAt(k int) Agreement {
	if k >= 0 && k < len(c.CutAgreement) {
		return c.CutAgreement[k]
	}
	return Agreement{}
}

// Allows reports whether budget b lets this codec carry a boundary whose
// calibration is a (Samples 0: none).
func (c *CodecModel) Allows(b AccuracyBudget, a Agreement) bool {
	switch {
	case c.Fidelity == Exact:
		return true
	case b.ExactOnly:
		return false
	}
	if a.Samples == 0 {
		return false // not measured: only exact codecs may carry it
	}
	certified := a.Lower(b.Conf()) >= 1-b.Loss()
	if c.Fidelity == Bounded {
		// The error bound plus no changed answer seen is evidence enough;
		// where calibration saw answers change, the rate must certify.
		return a.Agree == a.Samples || certified
	}
	return certified
}

// AllowedAt reports whether budget b lets this codec carry prefix cut k's
// boundary.
func (c *CodecModel) AllowedAt(k int, b AccuracyBudget) bool { return c.Allows(b, c.AgreementAt(k)) }

// Accuracy is what a plan risks: the fidelity of its codec and, for lossy or
// bounded codecs, the calibration behind the decision.
type Accuracy struct {
	Fidelity Fidelity `json:"fidelity"`
	// Calibration is the measurement at the plan's cut (Samples 0: none).
	Calibration Agreement `json:"calibration"`
	// Lower is the lower confidence bound on top-1 agreement that the plan
	// was judged by: 1 for exact codecs and edge-only and for a bounded
	// codec calibration saw change nothing, 0 for any uncalibrated codec
	// that is not exact.
	Lower float64 `json:"lower"`
	// Budget is the budget the plan was made under.
	Budget AccuracyBudget `json:"budget"`
}

// accuracyOf is the Accuracy of a plan using codec c with calibration a.
func accuracyOf(c *CodecModel, a Agreement, b AccuracyBudget) Accuracy {
	acc := Accuracy{Fidelity: c.Fidelity, Calibration: a, Lower: 1, Budget: b}
	if c.Fidelity != Exact && a.Samples > 0 {
		acc.Lower = a.Lower(b.Conf())
		if c.Fidelity == Bounded && a.Agree == a.Samples {
			acc.Lower = 1
		}
	}
	if c.Fidelity != Exact && a.Samples == 0 {
		acc.Lower = 0
	}
	return acc
}

// exactAccuracy is the Accuracy of edge-only plans.
func exactAccuracy(b AccuracyBudget) Accuracy { return Accuracy{Fidelity: Exact, Lower: 1, Budget: b} }

// boundaryKey is the canonical key of a set of boundary tensor names.
func boundaryKey(names []string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	return strings.Join(s, "\x00")
}
