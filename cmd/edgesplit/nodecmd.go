package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/spf13/cobra"
)

func newNodeCmd() *cobra.Command {
	var role, name, bind, join, link, device, httpAddr, quicAddr, caDir, gossipKey, policy, codecs string
	var models []string
	var workers int
	var acc accuracyFlags
	cmd := &cobra.Command{
		Use:   "node --role edge|cloud --bind ADDR --join SEEDS --model M --link PROFILE|TRACES [--device PROFILE] [--http ADDR]",
		Short: "Run an edgesplit node (daemon) until interrupted",
		Long: `node runs one edgesplit daemon. Nodes find each other by gossip (--bind is the gossip address,
--join a comma-separated list of other nodes' gossip addresses), serve model segments over QUIC with
mutual TLS (certificates from 'edgesplit ca': --ca DIR holds ca.crt and NAME.crt/NAME.key), and edges take
client requests on --http (POST /v1/infer, GET /v1/cluster, GET /metrics).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := node.ParseRole(role)
			if err != nil {
				return err
			}
			if name == "" {
				return fmt.Errorf("--name is required")
			}
			dev, err := node.ParseDevice(device)
			if err != nil {
				return err
			}
			id, err := pki.LoadIdentityDir(caDir, name)
			if err != nil {
				return fmt.Errorf("certificate for %s in %s (create with 'edgesplit ca init' and 'ca issue --node %s'): %w", name, caDir, name, err)
			}
			cfg := node.DefaultConfig(name, r)
			cfg.Identity = id
			cfg.Device = dev
			cfg.HTTPAddr = httpAddr
			cfg.QUICAddr = quicAddr
			cfg.Policy = policy
			if codecs != "" {
				cfg.Codecs = strings.Split(codecs, ",")
			}
			cfg.Workers = workers
			if cfg.Accuracy, err = acc.budget(); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			host, port, err := net.SplitHostPort(bind)
			if err != nil {
				return fmt.Errorf("--bind %q: %w", bind, err)
			}
			cfg.Gossip.BindAddr = host
			if cfg.Gossip.BindPort, err = strconv.Atoi(port); err != nil {
				return fmt.Errorf("--bind %q: bad port", bind)
			}
			if gossipKey != "" {
				if cfg.Gossip.SecretKey, err = hex.DecodeString(gossipKey); err != nil {
					return fmt.Errorf("--gossip-key: want 32, 48 or 64 hex digits: %w", err)
				}
			}
			if link != "" {
				if cfg.Uplink, cfg.Downlink, err = parseLink(link); err != nil {
					return err
				}
			}
			if acc.table != "" && len(models) > 1 {
				return fmt.Errorf("--calibration-table names one file; with %d models keep each table beside its model file", len(models))
			}
			for _, spec := range models {
				g, sc, err := loadModel(spec)
				if err != nil {
					return err
				}
				m, err := node.NewModel(spec, "", g, sc)
				if err != nil {
					return err
				}
				if err := acc.attach(cmd, m, spec); err != nil {
					return err
				}
				cfg.Models = append(cfg.Models, m)
			}
			ctx := cmd.Context()
			n, err := node.New(ctx, cfg)
			if err != nil {
				return err
			}
			if join != "" {
				jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := n.Join(jctx, strings.Split(join, ","))
				cancel()
				if err != nil {
					n.Kill()
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s (%s) gossip=%s quic=%s http=%s\n", name, role, n.GossipAddr(), n.QUICAddr(), n.HTTPAddr())
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return n.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	acc.register(f)
	f.StringVar(&role, "role", "edge", "edge or cloud")
	f.StringVar(&name, "name", "", "node name (must match its certificate)")
	f.StringVar(&bind, "bind", "127.0.0.1:7946", "gossip address host:port (port 0 picks one)")
	f.StringVar(&join, "join", "", "comma-separated gossip addresses of nodes to join")
	f.StringSliceVar(&models, "model", nil, modelFlagHelp+" (repeatable)")
	f.StringVar(&link, "link", "", "emulated access link: a profile ("+strings.Join(linkem.ProfileNames(), ", ")+") or Mahimahi traces up.trace,down.trace")
	f.StringVar(&device, "device", "server", "emulated device profile (server, laptop, phone, jetson-nano, raspberry-pi-4, mcu-class) or slowdown:F")
	f.StringVar(&httpAddr, "http", "", "client API address (edges), e.g. 127.0.0.1:8080")
	f.StringVar(&quicAddr, "quic", "127.0.0.1:0", "QUIC (UDP) address")
	f.StringVar(&caDir, "ca", "edgesplit-ca", "folder with ca.crt and this node's NAME.crt/NAME.key")
	f.StringVar(&gossipKey, "gossip-key", os.Getenv("EDGESPLIT_GOSSIP_KEY"), "gossip encryption key, hex (16, 24 or 32 bytes); default $EDGESPLIT_GOSSIP_KEY")
	f.StringVar(&policy, "policy", "auto", "split policy: edge-only, cloud-only, fixed:K, neurosurgeon, dads, auto")
	f.StringVar(&codecs, "codecs", "", "comma-separated codec presets the scheduler may use (default all)")
	f.IntVar(&workers, "workers", 1, "segments a cloud runs at once")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

// parseLink reads a --link value: a profile name, or up.trace,down.trace.
func parseLink(s string) (up, down linkem.LinkSettings, err error) {
	if strings.Contains(s, ",") {
		return parseTraces(s)
	}
	p, err := linkem.LookupProfile(s)
	if err != nil {
		return up, down, err
	}
	return p.Up, p.Down, nil
}
