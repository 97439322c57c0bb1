package linkem

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Provenance says where a profile's numbers come from.
type Provenance string

const (
	// Measured profiles replay a recorded trace.
	Measured Provenance = "measured"
	// Synthesised profiles are built from published averages; their
	// time variation (if any) is generated, not recorded.
	Synthesised Provenance = "synthesised"
)

// Profile is a named pair of link settings. docs/link-profiles.md documents
// each one.
type Profile struct {
	Name        string
	Description string
	Source      string
	Provenance  Provenance
	Up, Down    LinkSettings
}

// Profiles returns the built-in profiles, sorted by name. Each call builds
// fresh values (the 5g-mmwave traces are generated deterministically).
func Profiles() []Profile {
	ps := []Profile{
		{
			Name:        "3g",
			Description: "HSPA-class 3G: 1.1 Mbit/s up, 2 Mbit/s down, 100 ms RTT, deep buffer",
			Source:      "Kang et al., Neurosurgeon (ASPLOS 2017), measured 3G uplink 1.1 Mbit/s; downlink and RTT are typical HSPA values",
			Provenance:  Synthesised,
			Up:          LinkSettings{Rate: Mbps(1.1), Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, QueueDelay: 400 * time.Millisecond},
			Down:        LinkSettings{Rate: Mbps(2), Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, QueueDelay: 400 * time.Millisecond},
		},
		{
			Name:        "lte",
			Description: "US-average LTE: 6.3 Mbit/s up, 30 Mbit/s down, 55 ms RTT",
			Source:      "Opensignal, State of Mobile Networks: USA (2019): LTE upload ≈ 6.3 Mbit/s, latency 44–66 ms; Neurosurgeon measured LTE uplink 5.85 Mbit/s",
			Provenance:  Synthesised,
			Up:          LinkSettings{Rate: Mbps(6.3), Delay: 27500 * time.Microsecond, Jitter: 3 * time.Millisecond, QueueDelay: 150 * time.Millisecond},
			Down:        LinkSettings{Rate: Mbps(30), Delay: 27500 * time.Microsecond, Jitter: 3 * time.Millisecond, QueueDelay: 150 * time.Millisecond},
		},
		{
			Name:        "5g-lowband",
			Description: "5G low-band (600–850 MHz, NSA): 9 Mbit/s up, 60 Mbit/s down, 40 ms RTT",
			Source:      "Opensignal, 5G User Experience Report: USA (2021): 5G uploads ≈ 9–16 Mbit/s; low-band at the low end",
			Provenance:  Synthesised,
			Up:          LinkSettings{Rate: Mbps(9), Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, QueueDelay: 100 * time.Millisecond},
			Down:        LinkSettings{Rate: Mbps(60), Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, QueueDelay: 100 * time.Millisecond},
		},
		{
			Name:        "5g-midband",
			Description: "5G mid-band (C-band / 2.5 GHz): 16 Mbit/s up, 200 Mbit/s down, 30 ms RTT",
			Source:      "Opensignal, 5G User Experience Report: USA (2021): 5G uploads ≈ 9–16 Mbit/s (mid-band at the high end); downlink typical of mid-band deployments",
			Provenance:  Synthesised,
			Up:          LinkSettings{Rate: Mbps(16), Delay: 15 * time.Millisecond, Jitter: 2 * time.Millisecond, QueueDelay: 100 * time.Millisecond},
			Down:        LinkSettings{Rate: Mbps(200), Delay: 15 * time.Millisecond, Jitter: 2 * time.Millisecond, QueueDelay: 100 * time.Millisecond},
		},
		{
			Name:        "5g-mmwave",
			Description: "5G mmWave (28/39 GHz): ≈ 700 Mbit/s mean down, erratic 10–80 Mbit/s up, 20 ms RTT, blockage outages (rate 0 for 0.2–0.8 s every 3–8 s)",
			Source:      "Opensignal mmWave reports (2020–2021): mean mmWave download ≈ 700 Mbit/s, uploads erratic; blockage behaviour after Narayanan et al., Lumos5G / 'A first look at commercial 5G performance' (IMC 2020). Trace generated, 100 ms steps, 20 s loop, seed fixed",
			Provenance:  Synthesised,
			Up:          LinkSettings{Trace: mmwaveTrace(false), Delay: 10 * time.Millisecond, QueueDelay: 100 * time.Millisecond},
			Down:        LinkSettings{Trace: mmwaveTrace(true), Delay: 10 * time.Millisecond, QueueDelay: 50 * time.Millisecond},
		},
		{
			Name:        "wifi",
			Description: "Home/office Wi-Fi: 18.9 Mbit/s up, 50 Mbit/s down, 10 ms RTT, light bursty loss",
			Source:      "Kang et al., Neurosurgeon (ASPLOS 2017), measured Wi-Fi uplink 18.9 Mbit/s; downlink, RTT and loss are typical values",
			Provenance:  Synthesised,
			Up:          LinkSettings{Rate: Mbps(18.9), Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, QueueDelay: 100 * time.Millisecond, Burst: &GilbertElliott{PGoodToBad: 0.0005, PBadToGood: 0.3, LossBad: 0.5}},
			Down:        LinkSettings{Rate: Mbps(50), Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, QueueDelay: 100 * time.Millisecond, Burst: &GilbertElliott{PGoodToBad: 0.0005, PBadToGood: 0.3, LossBad: 0.5}},
		},
		{
			Name:        "ethernet",
			Description: "Gigabit Ethernet LAN: 1000 Mbit/s each way, 0.5 ms RTT",
			Source:      "IEEE 802.3ab line rate; LAN RTT typical",
			Provenance:  Synthesised,
			Up:          LinkSettings{Rate: Mbps(1000), Delay: 250 * time.Microsecond, QueueBytes: 1 << 20},
			Down:        LinkSettings{Rate: Mbps(1000), Delay: 250 * time.Microsecond, QueueBytes: 1 << 20},
		},
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// ProfileNames returns the built-in profile names, sorted.
func ProfileNames() []string {
	var n []string
	for _, p := range Profiles() {
		n = append(n, p.Name)
	}
	return n
}

// LookupProfile returns the built-in profile with that name.
func LookupProfile(name string) (Profile, error) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("linkem: unknown profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
}

// mmwaveTrace generates a 20 s mmWave capacity trace in 100 ms steps:
// a bounded random walk around the mean, with blockage outages (rate 0)
// at the same instants in both directions.
func mmwaveTrace(down bool) *Trace {
	const steps = 200 // 20 s
	rng := rand.New(rand.NewPCG(28, 39))
	blocked := make([]bool, steps)
	for i := 20 + rng.IntN(30); i < steps; i += 30 + rng.IntN(50) {
		n := 2 + rng.IntN(7) // 0.2–0.8 s
		for k := i; k < min(i+n, steps); k++ {
			blocked[k] = true
		}
	}
	rates := make([]float64, steps)
	mean, lo, hi := 700.0, 450.0, 950.0
	if !down {
		mean, lo, hi = 40, 10, 80
	}
	r := mean
	wr := rand.New(rand.NewPCG(5, map[bool]uint64{true: 1, false: 2}[down]))
	for i := range rates {
		r += (mean-r)*0.2 + (wr.Float64()*2-1)*(hi-lo)*0.15
		r = min(max(r, lo), hi)
		if blocked[i] {
			rates[i] = 0
		} else {
			rates[i] = r
		}
	}
	t, err := TraceFromRates(rates, 100*time.Millisecond)
	if err != nil {
		panic("linkem: built-in mmWave trace: " + err.Error()) // cannot happen: fixed inputs
	}
	return t
}
