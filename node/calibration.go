package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport"
)

// calibrationRetry is how long an edge waits before asking the same peer
// for a table again after a failed fetch.
const calibrationRetry = 10 * time.Second

// calibrations are the calibration tables a node uses per model id (its
// own or fetched from a peer), and when an edge may next ask a peer for one
// after a failed fetch (per peer/model/digest).
type calibrations struct {
	mu     sync.Mutex
	tables map[string]*scheduler.Calibration
	retry  map[string]time.Time
}

// Calibration returns the calibration table the node uses for the active
// version of model id (its own or one fetched from a peer), or nil.
func (n *Node) Calibration(id string) *scheduler.Calibration {
	m, ok := n.lookup(id, "")
	if !ok {
		return nil
	}
	return n.calibrationOf(m)
}

// calibrationOf is the calibration table of model version m, or nil.
func (n *Node) calibrationOf(m *Model) *scheduler.Calibration {
	n.calib.mu.Lock()
	defer n.calib.mu.Unlock()
	return n.calib.tables[m.key()]
}

// serveCalibration answers opCalibration.
func (n *Node) serveCalibration(m *Model, w transport.ResponseWriter) error {
	c := n.calibrationOf(m)
	if c == nil {
		return transport.Errorf(transport.CodeNotFound, "model %s version %s is not calibrated on %s", m.ID, m.Version, n.cfg.Name)
	}
	b, err := c.Marshal()
	if err != nil {
		return transport.Errorf(transport.CodeInternal, "calibration: %v", err)
	}
	_, err = w.Write(b)
	return err
}

// fetchCalibrations gives an edge the calibration of every model it holds
// none for, from a peer that gossips one for the same version: so one
// calibrated node is enough for the whole cluster, and nothing is
// recalibrated on start. It runs in the background (the meta loop), never on
// a request's path; a table is taken only if it parses, belongs to the
// model version and has the digest the peer gossiped.
func (n *Node) fetchCalibrations(ctx context.Context) {
	for _, m := range n.heldModels() {
		if n.calibrationOf(m) != nil {
			continue
		}
		for _, p := range n.members.Peers() {
			if !p.Alive {
				continue
			}
			digest := ""
			for _, r := range p.Meta.Models {
				if r.ID == m.ID && r.Version == m.Version {
					digest = r.Calibration
				}
			}
			if digest == "" {
				continue
			}
			key := p.Name + "/" + m.key() + "/" + digest
			n.calib.mu.Lock()
			next := n.calib.retry[key]
			n.calib.mu.Unlock()
			if time.Now().Before(next) {
				continue
			}
			c, err := n.fetchCalibration(ctx, p, m, digest)
			if err != nil {
				n.log.Warn("calibration fetch failed", "peer", p.Name, "model", m.ID, "err", err)
				n.calib.mu.Lock()
				n.calib.retry[key] = time.Now().Add(calibrationRetry)
				n.calib.mu.Unlock()
				continue
			}
			n.calib.mu.Lock()
			n.calib.tables[m.key()] = c
			n.calib.mu.Unlock()
			if h := n.state(m); h != nil && h.table != nil {
				h.table.calibrate(c)
			}
			n.log.Info("calibration fetched", "peer", p.Name, "model", m.ID, "digest", digest, "samples", c.Data.Samples, "source", c.Data.Source)
			n.refreshMeta()
			break
		}
	}
}

func (n *Node) fetchCalibration(ctx context.Context, p Peer, m *Model, digest string) (*scheduler.Calibration, error) {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := n.callPeer(fctx, p, segmentRequest{Op: opCalibration, Model: m.ID, Version: m.Version}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	c, err := scheduler.ReadCalibration(resp.Body)
	if err != nil {
		return nil, err
	}
	if err := c.Check(m.Weights, m.Nodes()); err != nil {
		return nil, err
	}
	if got := c.Digest(); got != digest {
		return nil, fmt.Errorf("calibration from %s has digest %s, gossip said %s", p.Name, got, digest)
	}
	return c, nil
}

// refreshMeta gossips the model versions the node serves, with their
// calibration digests, and the digest of its profiles of them.
func (n *Node) refreshMeta() {
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	meta := n.members.Meta()
	meta.Models = n.modelRefs()
	meta.ProfileDigest = profileDigest(n.ownProfiles())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := n.members.UpdateMeta(ctx, meta); err != nil {
		n.log.Warn("gossip model update failed", "err", err)
	}
}
