package scheduler_test

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

func ExampleEarlyExit() {
	// A four-layer model with an early exit after layer 2, 30 ms a layer on
	// the device, 1 ms in the cloud behind an 80 ms RTT.
	edge := &partition.Profile{OutputBytes: 40}
	for i := 0; i < 4; i++ {
		edge.Nodes = append(edge.Nodes, partition.NodeProfile{Index: i, Latency: 30 * time.Millisecond})
		edge.Cuts = append(edge.Cuts, partition.Cut{K: i, Bytes: 4000})
	}
	edge.Cuts = append(edge.Cuts, partition.Cut{K: 4})
	cloud := *edge
	cloud.Nodes = append([]partition.NodeProfile(nil), edge.Nodes...)
	for i := range cloud.Nodes {
		cloud.Nodes[i].Latency = time.Millisecond
	}
	in := &scheduler.Inputs{Edge: edge, Clouds: []scheduler.CloudInput{{ID: "cloud", Profile: &cloud,
		Link: scheduler.LinkEstimate{RTT: 80 * time.Millisecond, Up: 2e6, Down: 2e6}}}}

	// Calibration on labelled data: the early exit is right 90 % of the
	// time and sure (0.99) exactly then; the final exit is right 98 %.
	var samples []scheduler.ExitSample
	for j := 0; j < 100; j++ {
		early, final := j%10 != 0, j%50 != 0
		conf := float32(0.6)
		if early {
			conf = 0.99
		}
		samples = append(samples, scheduler.ExitSample{Correct: []bool{early, final}, Confidence: []float32{conf, 0.99}})
	}
	table, err := scheduler.NewExitCalibration("example", []string{"exit1", "probs"}, []int{2, 4}, nil, samples)
	if err != nil {
		fmt.Println(err)
		return
	}
	exits := []partition.Exit{{Name: "exit1", End: 2, Output: 0, Probs: true}, {Name: "probs", End: 4, Output: 1, Probs: true}}
	var cuts [][]partition.PrefixCut
	for _, e := range exits {
		var pc []partition.PrefixCut
		for k := 0; k <= e.End; k++ {
			c := partition.PrefixCut{Cut: partition.Cut{K: k, Bytes: 4000}, ResultBytes: 40}
			if k == e.End {
				c = partition.PrefixCut{Cut: partition.Cut{K: k}}
			}
			pc = append(pc, c)
		}
		cuts = append(cuts, pc)
	}
	em, err := scheduler.NewExitModel(exits, cuts, table)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range []time.Duration{30 * time.Millisecond, 70 * time.Millisecond, 100 * time.Millisecond, 130 * time.Millisecond} {
		p, err := scheduler.EarlyExit{Model: em, Deadline: d}.Plan(in)
		if err != nil {
			fmt.Println(err)
			return
		}
		x := p.Exit
		fmt.Printf("deadline %v: exit %s, cut %d, early exits %d, accuracy %.0f%%, worst %v, mean %v, meets %v\n",
			d, x.Name, p.K, x.Early, 100*x.Accuracy, p.Predicted.Total, x.Expected, x.Meets)
	}
	// Nothing meets 30 ms: the fastest plan, flagged. 70 ms: the early
	// exit on the device. 100 ms: the final exit in the cloud. 130 ms: the
	// whole model on the device, 90 % of requests answered at the early
	// exit, so the mean beats the cloud's.

	// Output:
	// deadline 30ms: exit exit1, cut 2, early exits 0, accuracy 90%, worst 60ms, mean 60ms, meets false
	// deadline 70ms: exit exit1, cut 2, early exits 0, accuracy 90%, worst 60ms, mean 60ms, meets true
	// deadline 100ms: exit probs, cut 0, early exits 0, accuracy 98%, worst 86.02ms, mean 86.02ms, meets true
	// deadline 130ms: exit probs, cut 4, early exits 1, accuracy 98%, worst 120ms, mean 66ms, meets true
}
