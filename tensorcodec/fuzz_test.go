package tensorcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gorgonia.org/tensor"
)

var fuzzLimits = Limits{MaxElements: 1 << 18, MaxBytes: 1 << 21, MaxTensors: 16}

var sentinels = []error{ErrTruncated, ErrChecksum, ErrVersion, ErrLimit, ErrCorrupt}

func checkTyped(t *testing.T, what string, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: untyped error %v", what, err)
}

// fixCRCs returns a copy of msg with every parseable record's CRC rewritten,
// so the fuzzer reaches the payload decoders instead of stopping at the
// checksum.
func fixCRCs(msg []byte) []byte {
	b := append([]byte(nil), msg...)
	lim := fuzzLimits
	s := &sliceSource{b: b}
	n, err := readMessagePrefix(s, &lim)
	if err != nil {
		return b
	}
	budget := lim.MaxElements
	var h Header
	for i := 0; i < n; i++ {
		start := s.off
		if readHeader(s, &lim, &budget, i, &h) != nil {
			return b
		}
		end := s.off
		payload, err := s.readN(h.PayloadLen)
		if err != nil {
			return b
		}
		crc := crc32.Update(crc32.Checksum(b[start:end-4], castagnoli), castagnoli, payload)
		binary.LittleEndian.PutUint32(b[end-4:], crc)
	}
	return b
}

func fuzzSeeds() [][]byte {
	var seeds [][]byte
	a := SyntheticActivation(9, 3, 5, 7)
	odd := newDense([]int{3, 1, 3}, []float32{1, -2, float32(math.NaN()), float32(math.Inf(-1)), 0, -0.0, 0x1p-140, 5, 0})
	for _, p := range Presets() {
		msg, _, _ := EncodePreset(nil, p, a, odd)
		seeds = append(seeds, msg)
	}
	for _, opts := range [][]EOption{
		{WithTransform(TransformBF16), WithLayout(LayoutSparse), WithEntropy(EntropyHuff0, 0)},
		{WithTransform(TransformFP16), WithLayout(LayoutPlain), WithEntropy(EntropyNone, 0)},
		{WithTransform(TransformInt4Channel), WithLayout(LayoutPlain), WithEntropy(EntropyS2, 2)},
		{WithTransform(TransformInt8Channel), WithLayout(LayoutShuffle), WithEntropy(EntropyHuff0, 0), WithChannelAxis(2)},
		{WithTransform(TransformInt8Channel), WithLayout(LayoutPlain), WithEntropy(EntropyHuff0, 0), WithChannelAxis(1), WithLevels(63)},
		{WithTransform(TransformInt4Channel), WithLayout(LayoutSparse), WithEntropy(EntropyNone, 0), WithLevels(5)},
		{WithTransform(TransformNone), WithLayout(LayoutSparse), WithEntropy(EntropyNone, 0)},
	} {
		e, _ := NewEncoder(opts...)
		msg, _, _ := e.Encode(nil, odd, a)
		seeds = append(seeds, msg)
	}
	seeds = append(seeds, []byte("ESTC\x01\x00"), []byte("ESTC\x02\x00"), []byte{})
	return append(seeds, latticeSeeds()...)
}

// FuzzDecode: no input makes the decoder panic, allocate beyond its limits,
// or return an untyped error; the one-shot and streaming decoders agree; and
// whatever decodes re-encodes losslessly to the same bits.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	dec := &Decoder{cfg: decoderConfig{lim: fuzzLimits}}
	rd := &Reader{dec: Decoder{cfg: decoderConfig{lim: fuzzLimits}}}
	enc, _ := NewEncoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		for pass, msg := range [][]byte{data, fixCRCs(data)} {
			out, err := dec.Decode(nil, msg)
			rd.Reset(bytes.NewReader(msg))
			sout, serr := rd.ReadMessage(nil)
			if err != nil {
				checkTyped(t, "Decode", err)
				if serr == nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("pass %d: Reader accepted what Decode rejected: %v", pass, err)
				}
				continue
			}
			if serr != nil {
				t.Fatalf("pass %d: Decode accepted what Reader rejected: %v", pass, serr)
			}
			if _, ierr := Inspect(msg, fuzzLimits); ierr != nil {
				t.Fatalf("Inspect rejected a decodable message: %v", ierr)
			}
			for i := range out {
				if !sameBits(out[i], sout[i]) {
					t.Fatalf("tensor %d: Decode and Reader differ", i)
				}
			}
			again, _, err := enc.Encode(nil, out...)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, err := Decode(nil, again)
			if err != nil {
				t.Fatalf("decode of re-encoded: %v", err)
			}
			for i := range out {
				if !sameBits(out[i], back[i]) {
					t.Fatalf("tensor %d: lossless re-encode changed bits", i)
				}
			}
		}
	})
}

func sameBits(a, b *tensor.Dense) bool {
	if !sameShape(a.Shape(), b.Shape()) {
		return false
	}
	x, y := a.Float32s(), b.Float32s()
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

// FuzzHeader: the record-header parser never panics, the slice and stream
// parsers agree exactly, and every accepted header satisfies the format's
// invariants and the limits.
func FuzzHeader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		if len(s) > 6 {
			f.Add(s[6:]) // first record of a one-byte-count message
		}
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits
		b1, b2 := lim.MaxElements, lim.MaxElements
		var h1, h2 Header
		ss := &sliceSource{b: data}
		err1 := readHeader(ss, &lim, &b1, 0, &h1)
		st := &streamSource{r: bytes.NewReader(data)}
		err2 := readHeader(st, &lim, &b2, 0, &h2)
		if (err1 == nil) != (err2 == nil) || fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("slice parser: %v, stream parser: %v", err1, err2)
		}
		if err1 != nil {
			checkTyped(t, "readHeader", err1)
		} else {
			if !bytes.Equal(h1.params, h2.params) || !bytes.Equal(st.buf, data[:ss.off]) {
				t.Fatal("parsers consumed different bytes")
			}
			h1.params, h2.params = nil, nil
			if !reflect.DeepEqual(h1, h2) || b1 != b2 {
				t.Fatalf("headers differ: %+v vs %+v", h1, h2)
			}
			n := h1.Elements()
			lo, hi := layoutRange(h1.Transform, h1.Layout, n, h1.TableLen)
			if h1.Rank < 1 || h1.Rank > MaxRank || n > lim.MaxElements || n < 1 || b1 != lim.MaxElements-n ||
				h1.RawLen < lo || h1.RawLen > hi || h1.PayloadLen > lim.MaxBytes {
				t.Fatalf("accepted invalid header %+v", h1)
			}
		}
		if _, err := Inspect(data, lim); err != nil {
			checkTyped(t, "Inspect", err)
		}
	})
}

// TestWriteSeedCorpus regenerates testdata/fuzz when TENSORCODEC_WRITE_CORPUS=1.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("TENSORCODEC_WRITE_CORPUS") != "1" {
		t.Skip("set TENSORCODEC_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	for _, target := range []string{"FuzzDecode", "FuzzHeader"} { // the other targets seed themselves
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range fuzzSeeds() {
			if target == "FuzzHeader" && len(s) > 6 {
				s = s[6:]
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// latticeSeeds are messages of the lattice and xor transforms.
func latticeSeeds() [][]byte {
	img := pipeline(synthPixels(3, 3, 8, 8, true), 3, func(p uint8, c int) float32 { return (float32(p)/255 - 0.5) / (0.2 + 0.1*float32(c)) })
	odd := append([]float32(nil), img...)
	odd[3], odd[70], odd[130] = float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1))
	act := SyntheticActivation(4, 3, 8, 8)
	var seeds [][]byte
	for _, opts := range [][]EOption{
		{}, {WithEntropy(EntropyNone, 0)},
		{WithTransform(TransformLattice), WithEntropy(EntropyNone, 0)},
		{WithTransform(TransformLatticeChannel), WithLayout(LayoutSparse), WithEntropy(EntropyNone, 0)},
		{WithTransform(TransformLatticeChannel), WithEntropy(EntropyHuff0, 0)},
		{WithTransform(TransformXorChannel), WithEntropy(EntropyNone, 0)},
		{WithTransform(TransformXorChannel), WithLayout(LayoutSparse), WithEntropy(EntropyS2, 1)},
	} {
		e, _ := NewEncoder(opts...)
		for _, x := range [][]float32{img, odd, act.Float32s()} {
			msg, _, _ := e.Encode(nil, newDense([]int{1, 3, 8, 8}, x))
			seeds = append(seeds, msg)
		}
	}
	return seeds
}

// FuzzLatticeRecord feeds the lattice and xor decoders records with a
// valid frame and CRC but fuzzed parameters, corrections and codes: no
// panic, only typed errors, nothing allocated beyond the limits, and what
// decodes re-encodes losslessly to the same bits.
func FuzzLatticeRecord(f *testing.F) {
	for _, s := range latticeSeeds() {
		hs, err := Inspect(s, Limits{})
		if err != nil || hs[0].Entropy != EntropyNone {
			continue
		}
		h := hs[0]
		// Re-express the seed in the fuzzer's own encoding below.
		sel := byte(h.Transform-TransformLattice) | byte(h.Layout)<<2
		in := []byte{sel, byte(h.Dims[1] - 1), byte(h.Dims[2]*h.Dims[3] - 1)}
		in = append(in, h.params...)
		in = append(in, s[len(s)-h.PayloadLen:]...)
		f.Add(in)
	}
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{1, 2, 15, 0, 255, 0, 0, 0, 128, 63, 0, 0, 0, 0, 0, 0, 128, 63})
	dec := &Decoder{cfg: decoderConfig{lim: fuzzLimits}}
	enc, _ := NewEncoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		tf := TransformLattice + Transform(data[0]&3)%3
		lay := Layout(data[0]>>2) % numLayouts
		c, inner := uint64(data[1]%8)+1, uint64(data[2])+1
		r := record{dtype: 1, transform: byte(tf), layout: byte(lay), dims: []uint64{1, c, inner}}
		sets := uint64(1)
		if tf.perChannel() {
			r.axis, sets = u64(1), c
		}
		ps := uint64(tf.paramSize())
		rest := data[3:]
		if uint64(len(rest)) < sets*ps {
			return
		}
		r.params, r.payload = rest[:sets*ps], rest[sets*ps:]
		r.rawLen, r.payloadLen = uint64(len(r.payload)), uint64(len(r.payload))
		msg := message(1, r)
		out, err := dec.Decode(nil, msg)
		if err != nil {
			checkTyped(t, "Decode", err)
			return
		}
		again, _, err := enc.Encode(nil, out...)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := Decode(nil, again)
		if err != nil || !sameBits(out[0], back[0]) {
			t.Fatalf("lossless re-encode changed bits (%v)", err)
		}
	})
}

// FuzzLosslessBits: any float32 input, raw or built like an image (bytes
// as pixels through a scale-and-normalise pipeline, so the lattice paths
// are reached), survives the lossless preset and the explicit lattice and
// xor transforms bit for bit.
func FuzzLosslessBits(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 128, 63, 0, 0, 0, 128, 0, 0, 192, 127})
	f.Add(append([]byte{1, 3}, synthPixels(1, 1, 16, 16, true)...))
	f.Add(append([]byte{2, 2}, synthPixels(2, 3, 8, 8, false)...))
	f.Add(append([]byte{3, 5}, synthPixels(3, 1, 12, 12, false)...))
	encs := make([]*Encoder, 0, 4)
	for _, opts := range [][]EOption{{}, {WithTransform(TransformLattice)}, {WithTransform(TransformLatticeChannel)}, {WithTransform(TransformXorChannel), WithLayout(LayoutSparse)}} {
		e, _ := NewEncoder(opts...)
		encs = append(encs, e)
	}
	dec, _ := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		mode, chans := data[0]%4, int(data[1]%4)+1
		body := data[2:]
		var x []float32
		switch mode {
		case 0: // raw bits
			for i := 0; i+4 <= len(body); i += 4 {
				x = append(x, math.Float32frombits(binary.LittleEndian.Uint32(body[i:])))
			}
		case 1:
			for _, p := range body {
				x = append(x, float32(p)/255)
			}
		case 2:
			for i, p := range body {
				c := float32(i * chans / max(1, len(body)))
				x = append(x, (float32(p)/255-0.1*c)/(0.2+0.05*c))
			}
		case 3: // pixels with a few raw values mixed in
			for i, p := range body {
				v := float32(p)*(1.0/255) - 0.5
				if p == 77 && i+4 <= len(body) {
					v = math.Float32frombits(binary.LittleEndian.Uint32(body[i:]))
				}
				x = append(x, v)
			}
		}
		n := len(x) / chans * chans
		if n == 0 {
			return
		}
		in := newDense([]int{1, chans, n / chans}, x[:n])
		for i, e := range encs {
			msg, _, err := e.Encode(nil, in)
			if err != nil {
				t.Fatalf("encoder %d: %v", i, err)
			}
			out, err := dec.Decode(nil, msg)
			if err != nil {
				t.Fatalf("encoder %d: decode: %v", i, err)
			}
			if !sameBits(in, out[0]) {
				t.Fatalf("encoder %d: bits changed", i)
			}
		}
	})
}
