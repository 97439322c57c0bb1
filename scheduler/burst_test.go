package scheduler

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/cellreplay"
	"github.com/edgesplit/edgesplit/internal/mahimahi"
)

func TestTransferCurve(t *testing.T) {
	ms := time.Millisecond
	c := &TransferCurve{PacketBytes: 1000, Light: []time.Duration{0, 4 * ms, 8 * ms}, LongBps: 1e6, Delay: 2 * ms}
	for _, tc := range []struct {
		n    int64
		want time.Duration
	}{
		{0, 0}, {1, 0}, {1000, 0}, {1001, 4 * ms}, {3000, 8 * ms},
		{4000, 8 * ms},                  // max(8-2 + 1 ms, 8 ms)
		{13000, 6*ms + 10*ms},           // 8-2 ms, then 10 kB at 1 MB/s
		{1_003_000, 6*ms + time.Second}, // long flows go at LongBps
	} {
		if got := c.Time(tc.n); got != tc.want {
			t.Errorf("Time(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if e := c.EffectiveBps(13000); math.Abs(e-13000/0.016) > 1 {
		t.Errorf("EffectiveBps(13000) = %v", e)
	}
	if e := c.EffectiveBps(1_003_000); e < 0.99e6 || e > 1e6 {
		t.Errorf("a long flow's effective rate %v, want ≈ LongBps", e)
	}
	plain := &TransferCurve{PacketBytes: 1000, LongBps: 1e6}
	if got := plain.Time(5000); got != 5*ms {
		t.Errorf("a curve without light PDOs is the plain rate: %v", got)
	}
}

func TestTransferCurveValidate(t *testing.T) {
	m := resnetLike(1, 1)
	for _, tc := range []struct {
		name  string
		c     TransferCurve
		field string
	}{
		{"no rate", TransferCurve{PacketBytes: 1400}, "Clouds[0].Link.UpCurve"},
		{"no packet size", TransferCurve{LongBps: 1}, "Clouds[0].Link.UpCurve"},
		{"decreasing", TransferCurve{PacketBytes: 1400, LongBps: 1, Light: []time.Duration{2, 1}}, "Clouds[0].Link.UpCurve.Light[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := m.inputs(10, time.Millisecond)
			c := tc.c
			in.Clouds[0].Link.UpCurve = &c
			var ie *InputError
			if err := in.Validate(); !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("Validate = %v, want an error on %s", err, tc.field)
			}
		})
	}
}

func loadCellReplay(t testing.TB) *cellreplay.Link {
	t.Helper()
	dir := "../internal/cellreplay/testdata/"
	lf, err := os.ReadFile(dir + "light-up")
	if err != nil {
		t.Fatal(err)
	}
	light, err := cellreplay.ParseLight(strings.NewReader(string(lf)), cellreplay.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	hf, err := os.ReadFile(dir + "heavy-up")
	if err != nil {
		t.Fatal(err)
	}
	heavy, err := mahimahi.Parse(strings.NewReader(string(hf)), mahimahi.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cellreplay.NewLink(light, heavy)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The burst-aware transfer term against the plain one (bytes ÷ the trace's
// mean long-flow rate, plus a fixed half RTT), both scored against the
// CellReplay replay of the same transfer at 500 start times over the trace.
// docs/benchmarks.md reports the table this logs.
func TestBurstAwarePredictionError(t *testing.T) {
	l := loadCellReplay(t)
	curve := CurveFromCellReplay(l)
	plain := LinkEstimate{RTT: 2 * l.MeanDelay(), Up: l.HeavyRate()}
	burst := plain
	burst.UpCurve = curve
	var rows []string
	var sumP, sumB, sumBT float64
	var nP int
	for _, n := range []int64{1400, 4 << 10, 16 << 10, 32 << 10, 64 << 10, 256 << 10, 1 << 20} {
		var ep, eb, ebt, truthSum float64
		const starts = 500
		for i := 0; i < starts; i++ {
			at := time.Duration(i) * 40 * time.Millisecond // 20 s, the trace's loop
			truth := float64(l.Transfer(at, n) - at)
			pp := float64(plain.RTT/2 + plain.upTime(n))
			pb := float64(burst.RTT/2 + burst.upTime(n))
			ep += math.Abs(pp-truth) / truth
			eb += math.Abs(pb-truth) / truth
			// with the base delay of the moment, as a planner that
			// tracks the RTT sees it
			pbt := float64(l.BaseDelay(at) + burst.upTime(n))
			ebt += math.Abs(pbt-truth) / truth
			truthSum += truth
		}
		ep, eb, ebt = ep/starts, eb/starts, ebt/starts
		sumP, sumB, sumBT, nP = sumP+ep, sumB+eb, sumBT+ebt, nP+1
		eff := "–"
		if curve.Time(n) > 0 {
			eff = fmt.Sprintf("%.1f", curve.EffectiveBps(n)*8/1e6)
		}
		rows = append(rows, fmt.Sprintf("| %d | %.1f | %.1f | %.1f | %.1f %% | %.1f %% | %.1f %% | %s |", n, truthSum/starts/1e6,
			float64(plain.RTT/2+plain.upTime(n))/1e6, float64(burst.RTT/2+burst.upTime(n))/1e6, 100*ep, 100*eb, 100*ebt, eff))
		if eb > ep+0.01 {
			t.Errorf("%d B: burst-aware error %.1f %% above the plain model's %.1f %%", n, 100*eb, 100*ep)
		}
	}
	t.Logf("trace: base delay mean %v, long-flow rate %.1f Mbit/s, %d light PDOs\n| bytes | replayed one-way ms (mean) | plain predicts ms | burst-aware predicts ms | plain error | burst-aware error | burst-aware, current base delay | burst effective Mbit/s |\n|---|---|---|---|---|---|---|---|\n%s\nmean error: plain %.1f %%, burst-aware %.1f %%, burst-aware with the current base delay %.1f %%",
		l.MeanDelay(), l.HeavyRate()*8/1e6, len(curve.Light), strings.Join(rows, "\n"), 100*sumP/float64(nP), 100*sumB/float64(nP), 100*sumBT/float64(nP))
	if sumB >= sumP {
		t.Fatalf("burst-aware mean error %.3f not below plain %.3f", sumB/float64(nP), sumP/float64(nP))
	}
}

// On a burst-aware link the policies' plans are what Evaluate predicts,
// and a small boundary is priced at the burst's (lower) effective rate.
func TestBurstAwarePlans(t *testing.T) {
	l := loadCellReplay(t)
	m := resnetLike(2, 3)
	in := m.inputs(8*l.HeavyRate()/1e6, 2*l.MeanDelay(), testCodecs[0])
	in.Clouds[0].Link.UpCurve = CurveFromCellReplay(l)
	for _, pol := range []Policy{Neurosurgeon{}, &DADS{}, NewAuto(DefaultAutoConfig()), Fixed{K: 3}} {
		p, err := pol.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		e, err := in.Evaluate(p)
		if err != nil || e.Predicted != p.Predicted {
			t.Fatalf("%s: %v, Evaluate %v, %v", pol.Name(), p, e, err)
		}
	}
	small := int64(8 << 10)
	if up := in.Clouds[0].Link.upTime(small); up <= durOf(float64(small)/in.Clouds[0].Link.Up) {
		t.Fatalf("an 8 kB burst takes %v, no more than at the long-flow rate", up)
	}
}
