package linkprofile

import (
	"slices"
	"testing"
)

func TestTable(t *testing.T) {
	ps := All()
	names := Names()
	if !slices.IsSorted(names) || len(names) != len(ps) {
		t.Fatalf("names %v not sorted or not one per profile", names)
	}
	for _, p := range ps {
		if p.Description == "" || p.Source == "" || p.Provenance == "" {
			t.Errorf("%s: description, source and provenance are required", p.Name)
		}
		for dir, d := range map[string]Direction{"up": p.Up, "down": p.Down} {
			if d.MeanMbps() <= 0 || d.Delay <= 0 {
				t.Errorf("%s %s: mean %v Mbit/s, delay %v", p.Name, dir, d.MeanMbps(), d.Delay)
			}
			if (len(d.Rates) > 0) != (d.Step > 0) || (len(d.Rates) > 0 && d.Mbps != 0) {
				t.Errorf("%s %s: a direction has either a fixed rate or a series with its step", p.Name, dir)
			}
		}
		if q, ok := Lookup(p.Name); !ok || q.Name != p.Name {
			t.Errorf("Lookup(%q) = %v, %v", p.Name, q.Name, ok)
		}
	}
	if _, ok := Lookup("no-such-link"); ok {
		t.Error("Lookup found an unknown profile")
	}
	// Deterministic series: two builds agree.
	a, _ := Lookup("5g-mmwave")
	b, _ := Lookup("5g-mmwave")
	if !slices.Equal(a.Up.Rates, b.Up.Rates) || !slices.Equal(a.Down.Rates, b.Down.Rates) {
		t.Error("5g-mmwave series differ between builds")
	}
}
