package calib

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/scheduler"
)

// EnsureConfig says where a model's calibration table lives and how to
// make one when it is missing.
type EnsureConfig struct {
	Graph                 *model.Graph
	ModelID, ModelVersion string
	// TablePath is where the table is read from and written to; empty
	// means it is neither read nor written (calibrate in memory).
	TablePath string
	// Source names the calibration data (see Open); empty means a missing
	// table is not made.
	Source string
	// Preprocess turns images into inputs (nil: Open's default).
	Preprocess *dataset.Preprocess
	// Samples bounds the inputs used (0: all the source has).
	Samples int
	// Recalibrate measures again even when a matching table exists.
	Recalibrate bool
	// Run tunes the calibration (Graph, IDs, Inputs and SourceName are set
	// by Ensure).
	Run Config
}

// Ensure returns the model's calibration table: the one at TablePath when it
// exists and belongs to this model version, else a new one measured on
// Source (saved to TablePath when set). It returns nil, nil when there is
// neither a table nor a source: the model stays uncalibrated. A table for
// another version of the model is an error unless Source is given, so a
// stale table never speaks for a new model.
func Ensure(ctx context.Context, c EnsureConfig) (*scheduler.Calibration, bool, error) {
	nodes := len(c.Graph.Nodes)
	if c.TablePath != "" && !c.Recalibrate {
		tab, err := scheduler.LoadCalibration(c.TablePath)
		switch {
		case err == nil:
			if cerr := tab.Check(c.ModelVersion, nodes); cerr == nil {
				return tab, false, nil
			} else if c.Source == "" {
				return nil, false, fmt.Errorf("%s: %w (recalibrate with --calibration DATA)", c.TablePath, cerr)
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, false, err
		}
	}
	if c.Source == "" {
		return nil, false, nil
	}
	src, desc, err := Open(ctx, c.Source, c.Graph, c.Preprocess, c.Samples)
	if err != nil {
		return nil, false, err
	}
	cfg := c.Run
	cfg.Graph, cfg.ModelID, cfg.ModelVersion, cfg.Inputs, cfg.SourceName = c.Graph, c.ModelID, c.ModelVersion, src, desc
	res, err := Run(ctx, cfg)
	if err != nil {
		return nil, false, err
	}
	if l, ok := src.(Labelled); ok && len(c.Graph.Outputs) > 1 && len(l.Labels()) == src.Len() {
		// A multi-exit model on labelled data: calibrate its exits too.
		if res.Table.Exits, err = Exits(ctx, ExitsConfig{Graph: c.Graph, Inputs: src, Labels: l.Labels(), SourceName: desc}); err != nil {
			return nil, false, err
		}
	}
	if c.TablePath != "" {
		if err := res.Table.Save(c.TablePath); err != nil {
			return nil, false, fmt.Errorf("calib: saving the table: %w", err)
		}
	}
	return res.Table, true, nil
}

// fileExists reports whether path names an existing regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// DefaultTablePath is where the table of the model named spec is kept: beside
// the model file (scheduler.CalibrationPath) when spec is a file, else ""
// (a built-in model: keep it wherever --calibration-table says).
func DefaultTablePath(spec string) string {
	if fileExists(spec) {
		return scheduler.CalibrationPath(spec)
	}
	return ""
}
