package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/spf13/pflag"
)

// apiFlags are node's client-API security flags.
type apiFlags struct {
	clients           string
	tls               bool
	certFile, keyFile string
	insecure          bool
	readTimeout       time.Duration
	file              string // the clients file in use ("" when none), set by configure
}

func (a *apiFlags) register(f *pflag.FlagSet) {
	f.StringVar(&a.clients, "api-clients", "", "clients file of the API (tokens as SHA-256 digests, scopes, rates; 'edgesplit token new' writes it); default $EDGESPLIT_API_CLIENTS")
	f.BoolVar(&a.tls, "api-tls", false, "serve the API over HTTPS with the node's certificate (clients trust the cluster CA; client certificates of role client are accepted)")
	f.StringVar(&a.certFile, "api-cert", "", "serve the API over HTTPS with this certificate (PEM) instead of the node's")
	f.StringVar(&a.keyFile, "api-key", "", "the private key (PEM) of --api-cert")
	f.DurationVar(&a.readTimeout, "api-read-timeout", 30*time.Second, "longest a client may take to send a whole request, body included (slower connections are closed)")
	f.BoolVar(&a.insecure, "insecure-api", false, "serve the API to anyone, without tokens (for experiments on a trusted host only)")
}

// reload re-reads the clients file into g (SIGHUP); nothing when the API
// has none.
func (a *apiFlags) reload(g *access.Guard) error {
	if a.file == "" || g == nil {
		return nil
	}
	c, err := access.LoadConfig(a.file)
	if err != nil {
		return fmt.Errorf("--api-clients: %w", err)
	}
	if err := g.Reload(c); err != nil {
		return fmt.Errorf("--api-clients %s: %w", a.file, err)
	}
	return nil
}

// configure sets cfg's API guard and TLS from the flags. A node serving an
// API needs a clients file unless --insecure-api says otherwise.
func (a *apiFlags) configure(cfg *node.Config, id *pki.Identity, warn io.Writer) error {
	if cfg.HTTPAddr == "" {
		// One unit or manifest may start nodes with and without an API.
		if a.clients != "" || a.tls || a.certFile != "" || a.insecure {
			cfg.Logger.Info("no --http: the client API flags have no API to guard")
		}
		return nil
	}
	cfg.APIReadTimeout = a.readTimeout
	file := a.clients
	if file == "" {
		file = os.Getenv("EDGESPLIT_API_CLIENTS")
	}
	switch {
	case file != "" && a.insecure:
		return fmt.Errorf("--insecure-api with a clients file: choose one")
	case file != "":
		a.file = file
		c, err := access.LoadConfig(file)
		if err != nil {
			return fmt.Errorf("--api-clients: %w", err)
		}
		if cfg.API, err = access.New(c); err != nil {
			return fmt.Errorf("--api-clients %s: %w", file, err)
		}
	case a.insecure:
		msg := "INSECURE: the client API on " + cfg.HTTPAddr + " admits anyone (--insecure-api): any process that reaches it can run inferences, override policy and codec, and read the cluster and metrics"
		fmt.Fprintln(warn, msg)
		cfg.Logger.Warn(msg)
		cfg.API = access.Open()
	default:
		return fmt.Errorf("--http %s: the client API needs --api-clients FILE (make one with 'edgesplit token new --clients FILE') or, on a trusted host, --insecure-api", cfg.HTTPAddr)
	}
	if (a.certFile == "") != (a.keyFile == "") {
		return fmt.Errorf("--api-cert and --api-key go together")
	}
	switch {
	case a.certFile != "":
		cert, err := tls.LoadX509KeyPair(a.certFile, a.keyFile)
		if err != nil {
			return fmt.Errorf("--api-cert: %w", err)
		}
		cfg.APITLS = access.ServerTLS(cert, id.Roots)
	case a.tls:
		cfg.APITLS = access.ServerTLS(id.Certificate, id.Roots)
	}
	return nil
}
