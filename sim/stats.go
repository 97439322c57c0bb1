package sim

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"text/tabwriter"
	"time"
)

// hist is a log-linear latency histogram (HDR style) over microseconds:
// values below 256 µs are exact, above that each power of two is split in
// 128 buckets, so quantiles are within 0.8 % with bounded memory however
// many requests run.
type hist struct {
	counts []uint64
	n      uint64
}

const histBuckets = 48 * 128 // up to 2^47 µs

func histIndex(us uint64) int {
	e := bits.Len64(us) - 8
	if e <= 0 {
		return int(us)
	}
	return min(e*128+int(us>>uint(e)), histBuckets-1)
}

// histMid is the middle of bucket i, in µs.
func histMid(i int) float64 {
	if i < 256 {
		return float64(i)
	}
	e := i/128 - 1
	m := i - e*128
	return float64(uint64(m)<<uint(e)) + float64(uint64(1)<<uint(e))/2
}

func (h *hist) add(ns int64) {
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	h.counts[histIndex(uint64(max(ns, 0)+500)/1000)]++
	h.n++
}

// quantile returns the q-quantile (0..1), its bucket's middle.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var c uint64
	for i, k := range h.counts {
		c += k
		if c >= rank {
			return time.Duration(histMid(i) * 1e3)
		}
	}
	return 0
}

// Summary is the outcome of a run.
type Summary struct {
	Scenario string
	Seed     uint64
	Policy   string
	// Objective is what the planners minimised: the classes' objectives,
	// comma-separated in class order when they differ.
	Objective string
	// Requests counts arrivals; all of them complete (the run drains).
	Requests  int64
	Offloaded int64 // requests that used a cloud
	// LossyRequests counts offloaded requests whose codec was lossy (allowed
	// by calibration under the budget); AgreementLower is the lowest
	// top-1-agreement lower bound any request's plan was judged by (1: every
	// answer exact or bounded by construction).
	LossyRequests  int64
	AgreementLower float64
	EarlyExits     int64 // requests that left at an early exit
	// Span is the simulated time until the last completion.
	Span               time.Duration
	Mean               time.Duration
	P50, P95, P99      time.Duration // within 0.8 % (log-linear histogram)
	Throughput         float64       // completions per simulated second (over Span)
	MeanQueue          time.Duration // mean cloud queueing delay of offloaded requests
	WithDeadline       int64         // requests that had an SLO
	SLOHitRate         float64       // of those, the fraction on time (1 when none)
	CloudUtilisation   float64       // busy worker time ÷ (workers × Span), all servers
	CellUtilisation    float64       // time with ≥ 1 uplink flow ÷ Span, mean over cells
	EdgeEnergyJ        float64       // all devices, joules
	EnergyComputeJ     float64       // of which the processors'
	EnergyRadioJ       float64       // the radios' while sending and receiving
	EnergyTailJ        float64       // the radios' while waiting and in their tails
	EnergyPerRequestMJ float64
	MeanPredErr        float64       // mean |predicted − simulated| ÷ simulated
	MeanRegret         time.Duration // with Regret on: chosen − oracle, both predicted on the exact state
	Plans              int64         // planning decisions made
	Probes             int64         // link probes sent (learned estimation)
	Events             int64         // events processed
}

// Format writes the summary as an aligned two-column table.
func (s *Summary) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
	rows := [][2]string{
		{"scenario", s.Scenario}, {"seed", fmt.Sprint(s.Seed)}, {"policy", s.Policy}, {"objective", s.Objective},
		{"requests", fmt.Sprint(s.Requests)}, {"offloaded", fmt.Sprint(s.Offloaded)}, {"early exits", fmt.Sprint(s.EarlyExits)},
		{"lossy codec", fmt.Sprintf("%d requests (agreement ≥ %.2f%% by calibration)", s.LossyRequests, 100*s.AgreementLower)},
		{"simulated span", s.Span.String()},
		{"mean latency", ms(s.Mean)}, {"p50", ms(s.P50)}, {"p95", ms(s.P95)}, {"p99", ms(s.P99)},
		{"throughput", fmt.Sprintf("%.2f req/s", s.Throughput)},
		{"mean cloud queueing", ms(s.MeanQueue)},
		{"SLO hit rate", fmt.Sprintf("%.4f (of %d with a deadline)", s.SLOHitRate, s.WithDeadline)},
		{"cloud utilisation", fmt.Sprintf("%.4f", s.CloudUtilisation)},
		{"cell utilisation", fmt.Sprintf("%.4f", s.CellUtilisation)},
		{"edge energy", fmt.Sprintf("%.3f J (%.3f mJ/request: compute %.3f J, radio %.3f J, tail %.3f J)", s.EdgeEnergyJ, s.EnergyPerRequestMJ,
			s.EnergyComputeJ, s.EnergyRadioJ, s.EnergyTailJ)},
		{"prediction error", fmt.Sprintf("%.2f %%", 100*s.MeanPredErr)},
		{"mean regret", ms(s.MeanRegret)},
		{"plans", fmt.Sprint(s.Plans)}, {"probes", fmt.Sprint(s.Probes)}, {"events", fmt.Sprint(s.Events)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
