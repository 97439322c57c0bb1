package scheduler

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// nFeat is the number of regression features: 1, MACs, Params, InBytes,
// OutBytes.
const nFeat = 5

// Features are what the predictor knows of a node.
type Features struct {
	MACs, Params, InBytes, OutBytes int64
}

func (f Features) vec() [nFeat]float64 {
	return [nFeat]float64{1, float64(f.MACs), float64(f.Params), float64(f.InBytes), float64(f.OutBytes)}
}

// NodeFeatures returns the features of every node of p. Input bytes come
// from d (the tensors each node reads) or, when d is nil, from the previous
// node's output (the graph input for node 0).
func NodeFeatures(p *partition.Profile, d *DAG) []Features {
	fs := make([]Features, len(p.Nodes))
	for i, n := range p.Nodes {
		fs[i] = Features{MACs: n.MACs, Params: n.Params, OutBytes: n.OutBytes}
		if d == nil {
			if i == 0 {
				fs[i].InBytes = p.InputBytes
			} else {
				fs[i].InBytes = p.Nodes[i-1].OutBytes
			}
		}
	}
	if d != nil {
		for _, t := range d.Tensors {
			for _, c := range t.Consumers {
				if c < len(fs) {
					fs[c].InBytes += t.Bytes
				}
			}
		}
	}
	return fs
}

type linModel struct {
	coef  [nFeat]float64
	scale [nFeat]float64
	n     int
}

func (m *linModel) predict(x [nFeat]float64) float64 {
	y := 0.0
	for j := range x {
		y += m.coef[j] * x[j] / m.scale[j]
	}
	return y
}

type sample struct {
	x [nFeat]float64
	y float64 // nanoseconds
}

// fitLin solves ridge-regularised least squares on column-scaled features.
func fitLin(ss []sample) (linModel, error) {
	var m linModel
	m.n = len(ss)
	for j := range m.scale {
		m.scale[j] = 1
	}
	for _, s := range ss {
		for j, v := range s.x {
			m.scale[j] = math.Max(m.scale[j], math.Abs(v))
		}
	}
	var a [nFeat][nFeat + 1]float64
	for _, s := range ss {
		var z [nFeat]float64
		for j := range z {
			z[j] = s.x[j] / m.scale[j]
		}
		for r := 0; r < nFeat; r++ {
			for c := 0; c < nFeat; c++ {
				a[r][c] += z[r] * z[c]
			}
			a[r][nFeat] += z[r] * s.y
		}
	}
	for r := 0; r < nFeat; r++ {
		a[r][r] += 1e-9 * float64(len(ss)+1) // ridge: keeps unused features at 0
	}
	// Gaussian elimination with partial pivoting.
	for c := 0; c < nFeat; c++ {
		p := c
		for r := c + 1; r < nFeat; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		if math.Abs(a[c][c]) < 1e-300 {
			return m, errors.New("scheduler: singular regression")
		}
		for r := 0; r < nFeat; r++ {
			if r == c {
				continue
			}
			f := a[r][c] / a[c][c]
			for k := c; k <= nFeat; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	for j := 0; j < nFeat; j++ {
		m.coef[j] = a[j][nFeat] / a[j][j]
		if math.IsNaN(m.coef[j]) || math.IsInf(m.coef[j], 0) {
			return m, errors.New("scheduler: regression did not converge")
		}
	}
	return m, nil
}

// Predictor is a Neurosurgeon-style latency model of one device class: per
// operator type, latency = c0 + c1·MACs + c2·Params + c3·InBytes +
// c4·OutBytes, fitted by least squares on measured profiles, with one model
// over all operators for types seen fewer than MinSamples times. Add
// profiles, call Fit, then Predict (Predict is safe for concurrent use after
// Fit; Add and Fit are not).
type Predictor struct {
	// Device is the device class the profiles were measured on; Predict
	// stamps it on the profiles it makes.
	Device string
	// MinSamples is the fewest nodes of one operator type that get their own
	// model; default 2·5 = 10.
	MinSamples int

	samples map[string][]sample
	perOp   map[string]linModel
	global  linModel
	fitted  bool
}

// Add records the measured nodes of p (its DAG d may be nil). Every profile
// must come from the predictor's device class.
func (pr *Predictor) Add(p *partition.Profile, d *DAG) error {
	if p == nil {
		return errors.New("scheduler: predictor: nil profile")
	}
	if pr.Device != "" && p.Device != "" && p.Device != pr.Device {
		return fmt.Errorf("scheduler: predictor for %q given a profile of %q", pr.Device, p.Device)
	}
	if pr.samples == nil {
		pr.samples = make(map[string][]sample)
	}
	fs := NodeFeatures(p, d)
	for i, n := range p.Nodes {
		if n.Latency < 0 {
			return fmt.Errorf("scheduler: predictor: node %d %q has negative latency", i, n.Name)
		}
		pr.samples[n.Op] = append(pr.samples[n.Op], sample{fs[i].vec(), float64(n.Latency)})
	}
	pr.fitted = false
	return nil
}

// Fit fits the models. It fails when no samples were added.
func (pr *Predictor) Fit() error {
	if len(pr.samples) == 0 {
		return errors.New("scheduler: predictor: no measured nodes to fit")
	}
	minN := pr.MinSamples
	if minN <= 0 {
		minN = 2 * nFeat
	}
	ops := make([]string, 0, len(pr.samples))
	for op := range pr.samples {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var all []sample
	pr.perOp = make(map[string]linModel)
	for _, op := range ops {
		ss := pr.samples[op]
		all = append(all, ss...)
		if len(ss) >= minN {
			m, err := fitLin(ss)
			if err != nil {
				return fmt.Errorf("%w (operator %s)", err, op)
			}
			pr.perOp[op] = m
		}
	}
	g, err := fitLin(all)
	if err != nil {
		return err
	}
	pr.global, pr.fitted = g, true
	return nil
}

// PredictNode predicts the latency of one node of type op (never negative).
func (pr *Predictor) PredictNode(op string, f Features) time.Duration {
	m, ok := pr.perOp[op]
	if !ok {
		m = pr.global
	}
	return durOf(m.predict(f.vec()) / 1e9)
}

// Predict returns a copy of p (nodes, cuts and sizes shared by value) with
// every latency predicted for the predictor's device. d may be nil.
func (pr *Predictor) Predict(p *partition.Profile, d *DAG) (*partition.Profile, error) {
	if !pr.fitted {
		return nil, errors.New("scheduler: predictor: Predict before Fit")
	}
	if p == nil {
		return nil, errors.New("scheduler: predictor: nil profile")
	}
	q := *p
	q.Device = pr.Device
	q.Nodes = make([]partition.NodeProfile, len(p.Nodes))
	fs := NodeFeatures(p, d)
	for i, n := range p.Nodes {
		n.Latency = pr.PredictNode(n.Op, fs[i])
		q.Nodes[i] = n
	}
	return &q, nil
}
