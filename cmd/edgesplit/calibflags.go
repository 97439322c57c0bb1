package main

import (
	"bytes"
	"fmt"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// accuracyFlags are the accuracy-budget and calibration flags shared by
// node, plan and demo.
type accuracyFlags struct {
	maxLoss     float64
	source      string
	table       string
	samples     int
	recalibrate bool
}

func (a *accuracyFlags) register(f *pflag.FlagSet) {
	f.Float64Var(&a.maxLoss, "max-accuracy-loss", scheduler.DefaultMaxLoss,
		"accuracy budget: largest allowed loss of top-1 agreement with the unsplit model (a fraction, judged by a 95% lower confidence bound over the calibration); 0 allows exact codecs only")
	f.StringVar(&a.source, "calibration", "", "calibration data when the model has no table yet: mnist, fashion-mnist (NAME:train for the training split), a folder of images or an N×C×H×W .npy")
	f.StringVar(&a.table, "calibration-table", "", "calibration table file (default: MODEL.calib.json beside a model file)")
	f.IntVar(&a.samples, "calibration-samples", 3000, "calibration inputs used at most (≈2 700 agreeing samples are needed to certify 99.9%)")
	f.BoolVar(&a.recalibrate, "recalibrate", false, "measure the calibration again even when a matching table exists")
}

// budget is the flags' accuracy budget.
func (a *accuracyFlags) budget() (scheduler.AccuracyBudget, error) {
	b, err := scheduler.NewBudget(a.maxLoss)
	if err != nil {
		return b, fmt.Errorf("--max-accuracy-loss: %w", err)
	}
	return b, nil
}

// attach loads or makes the calibration of model m (loaded from spec) and
// attaches it; it says on stderr what it did.
func (a *accuracyFlags) attach(cmd *cobra.Command, m *node.Model, spec string) error {
	path := a.table
	if path == "" {
		path = calib.DefaultTablePath(spec)
	}
	if path == "" && spec == trainedName && a.source == "" {
		return a.attachEmbedded(cmd, m)
	}
	pre := m.Sidecar
	c := calib.EnsureConfig{Graph: m.Graph, ModelID: m.ID, ModelVersion: m.Version, TablePath: path, Source: a.source,
		Samples: a.samples, Recalibrate: a.recalibrate}
	if pre != nil {
		c.Preprocess = &pre.Preprocess
	}
	c.Run.Progress = progress(cmd, "calibrating "+m.ID)
	tab, made, err := calib.Ensure(cmd.Context(), c)
	if err != nil {
		return err
	}
	w := cmd.ErrOrStderr()
	switch {
	case tab == nil:
		fmt.Fprintf(w, "model %s: uncalibrated: only exact codecs (lossless, raw) may be planned; give --calibration DATA to certify fp16 and lossy ones\n", m.ID)
		return nil
	case made && path != "":
		fmt.Fprintf(w, "model %s: calibrated on %s (%d inputs), table %s written to %s\n", m.ID, tab.Data.Source, tab.Data.Samples, tab.Digest(), path)
	case made:
		fmt.Fprintf(w, "model %s: calibrated on %s (%d inputs), table %s kept in memory (--calibration-table FILE saves it)\n", m.ID, tab.Data.Source, tab.Data.Samples, tab.Digest())
	default:
		fmt.Fprintf(w, "model %s: calibration table %s from %s (%s, %d inputs)\n", m.ID, tab.Digest(), path, tab.Data.Source, tab.Data.Samples)
	}
	return m.SetCalibration(tab)
}

// attachEmbedded attaches the calibration table embedded with the trained
// seed-cnn (MNIST test images), unless --recalibrate asks for a new one.
func (a *accuracyFlags) attachEmbedded(cmd *cobra.Command, m *node.Model) error {
	if a.recalibrate {
		return fmt.Errorf("--recalibrate %s needs --calibration DATA (the embedded table came from mnist)", trainedName)
	}
	b, err := zoo.SeedCNNCalibration()
	if err != nil {
		return err
	}
	tab, err := scheduler.ReadCalibration(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("embedded calibration of %s: %w", trainedName, err)
	}
	if err := m.SetCalibration(tab); err != nil {
		return fmt.Errorf("embedded calibration of %s: %w", trainedName, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "model %s: embedded calibration table %s (%s, %d inputs)\n", m.ID, tab.Digest(), tab.Data.Source, tab.Data.Samples)
	return nil
}
