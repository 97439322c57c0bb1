package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node/access"
)

func TestTokenNew(t *testing.T) {
	file := filepath.Join(t.TempDir(), "clients.yaml")
	out, err := runCLI(t, "token", "new", "--name", "cam-1", "--scopes", "infer,cluster", "--rate", "5", "--clients", file)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := strings.Cut(out, "\n")
	cfg, err := access.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clients) != 1 || cfg.Clients[0].TokenSHA256 != access.Digest(tok) || cfg.Clients[0].Rate != 5 || len(cfg.Clients[0].Scopes) != 2 {
		t.Fatalf("clients file holds %+v for token %q", cfg.Clients, tok)
	}
	if b, _ := os.ReadFile(file); strings.Contains(string(b), tok) {
		t.Error("the clients file holds the token itself")
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("clients file mode %v, want 0600", st.Mode().Perm())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "cam-1", "--clients", file}, "already listed"},
		{[]string{"--name", "cam-2", "--scopes", "root", "--clients", file}, `unknown scope "root"`},
		{[]string{"--name", "cam-2"}, "--clients FILE is required"},
		{[]string{"--name", "bad name", "--clients", file}, "name must be"},
	} {
		if _, err := runCLI(t, append([]string{"token", "new"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token new %v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	if _, err := runCLI(t, "token", "new", "--name", "cam-1", "--force", "--clients", file); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := access.LoadConfig(file); len(cfg.Clients) != 1 || cfg.Clients[0].TokenSHA256 == access.Digest(tok) {
		t.Errorf("--force did not replace cam-1's token: %+v", cfg.Clients)
	}
}

// token new --ttl writes an expiry the guard enforces; token revoke
// removes a client and names what is wrong.
func TestTokenTTLAndRevoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "clients.yaml")
	before := time.Now()
	if _, err := runCLI(t, "token", "new", "--name", "brief", "--ttl", "1h", "--clients", file); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "token", "new", "--name", "keep", "--clients", file); err != nil {
		t.Fatal(err)
	}
	cfg, err := access.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Clients[0].Expires; e.Before(before.Add(59*time.Minute)) || e.After(before.Add(61*time.Minute)) || !cfg.Clients[1].Expires.IsZero() {
		t.Errorf("expiries %v, %v; want ≈ 1 h from now, and none", e, cfg.Clients[1].Expires)
	}
	if _, err := runCLI(t, "token", "new", "--name", "neg", "--ttl", "-1s", "--clients", file); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("a negative --ttl: %v", err)
	}
	if _, err := runCLI(t, "token", "revoke", "--name", "brief", "--clients", file); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := access.LoadConfig(file); len(cfg.Clients) != 1 || cfg.Clients[0].Name != "keep" {
		t.Errorf("after revoking brief the file lists %+v", cfg.Clients)
	}
	if _, err := runCLI(t, "token", "revoke", "--name", "brief", "--clients", file); err == nil || !strings.Contains(err.Error(), "no such client") {
		t.Errorf("revoking an unknown client: %v", err)
	}
}
