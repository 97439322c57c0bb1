package node

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders for POST /v1/infer
	_ "image/png"
	"math"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/npy"
	"gorgonia.org/tensor"
)

// decodeInput reads a .npy tensor or an image preprocessed for m.
func decodeInput(body []byte, m *Model) (*tensor.Dense, error) {
	vi := m.Graph.Inputs[0]
	if bytes.HasPrefix(body, []byte("\x93NUMPY")) {
		t, err := npy.Read(bytes.NewReader(body), npy.WithMaxBytes(MaxInferBody))
		if err != nil {
			return nil, err
		}
		if err := checkInputs(m.Graph.Inputs[:1], []*tensor.Dense{t}); err != nil {
			return nil, err
		}
		if err := checkFinite(t); err != nil {
			return nil, err
		}
		return t, nil
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("body is neither .npy nor a PNG/JPEG image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > MaxInferPixels {
		return nil, fmt.Errorf("image is %d×%d pixels; at most %d pixels are accepted", cfg.Width, cfg.Height, MaxInferPixels)
	}
	if b := int64(cfg.Width) * int64(cfg.Height) * bytesPerPixel(cfg.ColorModel); b > MaxDecodedImageBytes {
		return nil, fmt.Errorf("image is %d×%d pixels of %d bytes: %d MiB decoded, over the %d MiB accepted",
			cfg.Width, cfg.Height, bytesPerPixel(cfg.ColorModel), b>>20, MaxDecodedImageBytes>>20)
	}
	img, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("decoding the image: %w", err)
	}
	var p dataset.Preprocess
	if m.Sidecar != nil {
		p = m.Sidecar.Preprocess
	} else if len(vi.Shape) == 4 && (vi.Shape[1] == 1 || vi.Shape[1] == 3) {
		p = dataset.Preprocess{Grayscale: vi.Shape[1] == 1, Width: vi.Shape[3], Height: vi.Shape[2]}
	} else {
		return nil, fmt.Errorf("model %s input %v does not take images", m.ID, vi.Shape)
	}
	return p.Image(img)
}

// bytesPerPixel is what a decoded image of colour model cm holds per pixel.
func bytesPerPixel(cm color.Model) int64 {
	switch cm {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	return 4 // RGBA, NRGBA, paletted (at most), YCbCr (≤ 3)
}

// checkFinite refuses NaN and ±Inf inputs, naming the first one.
func checkFinite(t *tensor.Dense) error {
	for i, v := range t.Data().([]float32) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("input element %d (of shape %v) is %v: inputs must be finite", i, []int(t.Shape()), v)
		}
	}
	return nil
}
