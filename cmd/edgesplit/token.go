package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/node/access"
	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage bearer tokens for the edge's HTTP API (node --api-clients FILE)",
	}
	var name, scopes, file string
	var rate float64
	var burst int
	var force bool
	var ttl time.Duration
	newCmd := &cobra.Command{
		Use:   "new --name NAME --scopes infer[,override,cluster,metrics] --clients FILE",
		Short: "Make a token, add its SHA-256 to the clients file, print the token once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("--clients FILE is required (the file node --api-clients reads)")
			}
			var sc []access.Scope
			for _, s := range strings.Split(scopes, ",") {
				p, err := access.ParseScope(strings.TrimSpace(s))
				if err != nil {
					return fmt.Errorf("--scopes: %w", err)
				}
				sc = append(sc, p)
			}
			tok, digest, err := access.NewToken()
			if err != nil {
				return err
			}
			if ttl < 0 {
				return fmt.Errorf("--ttl %v: negative", ttl)
			}
			c := access.Client{Name: name, TokenSHA256: digest, Scopes: sc, Rate: rate, Burst: burst}
			if ttl > 0 {
				c.Expires = time.Now().Add(ttl).UTC().Truncate(time.Second)
			}
			if err := access.AddClient(file, c, force); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "added client %q (scopes %s) to %s; the token above is shown only now\n", name, scopes, file)
			return nil
		},
	}
	newCmd.Flags().StringVar(&name, "name", "", "client name (audit log, rate limit)")
	newCmd.Flags().StringVar(&scopes, "scopes", string(access.ScopeInfer), "comma-separated: infer, override (choose policy/codec per request), cluster (read /v1/cluster), metrics")
	newCmd.Flags().StringVar(&file, "clients", "", "clients file to add the token's digest to (created if missing)")
	newCmd.Flags().Float64Var(&rate, "rate", 0, "requests per second (0: the file's default_rate)")
	newCmd.Flags().IntVar(&burst, "burst", 0, "burst size (0: the file's default_burst)")
	newCmd.Flags().DurationVar(&ttl, "ttl", 0, "the token expires after this long (e.g. 720h; 0: never); a running node re-reads the clients file on SIGHUP")
	newCmd.Flags().BoolVar(&force, "force", false, "replace an existing client of that name")
	_ = newCmd.MarkFlagRequired("name")
	var revokeName, revokeFile string
	revokeCmd := &cobra.Command{
		Use:   "revoke --name NAME --clients FILE",
		Short: "Remove a client from the clients file (send the node SIGHUP to apply it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := access.RemoveClient(revokeFile, revokeName); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "removed client %q from %s; nodes refuse it after SIGHUP (or restart)\n", revokeName, revokeFile)
			return nil
		},
	}
	revokeCmd.Flags().StringVar(&revokeName, "name", "", "client to remove")
	revokeCmd.Flags().StringVar(&revokeFile, "clients", "", "the clients file")
	_ = revokeCmd.MarkFlagRequired("name")
	_ = revokeCmd.MarkFlagRequired("clients")
	cmd.AddCommand(newCmd, revokeCmd)
	return cmd
}
