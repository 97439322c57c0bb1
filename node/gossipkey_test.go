package node

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Two real memberlist nodes rotate from one gossip key to another, each
// told a little after the other: they keep hearing each other throughout,
// end with only the new key, and then a node holding the old key can no
// longer join while one holding the new key can.
func TestGossipKeyRotation(t *testing.T) {
	oldKey, newKey := []byte("0123456789abcdef"), []byte("abcdefghijklmnopqrstuvwx")
	ms := startCluster(t, 2, oldKey)
	ctx := context.Background()
	if _, err := ms[1].Join(ctx, []string{ms[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "join", func() bool { return alivePeers(ms[0]) == 1 && alivePeers(ms[1]) == 1 })

	const grace = 300 * time.Millisecond
	if err := ms[0].RotateKey(newKey, grace); err != nil {
		t.Fatal(err)
	}
	time.Sleep(grace / 3) // the second node is told later, within the grace
	if err := ms[1].RotateKey(newKey, grace); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "rotation", func() bool {
		for _, m := range ms {
			if keys := m.gossipKeys(); len(keys) != 1 || !bytes.Equal(keys[0], newKey) {
				return false
			}
		}
		return true
	})
	// Several probe rounds on the new key alone: still one cluster.
	time.Sleep(time.Second)
	for i, m := range ms {
		if alivePeers(m) != 1 {
			t.Fatalf("node %d sees %d live peers after the rotation, want 1", i, alivePeers(m))
		}
	}

	join := func(name string, key []byte) error {
		cfg := DefaultMembershipConfig(name)
		cfg.SecretKey = key
		m, err := NewMembership(cfg, Meta{Role: RoleCloud})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		jctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = m.Join(jctx, []string{ms[0].Addr()})
		return err
	}
	if err := join("stale", oldKey); err == nil {
		t.Error("a node with the retired key joined")
	}
	if err := join("fresh", newKey); err != nil {
		t.Errorf("a node with the new key could not join: %v", err)
	}
}

func TestGossipKeyRotationErrors(t *testing.T) {
	plain := startCluster(t, 1, nil)[0]
	if err := plain.RotateKey([]byte("0123456789abcdef"), time.Second); err == nil {
		t.Error("rotation without gossip encryption accepted")
	}
	m := startCluster(t, 1, []byte("0123456789abcdef"))[0]
	if err := m.RotateKey([]byte("short"), time.Second); err == nil {
		t.Error("a 5-byte key accepted")
	}
	if err := m.RotateKey([]byte("abcdefghijklmnop"), 0); err == nil {
		t.Error("zero grace accepted")
	}
	if len(m.gossipKeys()) != 1 {
		t.Errorf("failed rotations changed the keyring: %d keys", len(m.gossipKeys()))
	}
}

// A rotation started while one is pending supersedes it, and the keys of
// both older generations are dropped at its end.
func TestGossipKeyRotationSupersedes(t *testing.T) {
	m := startCluster(t, 1, []byte("0123456789abcdef"))[0]
	k2, k3 := []byte("abcdefghijklmnop"), []byte("ABCDEFGHIJKLMNOP")
	if err := m.RotateKey(k2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.RotateKey(k3, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "rotation to the last key", func() bool {
		keys := m.gossipKeys()
		return len(keys) == 1 && bytes.Equal(keys[0], k3)
	})
}
