package tensorcodec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"
)

// This file holds the exact transforms: lattice (6), lattice-channel (7)
// and xor-channel (8), and the encoder's exact-path planner that picks one
// of them, or none, for each tensor.
//
// A lattice parameter set predicts the value of index k (0 ≤ k < K) as
// ((float32(k) ⊙₁ a) − m) ⊙₂ c in float32, ⊙ being × or ÷; the table entry
// of index k is that prediction's bits XOR a correction word, so any set
// of at most 256 distinct bit patterns is representable exactly and values
// the prediction reproduces (8-bit pixels scaled and normalised, int8
// dequantised tensors) cost only one correction bit each.

// LatticeParams is one parameter set of the lattice transforms, as parsed
// from the wire (see the package documentation).
type LatticeParams struct {
	// DivA and DivC select division by A and by C instead of multiplication.
	DivA, DivC bool
	// Count is the number K of table entries (1..256); codes are below it.
	Count int
	// Zero is the table index of code 0 (< Count): index k = (code + Zero) mod Count.
	Zero int
	// A, M and C are the prediction's constants (finite; A and C non-zero).
	A, M, C float32
}

// Value returns the prediction for table index k: ((float32(k) ⊙ A) − M) ⊙ C,
// each step rounded to float32 (never fused).
func (p LatticeParams) Value(k int) float32 {
	var f uint8
	if p.DivA {
		f |= latDivA
	}
	if p.DivC {
		f |= latDivC
	}
	q := latp{flags: f, a: p.A, m: p.M, c: p.C}
	return q.value(k)
}

const (
	latDivA = 1 << 0
	latDivC = 1 << 1
)

// latp is a lattice parameter set in working form.
type latp struct {
	flags   uint8
	k, z    int // count, zero index
	a, m, c float32
}

func f32le(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

func parseLattice(b []byte) latp {
	return latp{flags: b[0], k: int(b[1]) + 1, z: int(b[2]), a: f32le(b[3:]), m: f32le(b[7:]), c: f32le(b[11:])}
}

func (p latp) public() LatticeParams {
	return LatticeParams{DivA: p.flags&latDivA != 0, DivC: p.flags&latDivC != 0, Count: p.k, Zero: p.z, A: p.a, M: p.m, C: p.c}
}

func (p *latp) appendTo(b []byte) []byte {
	b = append(b, p.flags, byte(p.k-1), byte(p.z))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.a))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.m))
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(p.c))
}

// check validates a parameter set read from the wire.
func (p latp) check() error {
	switch {
	case p.flags&^(latDivA|latDivC) != 0:
		return fmt.Errorf("flags %#x has unknown bits", p.flags)
	case p.z >= p.k:
		return fmt.Errorf("zero index %d not below count %d", p.z, p.k)
	case !finite(p.a) || p.a == 0:
		return fmt.Errorf("a = %v is not finite and non-zero", p.a)
	case !finite(p.m):
		return fmt.Errorf("m = %v is not finite", p.m)
	case !finite(p.c) || p.c == 0:
		return fmt.Errorf("c = %v is not finite and non-zero", p.c)
	}
	return nil
}

// value is the prediction for index k. The explicit conversions round each
// step to float32 and forbid fused multiply-adds, so encoder and decoder
// agree bit for bit on every platform.
func (p *latp) value(k int) float32 {
	t := float32(k)
	if p.flags&latDivA == 0 {
		t = float32(t * p.a)
	} else {
		t = float32(t / p.a)
	}
	t = float32(t - p.m)
	if p.flags&latDivC == 0 {
		t = float32(t * p.c)
	} else {
		t = float32(t / p.c)
	}
	return t
}

// inverse returns the real index whose prediction would be v, in float64.
func (p *latp) inverse(v float64) float64 {
	if p.flags&latDivC == 0 {
		v /= float64(p.c)
	} else {
		v *= float64(p.c)
	}
	v += float64(p.m)
	if p.flags&latDivA == 0 {
		return v / float64(p.a)
	}
	return v * float64(p.a)
}

// latticeTable fills tab[0:p.k] with the table of one parameter set:
// prediction bits XOR the correction words in res (4 bytes LE per entry).
func latticeTable(tab []float32, p *latp, res []byte) {
	for k := range tab[:p.k] {
		tab[k] = math.Float32frombits(math.Float32bits(p.value(k)) ^ binary.LittleEndian.Uint32(res[4*k:]))
	}
}

// --- encoder side ---

const latSlots = 2048 // open-addressing hash slots for at most 256 distinct values (load ≤ 1/8)

// latEntry is one distinct value of a group (a tensor or a channel).
type latEntry struct {
	key  uint32 // order-preserving key of the bits
	bits uint32
	cnt  int32
	id   uint8 // index in collect's dense arrays (the elements' ids)
	k    int16 // assigned table index, -1 while unassigned
	t    int16 // rounded inverse under the candidate being tried, -1 out of range
}

// latticeEnc is the Encoder's scratch for the exact paths.
type latticeEnc struct {
	slot     [latSlots]uint16 // hash slot → 1 + dense id, 0 = empty
	keys     [256]uint32      // dense id → bits
	cnt      [256]int32       // dense id → count
	code     [256]byte        // dense id → code of the group being written
	ents     []latEntry       // distinct values of the current group (≤ 256)
	ents2    []latEntry
	sortKeys [256]uint64
	fin      []int // indices of finite entries in ents
	gaps     []float64
	ids      []uint8 // dense id of each element of the current group
	res      []byte  // correction words of the tensor's tables, 4 bytes LE each
	par      []latp  // parameter sets of the tensor
	// The last parameters that fitted exactly, per tensor and per channel,
	// are tried first next time.
	cacheT  latp
	okT     bool
	cacheC  []latp
	okC     []bool
	samples [16]uint32
	bases   []uint32
}

// orderKey maps float32 bits to a key whose unsigned order is the float
// order (−NaN < −Inf < … < −0 < +0 < … < +Inf < +NaN).
func orderKey(b uint32) uint32 {
	if b&0x80000000 != 0 {
		return ^b
	}
	return b | 0x80000000
}

// collect gathers the distinct values of one group: element runs
// x[(o·chans + c)·inner :][:inner] for o < outer. It writes each element's
// dense id to s.ids and returns false as soon as there are more than 256.
// The entries come in no particular order (fit sorts them when it needs to).
func (s *latticeEnc) collect(x []float32, outer, chans, inner, c int) bool {
	clear(s.slot[:])
	n := outer * inner
	if cap(s.ids) < n {
		s.ids = make([]uint8, n, n+n/8)
	}
	ids := s.ids[:n]
	nd := 0
	j := 0
	for o := 0; o < outer; o++ {
		for _, v := range x[(o*chans+c)*inner:][:inner] {
			b := math.Float32bits(v)
			h := (b * 0x9E3779B1) >> 21
			e := int(s.slot[h])
			if e == 0 || s.keys[e-1] != b {
				for {
					if e == 0 {
						if nd == 256 {
							return false
						}
						s.slot[h] = uint16(nd + 1)
						s.keys[nd], s.cnt[nd] = b, 0
						nd++
						e = nd
						break
					}
					if s.keys[e-1] == b {
						break
					}
					h = (h + 1) & (latSlots - 1)
					e = int(s.slot[h])
				}
			}
			s.cnt[e-1]++
			ids[j] = uint8(e - 1)
			j++
		}
	}
	s.ents = s.ents[:0]
	for id := 0; id < nd; id++ {
		b := s.keys[id]
		s.ents = append(s.ents, latEntry{key: orderKey(b), bits: b, cnt: s.cnt[id], id: uint8(id), k: -1})
	}
	s.listFinite()
	return true
}

// listFinite lists the finite entries in s.fin, in entry order.
func (s *latticeEnc) listFinite() {
	s.fin = s.fin[:0]
	for i := range s.ents {
		if finite(math.Float32frombits(s.ents[i].bits)) {
			s.fin = append(s.fin, i)
		}
	}
}

// sortEntries puts the entries in value order (see orderKey).
func (s *latticeEnc) sortEntries() {
	keys := s.sortKeys[:len(s.ents)]
	for i := range s.ents {
		keys[i] = uint64(s.ents[i].key)<<32 | uint64(i)
	}
	slices.Sort(keys)
	tmp := append(s.ents2[:0], s.ents...)
	s.ents2 = tmp
	for i, k := range keys {
		s.ents[i] = tmp[uint32(k)]
	}
	s.listFinite()
}

func (s *latticeEnc) finVal(j int) float64 {
	return float64(math.Float32frombits(s.ents[s.fin[j]].bits))
}

// exactAt reports whether p reproduces finite value j exactly at its
// rounded inverse.
func (s *latticeEnc) exactAt(p *latp, j int) bool {
	e := &s.ents[s.fin[j]]
	t := p.inverse(s.finVal(j))
	if !(t > -0.5 && t < 255.5) {
		return false
	}
	return math.Float32bits(p.value(int(math.Round(t)))) == e.bits
}

// assign gives every entry a table index under p (exact matches first, then
// nearest free indices, then the lowest free ones), sets p.k and p.z (the
// index of the most frequent entry) and returns the number of entries the
// prediction reproduces.
func (s *latticeEnc) assign(p *latp) int {
	var used [256]bool
	exact := 0
	for i := range s.ents {
		s.ents[i].k, s.ents[i].t = -1, -1
	}
	for j, i := range s.fin {
		e := &s.ents[i]
		t := p.inverse(s.finVal(j))
		if !(t > -0.5 && t < 255.5) {
			continue
		}
		k := int(math.Round(t))
		e.t = int16(k)
		if !used[k] && math.Float32bits(p.value(k)) == e.bits {
			used[k] = true
			e.k = int16(k)
			exact++
		}
	}
	for _, i := range s.fin {
		if e := &s.ents[i]; e.k < 0 && e.t >= 0 && !used[e.t] {
			used[e.t] = true
			e.k = e.t
		}
	}
	free := 0
	maxK := 0
	best := 0
	for i := range s.ents {
		e := &s.ents[i]
		if e.k < 0 {
			for used[free] {
				free++
			}
			used[free] = true
			e.k = int16(free)
		}
		maxK = max(maxK, int(e.k))
		if e.cnt > s.ents[best].cnt {
			best = i
		}
	}
	p.k = maxK + 1
	p.z = int(s.ents[best].k)
	return exact
}

// nextAfter32 steps d units in the last place from f (d may be negative).
func nextAfter32(f float32, d int) float32 {
	for ; d > 0; d-- {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	for ; d < 0; d++ {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// snap rounds v to the given number of decimals (the constants of a
// preprocessing pipeline, such as 0.1307 or 0.229, are short decimals).
func snap(v float64, decimals int) float32 {
	p := math.Pow(10, float64(decimals))
	return float32(math.Round(v*p) / p)
}

// A fit examines at most elements/8 candidate parameter sets, within
// [minFitTries, maxFitTries], so its cost stays a fraction of a pass.
const (
	minFitTries = 64
	maxFitTries = 1024
)

// fit picks lattice parameters for the current group's entries and assigns
// their indices. It tries the cached set first, then sets derived from the
// values' spacing (an affine k·a + b, a dequantisation (k − z)·c, and the
// image pipelines (k·(1/255) − m)·(1/d) and (k/255 − m)/d with k the 8-bit
// pixel), and stops at the first one that reproduces every finite value or
// after budget sets.
// Without a fit that reproduces at least half of them it orders the
// entries by value (a palette whose corrections carry the values). It
// reports whether the returned set reproduces every finite value.
func (s *latticeEnc) fit(cache *latp, haveCache bool, budget int) (latp, bool) {
	nf := len(s.fin)
	var best latp
	bestExact := -1
	tries := 0
	try := func(p latp) bool { // reports "stop trying"
		if tries >= budget {
			return true
		}
		tries++
		if !finite(p.a) || p.a == 0 || !finite(p.m) || !finite(p.c) || p.c == 0 {
			return false
		}
		if bestExact >= 0 && nf >= 3 {
			// Quick test on three values, allowing one outlier.
			miss := 0
			for _, j := range [3]int{0, nf - 1, nf / 2} {
				if !s.exactAt(&p, j) {
					miss++
				}
			}
			if miss > 1 {
				return false
			}
		}
		ex := s.assign(&p)
		if ex > bestExact {
			best, bestExact = p, ex
		}
		return ex == nf
	}
	if haveCache {
		try(*cache)
	}
	if bestExact < nf {
		s.sortEntries()
		bestExact = -1 // entry order changed: assign again when kept
	}
	if bestExact < nf && nf == 1 {
		try(latp{a: 1, m: -float32(s.finVal(0)), c: 1})
	}
	if bestExact < nf && nf >= 2 {
		s.candidates(try)
	}
	if bestExact >= 0 && 2*bestExact >= nf && nf > 0 {
		s.assign(&best)
		return best, bestExact == nf
	}
	// Palette: entries in value order, predicted by a straight line through
	// the finite extremes.
	p := latp{a: 1, c: 1}
	if nf > 0 {
		j0, j1 := s.fin[0], s.fin[nf-1]
		v0, v1 := s.finVal(0), s.finVal(nf-1)
		if j1 > j0 {
			if a := float32((v1 - v0) / float64(j1-j0)); finite(a) && a != 0 {
				p.a = a
			}
		}
		if m := float32(float64(j0)*float64(p.a) - v0); finite(m) {
			p.m = m
		}
	}
	bi := 0
	for i := range s.ents {
		s.ents[i].k = int16(i)
		if s.ents[i].cnt > s.ents[bi].cnt {
			bi = i
		}
	}
	p.k, p.z = len(s.ents), bi
	return p, nf == 0
}

// candidates derives lattice parameter sets from the spacing of the finite
// values and passes them to try until it returns true (then it returns true).
func (s *latticeEnc) candidates(try func(latp) bool) bool {
	nf := len(s.fin)
	s.gaps = s.gaps[:0]
	for j := 0; j+1 < nf; j++ {
		if g := s.finVal(j+1) - s.finVal(j); g > 0 {
			s.gaps = append(s.gaps, g)
		}
	}
	if len(s.gaps) == 0 {
		return false
	}
	slices.Sort(s.gaps)
	outliers := max(1, nf/16)
	steps := 0
	for gi := 0; gi < len(s.gaps) && steps < 4; gi++ {
		if gi > 0 && s.gaps[gi] <= s.gaps[gi-1]*1.001 {
			continue // same cluster of (rounded) steps
		}
		steps++
		s0 := s.gaps[gi]
		for origin := 0; origin < 2 && origin < nf; origin++ {
			o := s.finVal(origin)
			bad, rmin, rmax := 0, math.MaxInt, math.MinInt
			jb, jt := -1, -1
			for j := 0; j < nf && bad <= outliers; j++ {
				r := (s.finVal(j) - o) / s0
				ri := math.Round(r)
				if math.Abs(r-ri) > 0.02 || math.Abs(ri) > 1<<20 {
					bad++
					continue
				}
				if int(ri) < rmin {
					rmin, jb = int(ri), j
				}
				if int(ri) > rmax {
					rmax, jt = int(ri), j
				}
			}
			if bad > outliers || jb < 0 || rmax-rmin > 255 {
				continue
			}
			if s.spacingCandidates(try, jb, jt, rmax-rmin) {
				return true
			}
		}
	}
	return false
}

// spacingCandidates tries the parameter families for finite values jb (the
// lattice's lowest inlier) and jt (its highest), span indices apart.
func (s *latticeEnc) spacingCandidates(try func(latp) bool, jb, jt, span int) bool {
	v0, v1 := s.finVal(jb), s.finVal(jt)
	st := 1.0
	if span > 0 {
		st = (v1 - v0) / float64(span)
	}
	// Affine: k·a + v0, and a dequantisation (k − z)·c with integer z.
	for d := 0; d <= 4; d++ {
		dd := (d + 1) / 2 * (1 - 2*(d&1)) // 0, -1, 1, -2, 2
		if try(latp{a: nextAfter32(float32(st), dd), m: -float32(v0), c: 1}) {
			return true
		}
	}
	if z := math.Round(v0 / st); math.Abs(v0/st-z) < 0.02 && math.Abs(z) < 1<<24 {
		for d := 0; d <= 4; d++ {
			dd := (d + 1) / 2 * (1 - 2*(d&1))
			if try(latp{a: 1, m: float32(-z), c: nextAfter32(float32(st), dd)}) {
				return true
			}
		}
	}
	if span == 0 || span > 255 {
		return false
	}
	// Image pipelines, k the 8-bit pixel of the lowest value k0:
	// (k·(1/255) − m)·(1/d) and (k/255 − m)/d, with the normaliser d (std)
	// snapped to short decimals; for each k0 (0 and the top end first) both
	// families, every c, then m estimated from the lowest value.
	type family struct {
		a     float32
		flags uint8
		cs    [4]float32
		nc    int
	}
	var fams [2]family
	dEst := 1 / (st * 255)
	for fi := range fams {
		f := &fams[fi]
		f.a, f.flags = 1.0/255, 0
		if fi == 1 {
			f.a, f.flags = 255, latDivA|latDivC
		}
		add := func(d float32) {
			c := d
			if fi == 0 {
				c = float32(1 / d) // the pipeline multiplies by 1/std computed in float32
			}
			if !finite(c) || c == 0 || slices.Contains(f.cs[:f.nc], c) || f.nc == len(f.cs) {
				return
			}
			f.cs[f.nc] = c
			f.nc++
		}
		if math.Abs(dEst-1) < 1e-3 {
			add(1)
		}
		add(snap(dEst, 4))
		add(snap(dEst, 3))
		add(float32(dEst))
	}
	top := 255 - span
	for i := 0; i <= top; i++ {
		k0 := i
		if i == 1 {
			k0 = top
		} else if i == top && top > 1 {
			k0 = 1
		}
		for fi := range fams {
			f := &fams[fi]
			p0 := latp{flags: f.flags, a: f.a, c: 1}
			base := float64(p0.value(k0)) // k0 ⊙ a
			for _, c := range f.cs[:f.nc] {
				mEst := base - v0/float64(c)
				if fi == 1 {
					mEst = base - v0*float64(c)
				}
				var ms [5]float32
				nm := 0
				for _, m := range [5]float32{snap(mEst, 4), snap(mEst, 3), float32(mEst), nextAfter32(float32(mEst), -1), nextAfter32(float32(mEst), 1)} {
					if math.Abs(mEst) < 1e-6 {
						m = 0
					}
					if !slices.Contains(ms[:nm], m) {
						ms[nm] = m
						nm++
					}
				}
				for _, m := range ms[:nm] {
					if try(latp{flags: f.flags, a: f.a, m: m, c: c}) {
						return true
					}
				}
			}
		}
	}
	return false
}

// groupTable writes the current group's codes (element runs as in collect)
// into codes, appends its correction words to s.res and returns the number
// of non-zero corrections and the count of the value coded 0.
func (s *latticeEnc) groupTable(p *latp, codes []byte, outer, chans, inner, c int) (nres, zeroCount int) {
	var corr [256]uint32
	for i := range s.ents {
		e := &s.ents[i]
		k := int(e.k)
		corr[k] = e.bits ^ math.Float32bits(p.value(k))
		code := k - p.z
		if code < 0 {
			code += p.k
		}
		s.code[e.id] = byte(code)
		if code == 0 {
			zeroCount = int(e.cnt)
		}
	}
	for k := 0; k < p.k; k++ {
		s.res = binary.LittleEndian.AppendUint32(s.res, corr[k])
		if corr[k] != 0 {
			nres++
		}
	}
	j := 0
	for o := 0; o < outer; o++ {
		run := codes[(o*chans+c)*inner:][:inner]
		ids := s.ids[j : j+inner]
		for i := range run {
			run[i] = s.code[ids[i]]
		}
		j += inner
	}
	return nres, zeroCount
}

// paletteCost estimates the bytes before entropy coding of a lattice
// record: parameters, corrections and codes (sparse when that is smaller).
func paletteCost(sets, tab, nres, n, zeroCodes int) int {
	codes := min(n, (n+7)/8+n-zeroCodes)
	return sets*latticeParamSize + (tab+7)/8 + 4*nres + codes
}

// planPalette tries the lattice transform on the whole tensor (chans = 1)
// or per channel, writing codes to codes, tables to s.res and parameter
// sets to s.par. It returns false when some group has more than 256
// distinct values, or (when abort is set) as soon as the lattice form is
// estimated to be larger than xor-channel for the channels seen so far.
// cost is the estimated size; codes0 the number of elements coded 0, zeros
// the number of +0 elements.
func (s *latticeEnc) planPalette(x []float32, codes []byte, outer, chans, inner int, perChannel, abort bool) (ok bool, cost, codes0, zeros int) {
	s.res, s.par = s.res[:0], s.par[:0]
	if !perChannel {
		outer, chans, inner = 1, 1, len(x)
	}
	if perChannel && len(s.cacheC) < chans {
		s.cacheC = slices.Grow(s.cacheC[:0], chans)[:chans]
		s.okC = slices.Grow(s.okC[:0], chans)[:chans]
		clear(s.okC)
	}
	tab, nres, xorCost := 0, 0, 0
	for c := 0; c < chans; c++ {
		if !s.collect(x, outer, chans, inner, c) {
			return false, 0, 0, 0
		}
		for i := range s.ents {
			if s.ents[i].bits == 0 {
				zeros += int(s.ents[i].cnt)
			}
		}
		var p latp
		var exact bool
		budget := min(maxFitTries, max(minFitTries, outer*inner/8))
		if perChannel {
			p, exact = s.fit(&s.cacheC[c], s.okC[c], budget)
			if exact {
				s.cacheC[c], s.okC[c] = p, true
			}
		} else {
			p, exact = s.fit(&s.cacheT, s.okT, budget)
			if exact {
				s.cacheT, s.okT = p, true
			}
		}
		nr, z := s.groupTable(&p, codes, outer, chans, inner, c)
		s.par = append(s.par, p)
		tab += p.k
		nres += nr
		codes0 += z
		if abort {
			ng := outer * inner
			xorCost += 4 + (ng+7)/8 + 4*(ng-z)
			if paletteCost(c+1, tab, nres, (c+1)*ng, codes0) > xorCost {
				return false, 0, 0, 0
			}
		}
	}
	return true, paletteCost(chans, tab, nres, len(x), codes0), codes0, zeros
}

// sampleBases picks each channel's base candidate into s.bases: the most
// frequent of 16 evenly spaced samples. It returns the number of samples
// equal to their channel's candidate beyond those equal to +0, summed over
// the channels whose candidate beats +0, and the number of samples.
func (s *latticeEnc) sampleBases(x []float32, outer, chans, inner int) (gain, samples int) {
	s.bases = slices.Grow(s.bases[:0], chans)[:chans]
	ng := outer * inner
	ns := min(len(s.samples), ng)
	for c := 0; c < chans; c++ {
		for t := 0; t < ns; t++ {
			j := 0
			if ns > 1 {
				j = t * (ng - 1) / (ns - 1)
			}
			o, i := j/inner, j%inner
			s.samples[t] = math.Float32bits(x[(o*chans+c)*inner+i])
		}
		cand, best, zeros := s.samples[0], 0, 0
		for t := 0; t < ns; t++ {
			if s.samples[t] == 0 {
				zeros++
			}
			if s.samples[t] == cand && t > 0 {
				continue
			}
			k := 0
			for u := t; u < ns; u++ {
				if s.samples[u] == s.samples[t] {
					k++
				}
			}
			if k > best {
				cand, best = s.samples[t], k
			}
		}
		s.bases[c] = cand
		if best > zeros {
			gain += best - zeros
		}
		samples += ns
	}
	return gain, samples
}

// countBases counts, per channel, the elements equal to the candidate of
// sampleBases and to +0, keeps the candidate as the base only where it is
// the more frequent (else the base is +0), and returns the number of
// elements equal to their base and of +0 bits.
func (s *latticeEnc) countBases(x []float32, outer, chans, inner int) (elided, zeros int) {
	for c := 0; c < chans; c++ {
		cand := s.bases[c]
		nb, nz := uint32(0), uint32(0)
		for o := 0; o < outer; o++ {
			for _, v := range x[(o*chans+c)*inner:][:inner] {
				// Branch-free counts: (d | −d) >> 31 is 1 unless d = 0.
				b := math.Float32bits(v)
				d := b ^ cand
				nb += 1 ^ (d|-d)>>31
				nz += 1 ^ (b|-b)>>31
			}
		}
		if nb > nz {
			elided += int(nb)
		} else {
			s.bases[c] = 0
			elided += int(nz)
		}
		zeros += int(nz)
	}
	return elided, zeros
}

// xorCodes writes bits XOR the channel's base, 4 bytes LE per element.
func (s *latticeEnc) xorCodes(codes []byte, x []float32, outer, chans, inner int) {
	for o := 0; o < outer; o++ {
		for c := 0; c < chans; c++ {
			off := (o*chans + c) * inner
			base := s.bases[c]
			d := codes[4*off : 4*(off+inner)]
			for i, v := range x[off : off+inner] {
				binary.LittleEndian.PutUint32(d[4*i:], math.Float32bits(v)^base)
			}
		}
	}
}

// encodeExact runs the exact-path planner for one tensor (see
// WithExactPaths). It returns the chosen transform, layout, channel axis,
// parameter bytes and layout output; tf = none means "use the ordinary
// path with the configured layout".
func (e *Encoder) encodeExact(x []float32, shape []int) (tf Transform, lay Layout, axis int, params, data []byte) {
	want := e.cfg.transform
	s := &e.lat
	n := len(x)
	axis = e.cfg.axis
	if axis < 0 || axis >= len(shape) {
		axis = autoAxis(shape, n)
	}
	outer, chans, inner := geometry(shape, axis)
	e.codes = ensure(e.codes, n)
	e.codes2 = ensure(e.codes2, n)
	const big = math.MaxInt
	bestCost, best := big, TransformNone
	var bestCodes []byte
	bestZero := 0
	zeros := -1 // +0 elements, once known

	// One table for the tensor.
	if want == TransformNone || want == TransformLattice {
		if ok, cost, z, nz := s.planPalette(x, e.codes, outer, chans, inner, false, false); ok {
			bestCost, best, bestCodes, bestZero, zeros = cost, TransformLattice, e.codes, z, nz
			e.par, e.res = append(e.par[:0], s.par...), append(e.res[:0], s.res...)
		}
	}
	// One table per channel.
	if (want == TransformNone && chans > 1 && bestCost > n+n/8+64) || want == TransformLatticeChannel {
		if ok, cost, z, nz := s.planPalette(x, e.codes2, outer, chans, inner, true, want == TransformNone); ok && cost < bestCost {
			bestCost, best, bestCodes, bestZero, zeros = cost, TransformLatticeChannel, e.codes2, z, nz
			e.par, e.res = append(e.par[:0], s.par...), append(e.res[:0], s.res...)
		}
	}
	// A base value per channel (not worth a look when a table already costs
	// less than a byte per element). The entropy stage already squeezes runs
	// of a repeated value well, so xor-channel pays off (measured on real
	// activations) only when it drops a quarter of the elements more than
	// the zero bitmap: samples decide whether counting is worth a pass.
	if (want == TransformNone && bestCost >= n) || want == TransformXorChannel {
		gain, samples := s.sampleBases(x, outer, chans, inner)
		elided := 0
		if want == TransformXorChannel || 5*gain >= samples {
			elided, zeros = s.countBases(x, outer, chans, inner)
		}
		xorCost := 4*chans + (n+7)/8 + 4*(n-elided)
		if want == TransformXorChannel || (zeros >= 0 && elided-zeros >= n/4 && 4*chans < elided-zeros && xorCost < bestCost) {
			best = TransformXorChannel
			lay = LayoutShuffle
			if elided > n/32 {
				lay = LayoutSparse
			}
			params = e.params[:0]
			for _, b := range s.bases {
				params = binary.LittleEndian.AppendUint32(params, b)
			}
			e.params = params
			e.codes = ensure(e.codes, 4*n)
			s.xorCodes(e.codes, x, outer, chans, inner)
			if lay == LayoutSparse {
				e.lay = ensure(e.lay, sparseCap(n, 4))
				data, _ = sparseEncodePlanes(e.lay, e.codes, 4)
			} else {
				e.lay = ensure(e.lay, 4*n)
				shuffle(e.lay, e.codes, 4)
				data = e.lay
			}
			return best, lay, axis, params, data
		}
	}
	if best.lattice() && zeros >= 0 {
		noneCost := 4 * n
		if e.cfg.layout == LayoutSparse {
			noneCost = (n+7)/8 + 4*(n-zeros)
		}
		if noneCost < bestCost {
			best = TransformNone
		}
	}
	if !best.lattice() {
		return TransformNone, e.cfg.layout, 0, nil, nil
	}
	params = e.params[:0]
	for i := range e.par {
		params = e.par[i].appendTo(params)
	}
	e.params = params
	tab := len(e.res) / 4
	lay = LayoutPlain
	if (n+7)/8+n-bestZero < n {
		lay = LayoutSparse
	}
	e.lay = ensure(e.lay, sparseCap(tab, 4)+sparseCap(n, 1))
	pre, _ := sparseEncodePlanes(e.lay, e.res, 4)
	pl := len(pre)
	if lay == LayoutSparse {
		out, _ := sparseEncode(e.lay[pl:], bestCodes, 1)
		data = e.lay[:pl+len(out)]
	} else {
		copy(e.lay[pl:], bestCodes)
		data = e.lay[:pl+n]
	}
	if best == TransformLattice {
		axis = 0
	}
	return best, lay, axis, params, data
}

// --- decoder side ---

// xorRun XORs the bits of every element of x with base.
func xorRun(x []float32, base uint32) {
	if base == 0 {
		return
	}
	for i, v := range x {
		x[i] = math.Float32frombits(math.Float32bits(v) ^ base)
	}
}

// decodeLattice decodes a lattice record whose layout output is data
// (rawLen bytes): the table corrections, then the codes' layout.
func (d *Decoder) decodeLattice(t *tensor.Dense, h *Header, data []byte, idx int) (*tensor.Dense, error) {
	n := h.Elements()
	R := h.TableLen
	nb := (R + 7) / 8
	if len(data) < nb {
		return t, fmt.Errorf("%w: tensor %d: %d bytes for a %d-entry correction bitmap", ErrCorrupt, idx, len(data), R)
	}
	q, err := sparseCount(data[:nb], R)
	if err != nil {
		return t, fmt.Errorf("tensor %d: lattice corrections: %w", idx, err)
	}
	if q > (len(data)-nb)/4 {
		return t, fmt.Errorf("%w: tensor %d: %d lattice corrections, %d bytes left", ErrCorrupt, idx, q, len(data)-nb)
	}
	rbm, rvals := data[:nb], data[nb:nb+4*q]
	rest := data[nb+4*q:]
	var bm, vals []byte
	if h.Layout == LayoutSparse {
		nbm := (n + 7) / 8
		if len(rest) < nbm {
			return t, fmt.Errorf("%w: tensor %d: %d code bytes for a %d-element bitmap", ErrCorrupt, idx, len(rest), n)
		}
		bm, vals = rest[:nbm], rest[nbm:]
		k, err := sparseCount(bm, n)
		if err != nil {
			return t, fmt.Errorf("tensor %d: %w", idx, err)
		}
		if len(vals) != k {
			return t, fmt.Errorf("%w: tensor %d: %d code bytes for %d non-zero codes", ErrCorrupt, idx, len(vals), k)
		}
	} else if len(rest) != n {
		return t, fmt.Errorf("%w: tensor %d: %d code bytes for %d elements", ErrCorrupt, idx, len(rest), n)
	}

	// Tables, by code.
	d.res = ensure(d.res, 4*R)
	sparseDecodePlanes(d.res, rbm, rvals, R, 4)
	d.tab = ensureF(d.tab, R)
	if cap(d.toff) < h.Channels+1 {
		d.toff = make([]int32, h.Channels+1)
	}
	d.toff = d.toff[:h.Channels+1]
	off := 0
	var tmp [256]float32
	for c := 0; c < h.Channels; c++ {
		p := parseLattice(h.params[c*latticeParamSize:])
		p0 := p
		latticeTable(tmp[:], &p0, d.res[4*off:])
		// Entry j of the by-code table is index (j + z) mod K.
		tb := d.tab[off : off+p.k]
		copy(tb, tmp[p.z:p.k])
		copy(tb[p.k-p.z:], tmp[:p.z])
		d.toff[c] = int32(off)
		off += p.k
	}
	d.toff[h.Channels] = int32(off)

	out := outputTensor(t, h.Shape(), n)
	x := out.Float32s()[:n]
	outer, chans, inner := h.geometry()
	k := 0
	for o := 0; o < outer; o++ {
		for c := 0; c < chans; c++ {
			i0 := (o*chans + c) * inner
			tb := d.tab[d.toff[c]:d.toff[c+1]]
			run := x[i0 : i0+inner]
			var ok bool
			if bm == nil {
				ok = latticeRun(run, rest[i0:i0+inner], tb)
			} else {
				k, ok = d.latticeSparseRun(run, bm, i0, vals, k, tb)
			}
			if !ok {
				return out, fmt.Errorf("%w: tensor %d: a code of channel %d is not below its table's %d entries", ErrCorrupt, idx, c, len(tb))
			}
		}
	}
	return out, nil
}

// maxByte returns the largest byte of b (0 for none).
func maxByte(b []byte) byte {
	var m0, m1, m2, m3 byte
	i := 0
	for ; i+4 <= len(b); i += 4 {
		q := b[i : i+4 : i+4]
		m0, m1, m2, m3 = max(m0, q[0]), max(m1, q[1]), max(m2, q[2]), max(m3, q[3])
	}
	for ; i < len(b); i++ {
		m0 = max(m0, b[i])
	}
	return max(m0, m1, m2, m3)
}

// latticeRun maps codes through tab, reporting false if a code is out of it.
func latticeRun(x []float32, codes []byte, tab []float32) bool {
	codes = codes[:len(x)]
	if len(tab) == 256 {
		dequantRun(x, codes, (*[256]float32)(tab))
		return true
	}
	if int(maxByte(codes)) >= len(tab) {
		return false
	}
	for i, c := range codes {
		x[i] = tab[c]
	}
	return true
}

// latticeSparseRun decodes elements i0 .. i0+len(x)-1 of a sparse lattice
// layout through tab (code 0 where the bitmap bit is clear) and returns
// the next value index, reporting false if a code is out of tab.
func (d *Decoder) latticeSparseRun(x []float32, bm []byte, i0 int, vals []byte, k int, tab []float32) (int, bool) {
	if len(x) >= len(tab) || len(tab) == 256 {
		// A full 256-entry table (codes past the end read stale entries
		// and are rejected below).
		copy(d.lut[:], tab)
		k1 := sparseLUTRun(x, bm, i0, vals, k, &d.lut)
		if len(tab) < 256 && int(maxByte(vals[k:k1])) >= len(tab) {
			return k1, false
		}
		return k1, true
	}
	for i := range x {
		j := i0 + i
		c := byte(0)
		if bm[j>>3]>>(j&7)&1 != 0 {
			c = vals[k]
			k++
		}
		if int(c) >= len(tab) {
			return k, false
		}
		x[i] = tab[c]
	}
	return k, true
}

// minZstdSegment is the smallest part of a layout output that the exact
// paths give a zstd frame of its own.
const minZstdSegment = 2048

// zstdSegments appends to dst the layout output data of a lossless record
// with 4-byte codes coded as two concatenated zstd frames: everything up to
// the codes' top byte plane (sign, exponent and top mantissa bit), then that
// plane. A zstd frame's literals share one Huffman table per block, so the
// nearly random low mantissa planes and the narrow exponent plane cost more
// together; two frames measured 3–10 % smaller on real activations (and
// close to one frame per plane, at less cost). Decoders need nothing new: a
// zstd decoder decodes concatenated frames as one stream.
func (e *Encoder) zstdSegments(dst []byte, tf Transform, lay Layout, n int, data []byte) ([]byte, error) {
	top := 0 // length of the top plane
	switch {
	case tf.codeWidth() != 4:
	case lay == LayoutSparse:
		top = (len(data) - (n+7)/8) / 4
	case lay == LayoutShuffle:
		top = n
	}
	if top < minZstdSegment || len(data)-top < minZstdSegment {
		return e.ent.encode(dst, data, EntropyZstd, e.cfg.level)
	}
	dst, err := e.ent.encode(dst, data[:len(data)-top], EntropyZstd, e.cfg.level)
	if err != nil {
		return dst, err
	}
	return e.ent.encode(dst, data[len(data)-top:], EntropyZstd, e.cfg.level)
}
