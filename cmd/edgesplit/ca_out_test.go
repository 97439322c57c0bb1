package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/transport/pki"
)

// TestCAIssueOut issues into another folder than the CA's (a read-only
// CA mount, as deploy/k8s's init containers do): the folder gets the
// node's certificate, a 0600 key and ca.crt, loads as the node's --ca, holds
// no CA key, is kept without --force and replaced with it.
func TestCAIssueOut(t *testing.T) {
	dir := t.TempDir()
	ca, out := filepath.Join(dir, "ca"), filepath.Join(dir, "tls")
	if o, err := runCLI(t, "ca", "init", "--dir", ca); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if err := os.Chmod(ca, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(ca, 0o755)
	issue := []string{"ca", "issue", "--dir", ca, "--out", out, "--node", "cloud-0", "--role", "cloud"}
	if o, err := runCLI(t, issue...); err != nil || !strings.Contains(o, "with a copy of the CA certificate") {
		t.Fatalf("ca issue --out: %v\n%s", err, o)
	}
	id, err := pki.LoadIdentityDir(out, "cloud-0")
	if err != nil || id.Role != pki.RoleCloud {
		t.Fatalf("the --out folder does not load as cloud-0's --ca folder: %v", err)
	}
	if st, err := os.Stat(filepath.Join(out, "cloud-0.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(out, pki.CAKeyFile)); err == nil {
		t.Errorf("the CA key was copied into the node's folder")
	}
	before, _ := os.ReadFile(filepath.Join(out, "cloud-0.crt"))
	if o, err := runCLI(t, issue...); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second issue without --force: %v\n%s", err, o)
	}
	if o, err := runCLI(t, append(issue, "--force")...); err != nil {
		t.Fatalf("--force: %v\n%s", err, o)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "cloud-0.crt")); string(after) == string(before) {
		t.Errorf("--force kept the old certificate")
	}
}
