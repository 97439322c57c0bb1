package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/spf13/cobra"
)

func newCACmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Manage the cluster certificate authority (mutual TLS between nodes)",
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "edgesplit-ca", "folder holding ca.crt/ca.key and node certificates")
	initCmd := &cobra.Command{
		Use:   "init [--dir DIR]",
		Short: "Create a new cluster CA (refuses to overwrite one)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := pki.InitDir(dir, pki.CAOptions{})
			if err != nil {
				return err
			}
			c := ca.Certificate()
			fmt.Fprintf(cmd.OutOrStdout(), "created CA %q in %s (valid until %s) and the cluster's gossip key %s\n",
				c.Subject.CommonName, dir, c.NotAfter.Format(time.DateOnly), filepath.Join(dir, pki.GossipKeyFile))
			return nil
		},
	}
	var nodeName string
	var validity time.Duration
	var force bool
	var role, out string
	issueCmd := &cobra.Command{
		Use:   "issue --node NAME --role edge|cloud|edge-server|client [--dir DIR] [--out DIR]",
		Short: "Issue a node certificate signed by the cluster CA (NAME.crt, NAME.key)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !pki.ValidNodeName(nodeName) {
				return fmt.Errorf("--node %q: node names are letters, digits, '-', '_' and '.'", nodeName)
			}
			r, err := pki.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			if validity < 0 {
				return fmt.Errorf("--validity %v: a certificate lifetime must be positive", validity)
			}
			opts := pki.IssueOptions{Validity: validity, Overwrite: force, Role: r}
			if out != "" && out != dir {
				crt, key, err := issueOut(dir, out, nodeName, opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "issued %s and %s (role %s) with a copy of the CA certificate\n", crt, key, r)
				return nil
			}
			crt, key, err := pki.IssueToDir(dir, nodeName, opts)
			if errors.Is(err, pki.ErrExists) {
				return fmt.Errorf("%w; give --force to replace it", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s and %s (role %s)\n", crt, key, r)
			return nil
		},
	}
	issueCmd.Flags().StringVar(&nodeName, "node", "", "node name (the certificate's common name)")
	issueCmd.Flags().DurationVar(&validity, "validity", 0, "certificate lifetime (default: 1 year)")
	issueCmd.Flags().BoolVar(&force, "force", false, "replace the node's existing key and certificate")
	issueCmd.Flags().StringVar(&role, "role", "", "what the holder may do: edge (sends segments, serves clients), cloud (runs segments for edges), edge-server (runs segments for edges and sends the rest on to clouds), client (calls an edge's API)")
	issueCmd.Flags().StringVar(&out, "out", "", "write NAME.crt, NAME.key and a copy of ca.crt to this folder instead of the CA folder (which may then be read-only, e.g. a mounted Secret): the folder a node's --ca reads")
	_ = issueCmd.MarkFlagRequired("role")
	_ = issueCmd.MarkFlagRequired("node")
	cmd.AddCommand(initCmd, issueCmd)
	return cmd
}

// issueOut issues node's certificate with the CA in caDir and writes
// NAME.crt, NAME.key and ca.crt into out (created 0700 if missing), so
// out is a complete --ca folder for the node without the CA's key. An
// existing NAME.key or NAME.crt there is kept unless opts.Overwrite.
func issueOut(caDir, out, node string, opts pki.IssueOptions) (crt, key string, err error) {
	crt, key = filepath.Join(out, node+".crt"), filepath.Join(out, node+".key")
	if !opts.Overwrite {
		for _, f := range []string{crt, key} {
			if _, err := os.Stat(f); err == nil {
				return "", "", fmt.Errorf("%w: %s already exists; give --force to replace it", pki.ErrExists, f)
			}
		}
	}
	ca, err := pki.LoadDir(caDir)
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
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", "", err
	}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{key, k, 0o600}, {crt, id.CertPEM(), 0o644}, {filepath.Join(out, pki.CACertFile), ca.CertPEM(), 0o644}} {
		// Removed first, so a replaced file gets w.mode, never the old one's.
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return "", "", err
		}
	}
	return crt, key, nil
}
