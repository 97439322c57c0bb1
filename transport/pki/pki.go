// Package pki issues the certificates that edgesplit nodes use for mutual TLS:
// a cluster certificate authority (an ECDSA P-256 key and a self-signed CA
// certificate) signs one certificate per node, usable both as a TLS server
// and a TLS client certificate. A node trusts exactly the peers whose
// certificate chains to the cluster CA.
//
// The on-disk layout, used by `edgesplit ca init` and `edgesplit ca issue`, is
// a directory holding ca.crt and ca.key, plus NAME.crt and NAME.key per node
// (keys are written with mode 0600, PEM-encoded PKCS#8).
//
// For development and in-process clusters, [NewCA] creates an ephemeral CA that
// lives only in memory.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Default validity periods.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultNodeValidity = 365 * 24 * time.Hour
)

// ClusterDNSName is a DNS name every node certificate carries besides the
// node's own name.
const ClusterDNSName = "edgesplit-node"

// ErrBadPEM is wrapped by every error about malformed PEM input.
var ErrBadPEM = errors.New("pki: bad PEM")

// CA is a cluster certificate authority. It is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// CAOptions tunes [NewCA]. The zero value is valid.
type CAOptions struct {
	// Name is the CA's common name. Default "edgesplit cluster CA".
	Name string
	// Validity defaults to DefaultCAValidity; a negative one is an error.
	Validity time.Duration
	// NotBefore defaults to one minute ago.
	NotBefore time.Time
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA creates a CA with a fresh ECDSA P-256 key.
func NewCA(opts CAOptions) (*CA, error) {
	if opts.Name == "" {
		opts.Name = "edgesplit cluster CA"
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("pki: negative CA validity %v", opts.Validity)
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultCAValidity
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Now().Add(-time.Minute)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: opts.Name, Organization: []string{"edgesplit"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotBefore.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA parses a CA certificate and its private key from PEM.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: certificate %q is not a CA", cert.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("pki: CA key does not match the CA certificate")
	}
	return &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}, nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// KeyPEM returns the CA private key in PEM (PKCS#8).
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.key) }

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// IssueOptions tunes [CA.Issue]. The zero value is valid.
type IssueOptions struct {
	// Validity defaults to DefaultNodeValidity; a negative one is an error.
	Validity time.Duration
	// Role is what the holder may do in the cluster (RoleEdge, RoleCloud,
	// RoleClient), carried as a URI SAN (urn:edgesplit:role:ROLE); empty
	// issues a certificate without a role, which role-checking peers
	// refuse.
	Role Role
	// Overwrite lets IssueToDir replace an existing NAME.crt/NAME.key
	// (otherwise it fails with ErrExists).
	Overwrite bool
	// NotBefore defaults to one minute ago. Tests set it in the past to make
	// an expired certificate.
	NotBefore time.Time
	// DNSNames are added to the node name and ClusterDNSName.
	DNSNames []string
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)

// ValidNodeName reports whether name can name a node (and its files):
// 1–63 characters of letters, digits, '.', '_' and '-', starting with a
// letter or digit.
func ValidNodeName(name string) bool { return nodeNameRE.MatchString(name) }

// Issue creates a key and a certificate for node, signed by the CA, valid for
// TLS server and client authentication.
func (ca *CA) Issue(node string, opts IssueOptions) (*Identity, error) {
	if !ValidNodeName(node) {
		return nil, fmt.Errorf("pki: invalid node name %q (want 1-63 of [A-Za-z0-9._-], starting with a letter or digit)", node)
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("pki: negative validity %v for %s", opts.Validity, node)
	}
	var uris []*url.URL
	if opts.Role != "" {
		if !opts.Role.valid() {
			return nil, fmt.Errorf("pki: unknown role %q (want %s, %s, %s or %s)", opts.Role, RoleEdge, RoleCloud, RoleEdgeServer, RoleClient)
		}
		uris = append(uris, &url.URL{Scheme: "urn", Opaque: roleURNPrefix + string(opts.Role)})
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultNodeValidity
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Now().Add(-time.Minute)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: node, Organization: []string{"edgesplit"}},
		DNSNames:     append([]string{node, ClusterDNSName}, opts.DNSNames...),
		URIs:         uris,
		NotBefore:    opts.NotBefore,
		NotAfter:     opts.NotBefore.Add(opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %q: %w", node, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate: %w", err)
	}
	return &Identity{
		Name:        node,
		Role:        opts.Role,
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		Roots:       ca.Pool(),
		caPEM:       ca.CertPEM(),
	}, nil
}

// Identity is a node's certificate and key plus the cluster CA it trusts.
type Identity struct {
	// Name is the node name (the certificate's common name).
	Name string
	// Role is the certificate's role ("" for a certificate without one).
	Role Role
	// Certificate holds the node's chain and private key.
	Certificate tls.Certificate
	// Roots holds the cluster CA.
	Roots *x509.CertPool
	caPEM []byte
}

// CertPEM returns the node certificate in PEM.
func (id *Identity) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Certificate.Certificate[0]})
}

// KeyPEM returns the node private key in PEM (PKCS#8).
func (id *Identity) KeyPEM() ([]byte, error) {
	k, ok := id.Certificate.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("pki: node key is not ECDSA")
	}
	return keyPEM(k)
}

// LoadIdentity parses a node certificate, its key and the cluster CA
// certificate from PEM. It checks that the key matches the certificate and
// that the certificate chains to the CA (at the current time).
func LoadIdentity(certPEM, keyPEM, caPEM []byte) (*Identity, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("pki: node key does not match the node certificate")
	}
	caCert, err := parseCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("pki: node certificate %q does not verify against the CA: %w", cert.Subject.CommonName, err)
	}
	return &Identity{
		Name:        cert.Subject.CommonName,
		Role:        RoleOf(cert),
		Certificate: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
		Roots:       pool,
		caPEM:       caPEM,
	}, nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadPEM)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	return c, nil
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: no key block", ErrBadPEM)
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%w: unexpected block type %q", ErrBadPEM, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is %T, want ECDSA", ErrBadPEM, k)
	}
	return ek, nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// File names inside a CA directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	// GossipKeyFile holds the cluster's gossip encryption key (32 random
	// bytes, hex), made by InitDir beside the CA.
	GossipKeyFile = "gossip.key"
)

// InitDir creates a new CA in dir (created if missing) as ca.crt and ca.key.
// It refuses to overwrite an existing CA.
func InitDir(dir string, opts CAOptions) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("pki: %s already exists; refusing to overwrite the cluster CA", filepath.Join(dir, f))
		}
	}
	ca, err := NewCA(opts)
	if err != nil {
		return nil, err
	}
	k, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), k, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CACertFile), ca.certPEM, 0o644); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, GossipKeyFile)); err == nil {
		return ca, nil // keep the cluster's key
	}
	var gk [32]byte
	if _, err := rand.Read(gk[:]); err != nil {
		return nil, fmt.Errorf("pki: gossip key: %w", err)
	}
	if err := writeFile(filepath.Join(dir, GossipKeyFile), []byte(hex.EncodeToString(gk[:])+"\n"), 0o600); err != nil {
		return nil, err
	}
	return ca, nil
}

// ParseGossipKey decodes a gossip key written as hex (16, 24 or 32 bytes:
// AES-128/192/256), surrounding white space ignored.
func ParseGossipKey(text []byte) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("pki: gossip key is not hex: %w", err)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("pki: gossip key is %d bytes, want 16, 24 or 32", n)
	}
	return k, nil
}

// ReadGossipKey reads a gossip key file (see ParseGossipKey).
func ReadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	k, err := ParseGossipKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadDir loads the CA in dir.
func LoadDir(dir string) (*CA, error) {
	c, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	k, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return LoadCA(c, k)
}

// ErrExists is returned by IssueToDir when the node already has a key or
// certificate in the directory and IssueOptions.Overwrite is not set.
var ErrExists = errors.New("pki: identity exists")

// IssueToDir issues a certificate for node with the CA in dir and writes it as
// NAME.crt and NAME.key beside the CA. It returns the two paths. An existing
// identity is kept (ErrExists) unless opts.Overwrite.
func IssueToDir(dir, node string, opts IssueOptions) (certPath, keyPath string, err error) {
	if !opts.Overwrite && ValidNodeName(node) {
		for _, f := range []string{node + ".crt", node + ".key"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return "", "", fmt.Errorf("%w: %s already exists (overwrite it explicitly to replace the node's key)", ErrExists, filepath.Join(dir, f))
			}
		}
	}
	ca, err := LoadDir(dir)
	if err != nil {
		return "", "", err
	}
	id, err := ca.Issue(node, opts)
	if err != nil {
		return "", "", err
	}
	k, err := id.KeyPEM()
	if err != nil {
		return "", "", err
	}
	certPath = filepath.Join(dir, node+".crt")
	keyPath = filepath.Join(dir, node+".key")
	if err := writeFile(keyPath, k, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFile(certPath, id.CertPEM(), 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// LoadIdentityDir loads node's identity (NAME.crt, NAME.key, ca.crt) from dir.
func LoadIdentityDir(dir, node string) (*Identity, error) {
	if !ValidNodeName(node) {
		return nil, fmt.Errorf("pki: invalid node name %q", node)
	}
	var b [3][]byte
	for i, f := range []string{node + ".crt", node + ".key", CACertFile} {
		var err error
		if b[i], err = os.ReadFile(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	return LoadIdentity(b[0], b[1], b[2])
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: close %s: %w", path, err)
	}
	return nil
}

// ServerTLS returns a TLS 1.3 server configuration that presents the node's
// certificate and requires a client certificate chaining to the cluster CA.
func (id *Identity) ServerTLS(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.Roots,
		NextProtos:   alpn,
	}
}

// ClientTLS returns a TLS 1.3 client configuration that presents the node's
// certificate and accepts a server only if its certificate chains to the
// cluster CA (host names are not checked: nodes are addressed by IP). If
// expectPeer is not empty, the server's certificate must also name that node.
func (id *Identity) ClientTLS(expectPeer string, alpn ...string) *tls.Config {
	roots := id.Roots
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{id.Certificate},
		RootCAs:            roots,
		ServerName:         ClusterDNSName,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		NextProtos:         alpn,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyPeer(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth, expectPeer)
		},
	}
}

// ErrUntrustedPeer is wrapped when a peer's certificate does not chain to the
// cluster CA or does not name the expected node.
var ErrUntrustedPeer = errors.New("pki: untrusted peer")

// VerifyPeer checks that chain[0] chains to roots (through chain[1:]), is valid
// now, allows usage, and, if name is not empty, names that node.
func VerifyPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, name string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no certificate presented", ErrUntrustedPeer)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("%w: %w", ErrUntrustedPeer, err)
	}
	if name != "" && PeerName(chain[0]) != name {
		return fmt.Errorf("%w: certificate names %q, want %q", ErrUntrustedPeer, PeerName(chain[0]), name)
	}
	return nil
}

// PeerName returns the node name a certificate was issued to.
func PeerName(c *x509.Certificate) string { return c.Subject.CommonName }

// Role is what a certificate's holder may do in the cluster.
type Role string

// Roles.
const (
	// RoleEdge: an edge node (takes client requests, sends segments).
	RoleEdge Role = "edge"
	// RoleCloud: a cloud node (runs segments for edges).
	RoleCloud Role = "cloud"
	// RoleEdgeServer: an edge server between devices and clouds (runs
	// segments for edges and sends what follows on to a cloud).
	RoleEdgeServer Role = "edge-server"
	// RoleClient: a client of an edge's API.
	RoleClient Role = "client"
)

const roleURNPrefix = "edgesplit:role:"

func (r Role) valid() bool {
	return r == RoleEdge || r == RoleCloud || r == RoleEdgeServer || r == RoleClient
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.valid() {
		return "", fmt.Errorf("pki: unknown role %q (want %s, %s, %s or %s)", s, RoleEdge, RoleCloud, RoleEdgeServer, RoleClient)
	}
	return r, nil
}

// RoleOf returns the role a certificate carries ("" when it has none or
// more than one).
func RoleOf(c *x509.Certificate) Role {
	var r Role
	for _, u := range c.URIs {
		if u.Scheme != "urn" || !strings.HasPrefix(u.Opaque, roleURNPrefix) {
			continue
		}
		if r != "" {
			return ""
		}
		r = Role(strings.TrimPrefix(u.Opaque, roleURNPrefix))
	}
	if !r.valid() {
		return ""
	}
	return r
}

// ErrWrongRole is wrapped when a peer's certificate lacks the role a
// connection requires.
var ErrWrongRole = errors.New("pki: wrong role")

// CheckRole checks that c carries one of roles.
func CheckRole(c *x509.Certificate, roles ...Role) error {
	got := RoleOf(c)
	for _, r := range roles {
		if got == r {
			return nil
		}
	}
	if got == "" {
		return fmt.Errorf("%w: certificate of %q carries no role, want %v", ErrWrongRole, PeerName(c), roles)
	}
	return fmt.Errorf("%w: certificate of %q is for role %s, want %v", ErrWrongRole, PeerName(c), got, roles)
}
