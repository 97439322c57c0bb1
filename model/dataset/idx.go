package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrIDX is wrapped by every error about a malformed IDX file.
var ErrIDX = errors.New("dataset: malformed IDX data")

// MaxIDXBytes bounds the payload ReadIDX accepts (256 MiB).
const MaxIDXBytes = 1 << 28

// ReadIDX reads one IDX file of unsigned bytes (type 0x08), gzip-compressed
// or not, and returns its dimensions and payload. The magic number, the
// dimension count (1..4), the payload size (≤ MaxIDXBytes) and the payload
// length are checked; errors wrap ErrIDX.
func ReadIDX(r io.Reader) (dims []int, data []byte, err error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip: %v", ErrIDX, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrIDX, err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, nil, fmt.Errorf("%w: bad magic % x", ErrIDX, magic)
	}
	if magic[2] != 0x08 {
		return nil, nil, fmt.Errorf("%w: element type 0x%02x, want 0x08 (unsigned byte)", ErrIDX, magic[2])
	}
	nd := int(magic[3])
	if nd < 1 || nd > 4 {
		return nil, nil, fmt.Errorf("%w: %d dimensions, want 1..4", ErrIDX, nd)
	}
	total := 1
	dims = make([]int, nd)
	for i := range dims {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("%w: dimension %d: %v", ErrIDX, i, err)
		}
		if d == 0 || uint64(d)*uint64(total) > MaxIDXBytes {
			return nil, nil, fmt.Errorf("%w: dimension %d is %d (payload limit %d bytes)", ErrIDX, i, d, MaxIDXBytes)
		}
		dims[i] = int(d)
		total *= int(d)
	}
	data = make([]byte, total)
	if n, err := io.ReadFull(br, data); err != nil {
		return nil, nil, fmt.Errorf("%w: payload has %d of %d bytes: %v", ErrIDX, n, total, err)
	}
	return dims, data, nil
}

func readIDXFile(path string) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	dims, data, err := ReadIDX(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return dims, data, nil
}

// readIDXPair reads an images file (N×H×W) and a labels file (N) and builds
// a Set preprocessed with p. Labels ≥ len(classes) are an error.
func readIDXPair(name, imagesPath, labelsPath string, classes []string, p Preprocess, limit int) (*Set, error) {
	idims, pix, err := readIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(idims) != 3 {
		return nil, fmt.Errorf("%s: %w: images have %d dimensions, want 3 (N×H×W)", imagesPath, ErrIDX, len(idims))
	}
	ldims, labels, err := readIDXFile(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 {
		return nil, fmt.Errorf("%s: %w: labels have %d dimensions, want 1", labelsPath, ErrIDX, len(ldims))
	}
	n, h, w := idims[0], idims[1], idims[2]
	if ldims[0] != n {
		return nil, fmt.Errorf("dataset: %s has %d images but %s has %d labels", imagesPath, n, labelsPath, ldims[0])
	}
	if limit > 0 && limit < n {
		n = limit
	}
	s := newSet(name, classes, p, n)
	for i := 0; i < n; i++ {
		l := int(labels[i])
		if l >= len(classes) {
			return nil, fmt.Errorf("dataset: %s: %w: label %d of image %d, want < %d", labelsPath, ErrLabel, l, i, len(classes))
		}
		s.Labels[i] = l
		p.fromGray8(pix[i*h*w:(i+1)*h*w], w, h, s.Image(i))
	}
	return s, nil
}
