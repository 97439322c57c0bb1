package dataset

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSidecarBytes bounds the JSON sidecar a reader accepts (1 MiB).
const MaxSidecarBytes = 1 << 20

// Sidecar is the small JSON file written beside a trained model (model.onnx
// → model.json): how to preprocess an input, what the outputs mean and how
// well the model did.
type Sidecar struct {
	// Arch is the zoo architecture name (seed-cnn, lenet5, lenet-exits...).
	Arch string `json:"arch"`
	// Dataset is the dataset spec it was trained on.
	Dataset    string     `json:"dataset"`
	Preprocess Preprocess `json:"preprocess"`
	// Labels names each class index.
	Labels []string `json:"labels"`
	// Outputs lists the graph outputs in order; for multi-exit models the
	// early exits come first and the last is the final classifier.
	Outputs []string `json:"outputs"`
	// Accuracy is the test accuracy of the final output, in [0,1].
	Accuracy float64 `json:"accuracy"`
	// ExitAccuracy is the test accuracy of each output (multi-exit models).
	ExitAccuracy []float64 `json:"exit_accuracy,omitempty"`
	// TestImages is the size of the test set the accuracy was measured on.
	TestImages int     `json:"test_images"`
	Epochs     int     `json:"epochs"`
	Batch      int     `json:"batch"`
	LR         float64 `json:"lr"`
	// LRDecay is the per-epoch learning-rate factor (1 = constant).
	LRDecay   float64 `json:"lr_decay,omitempty"`
	Optimizer string  `json:"optimizer"`
	Seed      uint64  `json:"seed"`
}

// SidecarPath returns the sidecar path for a model file: the extension
// replaced by ".json" (model.onnx → model.json).
func SidecarPath(modelPath string) string {
	if i := strings.LastIndexByte(modelPath, '.'); i > strings.LastIndexAny(modelPath, `/\`) {
		return modelPath[:i] + ".json"
	}
	return modelPath + ".json"
}

// MarshalSidecar encodes s as indented JSON.
func MarshalSidecar(s Sidecar) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dataset: sidecar: %w", err)
	}
	return append(b, '\n'), nil
}

// UnmarshalSidecar decodes and validates a sidecar (its Preprocess must be
// valid and it must name at least one label).
func UnmarshalSidecar(b []byte) (Sidecar, error) {
	var s Sidecar
	if len(b) > MaxSidecarBytes {
		return s, fmt.Errorf("dataset: sidecar is %d bytes, over %d", len(b), MaxSidecarBytes)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("dataset: sidecar: %w", err)
	}
	if err := s.Preprocess.Validate(); err != nil {
		return s, fmt.Errorf("dataset: sidecar: %w", err)
	}
	if len(s.Labels) == 0 {
		return s, fmt.Errorf("dataset: sidecar has no labels")
	}
	return s, nil
}

// WriteSidecar writes s as JSON to path.
func WriteSidecar(path string, s Sidecar) error {
	b, err := MarshalSidecar(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ReadSidecar reads and validates the JSON sidecar at path.
func ReadSidecar(path string) (Sidecar, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sidecar{}, fmt.Errorf("dataset: sidecar: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSidecarBytes+1))
	if err != nil {
		return Sidecar{}, fmt.Errorf("dataset: sidecar %s: %w", path, err)
	}
	s, err := UnmarshalSidecar(b)
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
