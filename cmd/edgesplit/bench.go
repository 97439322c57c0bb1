package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks (model latency, codecs)",
	}
	cmd.AddCommand(newBenchModelCmd())
	return cmd
}

func newBenchModelCmd() *cobra.Command {
	var modelPath, inputPath string
	var iters, threads, warmup int
	cmd := &cobra.Command{
		Use:   "model --model M.onnx --input x.npy --iters N [--threads T]",
		Short: "Time whole-model inference; prints median_ms=... min_ms=... after warm-up",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if iters < 1 {
				return fmt.Errorf("--iters must be at least 1, got %d", iters)
			}
			g, _, x, err := loadModelInput(modelPath, inputPath)
			if err != nil {
				return err
			}
			net, err := model.Compile(g, model.Options{Threads: threads})
			if err != nil {
				return err
			}
			ex := net.NewExtractor()
			ctx := cmd.Context()
			for range warmup {
				if _, err := ex.Run(ctx, x); err != nil {
					return err
				}
			}
			times := make([]time.Duration, iters)
			for i := range times {
				start := time.Now()
				if _, err := ex.Run(ctx, x); err != nil {
					return err
				}
				times[i] = time.Since(start)
			}
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			fmt.Fprintf(cmd.OutOrStdout(), "median_ms=%.4f min_ms=%.4f\n", ms(stats.Median(times)), ms(slices.Min(times)))
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&inputPath, "input", "", "input .npy (default: seeded uniform [0,1) of the input shape)")
	cmd.Flags().IntVar(&iters, "iters", 50, "timed runs")
	cmd.Flags().IntVar(&warmup, "warmup", 5, "untimed runs first")
	cmd.Flags().IntVar(&threads, "threads", 1, "intra-op threads")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
