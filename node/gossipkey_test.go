package node

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Two memberlist nodes (on memberlist's MockNetwork, in a synctest bubble)
// rotate from one gossip key to another, each told a little after the
// other: they keep hearing each other throughout, end with only the new
// key, and then a node holding the old key can no longer join while one
// holding the new key can.
func TestGossipKeyRotation(t *testing.T) { synctest.Test(t, testGossipKeyRotation) }

func testGossipKeyRotation(t *testing.T) {
	oldKey, newKey := []byte("0123456789abcdef"), []byte("abcdefghijklmnopqrstuvwx")
	mn := newMockNet(t, "n0", "n1", "stale", "fresh")
	ms := []*Membership{newMockMember(t, mn, "n0", oldKey), newMockMember(t, mn, "n1", oldKey)}
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
	// Through the rotation and well after it (several probe rounds on
	// the new key alone), each still sees the other alive.
	for step := range 16 {
		time.Sleep(grace / 4)
		for i, m := range ms {
			if alivePeers(m) != 1 {
				t.Fatalf("node %d sees %d live peers %v into the rotation, want 1", i, alivePeers(m), time.Duration(step+1)*grace/4)
			}
		}
	}
	synctest.Wait()
	for i, m := range ms {
		if keys := m.gossipKeys(); len(keys) != 1 || !bytes.Equal(keys[0], newKey) {
			t.Fatalf("node %d holds %d keys after the rotation, want only the new one", i, len(keys))
		}
	}

	join := func(name string, key []byte) error {
		m := newMockMember(t, mn, name, key)
		jctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := m.Join(jctx, []string{ms[0].Addr()})
		return err
	}
	if err := join("stale", oldKey); err == nil {
		t.Error("a node with the retired key joined")
	}
	if err := join("fresh", newKey); err != nil {
		t.Errorf("a node with the new key could not join: %v", err)
	}
}

func TestGossipKeyRotationErrors(t *testing.T) { synctest.Test(t, testGossipKeyRotationErrors) }

func testGossipKeyRotationErrors(t *testing.T) {
	mn := newMockNet(t, "plain", "m")
	plain := newMockMember(t, mn, "plain", nil)
	if err := plain.RotateKey([]byte("0123456789abcdef"), time.Second); err == nil {
		t.Error("rotation without gossip encryption accepted")
	}
	m := newMockMember(t, mn, "m", []byte("0123456789abcdef"))
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
func TestGossipKeyRotationSupersedes(t *testing.T) { synctest.Test(t, testGossipKeyRotationSupersedes) }

func testGossipKeyRotationSupersedes(t *testing.T) {
	m := newMockMember(t, newMockNet(t, "m"), "m", []byte("0123456789abcdef"))
	k2, k3 := []byte("abcdefghijklmnop"), []byte("ABCDEFGHIJKLMNOP")
	if err := m.RotateKey(k2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.RotateKey(k3, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
	synctest.Wait()
	if keys := m.gossipKeys(); len(keys) != 1 || !bytes.Equal(keys[0], k3) {
		t.Fatalf("%d keys after the last rotation, want only its key", len(keys))
	}
	time.Sleep(30 * time.Second) // the superseded rotation's steps never run
	synctest.Wait()
	if keys := m.gossipKeys(); len(keys) != 1 || !bytes.Equal(keys[0], k3) {
		t.Fatalf("the superseded rotation changed the keys: %d", len(keys))
	}
}
