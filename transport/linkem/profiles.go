package linkem

import (
	"fmt"
	"strings"

	"github.com/edgesplit/edgesplit/internal/linkprofile"
)

// Provenance says where a profile's numbers come from.
type Provenance = linkprofile.Provenance

const (
	// Measured profiles replay a recorded trace.
	Measured = linkprofile.Measured
	// Synthesised profiles are built from published averages; their
	// time variation (if any) is generated, not recorded.
	Synthesised = linkprofile.Synthesised
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

// Profiles returns the built-in profiles (the table of internal/linkprofile,
// which the simulator shares), sorted by name. Each call builds fresh values
// (the 5g-mmwave traces are generated deterministically).
func Profiles() []Profile {
	var ps []Profile
	for _, p := range linkprofile.All() {
		ps = append(ps, Profile{Name: p.Name, Description: p.Description, Source: p.Source, Provenance: p.Provenance,
			Up: settingsOf(p.Name, p.Up), Down: settingsOf(p.Name, p.Down)})
	}
	return ps
}

// settingsOf turns a table direction into link settings.
func settingsOf(name string, d linkprofile.Direction) LinkSettings {
	s := LinkSettings{Rate: Mbps(d.Mbps), Delay: d.Delay, Jitter: d.Jitter, QueueDelay: d.QueueDelay, QueueBytes: d.QueueBytes}
	if d.Burst != nil {
		s.Burst = &GilbertElliott{PGoodToBad: d.Burst.PGoodToBad, PBadToGood: d.Burst.PBadToGood, LossBad: d.Burst.LossBad}
	}
	if len(d.Rates) > 0 {
		t, err := TraceFromRates(d.Rates, d.Step)
		if err != nil {
			panic("linkem: built-in profile " + name + ": " + err.Error()) // cannot happen: a fixed table, tested
		}
		s.Rate, s.Trace = 0, t
	}
	return s
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
