package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"gorgonia.org/tensor"
)

// MeasureProfile profiles m on this machine (median of runs per node) and
// stretches every latency by the device's slowdown: the profile the device
// would have.
func MeasureProfile(ctx context.Context, m *Model, dev Device, runs int) (*partition.Profile, error) {
	p, err := partition.MeasureSynthetic(ctx, m.Graph, partition.ProfileConfig{Runs: runs, Device: dev.Name})
	if err != nil {
		return nil, fmt.Errorf("node: profile model %s: %w", m.ID, err)
	}
	p.Model = m.ID
	if dev.Slowdown > 1 {
		for i := range p.Nodes {
			p.Nodes[i].Latency = time.Duration(float64(p.Nodes[i].Latency) * dev.Slowdown)
		}
	}
	return p, nil
}

// deviceLatency is the device's profiled latency of model m's node set idx,
// or 0 when the node holds no profile of m.
func (n *Node) deviceLatency(m *Model, idx []int) time.Duration {
	p := n.profileOf(m)
	if p == nil || len(p.Nodes) != m.Nodes() {
		return 0
	}
	var d time.Duration
	for _, i := range idx {
		d += p.Nodes[i].Latency
	}
	return d
}

// profileDigest is the short hash of a node's profiles that it gossips, so
// edges refetch a profile only when it changed.
func profileDigest(ps map[string]*partition.Profile) string {
	ids := make([]string, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		b, _ := json.Marshal(ps[id])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// MeasureCodecs measures each named preset's (default: all) ratio and speed
// on a synthetic post-ReLU activation, for the scheduler's codec cost, and
// states what each guarantees (its Fidelity). A model's calibration table,
// measured on real inputs, replaces these figures where it has them.
func MeasureCodecs(ctx context.Context, names []string) ([]scheduler.CodecModel, error) {
	presets := tensorcodec.Presets()
	if len(names) > 0 {
		presets = presets[:0:0]
		for _, name := range names {
			p, err := tensorcodec.ParsePreset(name)
			if err != nil {
				return nil, fmt.Errorf("node: %w", err)
			}
			presets = append(presets, p)
		}
	}
	act := tensorcodec.SyntheticActivation(1, 32, 28, 28)
	var out []scheduler.CodecModel
	for _, p := range presets {
		r, err := tensorcodec.Bench(ctx, p, []*tensor.Dense{act}, tensorcodec.BenchOptions{MinTime: 15 * time.Millisecond})
		if err != nil {
			return nil, fmt.Errorf("node: measure codec %s: %w", p, err)
		}
		out = append(out, scheduler.CodecModel{
			Name: p.String(), Ratio: r.Ratio,
			EncodeBps: r.EncodeMBps * 1e6, DecodeBps: r.DecodeMBps * 1e6,
			MaxRelErr: r.RelRMSE, Fidelity: calib.Fidelity(p),
		})
	}
	return out, nil
}

// Profile returns the node's own profile of the active version of model id.
func (n *Node) Profile(id string) (*partition.Profile, bool) {
	m, ok := n.lookup(id, "")
	if !ok {
		return nil, false
	}
	p := n.profileOf(m)
	return p, p != nil
}

// Codecs returns the codec cost table the node measured at start (speeds and
// ratios on a synthetic activation).
func (n *Node) Codecs() []scheduler.CodecModel { return slices.Clone(n.codecs) }

// CodecTable returns an edge's codec costs for model id with the ratio at
// every prefix cut, as measured at start and learned from the boundaries it
// sent since; nil on clouds.
func (n *Node) CodecTable(id string) []scheduler.CodecModel {
	if n.edge == nil {
		return nil
	}
	m, ok := n.lookup(id, "")
	if !ok {
		return nil
	}
	if st := n.state(m); st != nil && st.table != nil {
		return st.table.snapshot()
	}
	return nil
}
