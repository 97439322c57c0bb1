package access

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scope is a right a client can hold.
type Scope string

// The scopes a route can require.
const (
	// ScopeInfer: POST /v1/infer with the operator's policy and codec.
	ScopeInfer Scope = "infer"
	// ScopeOverride: choose policy, codec, cut or accuracy budget per
	// request (?policy=, ?codec=, ?max_loss=).
	ScopeOverride Scope = "override"
	// ScopeCluster: read the cluster view (GET /v1/cluster, /v1/status).
	ScopeCluster Scope = "cluster"
	// ScopeMetrics: read GET /metrics.
	ScopeMetrics Scope = "metrics"
	// ScopeModels: push model versions and roll them out (PUT
	// /v1/models/{name}, POST /v1/models/{name}/rollout).
	ScopeModels Scope = "models"
)

// Scopes lists every scope, in order.
var scopes = []Scope{ScopeInfer, ScopeOverride, ScopeCluster, ScopeMetrics, ScopeModels}

// AllScopes returns every scope.
func AllScopes() []Scope { return slices.Clone(scopes) }

// ParseScope checks s names a scope.
func ParseScope(s string) (Scope, error) {
	if slices.Contains(scopes, Scope(s)) {
		return Scope(s), nil
	}
	return "", fmt.Errorf("access: unknown scope %q (want one of %v)", s, scopes)
}

// Client is one entry of a clients file.
type Client struct {
	// Name identifies the client in logs and the audit trail. A client
	// certificate (role client) with this common name gets this entry's
	// scopes and rate.
	Name string `yaml:"name"`
	// TokenSHA256 is the hex SHA-256 digest of the client's bearer token
	// (Digest); empty for a certificate-only client.
	TokenSHA256 string `yaml:"token_sha256,omitempty"`
	// Scopes the client holds.
	Scopes []Scope `yaml:"scopes"`
	// Rate is the client's sustained requests per second and Burst how
	// many it may send at once; zero takes the file's defaults.
	Rate  float64 `yaml:"rate,omitempty"`
	Burst int     `yaml:"burst,omitempty"`
	// Expires, when set, is when the client's token stops being accepted
	// (401 "expired"); its certificate has its own expiry.
	Expires time.Time `yaml:"expires,omitempty"`
}

// Config is a clients file: who may use the API, with which scopes and at
// which rate.
type Config struct {
	Clients []Client `yaml:"clients"`
	// DefaultRate and DefaultBurst apply to clients that set none
	// (DefaultConfig's: 50 requests/s, bursts of 100).
	DefaultRate  float64 `yaml:"default_rate,omitempty"`
	DefaultBurst int     `yaml:"default_burst,omitempty"`
	// CertScopes are the scopes of a client certificate whose name has no
	// entry (nil: such certificates are refused).
	CertScopes []Scope `yaml:"cert_scopes,omitempty"`
}

// DefaultConfig returns an empty clients list with the default rate.
func DefaultConfig() Config { return Config{DefaultRate: 50, DefaultBurst: 100} }

// MaxConfigBytes bounds a clients file.
const MaxConfigBytes = 1 << 20

// MaxClients bounds the clients of one file.
const MaxClients = 10000

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._@-]{0,62})$`)

// Validate checks c and names the first entry that is wrong.
func (c Config) Validate() error {
	if len(c.Clients) > MaxClients {
		return fmt.Errorf("access: %d clients, limit %d", len(c.Clients), MaxClients)
	}
	if c.DefaultRate < 0 || c.DefaultBurst < 0 {
		return fmt.Errorf("access: negative default rate %v or burst %d", c.DefaultRate, c.DefaultBurst)
	}
	for _, s := range c.CertScopes {
		if _, err := ParseScope(string(s)); err != nil {
			return fmt.Errorf("access: cert_scopes: %w", err)
		}
	}
	names := map[string]bool{}
	digests := map[string]bool{}
	for i, cl := range c.Clients {
		where := fmt.Sprintf("access: client %d (%q)", i+1, cl.Name)
		if !nameRE.MatchString(cl.Name) {
			return fmt.Errorf("%s: name must be 1-63 of [A-Za-z0-9._@-], starting with a letter or digit", where)
		}
		if names[cl.Name] {
			return fmt.Errorf("%s: name listed twice", where)
		}
		names[cl.Name] = true
		if cl.TokenSHA256 != "" {
			if b, err := hex.DecodeString(cl.TokenSHA256); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%s: token_sha256 must be 64 hex digits (the digest from `edgesplit token new`), not the token", where)
			}
			d := strings.ToLower(cl.TokenSHA256)
			if digests[d] {
				return fmt.Errorf("%s: token_sha256 used by another client", where)
			}
			digests[d] = true
		}
		if len(cl.Scopes) == 0 {
			return fmt.Errorf("%s: no scopes", where)
		}
		for _, s := range cl.Scopes {
			if _, err := ParseScope(string(s)); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		if cl.Rate < 0 || cl.Burst < 0 {
			return fmt.Errorf("%s: negative rate %v or burst %d", where, cl.Rate, cl.Burst)
		}
	}
	return nil
}

// ReadConfig parses a clients file (YAML; unknown keys are errors) and
// validates it. Unset defaults take DefaultConfig's.
func ReadConfig(r io.Reader) (Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("access: read clients file: %w", err)
	}
	if len(b) > MaxConfigBytes {
		return Config{}, fmt.Errorf("access: clients file over %d bytes", MaxConfigBytes)
	}
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("access: clients file: %w", err)
	}
	return c, c.Validate()
}

// LoadConfig reads the clients file at path.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("access: %w", err)
	}
	defer f.Close()
	c, err := ReadConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// TokenPrefix starts every token NewToken makes (so secret scanners and
// people can tell one).
const TokenPrefix = "es_"

// NewToken returns a fresh random bearer token (256 bits) and its digest,
// the form a clients file holds.
func NewToken() (token, digest string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("access: new token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Digest(token), nil
}

// Digest returns the hex SHA-256 of a token, as a clients file lists it.
func Digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ErrClientExists is returned by AddClient when the name is taken and
// replace is false.
var ErrClientExists = errors.New("access: client already listed")

// AddClient adds c to the clients file at path (created, mode 0600, when
// missing), replacing an entry of the same name only when replace is set.
// The file is rewritten whole (comments are not kept) through a temporary
// file, so a failure leaves the old one intact.
func AddClient(path string, c Client, replace bool) error {
	cfg := DefaultConfig()
	if _, err := os.Stat(path); err == nil {
		if cfg, err = LoadConfig(path); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("access: %w", err)
	}
	i := slices.IndexFunc(cfg.Clients, func(x Client) bool { return x.Name == c.Name })
	switch {
	case i >= 0 && !replace:
		return fmt.Errorf("%w: %q in %s", ErrClientExists, c.Name, path)
	case i >= 0:
		cfg.Clients[i] = c
	default:
		cfg.Clients = append(cfg.Clients, c)
	}
	return writeConfig(path, cfg)
}

// ErrNoClient is RemoveClient's error for a name the file does not list.
var ErrNoClient = errors.New("access: no such client")

// RemoveClient deletes the client name from the clients file at path
// (atomically, like AddClient): its token and certificate entry stop
// working when the node re-reads the file (SIGHUP).
func RemoveClient(path, name string) error {
	cfg, err := LoadConfig(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cfg.Clients, func(x Client) bool { return x.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: %q in %s", ErrNoClient, name, path)
	}
	cfg.Clients = slices.Delete(cfg.Clients, i, i+1)
	return writeConfig(path, cfg)
}

// writeConfig validates cfg and replaces the file at path with it (a
// temporary file renamed over it, mode 0600).
func writeConfig(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("access: encode clients file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".clients-*.yaml")
	if err != nil {
		return fmt.Errorf("access: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append([]byte("# edgesplit API clients (edgesplit token new); tokens are kept only as SHA-256 digests.\n"), b...)); err != nil {
		tmp.Close()
		return fmt.Errorf("access: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("access: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("access: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	return nil
}
