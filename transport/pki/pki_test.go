package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDirRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, err := InitDir(dir, CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitDir(dir, CAOptions{}); err == nil {
		t.Fatal("InitDir overwrote an existing CA")
	}
	if st, _ := os.Stat(filepath.Join(dir, CAKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v", st.Mode())
	}
	if _, _, err := IssueToDir(dir, "edge-1", IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := LoadIdentityDir(dir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := IssueToDir(dir, "edge-1", IssueOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second issue for edge-1: %v, want ErrExists", err)
	}
	if again, _ := LoadIdentityDir(dir, "edge-1"); again == nil || !again.Certificate.Leaf.Equal(id.Certificate.Leaf) {
		t.Fatal("a refused issue changed the identity")
	}
	if _, _, err := IssueToDir(dir, "edge-1", IssueOptions{Overwrite: true}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if _, _, err := IssueToDir(dir, "edge-2", IssueOptions{Validity: -time.Hour}); err == nil {
		t.Error("negative validity accepted")
	}
	if _, err := NewCA(CAOptions{Validity: -time.Hour}); err == nil {
		t.Error("negative CA validity accepted")
	}
	id, err = LoadIdentityDir(dir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "edge-1" || id.Certificate.Leaf == nil {
		t.Fatalf("identity %+v", id)
	}
	if err := VerifyPeer([]*x509.Certificate{id.Certificate.Leaf}, ca.Pool(), x509.ExtKeyUsageClientAuth, "edge-1"); err != nil {
		t.Fatal(err)
	}
	if err := VerifyPeer([]*x509.Certificate{id.Certificate.Leaf}, ca.Pool(), x509.ExtKeyUsageServerAuth, "cloud"); !errors.Is(err, ErrUntrustedPeer) {
		t.Fatalf("wrong name accepted: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", "-x", string(make([]byte, 70))} {
		if _, _, err := IssueToDir(dir, bad, IssueOptions{}); err == nil {
			t.Errorf("node name %q accepted", bad)
		}
	}
}

func TestRejects(t *testing.T) {
	ca, _ := NewCA(CAOptions{})
	other, _ := NewCA(CAOptions{})
	id, _ := ca.Issue("n", IssueOptions{})
	old, _ := ca.Issue("n", IssueOptions{NotBefore: time.Now().Add(-2 * time.Hour), Validity: time.Hour})
	if err := VerifyPeer([]*x509.Certificate{id.Certificate.Leaf}, other.Pool(), x509.ExtKeyUsageServerAuth, ""); !errors.Is(err, ErrUntrustedPeer) {
		t.Errorf("other CA: %v", err)
	}
	if err := VerifyPeer([]*x509.Certificate{old.Certificate.Leaf}, ca.Pool(), x509.ExtKeyUsageServerAuth, ""); !errors.Is(err, ErrUntrustedPeer) {
		t.Errorf("expired: %v", err)
	}
	if err := VerifyPeer(nil, ca.Pool(), x509.ExtKeyUsageServerAuth, ""); !errors.Is(err, ErrUntrustedPeer) {
		t.Errorf("no cert: %v", err)
	}
	k, _ := id.KeyPEM()
	if _, err := LoadIdentity(id.CertPEM(), k, other.CertPEM()); err == nil {
		t.Error("identity loaded against the wrong CA")
	}
	for _, bad := range [][]byte{nil, []byte("junk"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")} {
		if _, err := LoadIdentity(bad, k, ca.CertPEM()); !errors.Is(err, ErrBadPEM) {
			t.Errorf("bad PEM %q: %v", bad, err)
		}
	}
	ok, _ := ca.KeyPEM()
	if _, err := LoadCA(ca.CertPEM(), ok); err != nil {
		t.Error(err)
	}
	if _, err := LoadCA(ca.CertPEM(), k); err == nil {
		t.Error("CA loaded with a node key")
	}
}

func TestRolesAndGossipKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitDir(dir, CAOptions{}); err != nil {
		t.Fatal(err)
	}
	k, err := ReadGossipKey(filepath.Join(dir, GossipKeyFile))
	if err != nil || len(k) != 32 {
		t.Fatalf("gossip key from InitDir: %d bytes, %v", len(k), err)
	}
	if st, _ := os.Stat(filepath.Join(dir, GossipKeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("gossip key mode %v", st.Mode())
	}
	for _, tc := range []struct {
		text string
		ok   bool
	}{{"000102030405060708090a0b0c0d0e0f\n", true}, {"zz", false}, {"0001", false}, {"", false}} {
		if _, err := ParseGossipKey([]byte(tc.text)); (err == nil) != tc.ok {
			t.Errorf("ParseGossipKey(%q): %v", tc.text, err)
		}
	}
	ca, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Role{RoleEdge, RoleCloud, RoleClient} {
		if _, _, err := IssueToDir(dir, "n-"+string(r), IssueOptions{Role: r}); err != nil {
			t.Fatal(err)
		}
		id, err := LoadIdentityDir(dir, "n-"+string(r))
		if err != nil || id.Role != r || RoleOf(id.Certificate.Leaf) != r {
			t.Fatalf("role %s: loaded %v, %v", r, id, err)
		}
		if err := CheckRole(id.Certificate.Leaf, r); err != nil {
			t.Errorf("CheckRole(%s): %v", r, err)
		}
	}
	edge, _ := ca.Issue("e", IssueOptions{Role: RoleEdge})
	if err := CheckRole(edge.Certificate.Leaf, RoleCloud); !errors.Is(err, ErrWrongRole) {
		t.Errorf("edge certificate passed for a cloud: %v", err)
	}
	none, _ := ca.Issue("x", IssueOptions{})
	if err := CheckRole(none.Certificate.Leaf, RoleEdge); !errors.Is(err, ErrWrongRole) || none.Role != "" {
		t.Errorf("a certificate without a role passed: %v", err)
	}
	if _, err := ca.Issue("y", IssueOptions{Role: "admin"}); err == nil {
		t.Error("unknown role issued")
	}
	if _, err := ParseRole("admin"); err == nil {
		t.Error("ParseRole accepted admin")
	}
}
