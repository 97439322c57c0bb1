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

// Calibration returns the calibration table the node uses for model id (its
// own or one fetched from a peer), or nil.
func (n *Node) Calibration(id string) *scheduler.Calibration {
	n.calib.mu.Lock()
	defer n.calib.mu.Unlock()
	return n.calib.tables[id]
}

// serveCalibration answers opCalibration.
func (n *Node) serveCalibration(m *Model, w transport.ResponseWriter) error {
	c := n.Calibration(m.ID)
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
	for _, m := range n.cfg.Models {
		if n.Calibration(m.ID) != nil {
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
			key := p.Name + "/" + m.ID + "/" + digest
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
			n.calib.tables[m.ID] = c
			n.calib.mu.Unlock()
			if t := n.edge.tables[m.ID]; t != nil {
				t.calibrate(c)
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
	if err := c.Check(m.Version, m.Nodes()); err != nil {
		return nil, err
	}
	if got := c.Digest(); got != digest {
		return nil, fmt.Errorf("calibration from %s has digest %s, gossip said %s", p.Name, got, digest)
	}
	return c, nil
}

// refreshMeta gossips the digests of the node's calibration tables.
func (n *Node) refreshMeta() {
	meta := n.members.Meta()
	for i := range meta.Models {
		if c := n.Calibration(meta.Models[i].ID); c != nil {
			meta.Models[i].Calibration = c.Digest()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := n.members.UpdateMeta(ctx, meta); err != nil {
		n.log.Warn("gossip calibration update failed", "err", err)
	}
}
