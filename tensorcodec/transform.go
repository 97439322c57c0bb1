package tensorcodec

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// nativeLE reports whether float32 memory is already in wire (little-endian) order.
var nativeLE = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// f32Bytes views f as its bytes (native order).
func f32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// swap32 reverses the byte order of every 4-byte word of b in place; used only
// on big-endian machines.
func swap32(b []byte) {
	for i := 0; i+4 <= len(b); i += 4 {
		binary.BigEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(b[i:]))
	}
}

// errAcc accumulates the error a lossy transform introduced.
type errAcc struct {
	sumE2, sumX2 float64
	maxE         float32
	nonFinite    int // inputs that were NaN or ±Inf (excluded from the sums)
}

func (a *errAcc) add(b errAcc) {
	a.sumE2 += b.sumE2
	a.sumX2 += b.sumX2
	a.nonFinite += b.nonFinite
	if b.maxE > a.maxE {
		a.maxE = b.maxE
	}
}

func finite(x float32) bool { return math.Float32bits(x)&0x7f800000 != 0x7f800000 }

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// --- float16 / bfloat16 ---

// f32ToF16 rounds f to IEEE binary16, to nearest even. NaNs stay NaN (quiet,
// top payload bits kept), ±Inf stay ±Inf, finite values beyond the binary16
// range saturate to ±65504.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	e := int(b>>23) & 0xff
	m := b & 0x7fffff
	if e == 0xff {
		if m == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(m>>13)
	}
	e -= 127 - 15
	if e >= 0x1f {
		return sign | 0x7bff
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		m |= 0x800000
		shift := uint(14 - e)
		r := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | m>>13
	rem := m & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++
	}
	if r >= 0x7c00 {
		r = 0x7bff
	}
	return sign | uint16(r)
}

// f32ToF16Fast is f32ToF16 with an inlinable path for values in the
// binary16 normal range.
func f32ToF16Fast(f float32) uint16 {
	b := math.Float32bits(f)
	if (b>>23)&0xff-113 < 30 {
		// Rebias the exponent, round to nearest even by adding 0xfff plus
		// the kept lsb; a carry into exponent 31 saturates.
		r := min(((b&0x7fffffff)-112<<23+0xfff+(b>>13)&1)>>13, 0x7bff)
		return uint16(b>>16)&0x8000 | uint16(r)
	}
	return f32ToF16(f)
}

// f16ToF32Fast is f16ToF32 with an inlinable path for normal values.
func f16ToF32Fast(h uint16) float32 {
	if e := (h >> 10) & 0x1f; e-1 < 30 {
		return math.Float32frombits(uint32(h&0x8000)<<16 | (uint32(h&0x7fff)<<13 + 112<<23))
	}
	return f16ToF32(h)
}

// f16ToF32 widens a binary16 value exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x3ff)
	switch {
	case e == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | m<<13)
	case e != 0:
		return math.Float32frombits(sign | (e+112)<<23 | m<<13)
	case m == 0:
		return math.Float32frombits(sign)
	default: // subnormal: m × 2⁻²⁴, exact in float32
		v := float32(m) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	}
}

// f32ToBF16 rounds f to bfloat16, to nearest even; NaNs stay (quiet) NaN,
// finite values that would round to infinity saturate.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 {
		if b&0x7fffff != 0 {
			return uint16(b>>16) | 0x40
		}
		return uint16(b >> 16)
	}
	r := (b + 0x7fff + (b>>16)&1) >> 16
	if r&0x7f80 == 0x7f80 {
		r--
	}
	return uint16(r)
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// encodeHalf converts src into 2-byte little-endian codes in dst and
// accumulates the error. bf selects bfloat16. The fp16 loop carries the
// normal-range conversions inline (see f32ToF16Fast, f16ToF32Fast).
func encodeHalf(dst []byte, src []float32, bf bool) errAcc {
	var a errAcc
	dst = dst[:2*len(src)]
	const chunk = 4096
	for base := 0; base < len(src); base += chunk {
		s := src[base:min(base+chunk, len(src))]
		d := dst[2*base : 2*base+2*len(s)]
		var se, sx float32
		var mb uint32
		if bf {
			for i, x := range s {
				h := f32ToBF16(x)
				binary.LittleEndian.PutUint16(d[2*i:], h)
				e := x - bf16ToF32(h)
				se += e * e
				sx += x * x
				mb = max(mb, math.Float32bits(e)&0x7fffffff)
			}
		} else {
			for i, x := range s {
				b := math.Float32bits(x)
				var h uint16
				var y float32
				if (b>>23)&0xff-113 < 30 {
					r := min(((b&0x7fffffff)-112<<23+0xfff+(b>>13)&1)>>13, 0x7bff)
					h = uint16(b>>16)&0x8000 | uint16(r)
					y = math.Float32frombits(b&0x80000000 | (r<<13 + 112<<23))
				} else {
					h = f32ToF16(x)
					y = f16ToF32(h)
				}
				binary.LittleEndian.PutUint16(d[2*i:], h)
				e := x - y
				se += e * e
				sx += x * x
				mb = max(mb, math.Float32bits(e)&0x7fffffff)
			}
		}
		if isFinite64(float64(se)) && isFinite64(float64(sx)) {
			a.add(errAcc{sumE2: float64(se), sumX2: float64(sx), maxE: math.Float32frombits(mb)})
			continue
		}
		a.add(halfErrSlow(s, bf))
	}
	return a
}

func halfErrSlow(s []float32, bf bool) errAcc {
	var a errAcc
	for _, x := range s {
		if !finite(x) {
			a.nonFinite++
			continue
		}
		var y float32
		if bf {
			y = bf16ToF32(f32ToBF16(x))
		} else {
			y = f16ToF32(f32ToF16(x))
		}
		e := float64(x) - float64(y)
		a.sumE2 += e * e
		a.sumX2 += float64(x) * float64(x)
		if ae := float32(math.Abs(e)); ae > a.maxE {
			a.maxE = ae
		}
	}
	return a
}

func isFinite64(x float64) bool { return !math.IsInf(x, 0) && !math.IsNaN(x) }

func decodeHalf(dst []float32, src []byte, bf bool) {
	src = src[:2*len(dst)]
	if bf {
		for i := range dst {
			dst[i] = bf16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return
	}
	for i := range dst {
		h := binary.LittleEndian.Uint16(src[2*i:])
		if e := (h >> 10) & 0x1f; e-1 < 30 {
			dst[i] = math.Float32frombits(uint32(h&0x8000)<<16 | (uint32(h&0x7fff)<<13 + 112<<23))
		} else {
			dst[i] = f16ToF32(h)
		}
	}
}

// --- affine integer quantisation ---

// minMax returns min(0, min s) and max(0, max s) with two branch-free
// integer maxima over the bit patterns: as int32, the largest pattern is the
// largest float when that is ≥ +0; as uint32, the largest pattern is the
// most negative float when any is negative. A NaN in s can show up as a NaN
// result (callers then fall back to minMaxFinite).
func minMax(s []float32) (lo, hi float32) {
	var h0, h1, h2, h3 int32
	var u0, u1, u2, u3 uint32
	i := 0
	for ; i+4 <= len(s); i += 4 {
		x := s[i : i+4 : i+4]
		b0, b1, b2, b3 := math.Float32bits(x[0]), math.Float32bits(x[1]), math.Float32bits(x[2]), math.Float32bits(x[3])
		h0, h1, h2, h3 = max(h0, int32(b0)), max(h1, int32(b1)), max(h2, int32(b2)), max(h3, int32(b3))
		u0, u1, u2, u3 = max(u0, b0), max(u1, b1), max(u2, b2), max(u3, b3)
	}
	for ; i < len(s); i++ {
		b := math.Float32bits(s[i])
		h0, u0 = max(h0, int32(b)), max(u0, b)
	}
	hi = math.Float32frombits(uint32(max(h0, h1, h2, h3)))
	if u := max(u0, u1, u2, u3); u&0x80000000 != 0 {
		lo = math.Float32frombits(u)
	}
	return lo, hi
}

// minMaxFinite is minMax ignoring ±Inf as well.
func minMaxFinite(s []float32) (lo, hi float32) {
	for _, x := range s {
		if !finite(x) {
			continue
		}
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// chooseParams picks scale and zero point so that [lo, hi] (which contains 0)
// maps onto 0..levels and 0 maps exactly onto the zero point.
func chooseParams(lo, hi float32, levels int) (scale float32, zero uint8) {
	if !(hi > lo) {
		return 1, 0
	}
	s := (float64(hi) - float64(lo)) / float64(levels)
	scale = float32(s)
	if scale < math.SmallestNonzeroFloat32 || math.IsInf(float64(scale), 0) {
		scale = max(math.SmallestNonzeroFloat32, min(scale, math.MaxFloat32))
	}
	z := math.Round(-float64(lo) / float64(scale))
	return scale, uint8(max(0, min(float64(levels), z)))
}

// quantRun quantises one run of values sharing a scale and zero point into
// codes (q - zero) mod 2^bits, q in 0..levels, and accumulates the error of
// the reconstruction (q - zero)·scale that the decoder computes. mask is
// 2^bits − 1 of the transform (255 for int8, 15 for int4); levels ≤ mask.
//
// The fast loop clamps in the integer domain (branch-free CMOVs) and keeps
// the largest error as float bits (non-negative floats order like their
// bits). It assumes finite inputs within the run's [lo, hi]; a chunk whose
// error sums come out non-finite (NaN or ±Inf present) is redone by
// quantRunSlow.
func quantRun(dst []byte, src []float32, scale float32, zero uint8, levels, mask int, a *errAcc) {
	dst = dst[:len(src)]
	inv := 1 / scale
	zf := float32(zero)
	lq := int32(levels)
	zq := int32(zero)
	mq := int32(mask)
	const chunk = 4096
	for base := 0; base < len(src); base += chunk {
		s := src[base:min(base+chunk, len(src))]
		d := dst[base : base+len(s)]
		var se0, se1, se2, se3, sx0, sx1, sx2, sx3 float32
		var mb0, mb1 uint32
		i := 0
		for ; i+4 <= len(s); i += 4 {
			x := s[i : i+4 : i+4]
			dd := d[i : i+4 : i+4]
			x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
			q0 := min(max(int32(x0*inv+zf+0.5), 0), lq)
			q1 := min(max(int32(x1*inv+zf+0.5), 0), lq)
			q2 := min(max(int32(x2*inv+zf+0.5), 0), lq)
			q3 := min(max(int32(x3*inv+zf+0.5), 0), lq)
			dd[0], dd[1], dd[2], dd[3] = byte((q0-zq)&mq), byte((q1-zq)&mq), byte((q2-zq)&mq), byte((q3-zq)&mq)
			e0 := x0 - (float32(q0)-zf)*scale
			e1 := x1 - (float32(q1)-zf)*scale
			e2 := x2 - (float32(q2)-zf)*scale
			e3 := x3 - (float32(q3)-zf)*scale
			se0 += e0 * e0
			se1 += e1 * e1
			se2 += e2 * e2
			se3 += e3 * e3
			sx0 += x0 * x0
			sx1 += x1 * x1
			sx2 += x2 * x2
			sx3 += x3 * x3
			mb0 = max(mb0, math.Float32bits(e0)&0x7fffffff, math.Float32bits(e1)&0x7fffffff)
			mb1 = max(mb1, math.Float32bits(e2)&0x7fffffff, math.Float32bits(e3)&0x7fffffff)
		}
		for ; i < len(s); i++ {
			x := s[i]
			q := min(max(int32(x*inv+zf+0.5), 0), lq)
			d[i] = byte((q - zq) & mq)
			e := x - (float32(q)-zf)*scale
			se0 += e * e
			sx0 += x * x
			mb0 = max(mb0, math.Float32bits(e)&0x7fffffff)
		}
		se := float64(se0) + float64(se1) + float64(se2) + float64(se3)
		sx := float64(sx0) + float64(sx1) + float64(sx2) + float64(sx3)
		if isFinite64(se) && isFinite64(sx) {
			a.add(errAcc{sumE2: se, sumX2: sx, maxE: math.Float32frombits(max(mb0, mb1))})
			continue
		}
		quantRunSlow(d, s, scale, zero, levels, mask, a)
	}
}

// quantRunSlow handles runs holding NaN or ±Inf (or values whose squares
// overflow float32): NaN → 0, ±Inf saturate; sums in float64 over finite inputs.
func quantRunSlow(d []byte, s []float32, scale float32, zero uint8, levels, mask int, a *errAcc) {
	zf := float32(zero)
	mb := byte(mask)
	for i, x := range s {
		if x != x {
			d[i] = 0
			a.nonFinite++
			continue
		}
		v := float64(x)/float64(scale) + float64(zero)
		v = max(0, min(float64(levels), v))
		q := int32(v + 0.5)
		d[i] = (byte(q) - zero) & mb
		if !finite(x) {
			a.nonFinite++
			continue
		}
		e := float64(x) - float64((float32(q)-zf)*scale)
		a.sumE2 += e * e
		a.sumX2 += float64(x) * float64(x)
		if ae := float32(math.Abs(e)); ae > a.maxE {
			a.maxE = ae
		}
	}
}

// dequantLUT fills lut with the value of every code for one channel.
func dequantLUT(lut *[256]float32, scale float32, zero uint8, levels int) {
	zf := float32(zero)
	mask := byte(levels)
	for c := 0; c <= levels; c++ {
		q := (byte(c) + zero) & mask
		lut[c] = (float32(q) - zf) * scale
	}
}

// dequantRun maps codes through lut.
func dequantRun(dst []float32, src []byte, lut *[256]float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		s := src[i : i+8 : i+8]
		d := dst[i : i+8 : i+8]
		d[0], d[1], d[2], d[3] = lut[s[0]], lut[s[1]], lut[s[2]], lut[s[3]]
		d[4], d[5], d[6], d[7] = lut[s[4]], lut[s[5]], lut[s[6]], lut[s[7]]
	}
	for ; i < len(dst); i++ {
		dst[i] = lut[src[i]]
	}
}

// geometry splits a shape around a channel axis into outer × channels × inner.
func geometry(shape []int, axis int) (outer, channels, inner int) {
	outer, inner = 1, 1
	for i := 0; i < axis; i++ {
		outer *= shape[i]
	}
	for i := axis + 1; i < len(shape); i++ {
		inner *= shape[i]
	}
	return outer, shape[axis], inner
}
