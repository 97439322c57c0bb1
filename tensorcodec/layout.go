package tensorcodec

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// shuffle writes byte k of every w-byte code into plane k: dst[k*n+i] = src[i*w+k].
func shuffle(dst, src []byte, w int) {
	n := len(src) / w
	switch w {
	case 2:
		p0, p1 := dst[:n], dst[n:2*n]
		for i := range p0 {
			p0[i], p1[i] = src[2*i], src[2*i+1]
		}
	case 4:
		p0, p1, p2, p3 := dst[:n], dst[n:2*n], dst[2*n:3*n], dst[3*n:4*n]
		for i := range p0 {
			v := binary.LittleEndian.Uint32(src[4*i:])
			p0[i], p1[i], p2[i], p3[i] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
	default:
		copy(dst, src)
	}
}

// unshuffle inverts shuffle.
func unshuffle(dst, src []byte, w int) {
	n := len(dst) / w
	switch w {
	case 2:
		p0, p1 := src[:n], src[n:2*n]
		for i := range p0 {
			dst[2*i], dst[2*i+1] = p0[i], p1[i]
		}
	case 4:
		p0, p1, p2, p3 := src[:n], src[n:2*n], src[2*n:3*n], src[3*n:4*n]
		for i := range p0 {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(p0[i])|uint32(p1[i])<<8|uint32(p2[i])<<16|uint32(p3[i])<<24)
		}
	default:
		copy(dst, src)
	}
}

// packNibbles stores 4-bit codes two per byte, low nibble first. dst may
// alias src (it writes index i/2 after reading 2i and 2i+1).
func packNibbles(dst, src []byte) []byte {
	n := len(src)
	dst = dst[:(n+1)/2]
	i := 0
	for ; i+2 <= n; i += 2 {
		dst[i>>1] = src[i]&15 | src[i+1]<<4
	}
	if i < n {
		dst[i>>1] = src[i] & 15
	}
	return dst
}

// unpackNibbles expands (n+1)/2 packed bytes of src into n codes.
func unpackNibbles(dst, src []byte, n int) error {
	dst = dst[:n]
	i := 0
	for ; i+2 <= n; i += 2 {
		b := src[i>>1]
		dst[i], dst[i+1] = b&15, b>>4
	}
	if i < n {
		b := src[i>>1]
		if b>>4 != 0 {
			return fmt.Errorf("%w: non-zero padding nibble", ErrCorrupt)
		}
		dst[i] = b
	}
	return nil
}

// sparseLen is the worst-case sparse output size for n codes of w bytes,
// plus slack for the branch-free writer.
func sparseCap(n, w int) int { return (n+7)/8 + n*w + 8 }

// sparseEncode writes the bitmap of non-zero codes followed by the non-zero
// codes, for 1-byte codes (w must be 1; wider codes use
// sparseEncodePlanes). dst must have capacity ≥ sparseCap(n, 1). Returns
// the output and the number of non-zero codes.
func sparseEncode(dst, src []byte, w int) ([]byte, int) {
	n := len(src) / w
	nbm := (n + 7) / 8
	dst = dst[:cap(dst)]
	bm, vals := dst[:nbm], dst[nbm:]
	k := 0
	switch w {
	case 1:
		i := 0
		for ; i+8 <= n; i += 8 {
			x := binary.LittleEndian.Uint64(src[i:])
			if x == 0 {
				bm[i>>3] = 0
				continue
			}
			const lo, hi = 0x0101010101010101, 0x8080808080808080
			if (x-lo)&^x&hi == 0 { // no zero byte
				binary.LittleEndian.PutUint64(vals[k:], x)
				k += 8
				bm[i>>3] = 0xff
				continue
			}
			var m uint
			for j := 0; j < 8; j++ {
				c := byte(x >> (8 * j))
				vals[k] = c
				nz := (uint(c) + 255) >> 8
				k += int(nz)
				m |= nz << j
			}
			bm[i>>3] = byte(m)
		}
		if i < n {
			var m uint
			for j := 0; i+j < n; j++ {
				c := src[i+j]
				vals[k] = c
				nz := (uint(c) + 255) >> 8
				k += int(nz)
				m |= nz << j
			}
			bm[i>>3] = byte(m)
		}
	}
	return dst[:nbm+k*w], k
}

// sparseCount validates the bitmap for n elements and returns the number of
// set bits.
func sparseCount(bm []byte, n int) (int, error) {
	k := 0
	i := 0
	for ; i+8 <= len(bm); i += 8 {
		k += bits.OnesCount64(binary.LittleEndian.Uint64(bm[i:]))
	}
	for ; i < len(bm); i++ {
		k += bits.OnesCount8(bm[i])
	}
	if r := n % 8; r != 0 && bm[len(bm)-1]>>r != 0 {
		return 0, fmt.Errorf("%w: sparse bitmap has bits set past element %d", ErrCorrupt, n)
	}
	return k, nil
}

// sparseLUTRun decodes elements i0 .. i0+len(x)-1 of a sparse layout
// straight to floats: element i is lut[code] if bitmap bit i is set (taking
// the next value from vals[k:]), else lut[0] (0 for the quantisers, the
// code-0 value for the lattice transforms). It returns the index of the
// next unused value. The caller has checked that the bitmap's population
// count equals len(vals).
func sparseLUTRun(x []float32, bm []byte, i0 int, vals []byte, k int, lut *[256]float32) int {
	z := lut[0]
	last := len(vals) - 1
	if last < 0 {
		for i := range x {
			x[i] = z
		}
		return k
	}
	i := 0
	for ; i < len(x) && (i0+i)&7 != 0; i++ {
		j := i0 + i
		bit := int(bm[j>>3]>>(j&7)) & 1
		x[i] = lut[vals[min(k, last)]&byte(-bit)]
		k += bit
	}
	for ; i+8 <= len(x); i += 8 {
		m := uint(bm[(i0+i)>>3])
		o := x[i : i+8 : i+8]
		if m == 0 {
			o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = z, z, z, z, z, z, z, z
			continue
		}
		if k+8 <= len(vals) {
			v := vals[k : k+8 : k+8]
			if m == 0xff {
				o[0], o[1], o[2], o[3] = lut[v[0]], lut[v[1]], lut[v[2]], lut[v[3]]
				o[4], o[5], o[6], o[7] = lut[v[4]], lut[v[5]], lut[v[6]], lut[v[7]]
				k += 8
				continue
			}
			idx := uint(0)
			for j := 0; j < 8; j++ {
				bit := (m >> j) & 1
				o[j] = lut[v[idx&7]&byte(-bit)]
				idx += bit
			}
			k += int(idx)
			continue
		}
		for j := 0; j < 8; j++ {
			bit := int(m>>j) & 1
			o[j] = lut[vals[min(k, last)]&byte(-bit)]
			k += bit
		}
	}
	for ; i < len(x); i++ {
		j := i0 + i
		bit := int(bm[j>>3]>>(j&7)) & 1
		x[i] = lut[vals[min(k, last)]&byte(-bit)]
		k += bit
	}
	return k
}

// sparseDecodePlanes expands bitmap bm and k non-zero w-byte codes stored
// as byte planes (plane b at vals[b*k:]) into n codes in dst, for w = 2 or 4.
// The caller has checked popcount(bm) == k and len(vals) == k*w.
func sparseDecodePlanes(dst, bm, vals []byte, n, w int) {
	k := len(vals) / w
	dst = dst[:n*w]
	j := 0 // next value
	if w == 2 {
		p0, p1 := vals[:k], vals[k:2*k]
		for bi, m := range bm {
			i := bi * 8
			if i+8 <= n && m == 0 {
				binary.LittleEndian.PutUint64(dst[2*i:], 0)
				binary.LittleEndian.PutUint64(dst[2*i+8:], 0)
				continue
			}
			for b := 0; b < 8 && i+b < n; b++ {
				var v uint16
				if m>>b&1 != 0 {
					v = uint16(p0[j]) | uint16(p1[j])<<8
					j++
				}
				binary.LittleEndian.PutUint16(dst[2*(i+b):], v)
			}
		}
		return
	}
	p0, p1, p2, p3 := vals[:k], vals[k:2*k], vals[2*k:3*k], vals[3*k:4*k]
	for bi, m := range bm {
		i := bi * 8
		if i+8 <= n {
			o := dst[4*i : 4*i+32 : 4*i+32]
			if m == 0 {
				clear(o)
				continue
			}
			if m == 0xff {
				for b := 0; b < 8; b++ {
					binary.LittleEndian.PutUint32(o[4*b:], uint32(p0[j+b])|uint32(p1[j+b])<<8|uint32(p2[j+b])<<16|uint32(p3[j+b])<<24)
				}
				j += 8
				continue
			}
		}
		for b := 0; b < 8 && i+b < n; b++ {
			var v uint32
			if m>>b&1 != 0 {
				v = uint32(p0[j]) | uint32(p1[j])<<8 | uint32(p2[j])<<16 | uint32(p3[j])<<24
				j++
			}
			binary.LittleEndian.PutUint32(dst[4*(i+b):], v)
		}
	}
}

// sparseEncodePlanes writes the bitmap of non-zero w-byte codes (w = 2 or 4)
// followed by the non-zero codes as byte planes, in two passes over src and
// without a temporary buffer. dst must have capacity ≥ sparseCap(n, w).
func sparseEncodePlanes(dst, src []byte, w int) ([]byte, int) {
	n := len(src) / w
	nbm := (n + 7) / 8
	dst = dst[:cap(dst)]
	bm := dst[:nbm]
	k := 0
	for i := 0; i < n; i += 8 {
		var m uint
		for b := 0; b < 8 && i+b < n; b++ {
			var c uint64
			if w == 2 {
				c = uint64(binary.LittleEndian.Uint16(src[2*(i+b):]))
			} else {
				c = uint64(binary.LittleEndian.Uint32(src[4*(i+b):]))
			}
			m |= uint((c+0xffffffff)>>32) << b
		}
		bm[i>>3] = byte(m)
		k += bits.OnesCount8(byte(m))
	}
	vals := dst[nbm : nbm+k*w]
	j := 0
	if w == 2 {
		p0, p1 := vals[:k], vals[k:]
		for bi, m := range bm {
			for mm := uint(m); mm != 0; mm &= mm - 1 {
				e := 8*bi + bits.TrailingZeros(mm)
				p0[j], p1[j] = src[2*e], src[2*e+1]
				j++
			}
		}
		return dst[:nbm+k*w], k
	}
	p0, p1, p2, p3 := vals[:k], vals[k:2*k], vals[2*k:3*k], vals[3*k:]
	for bi, m := range bm {
		if m == 0xff {
			s := src[32*bi : 32*bi+32 : 32*bi+32]
			q0, q1, q2, q3 := p0[j:j+8:j+8], p1[j:j+8:j+8], p2[j:j+8:j+8], p3[j:j+8:j+8]
			for b := 0; b < 8; b++ {
				q0[b], q1[b], q2[b], q3[b] = s[4*b], s[4*b+1], s[4*b+2], s[4*b+3]
			}
			j += 8
			continue
		}
		for mm := uint(m); mm != 0; mm &= mm - 1 {
			e := 4 * (8*bi + bits.TrailingZeros(mm))
			p0[j], p1[j], p2[j], p3[j] = src[e], src[e+1], src[e+2], src[e+3]
			j++
		}
	}
	return dst[:nbm+k*w], k
}
