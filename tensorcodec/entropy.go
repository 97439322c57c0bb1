package tensorcodec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// huff0 block modes.
const (
	huffRaw  = 0
	huffRLE  = 1
	huffCode = 2
)

var zstdLevels = [5]zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression}

// entropyEncoder holds the per-Encoder state of the entropy coders.
type entropyEncoder struct {
	zstd [5]*zstd.Encoder // by level, created on first use
	huff huff0.Scratch
}

// encode appends the entropy-coded form of src to dst.
func (e *entropyEncoder) encode(dst, src []byte, kind Entropy, level int) ([]byte, error) {
	switch kind {
	case EntropyS2:
		need := s2.MaxEncodedLen(len(src))
		if need < 0 {
			return dst, fmt.Errorf("%w: %d bytes too large for s2", ErrShape, len(src))
		}
		off := len(dst)
		dst = grow(dst, need)
		var out []byte
		switch level {
		case 2:
			out = s2.EncodeBetter(dst[off:], src)
		case 3:
			out = s2.EncodeBest(dst[off:], src)
		default:
			out = s2.Encode(dst[off:], src)
		}
		return dst[:off+len(out)], nil
	case EntropyZstd:
		level = max(1, min(level, 4))
		if e.zstd[level] == nil {
			z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevels[level]),
				zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
			if err != nil {
				return dst, fmt.Errorf("tensorcodec: zstd encoder: %w", err)
			}
			e.zstd[level] = z
		}
		return e.zstd[level].EncodeAll(src, dst), nil
	case EntropyHuff0:
		e.huff.Reuse = huff0.ReusePolicyNone
		for off := 0; off < len(src); off += huff0BlockSize {
			blk := src[off:min(off+huff0BlockSize, len(src))]
			out, _, err := huff0.Compress4X(blk, &e.huff)
			switch {
			case err == nil:
				dst = append(dst, huffCode)
				dst = binary.AppendUvarint(dst, uint64(len(out)))
				dst = append(dst, out...)
			case errors.Is(err, huff0.ErrUseRLE):
				dst = append(dst, huffRLE, blk[0])
			case errors.Is(err, huff0.ErrIncompressible):
				dst = append(dst, huffRaw)
				dst = append(dst, blk...)
			default:
				return dst, fmt.Errorf("tensorcodec: huff0: %w", err)
			}
		}
		return dst, nil
	}
	return append(dst, src...), nil
}

// entropyDecoder holds the per-Decoder state of the entropy decoders.
type entropyDecoder struct {
	zstd *zstd.Decoder
	huff huff0.Scratch
}

// decode restores exactly len(dst) bytes from src into dst.
func (d *entropyDecoder) decode(dst, src []byte, kind Entropy, maxBytes int, idx int) error {
	raw := len(dst)
	switch kind {
	case EntropyS2:
		n, err := s2.DecodedLen(src)
		if err != nil || n != raw {
			return fmt.Errorf("%w: tensor %d: s2 block declares %d bytes, want %d (%v)", ErrCorrupt, idx, n, raw, err)
		}
		out, err := s2.Decode(dst, src)
		if err != nil {
			return fmt.Errorf("%w: tensor %d: s2: %v", ErrCorrupt, idx, err)
		}
		if len(out) != raw || (raw > 0 && &out[0] != &dst[0]) {
			return fmt.Errorf("%w: tensor %d: s2 decoded %d bytes, want %d", ErrCorrupt, idx, len(out), raw)
		}
		return nil
	case EntropyZstd:
		if d.zstd == nil {
			z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(max(maxBytes, 1))), zstd.WithDecodeAllCapLimit(true))
			if err != nil {
				return fmt.Errorf("tensorcodec: zstd decoder: %w", err)
			}
			d.zstd = z
		}
		out, err := d.zstd.DecodeAll(src, dst[:0])
		if err != nil {
			return fmt.Errorf("%w: tensor %d: zstd: %v", ErrCorrupt, idx, err)
		}
		if len(out) != raw || (raw > 0 && &out[0] != &dst[0]) {
			return fmt.Errorf("%w: tensor %d: zstd decoded %d bytes, want %d", ErrCorrupt, idx, len(out), raw)
		}
		return nil
	case EntropyHuff0:
		off := 0
		for off < raw {
			blk := dst[off:min(off+huff0BlockSize, raw)]
			if len(src) == 0 {
				return fmt.Errorf("%w: tensor %d: huff0 stream ends at byte %d of %d", ErrCorrupt, idx, off, raw)
			}
			mode := src[0]
			src = src[1:]
			switch mode {
			case huffRaw:
				if len(src) < len(blk) {
					return fmt.Errorf("%w: tensor %d: huff0 raw block short", ErrCorrupt, idx)
				}
				src = src[copy(blk, src):]
			case huffRLE:
				if len(src) < 1 {
					return fmt.Errorf("%w: tensor %d: huff0 RLE block short", ErrCorrupt, idx)
				}
				for i := range blk {
					blk[i] = src[0]
				}
				src = src[1:]
			case huffCode:
				l, n := binary.Uvarint(src)
				if n <= 0 || l > uint64(len(src)-n) {
					return fmt.Errorf("%w: tensor %d: huff0 block length invalid", ErrCorrupt, idx)
				}
				body := src[n : n+int(l)]
				src = src[n+int(l):]
				d.huff.MaxDecodedSize = huff0BlockSize
				s, rem, err := huff0.ReadTable(body, &d.huff)
				if err != nil {
					return fmt.Errorf("%w: tensor %d: huff0 table: %v", ErrCorrupt, idx, err)
				}
				out, err := s.Decoder().Decompress4X(blk[:0:len(blk)], rem)
				if err != nil || len(out) != len(blk) {
					return fmt.Errorf("%w: tensor %d: huff0 block: %v", ErrCorrupt, idx, err)
				}
			default:
				return fmt.Errorf("%w: tensor %d: huff0 block mode %d", ErrCorrupt, idx, mode)
			}
			off += len(blk)
		}
		if len(src) != 0 {
			return fmt.Errorf("%w: tensor %d: %d bytes after the huff0 blocks", ErrCorrupt, idx, len(src))
		}
		return nil
	}
	if len(src) != raw {
		return fmt.Errorf("%w: tensor %d: payload %d bytes, want %d", ErrCorrupt, idx, len(src), raw)
	}
	copy(dst, src)
	return nil
}

func (d *entropyDecoder) close() {
	if d.zstd != nil {
		d.zstd.Close()
		d.zstd = nil
	}
}

func (e *entropyEncoder) close() {
	for i, z := range e.zstd {
		if z != nil {
			z.Close()
			e.zstd[i] = nil
		}
	}
}
