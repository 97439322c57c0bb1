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
	Chosen    bool
}

// Explanation is every candidate the cost model scored plus the plan the
// policy chose.
type Explanation struct {
	Policy string
	Chosen Plan
	Rows   []Row
}

// Explain runs p on in and tabulates the predicted latency of every prefix
// cut × codec × available cloud (edge-only once), marking the chosen plan.
// A chosen plan that is not a prefix cut gets a row of its own.
func Explain(p Policy, in *Inputs) (Explanation, error) {
	chosen, err := p.Plan(in)
	if err != nil {
		return Explanation{}, err
	}
	ex := Explanation{Policy: p.Name(), Chosen: chosen}
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
				b, raw, wire := in.costPrefix(k, in.Edge.HeadLatency(k), cp.TailLatency(k), &cs[j], cl)
				r := Row{K: k, Boundary: in.Edge.Cuts[k].Boundary, Codec: cs[j].Name, Cloud: cl.ID, Bytes: raw, WireBytes: wire, Predicted: b}
				r.Chosen = chosen.K == k && chosen.Cloud == cl.ID && chosen.Codec == cs[j].Name
				marked = marked || r.Chosen
				ex.Rows = append(ex.Rows, r)
			}
		}
	}
	e := in.edgeOnlyPlan("")
	eo := Row{K: n, Boundary: in.Edge.Cuts[n].Boundary, Predicted: e.Predicted, Chosen: chosen.EdgeOnly()}
	marked = marked || eo.Chosen
	ex.Rows = append(ex.Rows, eo)
	if !marked {
		ex.Rows = append(ex.Rows, Row{K: chosen.K, Head: chosen.Head, Codec: chosen.Codec, Cloud: chosen.Cloud,
			Bytes: chosen.Bytes, WireBytes: chosen.WireBytes, Predicted: chosen.Predicted, Chosen: true})
	}
	return ex, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// Format writes the explanation as an aligned text table (milliseconds), the
// chosen row marked with "*".
func (ex Explanation) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tcut\tboundary\tcodec\tcloud\tbytes\twire\tedge\tenc\tup\trtt\tqueue\tcloud_ms\tdec\tdown\ttotal_ms\t\n")
	for _, r := range ex.Rows {
		mark := ""
		if r.Chosen {
			mark = "*"
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", mark, cut, bnd, codec, cloud,
			r.Bytes, r.WireBytes, ms(b.EdgeCompute), ms(b.Encode), ms(b.Uplink), ms(b.RTT), ms(b.Queue),
			ms(b.CloudCompute), ms(b.Decode), ms(b.Downlink), ms(b.Total))
	}
	fmt.Fprintf(tw, "chosen by %s: %s\t\n", ex.Policy, ex.Chosen)
	return tw.Flush()
}
