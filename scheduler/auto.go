package scheduler

import "sync"

// AutoConfig configures Auto.
type AutoConfig struct {
	// Threshold is the fraction by which a new plan must beat the current
	// one (both predicted under the latest inputs) to count towards a
	// switch. Default 0.10; 0 means any improvement.
	Threshold float64
	// Consecutive is how many decisions in a row the new plan must win
	// before Auto switches. Default 3; 1 switches at once.
	Consecutive int
	// Urgent switches at once, without waiting for Consecutive, when the
	// best plan is more than Urgent times faster than the current one (a
	// link collapse, a cloud overloaded). Default 2; below 1 disables it.
	Urgent float64
	// Label names the policy in plans; default "auto".
	Label string
}

// DefaultAutoConfig is 10 % better for 3 consecutive decisions, or 2×
// better at once.
func DefaultAutoConfig() AutoConfig {
	return AutoConfig{Threshold: 0.10, Consecutive: 3, Urgent: 2, Label: "auto"}
}

// Auto takes the best of edge-only, cloud-only, neurosurgeon and dads (codec
// and cloud chosen jointly) and adds hysteresis: it keeps its current plan
// unless a better one wins by more than Threshold for Consecutive decisions
// in a row, or by more than Urgent times at once, or the current plan became
// impossible (its cloud is unavailable
// or gone, its codec no longer offered). It is safe for concurrent use; one
// Auto holds the state of one decision stream (one edge node and model).
type Auto struct {
	cfg  AutoConfig
	dads DADS

	mu      sync.Mutex
	current Plan
	has     bool
	streak  int
}

// NewAuto returns an Auto with cfg, zero fields given their defaults
// (Threshold 0 is kept: it means "any improvement"; Urgent 0 becomes 2).
func NewAuto(cfg AutoConfig) *Auto {
	if cfg.Consecutive <= 0 {
		cfg.Consecutive = 3
	}
	if cfg.Threshold < 0 {
		cfg.Threshold = 0
	}
	if cfg.Label == "" {
		cfg.Label = "auto"
	}
	if cfg.Urgent == 0 {
		cfg.Urgent = 2
	}
	return &Auto{cfg: cfg}
}

// Name implements Policy.
func (a *Auto) Name() string { return a.cfg.Label }

// Best returns the best plan for in, without hysteresis and without
// changing a's state.
func (a *Auto) Best(in *Inputs) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	// dads is exact over every edge/cloud split of the DAG, which includes
	// edge-only, cloud-only and every single-tensor cut; neurosurgeon is
	// taken too so that a tie goes to the simpler single-tensor plan.
	p, err := a.dads.plan(in, a.cfg.Label)
	if err != nil {
		return Plan{}, err
	}
	ns, _ := in.bestPrefix(a.cfg.Label, func(k int) bool {
		return k == 0 || k == len(in.Edge.Nodes) || len(in.Edge.Cuts[k].Boundary) <= 1
	})
	if !in.planCheaper(p, ns) {
		p = ns
	}
	return p, nil
}

// Plan implements Policy.
func (a *Auto) Plan(in *Inputs) (Plan, error) {
	best, err := a.Best(in)
	if err != nil {
		return Plan{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.decideLocked(in, best), nil
}

func (a *Auto) decideLocked(in *Inputs, best Plan) Plan {
	if !a.has {
		a.adoptLocked(best)
		return best
	}
	cur, err := in.Evaluate(a.current)
	if err != nil {
		// The current plan is impossible now (its cloud is gone or
		// unavailable, or its codec is no longer offered): switch at once.
		a.adoptLocked(best)
		return best
	}
	a.current = cur
	// Plans compare by the inputs' objective (latency: the predicted
	// totals, as float64 nanoseconds).
	bs, cs := in.Score(best), in.Score(cur)
	if samePlan(best, cur) || !(bs < cs*(1-a.cfg.Threshold)) {
		a.streak = 0
		return cur
	}
	a.streak++
	urgent := a.cfg.Urgent >= 1 && bs*a.cfg.Urgent < cs
	if a.streak >= a.cfg.Consecutive || urgent {
		a.adoptLocked(best)
		return best
	}
	return cur
}

func (a *Auto) adoptLocked(p Plan) {
	a.current, a.has, a.streak = p, true, 0
}

// Current returns the plan Auto holds and whether it holds one.
func (a *Auto) Current() (Plan, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current, a.has
}

// Reset forgets the current plan; the next decision adopts the best.
func (a *Auto) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.current, a.has, a.streak = Plan{}, false, 0
}

func samePlan(a, b Plan) bool {
	if a.K != b.K || a.Codec != b.Codec || a.Cloud != b.Cloud || len(a.Head) != len(b.Head) {
		return false
	}
	for i := range a.Head {
		if a.Head[i] != b.Head[i] {
			return false
		}
	}
	return true
}
