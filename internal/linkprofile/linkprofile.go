// Package linkprofile is the one table of edgesplit's named access links
// (3g, lte, 5g-*, wifi, ethernet): rates, delays, queues, loss and the
// source of every number. The emulator (transport/linkem) builds its link
// settings from it and the simulator (sim, which may not import transport)
// its link model, so a scenario and an emulated run of the same profile
// describe the same link. docs/link-profiles.md documents each profile.
package linkprofile

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Direction is one direction of a profile.
type Direction struct {
	// Mbps is the fixed capacity in Mbit/s (0 when Rates is set).
	Mbps float64
	// Rates, when set, is a time-varying capacity in Mbit/s: Rates[i] holds
	// during [i·Step, (i+1)·Step), and the series loops.
	Rates []float64
	Step  time.Duration
	// Delay is the one-way propagation delay, Jitter its random variation.
	Delay, Jitter time.Duration
	// QueueDelay bounds the drop-tail queue by the time it takes to drain
	// (QueueBytes by its size; 0: unset).
	QueueDelay time.Duration
	QueueBytes int
	// Burst, when set, is Gilbert–Elliott bursty loss.
	Burst *Burst
}

// Burst is two-state Gilbert–Elliott loss: a good and a bad state with the
// per-packet transition probabilities and the loss rate in the bad state.
type Burst struct {
	PGoodToBad, PBadToGood, LossBad float64
}

// MeanMbps is the direction's mean capacity in Mbit/s.
func (d Direction) MeanMbps() float64 {
	if len(d.Rates) == 0 {
		return d.Mbps
	}
	var s float64
	for _, r := range d.Rates {
		s += r
	}
	return s / float64(len(d.Rates))
}

// Provenance says where a profile's numbers come from.
type Provenance string

const (
	// Measured profiles replay a recorded trace.
	Measured Provenance = "measured"
	// Synthesised profiles are built from published averages; their time
	// variation (if any) is generated, not recorded.
	Synthesised Provenance = "synthesised"
)

// Profile is a named pair of directions and the radio that drives them.
type Profile struct {
	Name, Description, Source string
	Provenance                Provenance
	Up, Down                  Direction
	// Radio is the device radio's power on this access technology (the
	// scheduler's energy model reads it from here, the one source).
	Radio Radio
}

// Radio is a device radio's power by the model of Huang et al., "A close
// examination of performance and power characteristics of 4G LTE
// networks" (MobiSys 2012): sending at u Mbit/s it draws UpAlphaMW·u +
// BetaMW milliwatts, receiving at d Mbit/s DownAlphaMW·d + BetaMW; once a
// transfer ends it stays in its connected state at TailMW for Tail (the RRC
// inactivity tail, or Wi-Fi's power-save timeout) before it drops to idle.
// The zero value is a wired link: no radio energy.
type Radio struct {
	Technology                     string // "3g", "lte", "5g-nsa", "wifi"; "" wired
	UpAlphaMW, DownAlphaMW, BetaMW float64
	TailMW                         float64
	Tail                           time.Duration
	Source                         string
}

// The radios of the profiles. Huang et al. (MobiSys 2012) measured all
// three of 3G, LTE and Wi-Fi on one phone with one method: Table 3 (RRC
// promotion and tail power and time) and Table 4 (α_u, α_d, β of the
// throughput–power model). The 5G profiles are non-standalone deployments:
// the phone keeps its LTE anchor's RRC connection and tail (Narayanan et al.,
// "A variegated look at 5G in the wild", SIGCOMM 2021, measured NSA tails
// and per-throughput power on commercial phones); no per-Mbit/s coefficients
// for 5G were verifiable from here, so the LTE ones are used and marked
// assumed.
var (
	radio3G = Radio{Technology: "3g", UpAlphaMW: 868.98, DownAlphaMW: 122.12, BetaMW: 817.88, TailMW: 803.9, Tail: 8088200 * time.Microsecond,
		Source: "Huang et al., MobiSys 2012, Tables 3–4 (3G: α_u 868.98, α_d 122.12 mW per Mbit/s, β 817.88 mW; tail 803.9 mW for 8.09 s)"}
	radioLTE = Radio{Technology: "lte", UpAlphaMW: 438.39, DownAlphaMW: 51.97, BetaMW: 1288.04, TailMW: 1060, Tail: 11576 * time.Millisecond,
		Source: "Huang et al., MobiSys 2012, Tables 3–4 (LTE: α_u 438.39, α_d 51.97 mW per Mbit/s, β 1288.04 mW; tail 1060 mW for 11.58 s)"}
	radio5G = Radio{Technology: "5g-nsa", UpAlphaMW: 438.39, DownAlphaMW: 51.97, BetaMW: 1288.04, TailMW: 1060, Tail: 11576 * time.Millisecond,
		Source: "assumed: NSA 5G keeps the LTE anchor's RRC tail (Narayanan et al., SIGCOMM 2021); LTE coefficients of Huang et al., MobiSys 2012"}
	radioWiFi = Radio{Technology: "wifi", UpAlphaMW: 283.17, DownAlphaMW: 137.01, BetaMW: 132.86, TailMW: 119.3, Tail: 238100 * time.Microsecond,
		Source: "Huang et al., MobiSys 2012, Tables 3–4 (Wi-Fi: α_u 283.17, α_d 137.01 mW per Mbit/s, β 132.86 mW; tail 119.3 mW for 238 ms)"}
)

// All returns the profiles sorted by name; each call builds fresh values
// (the 5g-mmwave series are generated deterministically).
func All() []Profile {
	ms := time.Millisecond
	wifiLoss := &Burst{PGoodToBad: 0.0005, PBadToGood: 0.3, LossBad: 0.5}
	ps := []Profile{
		{
			Name:        "3g",
			Description: "HSPA-class 3G: 1.1 Mbit/s up, 2 Mbit/s down, 100 ms RTT, deep buffer",
			Source:      "Kang et al., Neurosurgeon (ASPLOS 2017), measured 3G uplink 1.1 Mbit/s; downlink and RTT are typical HSPA values",
			Provenance:  Synthesised,
			Up:          Direction{Mbps: 1.1, Delay: 50 * ms, Jitter: 5 * ms, QueueDelay: 400 * ms},
			Down:        Direction{Mbps: 2, Delay: 50 * ms, Jitter: 5 * ms, QueueDelay: 400 * ms},
			Radio:       radio3G,
		},
		{
			Name:        "lte",
			Description: "US-average LTE: 6.3 Mbit/s up, 30 Mbit/s down, 55 ms RTT",
			Source:      "Opensignal, State of Mobile Networks: USA (2019): LTE upload ≈ 6.3 Mbit/s, latency 44–66 ms; Neurosurgeon measured LTE uplink 5.85 Mbit/s",
			Provenance:  Synthesised,
			Up:          Direction{Mbps: 6.3, Delay: 27500 * time.Microsecond, Jitter: 3 * ms, QueueDelay: 150 * ms},
			Down:        Direction{Mbps: 30, Delay: 27500 * time.Microsecond, Jitter: 3 * ms, QueueDelay: 150 * ms},
			Radio:       radioLTE,
		},
		{
			Name:        "5g-lowband",
			Description: "5G low-band (600–850 MHz, NSA): 9 Mbit/s up, 60 Mbit/s down, 40 ms RTT",
			Source:      "Opensignal, 5G User Experience Report: USA (2021): 5G uploads ≈ 9–16 Mbit/s; low-band at the low end",
			Provenance:  Synthesised,
			Up:          Direction{Mbps: 9, Delay: 20 * ms, Jitter: 2 * ms, QueueDelay: 100 * ms},
			Down:        Direction{Mbps: 60, Delay: 20 * ms, Jitter: 2 * ms, QueueDelay: 100 * ms},
			Radio:       radio5G,
		},
		{
			Name:        "5g-midband",
			Description: "5G mid-band (C-band / 2.5 GHz): 16 Mbit/s up, 200 Mbit/s down, 30 ms RTT",
			Source:      "Opensignal, 5G User Experience Report: USA (2021): 5G uploads ≈ 9–16 Mbit/s (mid-band at the high end); downlink typical of mid-band deployments",
			Provenance:  Synthesised,
			Up:          Direction{Mbps: 16, Delay: 15 * ms, Jitter: 2 * ms, QueueDelay: 100 * ms},
			Down:        Direction{Mbps: 200, Delay: 15 * ms, Jitter: 2 * ms, QueueDelay: 100 * ms},
			Radio:       radio5G,
		},
		{
			Name:        "5g-mmwave",
			Description: "5G mmWave (28/39 GHz): ≈ 700 Mbit/s mean down, erratic 10–80 Mbit/s up, 20 ms RTT, blockage outages (rate 0 for 0.2–0.8 s every 3–8 s)",
			Source:      "Opensignal mmWave reports (2020–2021): mean mmWave download ≈ 700 Mbit/s, uploads erratic; blockage behaviour after Narayanan et al., Lumos5G / 'A first look at commercial 5G performance' (IMC 2020). Trace generated, 100 ms steps, 20 s loop, seed fixed",
			Provenance:  Synthesised,
			Up:          Direction{Rates: mmwaveRates(false), Step: 100 * ms, Delay: 10 * ms, QueueDelay: 100 * ms},
			Down:        Direction{Rates: mmwaveRates(true), Step: 100 * ms, Delay: 10 * ms, QueueDelay: 50 * ms},
			Radio:       radio5G,
		},
		{
			Name:        "wifi",
			Description: "Home/office Wi-Fi: 18.9 Mbit/s up, 50 Mbit/s down, 10 ms RTT, light bursty loss",
			Source:      "Kang et al., Neurosurgeon (ASPLOS 2017), measured Wi-Fi uplink 18.9 Mbit/s; downlink, RTT and loss are typical values",
			Provenance:  Synthesised,
			Up:          Direction{Mbps: 18.9, Delay: 5 * ms, Jitter: 2 * ms, QueueDelay: 100 * ms, Burst: wifiLoss},
			Down:        Direction{Mbps: 50, Delay: 5 * ms, Jitter: 2 * ms, QueueDelay: 100 * ms, Burst: wifiLoss},
			Radio:       radioWiFi,
		},
		{
			Name:        "ethernet",
			Description: "Gigabit Ethernet LAN: 1000 Mbit/s each way, 0.5 ms RTT",
			Source:      "IEEE 802.3ab line rate; LAN RTT typical",
			Provenance:  Synthesised,
			Up:          Direction{Mbps: 1000, Delay: 250 * time.Microsecond, QueueBytes: 1 << 20},
			Down:        Direction{Mbps: 1000, Delay: 250 * time.Microsecond, QueueBytes: 1 << 20},
		},
	}
	slices.SortFunc(ps, func(a, b Profile) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return ps
}

// Names returns the profile names, sorted.
func Names() []string {
	var n []string
	for _, p := range All() {
		n = append(n, p.Name)
	}
	return n
}

// Lookup returns the profile with that name.
func Lookup(name string) (Profile, bool) {
	for _, p := range All() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// mmwaveRates generates a 20 s mmWave capacity series in 100 ms steps: a
// bounded random walk around the mean, with blockage outages (rate 0) at
// the same instants in both directions.
func mmwaveRates(down bool) []float64 {
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
	stream := uint64(1)
	if !down {
		mean, lo, hi, stream = 40, 10, 80, 2
	}
	r := mean
	wr := rand.New(rand.NewPCG(5, stream))
	for i := range rates {
		r += (mean-r)*0.2 + (wr.Float64()*2-1)*(hi-lo)*0.15
		r = min(max(r, lo), hi)
		if blocked[i] {
			rates[i] = 0
		} else {
			rates[i] = r
		}
	}
	return rates
}
