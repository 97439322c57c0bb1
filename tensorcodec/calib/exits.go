package calib

import (
	"context"
	"fmt"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// ExitsConfig selects what Exits measures. Graph (simplified, with more
// than one output), Inputs and one label per input are required.
type ExitsConfig struct {
	Graph *model.Graph
	// Inputs are labelled held-out inputs (not the training set), Labels
	// their classes.
	Inputs Source
	Labels []int
	// SourceName describes them in the table ("mnist:test[0:5000]").
	SourceName string
	// Thresholds is the confidence grid (nil:
	// scheduler.DefaultExitThresholds).
	Thresholds []float64
	// Progress, when set, is called after each input with the inputs done.
	Progress func(done, total int)
}

// Exits runs every input through the whole multi-exit graph once, records
// each exit's answer and confidence (largest softmax probability) against
// the label, and tabulates every early-exit policy
// (scheduler.NewExitCalibration). Put the result in the model's
// Calibration.Exits.
func Exits(ctx context.Context, cfg ExitsConfig) (*scheduler.ExitCalibration, error) {
	if cfg.Graph == nil || cfg.Inputs == nil {
		return nil, fmt.Errorf("%w: exits need a graph and inputs", ErrConfig)
	}
	if cfg.Inputs.Len() == 0 || cfg.Inputs.Len() != len(cfg.Labels) {
		return nil, fmt.Errorf("%w: %d inputs, %d labels (need one label per input, at least one)", ErrConfig, cfg.Inputs.Len(), len(cfg.Labels))
	}
	exits, err := partition.Exits(cfg.Graph)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	if len(exits) < 2 {
		return nil, fmt.Errorf("%w: graph %s has %d output; exits need a multi-exit model", ErrConfig, cfg.Graph.Name, len(exits))
	}
	net, err := model.Compile(cfg.Graph, model.Options{})
	if err != nil {
		return nil, fmt.Errorf("calib: compile %s: %w", cfg.Graph.Name, err)
	}
	defer net.Close()
	ex := net.NewExtractor()
	names := make([]string, len(exits))
	ends := make([]int, len(exits))
	for i, e := range exits {
		names[i], ends[i] = e.Name, e.End
	}
	samples := make([]scheduler.ExitSample, cfg.Inputs.Len())
	for j := range samples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in, err := cfg.Inputs.Input(j)
		if err != nil {
			return nil, fmt.Errorf("calib: input %d: %w", j, err)
		}
		outs, err := ex.Run(ctx, in...)
		if err != nil {
			return nil, fmt.Errorf("calib: input %d: %w", j, err)
		}
		s := scheduler.ExitSample{Correct: make([]bool, len(exits)), Confidence: make([]float32, len(exits))}
		for i, e := range exits {
			class, conf, err := partition.Confidence(outs[e.Output], e.Probs)
			if err != nil {
				return nil, fmt.Errorf("calib: input %d, exit %s: %w", j, e.Name, err)
			}
			s.Correct[i], s.Confidence[i] = class == cfg.Labels[j], conf
		}
		samples[j] = s
		if cfg.Progress != nil {
			cfg.Progress(j+1, len(samples))
		}
	}
	return scheduler.NewExitCalibration(cfg.SourceName, names, ends, cfg.Thresholds, samples)
}
