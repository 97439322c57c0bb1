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
		{WithTransform(TransformNone), WithLayout(LayoutSparse), WithEntropy(EntropyNone, 0)},
	} {
		e, _ := NewEncoder(opts...)
		msg, _, _ := e.Encode(nil, odd, a)
		seeds = append(seeds, msg)
	}
	seeds = append(seeds, []byte("ESTC\x01\x00"), []byte("ESTC\x02\x00"), []byte{})
	return seeds
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
	for _, target := range []string{"FuzzDecode", "FuzzHeader"} {
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
