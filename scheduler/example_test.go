package scheduler_test

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

func Example() {
	// A three-layer model: a cheap conv that makes a big activation, a pool
	// that shrinks it 16×, a classifier that is slow on the phone.
	edge := &partition.Profile{
		Nodes: []partition.NodeProfile{
			{Name: "conv", Op: "Conv", Latency: 5 * time.Millisecond, OutBytes: 800_000},
			{Name: "pool", Op: "MaxPool", Latency: 2 * time.Millisecond, OutBytes: 50_000},
			{Name: "fc", Op: "Gemm", Latency: 200 * time.Millisecond, OutBytes: 40},
		},
		Cuts: []partition.Cut{
			{K: 0, Boundary: []string{"image"}, Bytes: 600_000},
			{K: 1, Boundary: []string{"conv"}, Bytes: 800_000},
			{K: 2, Boundary: []string{"pool"}, Bytes: 50_000},
			{K: 3, Boundary: []string{"fc"}, Bytes: 40},
		},
		InputBytes: 600_000, OutputBytes: 40,
	}
	cloud := *edge
	cloud.Nodes = append([]partition.NodeProfile(nil), edge.Nodes...)
	for i := range cloud.Nodes {
		cloud.Nodes[i].Latency /= 10
	}
	in := &scheduler.Inputs{
		Edge: edge,
		// uint8 is lossy: calibrated on 3 000 inputs, it kept every answer at
		// cuts 0 and 2 but changed 12 at cut 1, so the default budget (99.9 %
		// agreement, judged by a 95 % lower confidence bound) rules out cut 1.
		Codecs: []scheduler.CodecModel{scheduler.RawCodec, {Name: "uint8", Ratio: 4, EncodeBps: 1e9, DecodeBps: 1e9,
			CutAgreement: []scheduler.Agreement{{Agree: 3000, Samples: 3000}, {Agree: 2988, Samples: 3000}, {Agree: 3000, Samples: 3000}}}},
		Clouds: []scheduler.CloudInput{{ID: "cloud-1", Profile: &cloud,
			Link: scheduler.LinkEstimate{RTT: 20 * time.Millisecond, Up: 10e6 / 8, Down: 50e6 / 8}}},
	}
	for _, name := range []string{"edge-only", "cloud-only", "neurosurgeon"} {
		pol, _ := scheduler.ParsePolicy(name)
		p, _ := pol.Plan(in)
		fmt.Printf("%-12s cut %d codec %-5s %6.2f ms  %v\n", name, p.K, p.Codec, float64(p.Predicted.Total)/1e6, p.Accuracy)
	}
	// Output:
	// edge-only    cut 3 codec       207.00 ms  exact
	// cloud-only   cut 0 codec uint8 161.91 ms  ≥99.91% (3000/3000)
	// neurosurgeon cut 2 codec uint8  57.11 ms  ≥99.91% (3000/3000)
}
