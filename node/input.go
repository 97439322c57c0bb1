package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders for POST /v1/infer
	_ "image/png"
	"io"
	"math"
	"sync"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/npy"
	"golang.org/x/sync/semaphore"
	"gorgonia.org/tensor"
)

// MaxBufferedBodies bounds the bytes of POST /v1/infer bodies held at once
// across all requests; a request waits for its share (within its read
// timeout) before reading its body.
const MaxBufferedBodies = 96 << 20

// sniffBytes is how much of a body is read to tell what it is (and, for an
// image, to read its header: a JPEG's EXIF and ICC segments come before
// its size) before any more is accepted.
const sniffBytes = 256 << 10

// sniffReaders reuses the sniffing buffers across requests.
var sniffReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, sniffBytes) }}

// errBodyTooLarge is a body over what its own header allows.
var errBodyTooLarge = errors.New("body too large")

// readInferBody reads an inference request's body in bounded memory: it
// looks at the first bytes, refuses anything that is neither a .npy array
// nor a PNG/JPEG image, and refuses images over the pixel budgets from
// their header, before reading more; then it reads at most what the format
// allows for model m (a .npy the size of m's input; an image no more than
// its decoded size), holding that share of budget until release is called.
func readInferBody(ctx context.Context, r io.Reader, declared int64, m *Model, budget *semaphore.Weighted) (body []byte, release func(), err error) {
	br := sniffReaders.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() { br.Reset(nil); sniffReaders.Put(br) }() // the body is copied out before this
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, nil, fmt.Errorf("reading body: %w", err)
	}
	var limit int64
	if bytes.HasPrefix(head, []byte("\x93NUMPY")) {
		limit = npyLimit(m)
	} else {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
		if err != nil {
			return nil, nil, fmt.Errorf("body is neither .npy nor a PNG/JPEG image (read from its first %d bytes): %w", len(head), err)
		}
		if err := checkImageSize(cfg); err != nil {
			return nil, nil, err
		}
		limit = int64(cfg.Width)*int64(cfg.Height)*bytesPerPixel(cfg.ColorModel) + 1<<20
	}
	limit = min(limit, MaxInferBody)
	if declared > limit {
		return nil, nil, fmt.Errorf("%w: %d bytes declared, at most %d for this input", errBodyTooLarge, declared, limit)
	}
	size := limit
	if declared >= 0 {
		size = declared
	}
	if err := budget.Acquire(ctx, size+1); err != nil {
		return nil, nil, fmt.Errorf("waiting for body memory: %w", err)
	}
	release = func() { budget.Release(size + 1) }
	capacity := size + 1 // a declared length is read into exactly its size
	if declared < 0 {
		capacity = min(capacity, int64(len(head))+1) // sent chunked: grow as it comes
	}
	buf := bytes.NewBuffer(make([]byte, 0, capacity))
	if _, err := buf.ReadFrom(io.LimitReader(br, size+1)); err != nil {
		release()
		return nil, nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(buf.Len()) > size {
		release()
		return nil, nil, fmt.Errorf("%w: over %d bytes for this input", errBodyTooLarge, size)
	}
	return buf.Bytes(), release, nil
}

// npyLimit is the largest .npy body model m's input can take: its header
// and float64 data.
func npyLimit(m *Model) int64 {
	n := int64(8)
	for _, d := range m.Graph.Inputs[0].Shape {
		if d <= 0 {
			return MaxInferBody
		}
		n *= int64(d)
	}
	return n + 64<<10
}

// checkImageSize refuses images over the pixel and decoded-byte budgets.
func checkImageSize(cfg image.Config) error {
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > MaxInferPixels {
		return fmt.Errorf("image is %d×%d pixels; at most %d pixels are accepted", cfg.Width, cfg.Height, MaxInferPixels)
	}
	if b := int64(cfg.Width) * int64(cfg.Height) * bytesPerPixel(cfg.ColorModel); b > MaxDecodedImageBytes {
		return fmt.Errorf("image is %d×%d pixels of %d bytes: %d MiB decoded, over the %d MiB accepted",
			cfg.Width, cfg.Height, bytesPerPixel(cfg.ColorModel), b>>20, MaxDecodedImageBytes>>20)
	}
	return nil
}

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
	if err := checkImageSize(cfg); err != nil {
		return nil, err
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
