package tensorcodec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Wire constants (see the package comment for the byte layout).
const (
	// Magic is the first four bytes of every message.
	Magic = "ESTC"
	// Version is the format version this package writes and reads.
	Version = 1
	// MaxRank is the largest tensor rank the format carries.
	MaxRank = 8

	dtypeFloat32     = 1
	quantParamSize   = 5  // float32 scale + uint8 zero point
	latticeParamSize = 15 // flags, K−1, zero, then a, m, c as float32
	maxVarintLen     = 10
	messagePrefix    = len(Magic) + 1
	huff0BlockSize   = 128 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is one tensor record's header as parsed from the wire.
type Header struct {
	DType     uint8 // 1 = float32, the only one defined
	Transform Transform
	Layout    Layout
	Entropy   Entropy
	Rank      int
	Dims      [MaxRank]int
	// Axis is the channel axis of per-channel transforms (0 otherwise).
	Axis int
	// Channels is the number of parameter sets (0 for transforms without
	// parameters, 1 for per-tensor ones, Dims[Axis] per channel).
	Channels int
	// TableLen is the number of lattice table entries (the sum of the
	// parameter sets' counts) for the lattice transforms, else 0.
	TableLen int
	// RawLen is the length of the layout stage's output, which the entropy
	// stage restores.
	RawLen int
	// PayloadLen is the length of the payload that follows the header.
	PayloadLen int
	// CRC is the stored CRC-32C (Castagnoli) of the header bytes and payload.
	CRC uint32
	// Len is the number of header bytes, CRC included.
	Len int

	params []byte // Channels × Transform.paramSize() bytes, aliases the input
}

// Shape returns the tensor's dimensions (aliases h).
func (h *Header) Shape() []int { return h.Dims[:h.Rank] }

// Elements returns the number of elements the tensor holds.
func (h *Header) Elements() int {
	n := 1
	for _, d := range h.Dims[:h.Rank] {
		n *= d
	}
	return n
}

// Param returns the scale and zero point of channel c (0 ≤ c < Channels)
// of an integer-quantised transform.
func (h *Header) Param(c int) (scale float32, zero uint8) {
	p := h.params[c*quantParamSize:]
	return math.Float32frombits(binary.LittleEndian.Uint32(p)), p[4]
}

// Lattice returns parameter set c (0 ≤ c < Channels) of a lattice transform.
func (h *Header) Lattice(c int) LatticeParams {
	return parseLattice(h.params[c*latticeParamSize:]).public()
}

// XorBase returns channel c's base value (0 ≤ c < Channels) of the
// xor-channel transform.
func (h *Header) XorBase(c int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(h.params[4*c:]))
}

// String summarises the header.
func (h *Header) String() string {
	return fmt.Sprintf("%v %s/%s/%s raw=%d payload=%d", h.Shape(), h.Transform, h.Layout, h.Entropy, h.RawLen, h.PayloadLen)
}

// layoutRange returns the [min, max] layout-output length for n elements
// (min = max for dense layouts) and tab lattice table entries, whose
// corrections (a bitmap of tab bits and up to tab 4-byte words) come first.
func layoutRange(t Transform, l Layout, n, tab int) (lo, hi int) {
	w := t.codeWidth()
	dense := n * w
	if t.nibbles() {
		dense = (n + 1) / 2
	}
	lo, hi = dense, dense
	if l == LayoutSparse {
		bm := (n + 7) / 8
		lo, hi = bm, bm+dense
	}
	if t.lattice() {
		lo += (tab + 7) / 8
		hi += (tab+7)/8 + 4*tab
	}
	return lo, hi
}

// source is what the header parser reads from: a byte slice or a stream.
type source interface {
	readByte() (byte, error)
	readN(n int) ([]byte, error)
}

type sliceSource struct {
	b   []byte
	off int
}

func (s *sliceSource) readByte() (byte, error) {
	if s.off >= len(s.b) {
		return 0, io.ErrUnexpectedEOF
	}
	c := s.b[s.off]
	s.off++
	return c, nil
}

func (s *sliceSource) readN(n int) ([]byte, error) {
	if n > len(s.b)-s.off {
		return nil, io.ErrUnexpectedEOF
	}
	p := s.b[s.off : s.off+n]
	s.off += n
	return p, nil
}

// streamSource reads exactly what it is asked for (no read-ahead) and keeps
// the bytes of the current header in buf for the CRC.
type streamSource struct {
	r   io.Reader
	br  io.ByteReader // r, when it is one
	buf []byte
	one [1]byte
}

func (s *streamSource) readByte() (byte, error) {
	var c byte
	if s.br != nil {
		var err error
		if c, err = s.br.ReadByte(); err != nil {
			return 0, err
		}
	} else {
		if _, err := io.ReadFull(s.r, s.one[:]); err != nil {
			return 0, err
		}
		c = s.one[0]
	}
	s.buf = append(s.buf, c)
	return c, nil
}

func (s *streamSource) readN(n int) ([]byte, error) {
	off := len(s.buf)
	s.buf = grow(s.buf, n)
	if _, err := io.ReadFull(s.r, s.buf[off:]); err != nil {
		return nil, err
	}
	return s.buf[off:], nil
}

// grow returns b extended by n bytes, reallocating only when cap is short.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

func readUvarint(s source, what string, idx int) (uint64, error) {
	var x uint64
	var shift uint
	for i := 0; i < maxVarintLen; i++ {
		c, err := s.readByte()
		if err != nil {
			return 0, ioErr(err, "tensor %d: %s", idx, what)
		}
		if c < 0x80 {
			if i == maxVarintLen-1 && c > 1 {
				break
			}
			return x | uint64(c)<<shift, nil
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, fmt.Errorf("%w: tensor %d: %s: varint overflows 64 bits", ErrCorrupt, idx, what)
}

// ioErr maps end-of-input to ErrTruncated and wraps other read errors.
func ioErr(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s", ErrTruncated, msg)
	}
	return fmt.Errorf("tensorcodec: reading %s: %w", msg, err)
}

// readMessagePrefix reads magic, version and tensor count.
func readMessagePrefix(s source, lim *Limits) (int, error) {
	p, err := s.readN(messagePrefix)
	if err != nil {
		return 0, ioErr(err, "message header")
	}
	if string(p[:len(Magic)]) != Magic {
		return 0, fmt.Errorf("%w: bad magic %q (want %q)", ErrCorrupt, p[:len(Magic)], Magic)
	}
	if p[len(Magic)] != Version {
		return 0, fmt.Errorf("%w: version %d (this decoder reads %d)", ErrVersion, p[len(Magic)], Version)
	}
	n, err := readUvarint(s, "tensor count", -1)
	if err != nil {
		return 0, err
	}
	if n > uint64(lim.MaxTensors) {
		return 0, fmt.Errorf("%w: message declares %d tensors, limit %d", ErrLimit, n, lim.MaxTensors)
	}
	return int(n), nil
}

// readHeader parses one record header from s into h and checks it against
// lim and against the elements still allowed in this message (*budget, which
// it decrements). It allocates nothing.
func readHeader(s source, lim *Limits, budget *int, idx int, h *Header) error {
	fixed, err := s.readN(4)
	if err != nil {
		return ioErr(err, "tensor %d header", idx)
	}
	h.DType = fixed[0]
	h.Transform, h.Layout, h.Entropy = Transform(fixed[1]), Layout(fixed[2]), Entropy(fixed[3])
	if h.DType != dtypeFloat32 {
		return fmt.Errorf("%w: tensor %d: dtype code %d (only 1 = float32 is defined)", ErrCorrupt, idx, h.DType)
	}
	if !h.Transform.valid() {
		return fmt.Errorf("%w: tensor %d: unknown transform code %d", ErrCorrupt, idx, fixed[1])
	}
	if !h.Layout.valid() {
		return fmt.Errorf("%w: tensor %d: unknown layout code %d", ErrCorrupt, idx, fixed[2])
	}
	if !h.Entropy.valid() {
		return fmt.Errorf("%w: tensor %d: unknown entropy code %d", ErrCorrupt, idx, fixed[3])
	}
	r, err := readUvarint(s, "rank", idx)
	if err != nil {
		return err
	}
	if r < 1 || r > MaxRank {
		return fmt.Errorf("%w: tensor %d: rank %d outside 1..%d", ErrCorrupt, idx, r, MaxRank)
	}
	h.Rank = int(r)
	n := 1
	for i := 0; i < h.Rank; i++ {
		d, err := readUvarint(s, "dimension", idx)
		if err != nil {
			return err
		}
		if d == 0 {
			return fmt.Errorf("%w: tensor %d: dimension %d is zero", ErrCorrupt, idx, i)
		}
		if d > uint64(*budget) || n > *budget/int(d) {
			return fmt.Errorf("%w: tensor %d: dimension %d = %d makes more than the %d elements allowed (limit %d per message)",
				ErrLimit, idx, i, d, *budget, lim.MaxElements)
		}
		h.Dims[i] = int(d)
		n *= int(d)
	}
	for i := h.Rank; i < MaxRank; i++ {
		h.Dims[i] = 0
	}
	*budget -= n
	h.Axis, h.Channels, h.TableLen, h.params = 0, 0, 0, nil
	if h.Transform.perChannel() {
		a, err := readUvarint(s, "channel axis", idx)
		if err != nil {
			return err
		}
		if a >= uint64(h.Rank) {
			return fmt.Errorf("%w: tensor %d: channel axis %d outside rank %d", ErrCorrupt, idx, a, h.Rank)
		}
		h.Axis = int(a)
		h.Channels = h.Dims[h.Axis]
	} else if h.Transform.quantised() || h.Transform == TransformLattice {
		h.Channels = 1
	}
	if h.Channels > 0 {
		ps := h.Transform.paramSize()
		if h.Channels > lim.MaxBytes/ps {
			return fmt.Errorf("%w: tensor %d: %d channel parameters exceed %d bytes", ErrLimit, idx, h.Channels, lim.MaxBytes)
		}
		if h.params, err = s.readN(h.Channels * ps); err != nil {
			return ioErr(err, "tensor %d transform parameters", idx)
		}
		switch {
		case h.Transform.quantised():
			maxZero := byte(255)
			if h.Transform.nibbles() {
				maxZero = 15
			}
			for c := 0; c < h.Channels; c++ {
				sc, z := h.Param(c)
				if !(sc > 0) || math.IsInf(float64(sc), 0) {
					return fmt.Errorf("%w: tensor %d: channel %d scale %v is not positive and finite", ErrCorrupt, idx, c, sc)
				}
				if z > maxZero {
					return fmt.Errorf("%w: tensor %d: channel %d zero point %d above %d", ErrCorrupt, idx, c, z, maxZero)
				}
			}
		case h.Transform.lattice():
			for c := 0; c < h.Channels; c++ {
				p := parseLattice(h.params[c*latticeParamSize:])
				if err := p.check(); err != nil {
					return fmt.Errorf("%w: tensor %d: channel %d lattice %v", ErrCorrupt, idx, c, err)
				}
				h.TableLen += p.k
			}
			if h.TableLen > lim.MaxBytes/4 {
				return fmt.Errorf("%w: tensor %d: lattice tables of %d entries exceed %d bytes", ErrLimit, idx, h.TableLen, lim.MaxBytes)
			}
		}
		// xor-channel bases are bit masks: every pattern is valid.
	}
	raw, err := readUvarint(s, "layout length", idx)
	if err != nil {
		return err
	}
	lo, hi := layoutRange(h.Transform, h.Layout, n, h.TableLen)
	if raw < uint64(lo) || raw > uint64(hi) {
		if lo == hi {
			return fmt.Errorf("%w: tensor %d: layout length %d, want %d for %d elements", ErrCorrupt, idx, raw, lo, n)
		}
		return fmt.Errorf("%w: tensor %d: layout length %d outside %d..%d for %d elements", ErrCorrupt, idx, raw, lo, hi, n)
	}
	if raw > uint64(lim.MaxBytes) {
		return fmt.Errorf("%w: tensor %d: layout length %d above %d bytes", ErrLimit, idx, raw, lim.MaxBytes)
	}
	h.RawLen = int(raw)
	pl, err := readUvarint(s, "payload length", idx)
	if err != nil {
		return err
	}
	if pl > uint64(lim.MaxBytes) {
		return fmt.Errorf("%w: tensor %d: payload length %d above %d bytes", ErrLimit, idx, pl, lim.MaxBytes)
	}
	if h.Entropy == EntropyNone && pl != raw {
		return fmt.Errorf("%w: tensor %d: payload length %d differs from layout length %d without entropy coding", ErrCorrupt, idx, pl, raw)
	}
	h.PayloadLen = int(pl)
	c, err := s.readN(4)
	if err != nil {
		return ioErr(err, "tensor %d checksum", idx)
	}
	h.CRC = binary.LittleEndian.Uint32(c)
	return nil
}

// Inspect parses every record header of the message in msg without decoding
// payloads (checksums are verified). It enforces lim as a Decoder would; a
// zero Limits means [DefaultLimits]. Header params alias msg.
func Inspect(msg []byte, lim Limits) ([]Header, error) {
	lim = lim.withDefaults()
	s := &sliceSource{b: msg}
	n, err := readMessagePrefix(s, &lim)
	if err != nil {
		return nil, err
	}
	budget := lim.MaxElements
	var hs []Header
	for i := 0; i < n; i++ {
		var h Header
		start := s.off
		if err := readHeader(s, &lim, &budget, i, &h); err != nil {
			return hs, err
		}
		h.Len = s.off - start
		payload, err := s.readN(h.PayloadLen)
		if err != nil {
			return hs, ioErr(err, "tensor %d payload (%d bytes)", i, h.PayloadLen)
		}
		if err := checkCRC(&h, msg[start:start+h.Len-4], payload, i); err != nil {
			return hs, err
		}
		hs = append(hs, h)
	}
	if s.off != len(msg) {
		return hs, fmt.Errorf("%w: %d trailing bytes after the last tensor", ErrCorrupt, len(msg)-s.off)
	}
	return hs, nil
}

func checkCRC(h *Header, hdr, payload []byte, idx int) error {
	got := crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, payload)
	if got != h.CRC {
		return fmt.Errorf("%w: tensor %d: CRC-32C %08x, header says %08x", ErrChecksum, idx, got, h.CRC)
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	if l.MaxElements <= 0 {
		l.MaxElements = defaultLimits.MaxElements
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultLimits.MaxBytes
	}
	if l.MaxTensors <= 0 {
		l.MaxTensors = defaultLimits.MaxTensors
	}
	return l
}

// appendUvarint appends x as a uvarint.
func appendUvarint(b []byte, x uint64) []byte { return binary.AppendUvarint(b, x) }
