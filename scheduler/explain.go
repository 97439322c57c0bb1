package scheduler

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one candidate of an Explanation: a cut, codec and cloud with its
// predicted latency.
type Row struct {
	K         int      // prefix cut; -1 for a non-prefix dads set (Head)
	Head      []int    // edge nodes of a non-prefix set
	Boundary  []string // boundary tensors of the prefix cut
	Codec     string   // "" for edge-only
	Cloud     string   // "" for edge-only
	Bytes     int64
	WireBytes int64
	Predicted Breakdown
	// Energy is the candidate's predicted energy on the edge device
	// (zero without Inputs.Power).
	Energy EnergyBreakdown
	// Accuracy is what the candidate risks; Allowed whether the inputs'
	// accuracy budget lets a policy choose it.
	Accuracy Accuracy
	Allowed  bool
	Chosen   bool
}

// Explanation is every candidate the cost model scored plus the plan the
// policy chose.
type Explanation struct {
	Policy string
	// Objective is what the policy minimised.
	Objective Objective
	Chosen    Plan
	Rows      []Row
}

// Explain runs p on in and tabulates the predicted latency of every prefix
// cut × codec × available cloud (edge-only once), marking the chosen plan and
// the candidates the accuracy budget rules out. A chosen plan that is not a
// prefix cut gets a row of its own.
func Explain(p Policy, in *Inputs) (Explanation, error) {
	chosen, err := p.Plan(in)
	if err != nil {
		return Explanation{}, err
	}
	ex := Explanation{Policy: p.Name(), Objective: in.Objective, Chosen: chosen}
	n := len(in.Edge.Nodes)
	cs := in.codecs()
	marked := false
	for k := 0; k < n; k++ {
		for ci := range in.Clouds {
			cl := &in.Clouds[ci]
			if cl.Unavailable {
				continue
			}
			cp := cloudProfile(in, cl)
			for j := range cs {
				c := &cs[j]
				b, raw, wire := in.costPrefix(k, in.Edge.HeadLatency(k), cp.TailLatency(k), c, cl)
				r := Row{K: k, Boundary: in.Edge.Cuts[k].Boundary, Codec: c.Name, Cloud: cl.ID, Bytes: raw, WireBytes: wire, Predicted: b, Energy: in.energyOf(b, cl),
					Accuracy: accuracyOf(c, c.AgreementAt(k), in.Accuracy), Allowed: c.AllowedAt(k, in.Accuracy)}
				r.Chosen = chosen.K == k && chosen.Cloud == cl.ID && chosen.Codec == cs[j].Name
				marked = marked || r.Chosen
				ex.Rows = append(ex.Rows, r)
			}
		}
	}
	e := in.edgeOnlyPlan("")
	eo := Row{K: n, Boundary: in.Edge.Cuts[n].Boundary, Predicted: e.Predicted, Energy: e.Energy, Chosen: chosen.EdgeOnly(),
		Accuracy: e.Accuracy, Allowed: true}
	marked = marked || eo.Chosen
	ex.Rows = append(ex.Rows, eo)
	if !marked {
		ex.Rows = append(ex.Rows, Row{K: chosen.K, Head: chosen.Head, Codec: chosen.Codec, Cloud: chosen.Cloud,
			Bytes: chosen.Bytes, WireBytes: chosen.WireBytes, Predicted: chosen.Predicted, Energy: chosen.Energy, Chosen: true,
			Accuracy: chosen.Accuracy, Allowed: true})
	}
	return ex, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// String is a short text for a candidate's accuracy: "exact", "≥99.95%"
// (the lower bound it was judged by, with the calibration's sample count)
// or "uncalibrated".
func (a Accuracy) String() string {
	switch {
	case a.Fidelity == Exact:
		return "exact"
	case a.Calibration.Samples == 0:
		return "uncalibrated"
	}
	return fmt.Sprintf("≥%.2f%% (%d/%d)", 100*a.Lower, a.Calibration.Agree, a.Calibration.Samples)
}

// Format writes the explanation as an aligned text table (milliseconds), the
// chosen row marked with "*" and rows the accuracy budget rules out with "x",
// then one line naming the chosen plan. When any candidate has a predicted
// energy, four columns give it in millijoules (compute, radio, tail, total).
func (ex Explanation) Format(w io.Writer) error {
	energy := false
	for _, r := range ex.Rows {
		energy = energy || r.Energy.Total > 0
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "\tcut\tboundary\tcodec\tcloud\taccuracy\tbytes\twire\tedge\tenc\tup\trtt\tqueue\tcloud_ms\tdec\tdown\ttotal_ms\t"
	if energy {
		head += "cpu_mJ\tradio_mJ\ttail_mJ\ttotal_mJ\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range ex.Rows {
		mark := ""
		if r.Chosen {
			mark = "*"
		} else if !r.Allowed {
			mark = "x"
		}
		cut := fmt.Sprint(r.K)
		if r.K < 0 {
			cut = fmt.Sprintf("set%v", r.Head)
		}
		bnd := strings.Join(r.Boundary, ",")
		if len(bnd) > 32 {
			bnd = bnd[:29] + "..."
		}
		codec, cloud := r.Codec, r.Cloud
		if cloud == "" {
			codec, cloud = "-", "(edge-only)"
		}
		b := r.Predicted
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t", mark, cut, bnd, codec, cloud,
			r.Accuracy, r.Bytes, r.WireBytes, ms(b.EdgeCompute), ms(b.Encode), ms(b.Uplink), ms(b.RTT), ms(b.Queue),
			ms(b.CloudCompute), ms(b.Decode), ms(b.Downlink), ms(b.Total))
		if energy {
			e := r.Energy
			fmt.Fprintf(tw, "%.3f\t%.3f\t%.3f\t%.3f\t", e.Compute*1e3, e.Radio*1e3, e.Tail*1e3, e.Total*1e3)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	obj := ""
	if ex.Objective != ObjectiveLatency {
		obj = ", objective " + ex.Objective.String()
	}
	_, err := fmt.Fprintf(w, "* chosen by %s under %v%s: %s\nx not allowed by the accuracy budget\n", ex.Policy, ex.Chosen.Accuracy.Budget, obj, ex.Chosen.Summary())
	return err
}
