package node

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Device is an emulated compute device: a node runs its kernels natively and
// then waits until each piece has taken as long as the device's profile says
// (this machine's per-node medians × Slowdown).
// It lets one machine stand in for a phone and a server at once.
type Device struct {
	Name     string
	Slowdown float64 // ≥ 1; 1 = this machine's speed
	Note     string  // where the factor comes from
}

// devices lists the built-in device profiles. The factors are single-thread
// CNN inference time relative to one core of a current x86 server (the
// reference machine edgesplit is developed on, ≈ 30–60 GFLOP/s per core on
// SGEMM). They are synthesised from published per-core figures, not measured
// on the devices themselves; docs/architecture.md ("Device emulation") gives
// the reasoning. Override with an explicit factor (--device slowdown:F).
var devices = []Device{
	{Name: "server", Slowdown: 1, Note: "the reference machine itself"},
	{Name: "laptop", Slowdown: 1.5, Note: "mobile x86 core, lower clocks and narrower SIMD than a server core"},
	{Name: "jetson-nano", Slowdown: 6, Note: "Cortex-A57 @1.43 GHz, 128-bit NEON: ~1/6 of a server core's FMA rate (CPU path, GPU unused)"},
	{Name: "raspberry-pi-4", Slowdown: 8, Note: "Cortex-A72 @1.5 GHz, 128-bit NEON, small caches: ~1/8 of a server core on CNN kernels"},
	{Name: "phone", Slowdown: 3, Note: "2020s flagship big core (Cortex-X class) on CPU inference"},
	{Name: "mcu-class", Slowdown: 40, Note: "low-end single-board device; pessimistic bound for sweeps"},
}

// Devices returns the built-in device profiles, sorted by slowdown.
func Devices() []Device {
	out := slices.Clone(devices)
	slices.SortFunc(out, func(a, b Device) int {
		switch {
		case a.Slowdown < b.Slowdown:
			return -1
		case a.Slowdown > b.Slowdown:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// ParseDevice resolves a device profile name, or "slowdown:F" for an explicit
// factor F ≥ 1. The empty string is "server".
func ParseDevice(s string) (Device, error) {
	if s == "" {
		s = "server"
	}
	if f, ok := strings.CutPrefix(s, "slowdown:"); ok {
		var x float64
		if _, err := fmt.Sscan(f, &x); err != nil || x < 1 || x > 1000 {
			return Device{}, fmt.Errorf("node: device %q: slowdown must be a number in [1, 1000]", s)
		}
		return Device{Name: s, Slowdown: x, Note: "explicit factor"}, nil
	}
	for _, d := range devices {
		if d.Name == s {
			return d, nil
		}
	}
	names := make([]string, len(devices))
	for i, d := range devices {
		names[i] = d.Name
	}
	return Device{}, fmt.Errorf("node: unknown device %q (known: %s, or slowdown:F)", s, strings.Join(names, ", "))
}

// Emulate waits so that work that has taken elapsed natively takes as long
// as it would on the emulated device: profiled, the device's own profile of
// the same nodes (native per-node medians × Slowdown, see MeasureProfile),
// or Slowdown × elapsed when no profile is known (profiled ≤ 0).
//
// Anchoring the wait to the profile rather than to this run's native time is
// what makes the device behave like a device: a real Raspberry Pi is not
// slowed down by other processes on the machine that emulates it, whereas
// stretching each run's own time multiplies every hiccup of the shared host by
// Slowdown (a 2 ms preemption became 16 ms on a Pi 4). The host still shows
// through when a run natively takes longer than the device would, since the
// emulation never finishes early.
//
// It returns early with ctx's error if ctx ends. Go timers wake up to a
// millisecond late, which would dwarf the sub-millisecond layers of a small
// model, so the last millisecond is spun out (the emulated device would be
// busy computing then anyway).
func (d Device) Emulate(ctx context.Context, elapsed, profiled time.Duration) error {
	if d.Slowdown <= 1 || elapsed <= 0 {
		return nil
	}
	target := profiled
	if target <= 0 {
		target = time.Duration(float64(elapsed) * d.Slowdown)
	}
	extra := target - elapsed
	if extra <= 0 {
		return nil
	}
	deadline := time.Now().Add(extra)
	if sleep := extra - spinSlack; sleep > 0 {
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.Gosched()
	}
	return nil
}

// spinSlack is how much of an Emulate wait is spun instead of slept.
const spinSlack = time.Millisecond
