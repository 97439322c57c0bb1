package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Quick describes a scenario without a file, for `edgesplit sim --devices
// 1000 --model vgg16 --link 5g-midband --policy auto --duration 10m`.
type Quick struct {
	Devices  int           // default 100
	Model    string        // a zoo name (SyntheticModels), or one Config.Resolve knows; default resnet18
	Link     string        // a LinkProfileNames name; default lte
	Policy   string        // default auto
	Duration time.Duration // default 1m
	Rate     float64       // requests per second per device, Poisson; default 1
	Slowdown float64       // edge device vs the reference core; default 1
	Clouds   int           // servers; default 1
	Workers  int           // per server; default 8
	// CloudSlowdown is the servers' speed vs the reference core; default
	// 0.05 (a server 20× faster than one reference core).
	CloudSlowdown float64
	Seed          uint64
	// Calibration is the model's calibration table file (ModelSpec.
	// Calibration); without one the int8 codec is lossy and uncalibrated,
	// so no plan uses it.
	Calibration string
	// Objective is what the planners minimise (latency, energy or
	// weighted); "" is latency. EnergyWeight prices a joule in seconds for
	// weighted (0: scheduler.DefaultEnergyWeight).
	Objective    string
	EnergyWeight float64
}

// QuickScenario builds and validates the scenario q describes: identical
// devices on their own links of one profile; codecs raw (exact), fast
// (fp16, bounded) and int8 (lossy: planned only where q.Calibration
// certifies it), with the speeds and ratios tensorcodec measured.
func QuickScenario(q Quick) (*Scenario, error) {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if q.Devices == 0 {
		q.Devices = 100
	}
	if q.Model == "" {
		q.Model = "resnet18"
	}
	if q.Link == "" {
		q.Link = "lte"
	}
	if q.Duration == 0 {
		q.Duration = time.Minute
	}
	if q.Clouds == 0 {
		q.Clouds = 1
	}
	if q.Workers == 0 {
		q.Workers = 8
	}
	def(&q.Rate, 1)
	def(&q.Slowdown, 1)
	def(&q.CloudSlowdown, 0.05)
	m := ModelSpec{Name: q.Model, Calibration: q.Calibration}
	if isSynthetic(q.Model) {
		m.Synthetic = q.Model
	}
	s := &Scenario{
		Name: fmt.Sprintf("quick-%s-%s-%d", q.Model, q.Link, q.Devices), Seed: q.Seed, Duration: Duration(q.Duration), Policy: q.Policy,
		Objective: q.Objective, EnergyWeight: q.EnergyWeight,
		Codecs: []CodecSpec{{Name: "raw", Ratio: 1}, {Name: "fast", Ratio: 2, EncodeMBps: 565, DecodeMBps: 1059, MaxRelErr: 0.0005},
			{Name: "int8", Ratio: 4, EncodeMBps: 1467, DecodeMBps: 14173, MaxRelErr: 0.004}},
		Models: []ModelSpec{m},
		Edges: []EdgeSpec{{Name: "device", Count: q.Devices, Model: q.Model, Slowdown: q.Slowdown, Link: LinkSpec{Profile: q.Link},
			Arrivals: Arrivals{Process: "poisson", Rate: q.Rate}}},
		Backhaul: BackhaulSpec{Delay: Duration(5 * time.Millisecond)},
		Clouds:   []CloudSpec{{Name: "cloud", Count: q.Clouds, Workers: q.Workers, Slowdown: q.CloudSlowdown}},
	}
	if err := s.validate(); err != nil {
		var se *ScenarioError
		if errors.As(err, &se) {
			se.File = "(flags)"
		}
		return nil, err
	}
	return s, nil
}

// RunDir runs s and writes dir/requests.csv (one row per request, see
// CSVHeader) and dir/summary.txt (Summary.Format), creating dir.
func RunDir(ctx context.Context, s *Scenario, dir string, cfg Config) (*Summary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "requests.csv"))
	if err != nil {
		return nil, err
	}
	cfg.CSV = f
	sum, err := Run(ctx, s, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	g, err := os.Create(filepath.Join(dir, "summary.txt"))
	if err != nil {
		return nil, err
	}
	err = sum.Format(g)
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	return sum, err
}
