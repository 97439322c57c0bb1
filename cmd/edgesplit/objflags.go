package main

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/spf13/pflag"
)

// objectiveFlags choose what plans minimise (plan, node): latency, the
// edge device's energy, or a weighted sum, with the device's power model.
type objectiveFlags struct {
	objective    string
	energyWeight float64
	computeW     float64
	interval     time.Duration
}

func (o *objectiveFlags) register(f *pflag.FlagSet) {
	f.StringVar(&o.objective, "objective", "latency", "what the policy minimises: latency, energy (the edge device's joules), weighted (seconds + --energy-weight × joules) or throughput (the slowest pipeline stage, for an edge under load)")
	f.Float64Var(&o.energyWeight, "energy-weight", scheduler.DefaultEnergyWeight, "weighted objective: seconds per joule")
	f.Float64Var(&o.computeW, "compute-w", 0, "edge device compute power in watts (default: the edge device profile's, 2 W for slowdown:F)")
	f.DurationVar(&o.interval, "interval", 0, "expected time between requests: the radio's RRC tail is cut short by the next one (0: isolated requests, full tail)")
}

// resolve returns the objective and the edge's power model: the device
// profile's compute power (--compute-w overrides it; 2 W, the phone's, for
// an explicit slowdown) and the link profile's radio (none for a link that
// is not a profile: traces, wired).
func (o *objectiveFlags) resolve(device, link string) (scheduler.Objective, scheduler.PowerModel, float64, error) {
	obj, err := scheduler.ParseObjective(o.objective)
	if err != nil {
		return 0, scheduler.PowerModel{}, 0, fmt.Errorf("--objective: %w", err)
	}
	if o.computeW < 0 || o.interval < 0 || o.energyWeight < 0 {
		return 0, scheduler.PowerModel{}, 0, fmt.Errorf("--compute-w, --interval and --energy-weight must be ≥ 0")
	}
	w := o.computeW
	if w == 0 {
		var ok bool
		if w, ok = scheduler.DeviceComputeW(device); !ok {
			w, _ = scheduler.DeviceComputeW("phone")
		}
	}
	r, _ := scheduler.RadioFor(link)
	return obj, scheduler.PowerModel{ComputeW: w, Radio: r, Interval: o.interval}, o.energyWeight, nil
}
