package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/spf13/cobra"
)

func newNodeCmd() *cobra.Command {
	var role, name, bind, join, link, device, httpAddr, quicAddr, caDir, gossipKey, gossipKeyFile, policy, codecs string
	var insecureGossip bool
	var keyGrace, slo time.Duration
	var auditPath string
	var models []string
	var workers, edgeWorkers, throughputQueue int
	var sequential bool
	var tiers int
	var acc accuracyFlags
	var api apiFlags
	var objf objectiveFlags
	var store storeFlags
	cmd := &cobra.Command{
		Use:   "node --role edge|cloud --bind ADDR --join SEEDS --model M --link PROFILE|TRACES [--device PROFILE] [--http ADDR]",
		Short: "Run an edgesplit node (daemon) until interrupted",
		Long: `node runs one edgesplit daemon. Nodes find each other by gossip (--bind is the gossip address,
--join a comma-separated list of other nodes' gossip addresses), serve model segments over QUIC with
mutual TLS (certificates from 'edgesplit ca': --ca DIR holds ca.crt and NAME.crt/NAME.key), and edges take
client requests on --http (POST /v1/infer, GET /v1/cluster, GET /metrics, the status page at /), for the
clients that --api-clients lists (bearer tokens with scopes and rates; --api-tls serves it over HTTPS).`,
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
				return fmt.Errorf("certificate for %s in %s (create with 'edgesplit ca init' and 'ca issue --node %s --role %s'): %w", name, caDir, name, role, err)
			}
			if id.Role != pki.Role(role) {
				return fmt.Errorf("the certificate of %s is for role %q, not %s (issue one with 'ca issue --node %s --role %s --force')", name, id.Role, role, name, role)
			}
			if gossipKey != "" {
				return fmt.Errorf("--gossip-key: keys never go on the command line (ps shows it); use --gossip-key-file or $EDGESPLIT_GOSSIP_KEY")
			}
			secret, err := loadGossipKey(gossipKeyFile, caDir, insecureGossip)
			if err != nil {
				return err
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
			cfg.SLO = slo
			cfg.EdgeWorkers, cfg.Sequential, cfg.ThroughputQueue = edgeWorkers, sequential, throughputQueue
			cfg.Tiers = tiers
			if cfg.Accuracy, err = acc.budget(); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if err := api.configure(&cfg, id, cmd.ErrOrStderr()); err != nil {
				return err
			}
			if cfg.Objective, cfg.Power, cfg.EnergyWeight, err = objf.resolve(dev.Name, link); err != nil {
				return err
			}
			host, port, err := net.SplitHostPort(bind)
			if err != nil {
				return fmt.Errorf("--bind %q: %w", bind, err)
			}
			cfg.Gossip.BindAddr = host
			if cfg.Gossip.BindPort, err = strconv.Atoi(port); err != nil {
				return fmt.Errorf("--bind %q: bad port", bind)
			}
			cfg.Gossip.SecretKey = secret
			if auditPath != "" {
				audit, closer, err := node.NewAuditLog(node.AuditConfig{Path: auditPath})
				if err != nil {
					return err
				}
				defer closer.Close()
				cfg.Audit = audit
			}
			if secret == nil {
				msg := "INSECURE: gossip is NOT encrypted or authenticated (--insecure-gossip): anyone who reaches the gossip port can join, read every node's metadata and advertise itself"
				fmt.Fprintln(cmd.ErrOrStderr(), msg)
				cfg.Logger.Warn(msg)
			}
			if link != "" {
				if cfg.Uplink, cfg.Downlink, err = parseLink(link); err != nil {
					return err
				}
			}
			if acc.table != "" && len(models) > 1 {
				return fmt.Errorf("--calibration-table names one file; with %d models keep each table beside its model file", len(models))
			}
			st, err := store.open(caDir)
			if err != nil {
				return err
			}
			if len(models) == 0 && (st == nil || len(st.Entries()) == 0) {
				return errors.New("--model is required (or a --model-dir holding models)")
			}
			cfg.Store = st
			for _, spec := range models {
				name, src := modelName(spec)
				g, sc, err := loadModel(src)
				if err != nil {
					return err
				}
				m, err := node.NewModel(name, "", g, sc)
				if err != nil {
					return err
				}
				if err := acc.attach(cmd, m, src); err != nil {
					return err
				}
				if st == nil {
					cfg.Models = append(cfg.Models, m)
					continue
				}
				e, err := storeModel(st, name, src, m)
				if err != nil {
					return err
				}
				cfg.Logger.Info("model stored", "model", name, "version", e.Version.Short(), "dir", st.Dir())
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
			sighup := make(chan os.Signal, 1)
			signal.Notify(sighup, syscall.SIGHUP)
			defer signal.Stop(sighup)
			untilDone(ctx, sighup, func() {
				if err := api.reload(cfg.API); err != nil {
					cfg.Logger.Error("clients file reload (SIGHUP) failed; keeping the current clients", "err", err)
					fmt.Fprintln(cmd.ErrOrStderr(), "edgesplit node: SIGHUP:", err)
				} else if api.file != "" {
					cfg.Logger.Info("clients file reloaded (SIGHUP)", "file", api.file)
				}
				if err := reloadGossipKey(n, gossipKeyFile, caDir, keyGrace); err != nil {
					cfg.Logger.Error("gossip key reload (SIGHUP) failed; keeping the current key", "err", err)
					fmt.Fprintln(cmd.ErrOrStderr(), "edgesplit node: SIGHUP:", err)
					return
				}
				cfg.Logger.Info("gossip key reloaded (SIGHUP): rotating to it", "grace", keyGrace)
			})
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return n.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	acc.register(f)
	api.register(f)
	objf.register(f)
	f.StringVar(&role, "role", "edge", "edge, cloud, or edge-server (between edges and clouds: runs the middle of a model and sends the rest on, for three-tier plans)")
	f.IntVar(&tiers, "tiers", 3, "edges: 3 lets auto, neurosurgeon and dads plan three tiers through edge servers; 2 plans two only")
	f.StringVar(&name, "name", "", "node name (must match its certificate)")
	f.StringVar(&bind, "bind", "127.0.0.1:7946", "gossip address host:port (port 0 picks one)")
	f.StringVar(&join, "join", "", "comma-separated gossip addresses of nodes to join")
	f.StringSliceVar(&models, "model", nil, modelFlagHelp+"; NAME=M names it (default: the file's base name or the zoo name) (repeatable)")
	f.StringVar(&link, "link", "", "emulated access link: a profile ("+strings.Join(linkem.ProfileNames(), ", ")+") or Mahimahi traces up.trace,down.trace")
	f.StringVar(&device, "device", "server", "emulated device profile (server, laptop, phone, jetson-nano, raspberry-pi-4, mcu-class) or slowdown:F")
	f.StringVar(&httpAddr, "http", "", "client API address (edges), e.g. 127.0.0.1:8080")
	f.StringVar(&quicAddr, "quic", "127.0.0.1:0", "QUIC (UDP) address")
	f.StringVar(&caDir, "ca", "edgesplit-ca", "folder with ca.crt and this node's NAME.crt/NAME.key")
	f.StringVar(&gossipKey, "gossip-key", "", "")
	_ = f.MarkHidden("gossip-key") // refused: a key on argv shows in ps
	f.StringVar(&gossipKeyFile, "gossip-key-file", "", "file with the gossip encryption key, hex (16, 24 or 32 bytes); default: $EDGESPLIT_GOSSIP_KEY, else CA_DIR/gossip.key (made by 'ca init')")
	f.StringVar(&auditPath, "audit-log", "", "audit trail: one JSON line per client request and refused request, to FILE (rotated at 100 MB, 10 kept) or - (stdout)")
	f.DurationVar(&keyGrace, "gossip-key-grace", 30*time.Second, "on SIGHUP the node re-reads its gossip key and rotates to it: it accepts the new key at once, sends with it after this grace and drops the old after twice it (so reload every node within the grace)")
	f.BoolVar(&insecureGossip, "insecure-gossip", false, "run gossip without encryption when no key is found (anyone on the network can join; for experiments only)")
	f.StringVar(&policy, "policy", "auto", "split policy: edge-only, cloud-only, fixed:K, neurosurgeon, dads, auto")
	f.StringVar(&codecs, "codecs", "", "comma-separated codec presets the scheduler may use (default all)")
	f.IntVar(&workers, "workers", 1, "segments a cloud runs at once")
	f.DurationVar(&slo, "slo", 0, "default per-request deadline (e.g. 50ms) for models with calibrated early exits: the edge picks exit and cut to maximise accuracy within it; ?deadline= overrides (0: none)")
	f.IntVar(&edgeWorkers, "edge-workers", 0, "heads an edge computes at once, as its device's cores would (0: no limit); requests pipeline: one holds a worker only while it computes here")
	f.BoolVar(&sequential, "sequential", false, "with --edge-workers: each request holds a worker from start to answer (no pipelining; the baseline)")
	f.IntVar(&throughputQueue, "throughput-queue", node.DefaultThroughputQueue, "with --edge-workers and --objective latency: plan for throughput (the slowest stage, not the sum) while this many requests wait for an edge worker; negative: never")
	store.register(f)
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

// untilDone waits for ctx to end, calling hup for every signal on sig
// meanwhile (SIGHUP).
func untilDone(ctx context.Context, sig <-chan os.Signal, hup func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			hup()
		}
	}
}

// reloadGossipKey re-reads the gossip key from where loadGossipKey finds it
// and rotates the node to it over grace (node.Node.RotateGossipKey).
func reloadGossipKey(n *node.Node, file, caDir string, grace time.Duration) error {
	key, err := loadGossipKey(file, caDir, false)
	if err != nil {
		return err
	}
	if err := n.RotateGossipKey(key, grace); err != nil {
		return fmt.Errorf("rotate gossip key: %w", err)
	}
	return nil
}

// loadGossipKey finds the gossip key: --gossip-key-file, else
// $EDGESPLIT_GOSSIP_KEY (hex), else gossip.key in the CA folder. With none
// it is an error unless insecure (then nil: unencrypted gossip).
func loadGossipKey(file, caDir string, insecure bool) ([]byte, error) {
	if file != "" {
		return pki.ReadGossipKey(file)
	}
	if env := os.Getenv("EDGESPLIT_GOSSIP_KEY"); env != "" {
		k, err := pki.ParseGossipKey([]byte(env))
		if err != nil {
			return nil, fmt.Errorf("$EDGESPLIT_GOSSIP_KEY: %w", err)
		}
		return k, nil
	}
	def := filepath.Join(caDir, pki.GossipKeyFile)
	k, err := pki.ReadGossipKey(def)
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, fs.ErrNotExist) && insecure:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no gossip key: %s does not exist and neither --gossip-key-file nor $EDGESPLIT_GOSSIP_KEY is set ('edgesplit ca init' makes one; --insecure-gossip runs without encryption)", def)
	}
	return nil, err
}
