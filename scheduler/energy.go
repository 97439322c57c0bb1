package scheduler

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/internal/linkprofile"
)

// Objective is what every policy minimises: a plan's predicted latency
// (the default), the edge device's predicted energy, or a weighted sum of
// both.
type Objective uint8

const (
	// ObjectiveLatency minimises Breakdown.Total.
	ObjectiveLatency Objective = iota
	// ObjectiveEnergy minimises EnergyBreakdown.Total, the joules the edge
	// device spends on the request (Inputs.Power must be set).
	ObjectiveEnergy
	// ObjectiveWeighted minimises seconds + Inputs.EnergyWeight × joules.
	ObjectiveWeighted
	// ObjectiveThroughput maximises the requests per second an edge
	// sustains when its requests pipeline (DADS's heavy-load mode): it
	// minimises the plan's time per request at that rate, the larger of its
	// slowest stage (Breakdown.Bottleneck: the edge's compute, the uplink,
	// or the cloud) and its latency ÷ Inputs.InFlight, rather than the sum
	// of its stages; ties go to the lower latency.
	ObjectiveThroughput
)

// DefaultEnergyWeight is the weighted objective's default price of energy:
// 0.1 s per joule, so one joule weighs as much as 100 ms of latency (a
// phone's LTE radio burns about a joule per second of its tail, so a plan
// that keeps the radio up a second longer must save 100 ms to pay for it).
const DefaultEnergyWeight = 0.1

// ParseObjective reads "latency", "energy", "weighted" or "throughput"
// (case-insensitive; "" is latency).
func ParseObjective(s string) (Objective, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "latency":
		return ObjectiveLatency, nil
	case "energy":
		return ObjectiveEnergy, nil
	case "weighted":
		return ObjectiveWeighted, nil
	case "throughput":
		return ObjectiveThroughput, nil
	}
	return 0, fmt.Errorf("scheduler: unknown objective %q (want latency, energy, weighted or throughput)", s)
}

// String is the objective's name as ParseObjective reads it.
func (o Objective) String() string {
	switch o {
	case ObjectiveLatency:
		return "latency"
	case ObjectiveEnergy:
		return "energy"
	case ObjectiveWeighted:
		return "weighted"
	case ObjectiveThroughput:
		return "throughput"
	}
	return fmt.Sprintf("objective(%d)", uint8(o))
}

// Radio is a device radio's power model (see linkprofile.Radio, where the
// numbers of every named link live with their sources).
type Radio = linkprofile.Radio

// RadioFor returns the radio of the named link profile (3g, lte, 5g-*,
// wifi; ethernet has none: the zero Radio).
func RadioFor(profile string) (Radio, bool) {
	p, ok := linkprofile.Lookup(profile)
	if !ok {
		return Radio{}, false
	}
	return p.Radio, true
}

// DevicePower is the compute power of an edge device profile.
type DevicePower struct {
	Device   string  // a device profile name (node.ParseDevice)
	ComputeW float64 // watts above idle while it runs inference
	Source   string
}

// devicePowers lists the compute power of the built-in device profiles
// (node's device table): the power drawn above idle while the device runs a
// CNN on one core, which is how node emulates it.
var devicePowers = []DevicePower{
	{"server", 0, "not a battery device: its energy is not the edge's concern"},
	{"laptop", 10, "assumed: a mobile x86 package above idle with one core busy (15 W TDP class)"},
	{"jetson-nano", 2.5, "NVIDIA Jetson Nano 5 W mode, about half of the budget above idle with one CPU core busy (assumed split)"},
	{"raspberry-pi-4", 1.5, "Raspberry Pi 4B: ≈ 2.7 W idle, ≈ 6.4 W with four cores under stress (Raspberry Pi Ltd / Tom's Hardware measurements); one core ≈ a quarter of the 3.7 W"},
	{"phone", 2, "assumed mobile SoC big core under inference load (the value sim used before; Neurosurgeon measured 1–2.5 W for mobile CPU inference)"},
	{"mcu-class", 0.3, "assumed low-end single-board device"},
}

// DevicePowers returns the compute power table of the device profiles.
func DevicePowers() []DevicePower { return append([]DevicePower(nil), devicePowers...) }

// DeviceComputeW returns the compute power of the named device profile.
func DeviceComputeW(device string) (float64, bool) {
	for _, d := range devicePowers {
		if d.Device == device {
			return d.ComputeW, true
		}
	}
	return 0, false
}

// PowerModel is the edge device's power: its processor while it computes
// and its radio. Energy is counted above the device's idle baseline (which
// every plan pays alike). The zero value spends nothing; the energy and
// weighted objectives need one that is not zero.
type PowerModel struct {
	// ComputeW is the device's power while it computes the head or
	// encodes (watts; DeviceComputeW gives it per device profile).
	ComputeW float64
	// Radio is the access link's radio (RadioFor gives it per link
	// profile).
	Radio Radio
	// Interval is the expected time between the device's requests: the
	// radio's tail after a transfer is cut short by the next one, so a
	// request pays TailMW × min(Tail, Interval). Zero means isolated
	// requests, each paying the full tail.
	Interval time.Duration
}

// IsZero reports whether m spends nothing.
func (m *PowerModel) IsZero() bool {
	return m.ComputeW == 0 && m.Radio == (Radio{}) && m.Interval == 0
}

func (m *PowerModel) validate() error {
	r := &m.Radio
	for _, x := range []struct {
		name string
		v    float64
	}{{"ComputeW", m.ComputeW}, {"Radio.UpAlphaMW", r.UpAlphaMW}, {"Radio.DownAlphaMW", r.DownAlphaMW}, {"Radio.BetaMW", r.BetaMW}, {"Radio.TailMW", r.TailMW}} {
		if x.v < 0 || math.IsNaN(x.v) || math.IsInf(x.v, 0) {
			return &InputError{"Power." + x.name, fmt.Sprintf("must be ≥ 0 and finite, got %v", x.v)}
		}
	}
	if r.Tail < 0 || m.Interval < 0 {
		return &InputError{"Power", "negative tail or interval"}
	}
	return nil
}

// EnergyBreakdown is a request's energy on the edge device, in joules.
type EnergyBreakdown struct {
	// Compute is ComputeW × (overhead + edge compute + encode).
	Compute float64
	// Radio is the radio's power while it sends (α_u·Mbit/s + β) × uplink
	// airtime plus while it receives (α_d·Mbit/s + β) × downlink airtime.
	Radio float64
	// Tail is the radio waiting in its connected state, at TailMW: from
	// the end of the upload until the result arrives (RTT, queue, cloud
	// compute, decode), and then for its tail (min(Tail, Interval)).
	Tail  float64
	Total float64
}

// tail is the tail time one request pays.
func (m *PowerModel) tail() time.Duration {
	if m.Interval > 0 {
		return min(m.Radio.Tail, m.Interval)
	}
	return m.Radio.Tail
}

// upW is the radio's power, watts, while it sends at bps bytes per second.
func (m *PowerModel) upW(bps float64) float64 {
	return (m.Radio.UpAlphaMW*bps*8/1e6 + m.Radio.BetaMW) / 1e3
}

// downW is the radio's power while it receives at bps bytes per second.
func (m *PowerModel) downW(bps float64) float64 {
	return (m.Radio.DownAlphaMW*bps*8/1e6 + m.Radio.BetaMW) / 1e3
}

// waitW is the radio's power while it is connected and idle.
func (m *PowerModel) waitW() float64 { return m.Radio.TailMW / 1e3 }

// Energy is the energy of a request whose latency is b, sent over a link
// whose uplink and downlink run at up and down bytes per second. offloaded
// is false for an edge-only request (no radio at all). sim charges its
// simulated requests with it, from their measured times and rates.
func (m *PowerModel) Energy(b Breakdown, up, down float64, offloaded bool) EnergyBreakdown {
	var e EnergyBreakdown
	e.Compute = m.ComputeW * (b.Overhead + b.EdgeCompute + b.Encode).Seconds()
	if offloaded {
		if b.Uplink > 0 {
			e.Radio += m.upW(up) * b.Uplink.Seconds()
		}
		if b.Downlink > 0 {
			e.Radio += m.downW(down) * b.Downlink.Seconds()
		}
		e.Tail = m.waitW() * ((b.RTT + b.Queue + b.CloudCompute + b.Decode + b.Server + b.Hop2).Seconds() + m.tail().Seconds())
	}
	e.Total = e.Compute + e.Radio + e.Tail
	return e
}

// validateObjective checks the objective's fields of in.
func (in *Inputs) validateObjective() error {
	if in.Objective > ObjectiveThroughput {
		return &InputError{"Objective", fmt.Sprintf("unknown objective %d", in.Objective)}
	}
	if err := in.Power.validate(); err != nil {
		return err
	}
	if in.EnergyWeight < 0 || math.IsNaN(in.EnergyWeight) || math.IsInf(in.EnergyWeight, 0) {
		return &InputError{"EnergyWeight", fmt.Sprintf("must be ≥ 0 and finite, got %v", in.EnergyWeight)}
	}
	if (in.Objective == ObjectiveEnergy || in.Objective == ObjectiveWeighted) && in.Power.IsZero() {
		return &InputError{"Power", "the " + in.Objective.String() + " objective needs a power model"}
	}
	return nil
}

// energyWeight is the weighted objective's seconds per joule.
func (in *Inputs) energyWeight() float64 {
	if in.EnergyWeight > 0 {
		return in.EnergyWeight
	}
	return DefaultEnergyWeight
}

// energyOf is the energy of breakdown b on cl's link (nil: edge-only).
func (in *Inputs) energyOf(b Breakdown, cl *CloudInput) EnergyBreakdown {
	if cl == nil {
		return in.Power.Energy(b, 0, 0, false)
	}
	return in.Power.Energy(b, cl.Link.Up, cl.Link.Down, true)
}

// score is the objective's cost of latency b spending e.
func (in *Inputs) score(b Breakdown, e EnergyBreakdown) float64 {
	switch in.Objective {
	case ObjectiveEnergy:
		return e.Total
	case ObjectiveWeighted:
		return b.Total.Seconds() + in.energyWeight()*e.Total
	case ObjectiveThroughput:
		// The time per request at the rate the pipeline sustains.
		return max(float64(b.Bottleneck()), float64(b.Total)/float64(max(in.InFlight, 1))) + float64(b.Total)/1024
	}
	return float64(b.Total)
}

// Score is plan p's cost under the inputs' objective: nanoseconds for
// latency, joules for energy, seconds + EnergyWeight × joules for weighted.
// It reads p.Predicted and p.Energy as they are (Evaluate re-predicts).
func (in *Inputs) Score(p Plan) float64 { return in.score(p.Predicted, p.Energy) }

// cheaper reports whether latency a on cloud ca (nil: edge-only) costs less
// than b on cb under the objective. The latency objective compares the
// integer totals, as it always has.
func (in *Inputs) cheaper(a Breakdown, ca *CloudInput, b Breakdown, cb *CloudInput) bool {
	if in.Objective == ObjectiveLatency {
		return a.Total < b.Total
	}
	return in.score(a, in.energyOf(a, ca)) < in.score(b, in.energyOf(b, cb))
}

// planCheaper reports whether plan a costs less than b (both with their
// Energy filled in).
func (in *Inputs) planCheaper(a, b Plan) bool {
	if in.Objective == ObjectiveLatency {
		return a.Predicted.Total < b.Predicted.Total
	}
	return in.Score(a) < in.Score(b)
}

// weights are the objective's prices, per nanosecond, of the time the
// device spends in each state, for DADS's capacities: seconds-weight λ
// (1 for latency and weighted, 0 for energy) plus joules-weight μ (0, 1,
// EnergyWeight) times the state's power.
type weights struct {
	compute, up, down, wait float64
	tail                    float64 // the constant tail, in the same units
}

func (in *Inputs) weights(cl *CloudInput) weights {
	lambda, mu := 1.0, 0.0
	switch in.Objective {
	case ObjectiveEnergy:
		lambda, mu = 0, 1
	case ObjectiveWeighted:
		mu = in.energyWeight()
	}
	m := &in.Power
	return weights{
		compute: lambda + mu*m.ComputeW,
		up:      lambda + mu*m.upW(cl.Link.Up),
		down:    lambda + mu*m.downW(cl.Link.Down),
		wait:    lambda + mu*m.waitW(),
		tail:    mu * m.waitW() * float64(m.tail()),
	}
}
