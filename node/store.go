package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// ErrNoStore is returned by the model operations of a node without a model
// store (Config.Store).
var ErrNoStore = errors.New("node: this node has no model store")

// modelExtras is what a stored version carries after its ONNX bytes (the
// registry's calibration part, so covered by the version's digest): the
// calibration table and the sidecar (preprocessing, labels).
type modelExtras struct {
	Calibration json.RawMessage  `json:"calibration,omitempty"`
	Sidecar     *dataset.Sidecar `json:"sidecar,omitempty"`
}

// PackExtras returns the bytes a model version stores after its ONNX
// bytes: its calibration table c and sidecar sc (nil when both are nil).
func PackExtras(c *scheduler.Calibration, sc *dataset.Sidecar) ([]byte, error) {
	if c == nil && sc == nil {
		return nil, nil
	}
	x := modelExtras{Sidecar: sc}
	if c != nil {
		b, err := c.Marshal()
		if err != nil {
			return nil, fmt.Errorf("node: calibration: %w", err)
		}
		x.Calibration = b
	}
	return json.Marshal(x)
}

// parseModel builds the model version name@v from its stored bytes,
// checking the calibration table is for its weights.
func parseModel(name string, v registry.Version, onnxBytes, extras []byte) (*Model, error) {
	g, err := onnx.Decode(onnxBytes)
	if err != nil {
		return nil, fmt.Errorf("node: model %s@%s: %w", name, v.Short(), err)
	}
	var x modelExtras
	if len(extras) > 0 {
		if err := json.Unmarshal(extras, &x); err != nil {
			return nil, fmt.Errorf("node: model %s@%s: calibration and sidecar: %w", name, v.Short(), err)
		}
	}
	m, err := NewModel(name, v.Short(), g, x.Sidecar)
	if err != nil {
		return nil, err
	}
	if len(x.Calibration) > 0 {
		c, err := scheduler.ReadCalibration(bytes.NewReader(x.Calibration))
		if err != nil {
			return nil, fmt.Errorf("node: model %s@%s: %w", name, v.Short(), err)
		}
		if err := m.SetCalibration(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// storedModel reads and parses a stored version.
func (n *Node) storedModel(name string, v registry.Version) (*Model, error) {
	b, x, err := n.store.Read(name, v)
	if err != nil {
		return nil, err
	}
	return parseModel(name, v, b, x)
}

// startModels lists what the node serves at start: the configured models,
// then per model in the store its active version and the newest other one.
func (n *Node) startModels(static []*Model) ([]*Model, error) {
	out := slices.Clone(static)
	if n.store == nil {
		return out, nil
	}
	byName := map[string][]registry.Entry{}
	var names []string
	for _, e := range n.store.Entries() {
		if byName[e.Name] == nil {
			names = append(names, e.Name)
		}
		byName[e.Name] = append(byName[e.Name], e)
	}
	for _, name := range names {
		es := byName[name] // oldest first
		var pick []registry.Version
		if v, ok := n.store.Active(name); ok {
			pick = append(pick, v)
		}
		for i := len(es) - 1; i >= 0 && len(pick) < maxVersions; i-- {
			if !slices.Contains(pick, es[i].Version) {
				pick = append(pick, es[i].Version)
			}
		}
		for _, v := range pick {
			m, err := n.storedModel(name, v)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(out, func(o *Model) bool { return o.key() == m.key() }) {
				return nil, fmt.Errorf("node: model %s version %s is both configured and in the store", m.ID, m.Version)
			}
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("node: no model to serve: none configured and the store is empty")
	}
	return out, nil
}

// Push stores a version of model name on this node: onnxBytes must decode
// and simplify, and a calibration table c must be for its weights. The
// version is the registry digest of the ONNX bytes with c and sc; it is
// served once rolled out (Rollout) or activated. Pushing bytes already
// stored returns their entry.
func (n *Node) Push(ctx context.Context, name string, onnxBytes []byte, c *scheduler.Calibration, sc *dataset.Sidecar) (registry.Entry, error) {
	if n.store == nil {
		return registry.Entry{}, ErrNoStore
	}
	if !registry.ValidName(name) {
		return registry.Entry{}, fmt.Errorf("node: invalid model name %q (want 1-63 of [A-Za-z0-9._-], starting with a letter or digit)", name)
	}
	extras, err := PackExtras(c, sc)
	if err != nil {
		return registry.Entry{}, err
	}
	if _, err := parseModel(name, registry.Digest(onnxBytes, extras), onnxBytes, extras); err != nil {
		return registry.Entry{}, err
	}
	if err := ctx.Err(); err != nil {
		return registry.Entry{}, err
	}
	e, err := n.store.Put(name, onnxBytes, extras)
	if err != nil {
		return registry.Entry{}, err
	}
	n.log.Info("model version stored", "model", name, "version", e.Version.Short(), "bytes", e.Size())
	return e, nil
}

// ParseVersion resolves a version a user typed (the full 64 hex digits or
// a unique prefix of at least 6) against the versions of model name in the
// node's store.
func (n *Node) ParseVersion(name, s string) (registry.Version, error) {
	if n.store == nil {
		return "", ErrNoStore
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 6 {
		return "", fmt.Errorf("node: version %q: give at least 6 hex digits", s)
	}
	var found []registry.Version
	for _, e := range n.store.Entries() {
		if e.Name == name && strings.HasPrefix(string(e.Version), s) {
			found = append(found, e.Version)
		}
	}
	switch len(found) {
	case 0:
		if registry.Version(s).Valid() {
			return registry.Version(s), nil // not here yet: fetched from a peer
		}
		return "", fmt.Errorf("%w: %s@%s", registry.ErrNotFound, name, s)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("node: version %q of %s is ambiguous (%d stored versions start with it)", s, name, len(found))
}

// chunkPool holds the buffers chunks are read into for a peer.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, registry.ChunkSize); return &b }}

// maxEntryBytes bounds a registry entry's JSON from a peer (a 1 GiB model
// lists 1 024 chunk digests, ≈ 70 KiB).
const maxEntryBytes = 1 << 20

// peerChunks is a peer as a registry.ChunkSource.
type peerChunks struct {
	n *Node
	p Peer
}

func (s peerChunks) Name() string { return s.p.Name }

func (s peerChunks) Chunk(ctx context.Context, name string, v registry.Version, i int) ([]byte, error) {
	resp, err := s.n.callPeer(ctx, s.p, segmentRequest{Op: opModelChunk, Model: name, Version: string(v), Nodes: []int{i}}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// One allocation of the largest chunk (+1 to see a longer one), not
	// ReadAll's doubling.
	b := make([]byte, registry.ChunkSize+1)
	k, err := io.ReadFull(resp.Body, b)
	switch {
	case err == nil:
		return nil, fmt.Errorf("node: chunk %d of %s@%s from %s is over %d bytes", i, name, v.Short(), s.p.Name, registry.ChunkSize)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return b[:k], nil
	}
	return nil, err
}

// entryFrom asks peer p for its entry of name@v and checks it names what
// was asked.
func (n *Node) entryFrom(ctx context.Context, p Peer, name string, v registry.Version) (registry.Entry, error) {
	resp, err := n.callPeer(ctx, p, segmentRequest{Op: opModelEntry, Model: name, Version: string(v)}, nil)
	if err != nil {
		return registry.Entry{}, err
	}
	defer resp.Body.Close()
	var e registry.Entry
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxEntryBytes)).Decode(&e); err != nil {
		return registry.Entry{}, fmt.Errorf("node: entry of %s@%s from %s: %w", name, v.Short(), p.Name, err)
	}
	if e.Name != name || e.Version != v {
		return registry.Entry{}, fmt.Errorf("node: %s answered entry %s@%s for %s@%s", p.Name, e.Name, e.Version.Short(), name, v.Short())
	}
	return e, nil
}

// ensureStored fetches name@v into the store unless it is there: from the
// peer named first (the one asking for it, say) and every live peer that
// gossips the version, in checked chunks.
func (n *Node) ensureStored(ctx context.Context, name string, v registry.Version, first string) error {
	if n.store == nil {
		return ErrNoStore
	}
	if _, ok := n.store.Lookup(name, v); ok {
		return nil
	}
	var peers []Peer
	for _, p := range n.members.Peers() {
		if !p.Alive || p.Name == n.cfg.Name || n.quarantined.reason(p) != "" {
			continue
		}
		if p.Name == first {
			peers = slices.Insert(peers, 0, p)
		} else if slices.ContainsFunc(p.Meta.Models, func(r ModelRef) bool { return r.ID == name && r.Version == v.Short() }) {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 {
		return fmt.Errorf("%w: %s@%s: no live peer holds it", registry.ErrNoSource, name, v.Short())
	}
	var e registry.Entry
	var errs []error
	for _, p := range peers {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		e, err = n.entryFrom(ectx, p, name, v)
		cancel()
		if err == nil {
			break
		}
		errs = append(errs, err)
	}
	if e.Version != v {
		return fmt.Errorf("%w: %s@%s: %w", registry.ErrNoSource, name, v.Short(), errors.Join(errs...))
	}
	sources := make([]registry.ChunkSource, len(peers))
	for i, p := range peers {
		sources[i] = peerChunks{n: n, p: p}
	}
	start := time.Now()
	if _, err := registry.Fetch(ctx, n.store, e, sources, registry.FetchOptions{}); err != nil {
		return err
	}
	n.log.Info("model version fetched", "model", name, "version", v.Short(), "bytes", e.Size(),
		"took", time.Since(start).Round(time.Millisecond), "sources", len(sources))
	return nil
}

// Activate makes version v of model name the one this node's new requests
// use (fetching it from peers first if the store lacks it, the peer named
// from first), remembering the choice in the store. With share in (0, 1)
// only that share of an edge's requests use v, as a canary, each compared
// with the active version (Canary).
func (n *Node) Activate(ctx context.Context, name string, v registry.Version, share float64, from string) error {
	if n.store == nil {
		return ErrNoStore
	}
	if share < 0 || share >= 1 {
		if share != 0 && share != 1 {
			return fmt.Errorf("node: canary share %v outside [0, 1)", share)
		}
		share = 0
	}
	if err := n.ensureStored(ctx, name, v, from); err != nil {
		return err
	}
	m, ok := n.lookup(name, v.Short())
	if !ok {
		var err error
		if m, err = n.storedModel(name, v); err != nil {
			return err
		}
		if err := n.load(ctx, m, false); err != nil {
			return err
		}
	}
	h := n.stateByKey(m.key())
	if h == nil {
		return fmt.Errorf("node: %s@%s was retired while it loaded", name, v.Short())
	}
	if share > 0 && n.cfg.Role == RoleEdge {
		n.startCanary(h, share)
	} else {
		if err := n.store.SetActive(name, v); err != nil {
			return err
		}
		n.stopCanary(name)
		n.activate(h)
		n.cat.mu.Lock()
		n.retireLocked(name, time.Now())
		n.cat.mu.Unlock()
	}
	n.refreshMeta()
	n.log.Info("model version activated", "model", name, "version", v.Short(), "canary", share)
	return nil
}

// serveModelOp answers the model store's operations of the node protocol.
func (n *Node) serveModelOp(ctx context.Context, req segmentRequest, w transport.ResponseWriter) error {
	if n.store == nil {
		return transport.Errorf(transport.CodeNotFound, "%s has no model store", n.cfg.Name)
	}
	v := registry.Version(req.Version)
	if !v.Valid() {
		return transport.Errorf(transport.CodeBadRequest, "model version %q is not 64 hex digits", req.Version)
	}
	switch req.Op {
	case opModelEntry:
		e, ok := n.store.Lookup(req.Model, v)
		if !ok {
			return transport.Errorf(transport.CodeNotFound, "%s does not store %s@%s", n.cfg.Name, req.Model, v.Short())
		}
		b, err := json.Marshal(e)
		if err != nil {
			return transport.Errorf(transport.CodeInternal, "entry: %v", err)
		}
		_, err = w.Write(b)
		return err
	case opModelChunk:
		buf := chunkPool.Get().(*[]byte)
		defer chunkPool.Put(buf)
		b, err := n.store.ReadChunk(req.Model, v, req.Nodes[0], (*buf)[:0])
		if errors.Is(err, registry.ErrNotFound) {
			return transport.Errorf(transport.CodeNotFound, "%v", err)
		}
		if err != nil {
			return transport.Errorf(transport.CodeInternal, "%v", err)
		}
		*buf = b
		_, err = w.Write(b)
		return err
	case opModelLoad:
		info, _ := transport.PeerFromContext(ctx)
		if info.Role != pki.RoleEdge {
			n.refuseCaller(info, "model versions are rolled out by edges only")
			return transport.Errorf(transport.CodeUnauthenticated, "%s takes rollouts from edges only; the caller %q has role %q", n.cfg.Name, info.Name, info.Role)
		}
		if err := n.Activate(ctx, req.Model, v, 0, info.Name); err != nil {
			if errors.Is(err, registry.ErrNoSource) || errors.Is(err, registry.ErrNotFound) {
				return transport.Errorf(transport.CodeNotFound, "%v", err)
			}
			return transport.Errorf(transport.CodeInternal, "%v", err)
		}
		_, err := w.Write([]byte{0})
		return err
	}
	return transport.Errorf(transport.CodeBadRequest, "op %v is not a model op", req.Op)
}
