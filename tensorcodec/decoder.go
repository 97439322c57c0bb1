package tensorcodec

import (
	"fmt"
	"math"
	"sync"

	"gorgonia.org/tensor"
)

// Decoder turns messages back into float32 tensors. It checks every declared
// size against its [Limits] before allocating, verifies each record's
// CRC-32C, and reuses its scratch buffers and the caller's tensors, so
// steady-state decoding allocates nothing. The zero Decoder is ready to use
// with [DefaultLimits]. A Decoder is not safe for concurrent use.
type Decoder struct {
	cfg decoderConfig
	ent entropyDecoder

	raw   []byte    // entropy output
	codes []byte    // layout output
	nib   []byte    // unpacked sparse nibbles
	res   []byte    // lattice correction words
	tab   []float32 // lattice tables, by code, channel after channel
	toff  []int32   // start of each channel's table in tab (Channels + 1)
	hdr   Header
	src   sliceSource
	lut   [256]float32
}

// NewDecoder returns a Decoder configured by opts (default [DefaultLimits]).
func NewDecoder(opts ...DOption) (*Decoder, error) {
	d := &Decoder{}
	if err := d.Reset(opts...); err != nil {
		return nil, err
	}
	return d, nil
}

// Reset reconfigures d from defaults plus opts, keeping its buffers.
func (d *Decoder) Reset(opts ...DOption) error {
	var c decoderConfig
	c.setDefault()
	for _, o := range opts {
		if err := o(&c); err != nil {
			return err
		}
	}
	d.cfg = c
	d.ent.close() // recreated on demand with the new limits
	return nil
}

// Limits returns the limits d enforces.
func (d *Decoder) Limits() Limits { return d.cfg.lim.withDefaults() }

// Close releases the entropy decoders; the Decoder stays usable.
func (d *Decoder) Close() { d.ent.close() }

// Decode decodes the message in msg. Tensors are returned in dst[:n]: an
// existing dst[i] whose shape matches (contiguous float32, not a view) is
// overwritten in place; any other entry is replaced by a newly allocated
// tensor. msg must hold exactly one message. On error the returned tensors'
// contents are unspecified.
func (d *Decoder) Decode(dst []*tensor.Dense, msg []byte) ([]*tensor.Dense, error) {
	d.cfg.lim = d.cfg.lim.withDefaults() // a zero Decoder gets the defaults
	lim := &d.cfg.lim
	d.src = sliceSource{b: msg}
	s := &d.src
	defer func() { d.src.b = nil }()
	n, err := readMessagePrefix(s, lim)
	if err != nil {
		return dst[:0], err
	}
	if len(msg) > lim.MaxBytes {
		return dst[:0], fmt.Errorf("%w: message is %d bytes, limit %d", ErrLimit, len(msg), lim.MaxBytes)
	}
	dst = resizeTensors(dst, n)
	budget := lim.MaxElements
	h := &d.hdr
	for i := 0; i < n; i++ {
		start := s.off
		if err := readHeader(s, lim, &budget, i, h); err != nil {
			return dst, err
		}
		h.Len = s.off - start
		payload, err := s.readN(h.PayloadLen)
		if err != nil {
			return dst, ioErr(err, "tensor %d payload (%d bytes)", i, h.PayloadLen)
		}
		if err := checkCRC(h, msg[start:start+h.Len-4], payload, i); err != nil {
			return dst, err
		}
		if dst[i], err = d.decodeRecord(dst[i], h, payload, i); err != nil {
			return dst, err
		}
	}
	if s.off != len(msg) {
		return dst, fmt.Errorf("%w: %d trailing bytes after the last tensor", ErrCorrupt, len(msg)-s.off)
	}
	return dst, nil
}

func resizeTensors(dst []*tensor.Dense, n int) []*tensor.Dense {
	if cap(dst) >= n {
		return dst[:n]
	}
	nd := make([]*tensor.Dense, n)
	copy(nd, dst)
	return nd
}

// outputTensor returns t if it can receive a tensor of shape, else a new one.
func outputTensor(t *tensor.Dense, shape []int, n int) *tensor.Dense {
	if t != nil && t.Dtype() == tensor.Float32 && !t.IsMaterializable() && !t.RequiresIterator() {
		ts := t.Shape()
		if len(ts) == len(shape) && len(t.Float32s()) == n {
			same := true
			for i := range ts {
				same = same && ts[i] == shape[i]
			}
			if same {
				return t
			}
		}
	}
	s := make([]int, len(shape))
	copy(s, shape)
	return tensor.New(tensor.WithShape(s...), tensor.WithBacking(make([]float32, n)))
}

// decodeRecord decodes one record whose header h has been validated and
// whose payload's CRC matched.
func (d *Decoder) decodeRecord(t *tensor.Dense, h *Header, payload []byte, idx int) (*tensor.Dense, error) {
	n := h.Elements()
	tf := h.Transform
	w := tf.codeWidth()

	// Entropy stage.
	data := payload
	if h.Entropy != EntropyNone {
		d.raw = ensure(d.raw, h.RawLen)
		if err := d.ent.decode(d.raw, payload, h.Entropy, d.cfg.lim.MaxBytes, idx); err != nil {
			return t, err
		}
		data = d.raw
	}
	if len(data) != h.RawLen {
		return t, fmt.Errorf("%w: tensor %d: layout data %d bytes, header says %d", ErrCorrupt, idx, len(data), h.RawLen)
	}
	if tf.lattice() {
		return d.decodeLattice(t, h, data, idx)
	}

	// Layout stage: validate before touching the output.
	var bm, vals []byte
	if h.Layout == LayoutSparse {
		nbm := (n + 7) / 8
		bm, vals = data[:nbm], data[nbm:]
		k, err := sparseCount(bm, n)
		if err != nil {
			return t, fmt.Errorf("tensor %d: %w", idx, err)
		}
		if tf.nibbles() {
			if len(vals) != (k+1)/2 {
				return t, fmt.Errorf("%w: tensor %d: %d packed bytes for %d non-zero 4-bit codes", ErrCorrupt, idx, len(vals), k)
			}
			d.nib = ensure(d.nib, k)
			if err := unpackNibbles(d.nib, vals, k); err != nil {
				return t, fmt.Errorf("tensor %d: %w", idx, err)
			}
			vals = d.nib
		} else if len(vals) != k*w {
			return t, fmt.Errorf("%w: tensor %d: %d value bytes for %d non-zero %d-byte codes", ErrCorrupt, idx, len(vals), k, w)
		}
	} else if tf.nibbles() && n%2 == 1 && data[len(data)-1]>>4 != 0 {
		return t, fmt.Errorf("%w: tensor %d: non-zero padding nibble", ErrCorrupt, idx)
	}

	out := outputTensor(t, h.Shape(), n)
	x := out.Float32s()[:n]

	if tf.quantised() && h.Layout == LayoutSparse {
		d.sparseDequant(x, h, bm, vals)
		return out, nil
	}

	var codes []byte
	target := func() []byte {
		if tf == TransformNone || tf == TransformXorChannel {
			return f32Bytes(x)
		}
		d.codes = ensure(d.codes, n*w)
		return d.codes
	}
	switch {
	case h.Layout == LayoutSparse: // w > 1: 1-byte codes took the sparseDequant path
		codes = target()
		sparseDecodePlanes(codes, bm, vals, n, w)
	case tf.nibbles():
		codes = target()
		if err := unpackNibbles(codes, data, n); err != nil {
			return out, fmt.Errorf("tensor %d: %w", idx, err)
		}
	case h.Layout == LayoutShuffle && w > 1:
		codes = target()
		unshuffle(codes, data, w)
	case tf == TransformNone || tf == TransformXorChannel:
		codes = target()
		copy(codes, data)
	default:
		codes = data
	}

	// Value transform.
	switch tf {
	case TransformNone:
		if !nativeLE {
			swap32(codes)
		}
	case TransformXorChannel:
		if !nativeLE {
			swap32(codes)
		}
		outer, chans, inner := h.geometry()
		for o := 0; o < outer; o++ {
			for c := 0; c < chans; c++ {
				off := (o*chans + c) * inner
				xorRun(x[off:off+inner], math.Float32bits(h.XorBase(c)))
			}
		}
	case TransformFP16, TransformBF16:
		decodeHalf(x, codes, tf == TransformBF16)
	default:
		levels := h.levels()
		outer, chans, inner := h.geometry()
		for c := 0; c < chans; c++ {
			scale, zero := h.Param(c)
			if outer*inner < 64 {
				zf := float32(zero)
				mask := byte(levels)
				for o := 0; o < outer; o++ {
					off := (o*chans + c) * inner
					for i, b := range codes[off : off+inner] {
						x[off+i] = (float32((b+zero)&mask) - zf) * scale
					}
				}
				continue
			}
			dequantLUT(&d.lut, scale, zero, levels)
			for o := 0; o < outer; o++ {
				off := (o*chans + c) * inner
				dequantRun(x[off:off+inner], codes[off:off+inner], &d.lut)
			}
		}
	}
	return out, nil
}

// sparseDequant decodes a sparse, integer-quantised tensor in element
// order straight into x, one channel run at a time.
func (d *Decoder) sparseDequant(x []float32, h *Header, bm, vals []byte) {
	levels := h.levels()
	outer, chans, inner := h.geometry()
	k := 0
	lutFor := -1
	for o := 0; o < outer; o++ {
		for c := 0; c < chans; c++ {
			off := (o*chans + c) * inner
			if levels == 255 && inner < 64 && chans > 1 {
				// Short runs: a 256-entry table per run would cost more than it saves.
				scale, zero := h.Param(c)
				k = sparseDirectRun(x[off:off+inner], bm, off, vals, k, scale, zero)
				continue
			}
			if c != lutFor {
				scale, zero := h.Param(c)
				dequantLUT(&d.lut, scale, zero, levels)
				lutFor = c
			}
			k = sparseLUTRun(x[off:off+inner], bm, off, vals, k, &d.lut)
		}
	}
}

// sparseDirectRun is sparseLUTRun computing int8 values instead of
// looking them up.
func sparseDirectRun(x []float32, bm []byte, i0 int, vals []byte, k int, scale float32, zero uint8) int {
	last := len(vals) - 1
	if last < 0 {
		clear(x)
		return k
	}
	zf := float32(zero)
	for i := range x {
		j := i0 + i
		bit := int(bm[j>>3]>>(j&7)) & 1
		v := vals[min(k, last)] & byte(-bit)
		x[i] = (float32(v+zero) - zf) * scale
		k += bit
	}
	return k
}

func (h *Header) levels() int {
	if h.Transform.nibbles() {
		return 15
	}
	return 255
}

func (h *Header) geometry() (outer, chans, inner int) {
	if h.Transform.perChannel() {
		return geometry(h.Shape(), h.Axis)
	}
	return 1, 1, h.Elements()
}

var decoderPool sync.Pool

// Decode decodes the message in msg with [DefaultLimits], reusing tensors in
// dst as [Decoder.Decode] does. It is safe for concurrent use.
func Decode(dst []*tensor.Dense, msg []byte) ([]*tensor.Dense, error) {
	d, _ := decoderPool.Get().(*Decoder)
	if d == nil {
		d = &Decoder{}
		d.cfg.setDefault()
	}
	dst, err := d.Decode(dst, msg)
	decoderPool.Put(d)
	return dst, err
}
