package main

import (
	"errors"
	"fmt"
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
	var role string
	issueCmd := &cobra.Command{
		Use:   "issue --node NAME --role edge|cloud|client [--dir DIR]",
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
			crt, key, err := pki.IssueToDir(dir, nodeName, pki.IssueOptions{Validity: validity, Overwrite: force, Role: r})
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
	issueCmd.Flags().StringVar(&role, "role", "", "what the holder may do: edge (sends segments, serves clients), cloud (runs segments for edges), client (calls an edge's API)")
	_ = issueCmd.MarkFlagRequired("role")
	_ = issueCmd.MarkFlagRequired("node")
	cmd.AddCommand(initCmd, issueCmd)
	return cmd
}
