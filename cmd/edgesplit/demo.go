package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/spf13/cobra"
)

func newDemoCmd() *cobra.Command {
	var modelName, device string
	var clouds, requests, baseline int
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run an in-process cluster (1 slow edge + 2 clouds, real gossip and QUIC over emulated links) through a link schedule",
		Long: `demo starts one edge node emulating a slow device and two cloud nodes on loopback, with real
memberlist gossip and real QUIC (mutual TLS) through an emulated access link. It streams requests while the
link goes Wi-Fi → 5G mid-band → LTE → mmWave (blockage) → 5G mid-band, kills a cloud node halfway, and prints
per phase the plan chosen (cut, codec, cloud), predicted vs measured latency, bytes sent, and the same
requests forced edge-only and cloud-only. It needs no files and no network.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := node.ParseDevice(device)
			if err != nil {
				return err
			}
			g, err := zoo.Build(modelName, 1)
			if err != nil {
				return err
			}
			m, err := node.NewModel(modelName, "", g, nil)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			if verbose {
				logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			}
			_, err = node.RunDemo(cmd.Context(), node.DemoConfig{
				Model: m, EdgeDevice: dev, Clouds: clouds, Requests: requests, Baseline: baseline, Logger: logger,
			}, cmd.OutOrStdout())
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&modelName, "model", "mobilenetv2", "zoo model to split")
	cmd.Flags().StringVar(&device, "device", "raspberry-pi-4", "edge device profile (or slowdown:F)")
	cmd.Flags().IntVar(&clouds, "clouds", 2, "cloud nodes")
	cmd.Flags().IntVar(&requests, "requests", 10, "auto-policy requests per phase")
	cmd.Flags().IntVar(&baseline, "baseline", 2, "edge-only and cloud-only requests per phase")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log node events to stderr")
	return cmd
}
