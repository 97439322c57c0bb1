package zoo

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
)

//go:generate go run ./internal/mkseed -out assets/seed-cnn.onnx.gz

// The trained seed-cnn: ONNX, gzip-compressed (its float32 weights are
// rounded to 11 significant bits so that it compresses under 1 MB), and its
// JSON sidecar, and its calibration table (scheduler's Calibration JSON,
// measured on the first 3 000 MNIST test images; regenerate it with
// `edgesplit plan --model seed-cnn-trained --calibration mnist --recalibrate
// --calibration-table model/zoo/assets/seed-cnn.calib.json` whenever the
// model or a codec preset changes: a test checks that it still matches).
//
//go:embed assets/seed-cnn.onnx.gz assets/seed-cnn.json assets/seed-cnn.calib.json
var assets embed.FS

// maxAssetBytes bounds the decompressed embedded model.
const maxAssetBytes = 16 << 20

// SeedCNNONNX returns the ONNX bytes of the embedded trained seed-cnn (a new
// copy on every call), e.g. to write it to a file for another runtime.
func SeedCNNONNX() ([]byte, error) {
	gz, err := assets.ReadFile("assets/seed-cnn.onnx.gz")
	if err != nil {
		return nil, fmt.Errorf("zoo: embedded seed-cnn: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("zoo: embedded seed-cnn: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, maxAssetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("zoo: embedded seed-cnn: %w", err)
	}
	if len(b) > maxAssetBytes {
		return nil, fmt.Errorf("zoo: embedded seed-cnn is over %d bytes", maxAssetBytes)
	}
	return b, nil
}

// SeedCNNSidecar returns the sidecar of the embedded trained seed-cnn
// (preprocessing, labels, test accuracy, training settings).
func SeedCNNSidecar() (dataset.Sidecar, error) {
	b, err := assets.ReadFile("assets/seed-cnn.json")
	if err != nil {
		return dataset.Sidecar{}, fmt.Errorf("zoo: embedded seed-cnn sidecar: %w", err)
	}
	return dataset.UnmarshalSidecar(b)
}

// SeedCNNCalibration returns the JSON calibration table of the embedded
// trained seed-cnn (see scheduler.ReadCalibration), so that planning with it
// may use calibrated lossy codecs without recalibrating on every start.
func SeedCNNCalibration() ([]byte, error) {
	b, err := assets.ReadFile("assets/seed-cnn.calib.json")
	if err != nil {
		return nil, fmt.Errorf("zoo: embedded seed-cnn calibration: %w", err)
	}
	return b, nil
}

// SeedCNNTrained returns the embedded seed-cnn trained by model/train on
// MNIST (3 epochs, batch 32, Adam) and its sidecar. The graph is decoded
// afresh on every call, so callers may modify it.
func SeedCNNTrained() (*model.Graph, dataset.Sidecar, error) {
	sc, err := SeedCNNSidecar()
	if err != nil {
		return nil, sc, err
	}
	b, err := SeedCNNONNX()
	if err != nil {
		return nil, sc, err
	}
	g, err := onnx.Decode(b)
	if err != nil {
		return nil, sc, fmt.Errorf("zoo: embedded seed-cnn: %w", err)
	}
	return g, sc, nil
}
