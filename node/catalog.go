package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// held is what a node keeps for one version of a model it serves: the
// model, its profile on this node's device, its DAG, and on edges the codec
// table and the per-request overhead.
type held struct {
	m        *Model
	profile  *partition.Profile
	dag      *scheduler.DAG
	table    *codecTable       // edges only
	overhead *overheadEstimate // edges only
	loaded   time.Time
}

// maxVersions bounds the versions of one model a node keeps loaded: the
// active one and the one it replaced (a cloud serves both while edges
// move over, and a rollback is instant). Loading another retires the
// oldest inactive one.
const maxVersions = 2

// retireGrace is how long a retired version stays reachable for requests
// that were already running on it.
const retireGrace = 2 * time.Minute

// catalog is the model versions a node serves, which version of each model
// its new requests use (the active one, or the canary's for a share of
// them), and the versions retired but still draining.
type catalog struct {
	mu      sync.RWMutex
	held    map[string]*held // by Model.key()
	active  map[string]*held // by model id
	canary  map[string]*canary
	ids     []string // model ids in load order; ids[0] is the default model
	retired []retiredVersion
	loading map[string]*held // being measured by load, not served yet
}

type retiredVersion struct {
	h  *held
	at time.Time
}

func newCatalog() catalog {
	return catalog{held: make(map[string]*held), active: make(map[string]*held), canary: make(map[string]*canary),
		loading: make(map[string]*held)}
}

// key names one version of a model.
func (m *Model) key() string { return m.ID + "@" + m.Version }

// state returns what the node keeps for model version m (nil if it never
// loaded it or retired it long ago).
func (n *Node) state(m *Model) *held {
	n.cat.mu.RLock()
	defer n.cat.mu.RUnlock()
	if h := n.cat.held[m.key()]; h != nil && h.m == m {
		return h
	}
	if h := n.cat.loading[m.key()]; h != nil && h.m == m {
		return h
	}
	for _, r := range n.cat.retired {
		if r.h.m == m {
			return r.h
		}
	}
	return nil
}

// profileOf is the node's own profile of m (nil if it does not hold m).
func (n *Node) profileOf(m *Model) *partition.Profile {
	if h := n.state(m); h != nil {
		return h.profile
	}
	return nil
}

// lookup returns the model version a peer asks for: version "" means the
// active one.
func (n *Node) lookup(id, version string) (*Model, bool) {
	n.cat.mu.RLock()
	defer n.cat.mu.RUnlock()
	if version == "" {
		h := n.cat.active[id]
		if h == nil {
			return nil, false
		}
		return h.m, true
	}
	h := n.cat.held[id+"@"+version]
	if h == nil {
		return nil, false
	}
	return h.m, true
}

// heldModels returns every model version the node serves, in load order.
func (n *Node) heldModels() []*Model {
	n.cat.mu.RLock()
	defer n.cat.mu.RUnlock()
	return n.heldModelsLocked()
}

func (n *Node) heldModelsLocked() []*Model {
	var out []*Model
	for _, h := range n.cat.held {
		out = append(out, h.m)
	}
	slices.SortFunc(out, func(a, b *Model) int {
		ia, ib := slices.Index(n.cat.ids, a.ID), slices.Index(n.cat.ids, b.ID)
		if ia != ib {
			return ia - ib
		}
		return n.cat.held[a.key()].loaded.Compare(n.cat.held[b.key()].loaded)
	})
	return out
}

// activeModels returns the active version of every model, default first.
func (n *Node) activeModels() []*Model {
	n.cat.mu.RLock()
	defer n.cat.mu.RUnlock()
	out := make([]*Model, 0, len(n.cat.ids))
	for _, id := range n.cat.ids {
		if h := n.cat.active[id]; h != nil {
			out = append(out, h.m)
		}
	}
	return out
}

// load measures what the node needs to serve m (its profile here and, on
// edges, the codec table and per-request overhead) and adds it to the
// catalog; activate makes it the version new requests use. Loading a
// version already held only activates it (when asked).
func (n *Node) load(ctx context.Context, m *Model, activate bool) error {
	if h := n.stateByKey(m.key()); h != nil {
		if activate {
			n.activate(h)
		}
		return nil
	}
	if m.Calibration != nil {
		if err := m.SetCalibration(m.Calibration); err != nil {
			return err
		}
	}
	p, err := MeasureProfile(ctx, m, n.cfg.Device, n.cfg.ProfileRuns)
	if err != nil {
		return err
	}
	dag, err := scheduler.NewDAG(m.Graph, p)
	if err != nil {
		return fmt.Errorf("node: model %s: %w", m.ID, err)
	}
	h := &held{m: m, profile: p, dag: dag, loaded: time.Now()}
	n.cat.mu.Lock()
	n.cat.loading[m.key()] = h
	n.cat.mu.Unlock()
	defer func() {
		n.cat.mu.Lock()
		delete(n.cat.loading, m.key())
		n.cat.mu.Unlock()
	}()
	if n.cfg.Role == RoleEdge {
		if h.table, err = newCodecTable(ctx, m, n.codecs); err != nil {
			return fmt.Errorf("node: codec ratios of model %s: %w", m.ID, err)
		}
		h.overhead = &overheadEstimate{}
		if err := n.calibrateOverhead(ctx, m, h.overhead); err != nil {
			return fmt.Errorf("node: calibrate model %s: %w", m.ID, err)
		}
	}
	if m.Calibration != nil {
		n.calib.mu.Lock()
		n.calib.tables[m.key()] = m.Calibration
		n.calib.mu.Unlock()
	}
	n.cat.mu.Lock()
	if _, ok := n.cat.held[m.key()]; ok { // loaded meanwhile by another call
		n.cat.mu.Unlock()
		if activate {
			n.activate(n.stateByKey(m.key()))
		}
		return nil
	}
	n.cat.held[m.key()] = h
	if !slices.Contains(n.cat.ids, m.ID) {
		n.cat.ids = append(n.cat.ids, m.ID)
	}
	if activate || n.cat.active[m.ID] == nil {
		n.cat.active[m.ID] = h
	}
	n.retireLocked(m.ID, time.Now())
	n.cat.mu.Unlock()
	return nil
}

func (n *Node) stateByKey(key string) *held {
	n.cat.mu.RLock()
	defer n.cat.mu.RUnlock()
	return n.cat.held[key]
}

// activate makes h the version of its model that new requests use.
func (n *Node) activate(h *held) {
	n.cat.mu.Lock()
	n.cat.active[h.m.ID] = h
	n.cat.mu.Unlock()
}

// retireLocked keeps at most maxVersions versions of model id loaded: the
// oldest inactive (and not in canary) ones leave the catalog and stay
// reachable for requests in flight for retireGrace.
func (n *Node) retireLocked(id string, now time.Time) {
	n.cat.retired = slices.DeleteFunc(n.cat.retired, func(r retiredVersion) bool { return now.Sub(r.at) > retireGrace })
	var vs []*held
	for _, h := range n.cat.held {
		if h.m.ID == id {
			vs = append(vs, h)
		}
	}
	slices.SortFunc(vs, func(a, b *held) int { return a.loaded.Compare(b.loaded) })
	for len(vs) > maxVersions {
		i := slices.IndexFunc(vs, func(h *held) bool {
			c := n.cat.canary[id]
			return h != n.cat.active[id] && (c == nil || c.next != h)
		})
		if i < 0 {
			return
		}
		h := vs[i]
		delete(n.cat.held, h.m.key())
		n.cat.retired = append(n.cat.retired, retiredVersion{h: h, at: now})
		vs = slices.Delete(vs, i, i+1)
		n.log.Info("model version retired", "model", id, "version", h.m.Version)
	}
}

// modelRefs is the gossiped list of the versions the node serves.
func (n *Node) modelRefs() []ModelRef {
	var refs []ModelRef
	for _, m := range n.heldModels() {
		c := ""
		if t := n.calibrationOf(m); t != nil {
			c = t.Digest()
		}
		refs = append(refs, ModelRef{ID: m.ID, Version: m.Version, Calibration: c})
	}
	return refs
}

// ownProfiles are the node's profiles of every version it serves, by key.
func (n *Node) ownProfiles() map[string]*partition.Profile {
	n.cat.mu.RLock()
	defer n.cat.mu.RUnlock()
	ps := make(map[string]*partition.Profile, len(n.cat.held))
	for k, h := range n.cat.held {
		ps[k] = h.profile
	}
	return ps
}
