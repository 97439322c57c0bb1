package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// Model is what the simulator needs of a model: its profile on a reference
// device (the cloud's slowdown 1 and the edge's slowdown scale it) and its
// tensor DAG (nil: a chain).
type Model struct {
	Profile *partition.Profile
	DAG     *scheduler.DAG

	codecs []scheduler.CodecModel // the scenario's codecs, calibrated for this model
}

// ModelFile is the JSON form of a Model (a scenario's models[].profile).
type ModelFile struct {
	Profile partition.Profile `json:"profile"`
	DAG     *scheduler.DAG    `json:"dag,omitempty"`
}

// maxModelBytes bounds a model file.
const maxModelBytes = 64 << 20

// ReadModel reads a ModelFile and checks it.
func ReadModel(r io.Reader) (Model, error) {
	var f ModelFile
	dec := json.NewDecoder(io.LimitReader(r, maxModelBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Model{}, fmt.Errorf("model file: %w", err)
	}
	m := Model{Profile: &f.Profile, DAG: f.DAG}
	return m, m.check()
}

// WriteModel writes m as a ModelFile.
func WriteModel(w io.Writer, m Model) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(ModelFile{Profile: *m.Profile, DAG: m.DAG})
}

func (m Model) check() error {
	if m.Profile == nil || len(m.Profile.Nodes) == 0 {
		return fmt.Errorf("model: profile has no nodes")
	}
	in := scheduler.Inputs{Edge: m.Profile, DAG: m.DAG}
	if err := in.Validate(); err != nil {
		return err
	}
	if m.DAG != nil {
		return m.DAG.Validate()
	}
	return nil
}

// SyntheticModels lists the names SyntheticModel knows: the zoo's
// (zoo.Names), sorted.
func SyntheticModels() []string { return zoo.Names() }

// isSynthetic reports whether name is one of SyntheticModels.
func isSynthetic(name string) bool { return slices.Contains(zoo.Names(), name) }

// SyntheticModel returns the zoo model name (one of SyntheticModels) as the
// simulator sees it without measuring anything: the static profile of its
// real graph (zoo.Skeleton: the nodes, bytes, MACs and cuts the engine
// runs) with latencies of partition's analytic reference device
// (partition.Analytic), and its tensor DAG (scheduler.NewDAG). For tests
// and for scenarios run before the real profiles exist. Each call returns
// a fresh copy. An unknown name wraps zoo.ErrUnknownModel.
func SyntheticModel(name string) (Model, error) {
	g, err := zoo.Skeleton(name)
	if err != nil {
		return Model{}, fmt.Errorf("sim: synthetic model: %w", err)
	}
	p, err := partition.Analytic(g)
	if err != nil {
		return Model{}, fmt.Errorf("sim: synthetic model %s: %w", name, err)
	}
	d, err := scheduler.NewDAG(g, p)
	if err != nil {
		return Model{}, fmt.Errorf("sim: synthetic model %s: %w", name, err)
	}
	return Model{Profile: p, DAG: d}, nil
}

// scaled returns p with every latency multiplied by f.
func scaled(p *partition.Profile, f float64, device string) *partition.Profile {
	q := *p
	q.Device = device
	q.Nodes = make([]partition.NodeProfile, len(p.Nodes))
	for i, n := range p.Nodes {
		n.Latency = time.Duration(float64(n.Latency) * f)
		q.Nodes[i] = n
	}
	return &q
}
