package tensorcodec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"gorgonia.org/tensor"
)

// Stats reports what one encode produced and the error its lossy stages
// introduced. Errors are measured against the exact values the decoder will
// reconstruct. Non-finite inputs (NaN, ±Inf) are counted in NonFinite and
// left out of the error sums.
type Stats struct {
	Tensors  int
	Elements int
	// RawBytes is the float32 size of the tensors (4 × Elements).
	RawBytes int
	// Bytes is the number of message bytes written.
	Bytes int
	// MaxAbsErr is the largest |x - x̂| over all finite elements.
	MaxAbsErr float64
	// RelRMSE is sqrt(Σ(x - x̂)² / Σx²) over all finite elements (0 when Σx² = 0).
	RelRMSE float64
	// SumSqErr and SumSq are Σ(x - x̂)² and Σx², kept so Stats can be added.
	SumSqErr, SumSq float64
	// NonFinite counts NaN and ±Inf inputs of lossy transforms.
	NonFinite int
}

// Ratio returns RawBytes / Bytes (0 when nothing was written).
func (s Stats) Ratio() float64 {
	if s.Bytes == 0 {
		return 0
	}
	return float64(s.RawBytes) / float64(s.Bytes)
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Tensors += o.Tensors
	s.Elements += o.Elements
	s.RawBytes += o.RawBytes
	s.Bytes += o.Bytes
	s.MaxAbsErr = max(s.MaxAbsErr, o.MaxAbsErr)
	s.SumSqErr += o.SumSqErr
	s.SumSq += o.SumSq
	s.NonFinite += o.NonFinite
	s.RelRMSE = relRMSE(s.SumSqErr, s.SumSq)
}

func relRMSE(e2, x2 float64) float64 {
	if x2 == 0 {
		return 0
	}
	return math.Sqrt(e2 / x2)
}

func (s *Stats) addAcc(a *errAcc, elements int) {
	s.Tensors++
	s.Elements += elements
	s.RawBytes += 4 * elements
	s.MaxAbsErr = max(s.MaxAbsErr, float64(a.maxE))
	s.SumSqErr += a.sumE2
	s.SumSq += a.sumX2
	s.NonFinite += a.nonFinite
	s.RelRMSE = relRMSE(s.SumSqErr, s.SumSq)
}

// Encoder turns float32 tensors into messages. Its scratch buffers and
// entropy coders are kept between calls, so steady-state encoding allocates
// nothing. The zero Encoder is usable and writes raw float32 (none + plain,
// no entropy coding); use [NewEncoder] for the default [PresetLossless]. An
// Encoder is not safe for concurrent use; use one per goroutine (or the
// package-level functions, which pool them).
type Encoder struct {
	cfg encoderConfig
	ent entropyEncoder

	codes  []byte // transform output
	codes2 []byte // second candidate's codes (exact paths)
	lay    []byte // layout output
	pay    []byte // entropy output
	params []byte
	lo, hi []float32

	lat latticeEnc // exact-path scratch
	par []latp     // chosen lattice parameter sets
	res []byte     // chosen lattice tables' correction words
}

// NewEncoder returns an Encoder configured by opts (default [PresetLossless]).
func NewEncoder(opts ...EOption) (*Encoder, error) {
	e := &Encoder{}
	if err := e.Reset(opts...); err != nil {
		return nil, err
	}
	return e, nil
}

// Reset reconfigures e from defaults plus opts, keeping its buffers.
func (e *Encoder) Reset(opts ...EOption) error {
	var c encoderConfig
	c.setDefault()
	for _, o := range opts {
		if err := o(&c); err != nil {
			return err
		}
	}
	e.cfg = c
	return nil
}

// Close releases the entropy coders. The Encoder stays usable (they are
// recreated on demand).
func (e *Encoder) Close() { e.ent.close() }

// Encode appends one message holding ts to dst and returns it with the
// encode's statistics. On error dst is returned unchanged in length.
func (e *Encoder) Encode(dst []byte, ts ...*tensor.Dense) ([]byte, Stats, error) {
	var st Stats
	start := len(dst)
	dst = appendMessagePrefix(dst, len(ts))
	for i, t := range ts {
		hdr, payload, err := e.encodeRecord(dst, t, i, &st)
		if err != nil {
			return dst[:start], Stats{}, err
		}
		dst = append(hdr, payload...)
	}
	st.Bytes = len(dst) - start
	return dst, st, nil
}

func appendMessagePrefix(dst []byte, n int) []byte {
	dst = append(dst, Magic...)
	dst = append(dst, Version)
	return appendUvarint(dst, uint64(n))
}

// autoAxis picks the channel axis when none was configured: axis 1 (NCHW
// channels) for rank ≥ 2 as long as every channel holds at least 64
// elements, else the axis with the fewest entries, so the 5-byte parameter
// sets never outweigh the codes (e.g. [1, 4096] gets one set, not 4096).
func autoAxis(shape []int, n int) int {
	axis := min(1, len(shape)-1)
	if n/shape[axis] >= 64 {
		return axis
	}
	for a, d := range shape {
		if d < shape[axis] {
			axis = a
		}
	}
	return axis
}

// checkTensor reports whether the format can carry t, without touching its data.
func checkTensor(t *tensor.Dense, idx int) error {
	if t == nil {
		return fmt.Errorf("%w: tensor %d is nil", ErrShape, idx)
	}
	if t.Dtype() != tensor.Float32 {
		return fmt.Errorf("%w: tensor %d has dtype %v, want float32", ErrDType, idx, t.Dtype())
	}
	shape := t.Shape()
	if len(shape) < 1 || len(shape) > MaxRank {
		return fmt.Errorf("%w: tensor %d has rank %d, want 1..%d", ErrShape, idx, len(shape), MaxRank)
	}
	for i, d := range shape {
		if d <= 0 {
			return fmt.Errorf("%w: tensor %d dimension %d is %d", ErrShape, idx, i, d)
		}
	}
	return nil
}

// denseData returns the float32 elements and shape of t, checking that the
// format can carry it. Views are materialised (which allocates).
func denseData(t *tensor.Dense, idx int) ([]float32, []int, error) {
	if err := checkTensor(t, idx); err != nil {
		return nil, nil, err
	}
	shape := t.Shape()
	n := shape.TotalSize()
	if t.RequiresIterator() || t.IsMaterializable() {
		m, ok := t.Materialize().(*tensor.Dense)
		if !ok {
			return nil, nil, fmt.Errorf("%w: tensor %d: view does not materialise to a Dense", ErrShape, idx)
		}
		t = m
	}
	x := t.Float32s()
	if len(x) < n {
		return nil, nil, fmt.Errorf("%w: tensor %d holds %d elements, shape %v needs %d", ErrShape, idx, len(x), shape, n)
	}
	return x[:n], shape, nil
}

func ensure(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/8)
	}
	return b[:n]
}

func ensureF(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// minExactElements is the smallest tensor the exact paths look at: below
// it their parameters and tables cannot pay for themselves.
const minExactElements = 256

// encodeRecord appends record idx's header to dst and returns it with the
// payload, which aliases the Encoder's scratch or the tensor's memory and is
// valid until the next call.
func (e *Encoder) encodeRecord(dst []byte, t *tensor.Dense, idx int, st *Stats) (hdr, payload []byte, err error) {
	x, shape, err := denseData(t, idx)
	if err != nil {
		return dst, nil, err
	}
	n := len(x)
	tf, lay := e.cfg.transform, e.cfg.layout
	var acc errAcc
	var data []byte
	params := e.params[:0]
	axis := 0
	if (e.cfg.exact && tf == TransformNone && n >= minExactElements) || tf.lattice() || tf == TransformXorChannel {
		if tf.perChannel() && e.cfg.axis >= len(shape) {
			return dst, nil, fmt.Errorf("%w: tensor %d: channel axis %d but rank %d", ErrShape, idx, e.cfg.axis, len(shape))
		}
		tf, lay, axis, params, data = e.encodeExact(x, shape)
		if tf != TransformNone {
			return e.finishRecord(dst, shape, tf, lay, axis, params, data, &acc, st)
		}
	}
	w := tf.codeWidth()
	if w == 1 && lay == LayoutShuffle {
		lay = LayoutPlain
	}
	if tf.perChannel() {
		axis = e.cfg.axis
		if axis < 0 {
			axis = autoAxis(shape, n)
		}
		if axis >= len(shape) {
			return dst, nil, fmt.Errorf("%w: tensor %d: channel axis %d but rank %d", ErrShape, idx, axis, len(shape))
		}
	}

	// Value transform.
	var codes []byte
	switch {
	case tf == TransformNone:
		if nativeLE {
			codes = f32Bytes(x)
		} else {
			e.codes = ensure(e.codes, 4*n)
			codes = e.codes
			for i, v := range x {
				binary.LittleEndian.PutUint32(codes[4*i:], math.Float32bits(v))
			}
		}
	case tf == TransformFP16 || tf == TransformBF16:
		e.codes = ensure(e.codes, 2*n)
		codes = e.codes
		acc = encodeHalf(codes, x, tf == TransformBF16)
	default:
		mask := 255
		if tf.nibbles() {
			mask = 15
		}
		levels := mask
		if e.cfg.levels > 0 {
			levels = min(e.cfg.levels, mask)
		}
		outer, chans, inner := 1, 1, n
		if tf.perChannel() {
			outer, chans, inner = geometry(shape, axis)
		}
		e.lo, e.hi = ensureF(e.lo, chans), ensureF(e.hi, chans)
		clear(e.lo)
		clear(e.hi)
		for o := 0; o < outer; o++ {
			for c := 0; c < chans; c++ {
				run := x[(o*chans+c)*inner:][:inner]
				l, h := minMax(run)
				if !finite(l) || !finite(h) {
					l, h = minMaxFinite(run)
				}
				e.lo[c], e.hi[c] = min(e.lo[c], l), max(e.hi[c], h)
			}
		}
		for c := 0; c < chans; c++ {
			s, z := chooseParams(e.lo[c], e.hi[c], levels)
			params = binary.LittleEndian.AppendUint32(params, math.Float32bits(s))
			params = append(params, z)
		}
		e.params = params
		e.codes = ensure(e.codes, n)
		codes = e.codes
		for o := 0; o < outer; o++ {
			for c := 0; c < chans; c++ {
				p := params[c*quantParamSize:]
				s := math.Float32frombits(binary.LittleEndian.Uint32(p))
				off := (o*chans + c) * inner
				quantRun(codes[off:off+inner], x[off:off+inner], s, p[4], levels, mask, &acc)
			}
		}
	}

	// Layout.
	switch lay {
	case LayoutPlain:
		data = codes
		if tf.nibbles() {
			e.lay = ensure(e.lay, (n+1)/2)
			data = packNibbles(e.lay, codes)
		}
	case LayoutShuffle:
		e.lay = ensure(e.lay, n*w)
		data = e.lay
		shuffle(data, codes, w)
	case LayoutSparse:
		e.lay = ensure(e.lay, sparseCap(n, w))
		if w > 1 { // non-zero codes go out as byte planes
			data, _ = sparseEncodePlanes(e.lay, codes, w)
		} else {
			data, _ = sparseEncode(e.lay, codes, 1)
		}
		if tf.nibbles() {
			nbm := (n + 7) / 8
			packed := packNibbles(data[nbm:], data[nbm:])
			data = data[:nbm+len(packed)]
		}
	}

	return e.finishRecord(dst, shape, tf, lay, axis, params, data, &acc, st)
}

// finishRecord entropy-codes one record's layout output data and appends
// its header to dst; it returns the header and the payload (which aliases
// the Encoder's scratch or the tensor's memory until the next call).
func (e *Encoder) finishRecord(dst []byte, shape []int, tf Transform, lay Layout, axis int, params, data []byte, acc *errAcc, st *Stats) (hdr, payload []byte, err error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	// Entropy.
	ent := e.cfg.entropy
	payload = data
	if ent != EntropyNone {
		if ent == EntropyZstd && e.cfg.exact && tf.Lossless() {
			e.pay, err = e.zstdSegments(e.pay[:0], tf, lay, n, data)
		} else {
			e.pay, err = e.ent.encode(e.pay[:0], data, ent, e.cfg.level)
		}
		if err != nil {
			return dst, nil, err
		}
		if len(e.pay) < len(data) {
			payload = e.pay
		} else {
			ent = EntropyNone
		}
	}

	// Header.
	start := len(dst)
	dst = append(dst, dtypeFloat32, byte(tf), byte(lay), byte(ent))
	dst = appendUvarint(dst, uint64(len(shape)))
	for _, d := range shape {
		dst = appendUvarint(dst, uint64(d))
	}
	if tf.perChannel() {
		dst = appendUvarint(dst, uint64(axis))
	}
	dst = append(dst, params...)
	dst = appendUvarint(dst, uint64(len(data)))
	dst = appendUvarint(dst, uint64(len(payload)))
	crc := crc32.Update(crc32.Checksum(dst[start:], castagnoli), castagnoli, payload)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	st.addAcc(acc, n)
	return dst, payload, nil
}

var encoderPools [numPresets]sync.Pool

// EncodePreset appends one message holding ts, encoded with preset p, to
// dst. It is safe for concurrent use (Encoders are pooled).
func EncodePreset(dst []byte, p Preset, ts ...*tensor.Dense) ([]byte, Stats, error) {
	if p >= numPresets {
		return dst, Stats{}, fmt.Errorf("%w: unknown preset %d", ErrOption, p)
	}
	e, _ := encoderPools[p].Get().(*Encoder)
	if e == nil {
		var err error
		if e, err = NewEncoder(WithPreset(p)); err != nil {
			return dst, Stats{}, err
		}
	}
	dst, st, err := e.Encode(dst, ts...)
	encoderPools[p].Put(e)
	return dst, st, err
}

// Encode appends one message holding ts, encoded with [PresetLossless], to
// dst. It is safe for concurrent use.
func Encode(dst []byte, ts ...*tensor.Dense) ([]byte, Stats, error) {
	return EncodePreset(dst, PresetLossless, ts...)
}
