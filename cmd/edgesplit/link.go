package main

import (
	"fmt"
	"strings"

	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/spf13/cobra"
)

func newLinkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Emulated links: test a profile or trace with a real QUIC transfer, convert traces",
	}
	var profile, trace string
	var bytes int64
	var raw bool
	test := &cobra.Command{
		Use:   "test --profile P | --trace up.trace,down.trace [--bytes N]",
		Short: "Run a QUIC transfer over an emulated link on loopback; print configured vs measured goodput, RTT and loss",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := linkem.LinkTestConfig{Bytes: bytes, Raw: raw}
			var what string
			switch {
			case raw:
				what = "raw loopback UDP (no emulator)"
			case profile != "" && trace != "":
				return fmt.Errorf("give --profile or --trace, not both")
			case profile != "":
				p, err := linkem.LookupProfile(profile)
				if err != nil {
					return err
				}
				cfg.Up, cfg.Down = p.Up, p.Down
				what = fmt.Sprintf("profile %s (%s): %s", p.Name, p.Provenance, p.Description)
			case trace != "":
				up, down, err := parseTraces(trace)
				if err != nil {
					return err
				}
				cfg.Up, cfg.Down = up, down
				what = "traces " + trace
			default:
				return fmt.Errorf("give --profile (%s), --trace up,down or --raw", joinNames(linkem.ProfileNames()))
			}
			res, err := linkem.RunLinkTest(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s\n", what)
			fmt.Fprintf(out, "RTT: configured %v, idle ping %v, QUIC smoothed %v, min %v\n",
				res.ConfiguredRTT, res.PingRTT, res.SmoothedRTT, res.MinRTT)
			for _, d := range []*linkem.DirectionResult{res.Up, res.Down} {
				if d == nil {
					continue
				}
				conf := "unlimited"
				if d.ConfiguredBps > 0 {
					conf = fmt.Sprintf("%.2f Mbit/s", d.ConfiguredBps/1e6)
				}
				fmt.Fprintf(out, "%-8s %d bytes in %v: configured %s, measured %.2f Mbit/s (%.1f%%), steady %.2f Mbit/s (%.1f%%); loss configured %.2f%% emulated %.2f%% QUIC %.2f%%\n",
					d.Direction, d.Bytes, d.Duration.Round(1e6), conf, d.GoodputBps/1e6, 100*d.Ratio, d.SteadyBps/1e6, 100*d.SteadyRatio,
					100*d.ConfiguredLoss, 100*d.EmulatedLoss, 100*d.QUICLoss)
			}
			return nil
		},
	}
	test.Flags().StringVar(&profile, "profile", "", "link profile ("+joinNames(linkem.ProfileNames())+")")
	test.Flags().StringVar(&trace, "trace", "", "Mahimahi traces: up.trace,down.trace")
	test.Flags().Int64Var(&bytes, "bytes", 4<<20, "bytes sent each way")
	test.Flags().BoolVar(&raw, "raw", false, "no emulator: the reference for the pass-through overhead")

	convert := &cobra.Command{
		Use:   "csv2trace < rates.csv > link.trace",
		Short: "Convert a per-second Mbit/s CSV to a Mahimahi trace",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return linkem.ConvertCSV(cmd.OutOrStdout(), cmd.InOrStdin())
		},
	}
	profiles := &cobra.Command{
		Use:   "profiles",
		Short: "List the built-in link profiles",
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, p := range linkem.Profiles() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-11s %-11s %s\n            source: %s\n", p.Name, p.Provenance, p.Description, p.Source)
			}
			return nil
		},
	}
	cmd.AddCommand(test, convert, profiles)
	return cmd
}

// parseTraces reads "up.trace,down.trace" into link settings.
func parseTraces(s string) (up, down linkem.LinkSettings, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return up, down, fmt.Errorf("--trace %q: want up.trace,down.trace", s)
	}
	ut, err := linkem.LoadTrace(parts[0])
	if err != nil {
		return up, down, err
	}
	dt, err := linkem.LoadTrace(parts[1])
	if err != nil {
		return up, down, err
	}
	return linkem.LinkSettings{Trace: ut}, linkem.LinkSettings{Trace: dt}, nil
}
