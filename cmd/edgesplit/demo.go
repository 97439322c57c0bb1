package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/demo"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
)

func newDemoCmd() *cobra.Command {
	var modelName, device string
	var clouds, requests, baseline int
	var verbose bool
	var acc accuracyFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run an in-process cluster (1 slow edge + 2 clouds, real gossip and QUIC over emulated links) through a link schedule",
		Long: `demo starts one edge node emulating a slow device and two cloud nodes on loopback, with real
memberlist gossip and real QUIC (mutual TLS) through an emulated access link. It streams requests while the
link goes Wi-Fi → 5G mid-band → LTE → mmWave (blockage) → 5G mid-band, kills a cloud node halfway, and prints
per phase the plan chosen (cut, codec, cloud), predicted vs measured latency, bytes sent, and the same
requests forced edge-only and cloud-only, with the accuracy each plan risks and how many answers matched the
unsplit model run locally on the same inputs. It needs no files and no network.

Lossy codecs (int8, int4) are planned only when calibration certifies them under --max-accuracy-loss:
give --calibration DATA (then the demo's requests also come from DATA), or use --model seed-cnn-trained,
which carries a table measured on MNIST test images and is fed MNIST test images.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := node.ParseDevice(device)
			if err != nil {
				return err
			}
			if clouds < 1 {
				return fmt.Errorf("--clouds %d: the demo needs at least one cloud node", clouds)
			}
			budget, err := acc.budget()
			if err != nil {
				return err
			}
			g, sc, err := loadModel(modelName)
			if err != nil {
				return err
			}
			m, err := node.NewModel(modelName, "", g, sc)
			if err != nil {
				return err
			}
			if err := acc.attach(cmd, m, modelName); err != nil {
				return err
			}
			input, err := demoInputs(cmd, m, modelName, acc.source, requests+2*baseline)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			if verbose {
				logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			}
			_, err = demo.Run(cmd.Context(), demo.Config{
				Model: m, EdgeDevice: dev, Clouds: clouds, Requests: requests, Baseline: baseline, Logger: logger,
				Accuracy: &budget, Input: input,
			}, cmd.OutOrStdout())
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			return nil
		},
	}
	acc.register(cmd.Flags())
	cmd.Flags().StringVar(&modelName, "model", "mobilenetv2", modelFlagHelp)
	cmd.Flags().StringVar(&device, "device", "raspberry-pi-4", "edge device profile (or slowdown:F)")
	cmd.Flags().IntVar(&clouds, "clouds", 2, "cloud nodes")
	cmd.Flags().IntVar(&requests, "requests", 10, "auto-policy requests per phase")
	cmd.Flags().IntVar(&baseline, "baseline", 4, "edge-only and cloud-only requests per phase, interleaved with the second half of the auto ones")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log node events to stderr")
	return cmd
}

// demoInputs returns the demo's request inputs: real data when there is
// some (the calibration data, or MNIST test images for the embedded trained
// seed-cnn), nil (uniform random tensors) otherwise. Each phase uses n.
func demoInputs(cmd *cobra.Command, m *node.Model, spec, source string, n int) (func(int) ([]*tensor.Dense, error), error) {
	if source == "" && spec == trainedName {
		source = "mnist"
	}
	if source == "" {
		return nil, nil
	}
	var pre *dataset.Preprocess
	if m.Sidecar != nil {
		pre = &m.Sidecar.Preprocess
	}
	src, desc, err := calib.Open(cmd.Context(), source, m.Graph, pre, 0)
	if err != nil {
		return nil, fmt.Errorf("demo inputs: %w", err)
	}
	if src.Len() == 0 {
		return nil, fmt.Errorf("demo inputs: %s holds no inputs", desc)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "demo requests: %s (%d inputs, %d per phase)\n", desc, src.Len(), n)
	return func(i int) ([]*tensor.Dense, error) { return src.Input(i % src.Len()) }, nil
}
