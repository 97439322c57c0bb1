package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"
)

// keyRotation is a pending gossip key rotation's next step.
type keyRotation struct {
	gen   uint64      // rotations started; a step of an older one does nothing
	timer *time.Timer // the next step; nil when none is pending
}

func (r *keyRotation) stop() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// RotateKey moves the node's gossip encryption to key (16, 24 or 32
// bytes) in three steps, so that a cluster whose nodes all start the same
// rotation within grace of each other never stops hearing itself: at once
// the node accepts key besides the keys it has (memberlist's keyring); after
// grace it sends with key; after another grace it drops every other key.
// A rotation started while another is pending supersedes it. It fails when
// gossip is not encrypted (no SecretKey) or key has the wrong length; grace
// must be positive. Safe for concurrent use.
func (m *Membership) RotateKey(key []byte, grace time.Duration) error {
	if m.keys == nil {
		return errors.New("node: gossip encryption is off (no SecretKey): nothing to rotate")
	}
	if grace <= 0 {
		return fmt.Errorf("node: gossip key rotation grace %v is not positive", grace)
	}
	key = bytes.Clone(key)
	if err := m.keys.AddKey(key); err != nil {
		return fmt.Errorf("node: gossip key: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shutdown {
		return errors.New("node: gossip is shut down")
	}
	m.rotation.stop()
	m.rotation.gen++
	gen := m.rotation.gen
	m.logger.Info("gossip key installed; sending with it after the grace", "grace", grace)
	m.afterLocked(gen, grace, func() {
		if err := m.keys.UseKey(key); err != nil {
			m.logger.Error("gossip key rotation: switching keys failed", "err", err)
			return
		}
		m.logger.Info("gossip now sent with the new key; old keys dropped after the grace", "grace", grace)
		m.afterLocked(gen, grace, func() {
			// RemoveKey shifts the keyring's slice in place: iterate a copy.
			for _, k := range slices.Clone(m.keys.GetKeys()) {
				if !bytes.Equal(k, key) {
					if err := m.keys.RemoveKey(k); err != nil {
						m.logger.Error("gossip key rotation: dropping an old key failed", "err", err)
					}
				}
			}
			m.logger.Info("gossip key rotation done")
		})
	})
	return nil
}

// afterLocked schedules step of rotation gen to run after d, under mu,
// unless a newer rotation started or gossip shut down meanwhile. The caller
// holds mu.
func (m *Membership) afterLocked(gen uint64, d time.Duration, step func()) {
	m.rotation.timer = time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.shutdown || m.rotation.gen != gen {
			return
		}
		m.rotation.timer = nil
		step()
	})
}

// gossipKeys returns the installed keys, the one gossip is sent with
// first (nil when gossip is not encrypted). It holds mu, as rotation steps
// do, since RemoveKey rewrites the keyring's slice in place.
func (m *Membership) gossipKeys() [][]byte {
	if m.keys == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys.GetKeys())
}

// RotateGossipKey rotates the node's gossip key (see Membership.RotateKey):
// `edgesplit node` calls it when SIGHUP tells it to re-read its key file.
func (n *Node) RotateGossipKey(key []byte, grace time.Duration) error {
	return n.members.RotateKey(key, grace)
}
