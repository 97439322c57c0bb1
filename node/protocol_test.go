package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgesplit/edgesplit/transport"
)

func TestSegmentRequestRoundTrip(t *testing.T) {
	for _, r := range []segmentRequest{
		{Op: opRun, Model: "lenet5", Version: "3f2a", Codec: "fp16-zstd", Nodes: []int{4, 5, 6, 7}},
		{Op: opRun, Model: "m", Nodes: []int{0, 1, 2, 3, 5, 7, 8, 9, 10, 11, 12}}, // a DAG cut: "0-3,5,7-12"
		{Op: opRun, Model: "m", Codec: "lossless", Nodes: []int{maxModelNodes - 1}},
		{Op: opProbe, Model: "m", Version: "v"},
		{Op: opProfile, Model: "m", Version: "v"},
		{Op: opCalibration, Model: "m"},
		{Op: opModelEntry, Model: "m", Version: strings.Repeat("a", 64)},
		{Op: opModelChunk, Model: "m", Version: strings.Repeat("a", 64), Nodes: []int{7}},
		{Op: opModelLoad, Model: "m", Version: strings.Repeat("a", 64)},
		{Op: opRunVia, Model: "alexnet", Version: "v", Codec: "lossless", Nodes: []int{0, 1, 2, 3, 4}, Split: 3, Next: "cloud-1", Codec2: "fp16"},
		{Op: opGenerate, Model: "gpt", Version: "v", Codec: "lossless", Session: "5f3c", Cut: 1, Decode: 1, Prefill: 12, Pos: 12},
		{Op: opGenerate, Model: "gpt", Version: "v", Codec: "lossless", Session: "5f3c", Cut: 1, Decode: 1, Pos: 13},
		{Op: opGenerate, Model: "gpt", Version: "v", Codec: "lossless", Session: "5f3c", Cut: 0, Decode: 2, Prefill: 9, Pos: 9, Caches: true},
		{Op: opGenerateEnd, Model: "gpt", Version: "v", Session: "5f3c"},
	} {
		b, err := r.marshal()
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if b[0] != protocolVersion || op(b[1]) != r.Op {
			t.Fatalf("%+v: header starts % x", r, b[:2])
		}
		got, err := unmarshalSegmentRequest(b)
		if err != nil {
			t.Fatalf("%+v: decode: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip %+v → %+v", r, got)
		}
	}
	// "0-3,5,7-12" is three ranges: gap 0 len 4, gap 1 len 1, gap 1 len 6.
	b, _ := (&segmentRequest{Op: opRun, Model: "m", Nodes: []int{0, 1, 2, 3, 5, 7, 8, 9, 10, 11, 12}}).marshal()
	if want := []byte{3, 0, 3, 1, 0, 1, 5}; !bytes.HasSuffix(b, want) {
		t.Fatalf("ranges encoded as % x, want suffix % x", b, want)
	}
}

func TestSegmentRequestErrors(t *testing.T) {
	good, _ := (&segmentRequest{Op: opRun, Model: "m", Version: "v", Codec: "c", Nodes: []int{2, 3}}).marshal()
	hdr := func(op byte, fields ...[]byte) []byte {
		b := []byte{protocolVersion, op}
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	}
	str := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	vs := func(v ...uint64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.AppendUvarint(b, x)
		}
		return b
	}
	for _, tc := range []struct {
		name, b, want string
	}{
		{"empty", "", "empty header"},
		{"version", string(append([]byte{9}, good[1:]...)), "version 9, want 2"},
		{"unknown op", string(hdr(11, str("m"), str(""), str(""), vs(0))), "unknown op 11"},
		{"generate without session", string(hdr(9, str("m"), str(""), str("lossless"), vs(0), str(""), vs(1, 1, 0, 3, 0))), "a session for the generate ops only"},
		{"generate prefill and position", string(hdr(9, str("m"), str(""), str("lossless"), vs(0), str("s"), vs(1, 1, 4, 3, 0))), "the position the prefill's end"},
		{"generate huge cut", string(hdr(9, str("m"), str(""), str("lossless"), vs(0), str("s"), vs(1<<40, 1, 0, 3, 0))), "cut = 1099511627776, limit 65536"},
		{"generate without codec", string(hdr(9, str("m"), str(""), str(""), vs(0), str("s"), vs(1, 1, 0, 3, 0))), "generate request wants a codec"},
		{"generate decode below cut", string(hdr(9, str("m"), str(""), str("lossless"), vs(0), str("s"), vs(2, 1, 0, 3, 0))), "the decode cut not below the cut"},
		{"generate caches flag 2", string(hdr(9, str("m"), str(""), str("lossless"), vs(0), str("s"), vs(1, 2, 3, 3, 2))), "caches = 2, want 0 or 1"},
		{"generate caches without prefill", string(hdr(9, str("m"), str(""), str("lossless"), vs(0), str("s"), vs(1, 2, 0, 3, 1))), "asks for caches without a prefill"},
		{"chunk without index", string(hdr(6, str("m"), str(""), str(""), vs(0))), "model-chunk request wants one chunk index"},
		{"entry with nodes", string(hdr(5, str("m"), str(""), str(""), vs(1, 0, 0))), "model-entry request carries a node set"},
		{"via without its fields", string(hdr(8, str("m"), str(""), str("c"), vs(1, 0, 3))), "bad varint in split"},
		{"via split outside", string(hdr(8, str("m"), str(""), str("c"), vs(1, 0, 3, 9), str("cloud"), str("c"))), "split 9 does not leave nodes"},
		{"via without next", string(hdr(8, str("m"), str(""), str("c"), vs(1, 0, 3, 2), str(""), str("c"))), "without a next node"},
		{"truncated", string(good[:len(good)-1]), "bad varint in range length"},
		{"trailing", string(append(good[:len(good):len(good)], 0)), "1 trailing bytes"},
		{"long model", string(hdr(1, str(strings.Repeat("x", maxNameBytes+1)))), "model is 257 bytes, limit 256"},
		{"string past end", string(hdr(1, vs(10), []byte("ab"))), "model claims 10 bytes, 2 left"},
		{"not UTF-8", string(hdr(1, str("\xff"), str(""), str(""), vs(1, 0, 0))), "model is not UTF-8"},
		{"run without nodes", string(hdr(1, str("m"), str(""), str(""), vs(0))), "empty node set"},
		{"probe with nodes", string(hdr(2, str("m"), str(""), str(""), vs(1, 0, 0))), "probe request carries a node set"},
		{"too many ranges", string(hdr(1, str("m"), str(""), str(""), vs(maxRanges+1))), "4097 ranges, limit 4096"},
		{"range past the limit", string(hdr(1, str("m"), str(""), str(""), vs(1, maxModelNodes-2, 5))), "reaches past node 65536"},
		{"huge gap", string(hdr(1, str("m"), str(""), str(""), vs(1, 1<<63, 0))), "reaches past node"},
		{"unmerged ranges", string(hdr(1, str("m"), str(""), str(""), vs(2, 0, 1, 0, 0))), "range 1 touches the previous one"},
	} {
		_, err := unmarshalSegmentRequest([]byte(tc.b))
		if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, r := range []segmentRequest{
		{Op: opRun, Model: "m", Nodes: []int{3, 2}},
		{Op: opRun, Model: "m", Nodes: []int{-1}},
		{Op: opRun, Model: "m", Nodes: []int{maxModelNodes}},
		{Op: opProfile, Model: "m", Codec: "fp16"},
		{Op: opRun, Model: "m", Nodes: []int{1, 2}, Split: 2, Next: "c", Codec2: "fp16"},
		{Op: opRunVia, Model: "m", Nodes: []int{1, 2}, Split: 1, Next: "c", Codec2: "fp16"},
		{Op: opRun, Model: "m", Nodes: []int{1}, Session: "s"},
		{Op: opGenerateEnd, Model: "m", Session: "s", Pos: 3},
		{Op: opGenerate, Model: "m", Codec: "lossless", Session: "s", Cut: -1},
		{Op: opGenerate, Model: "m", Codec: "lossless", Session: "s", Cut: 2, Decode: 1},
		{Op: opGenerate, Model: "m", Codec: "lossless", Session: "s", Cut: 1, Decode: 2, Pos: 3, Caches: true},
		{Op: opGenerate, Model: "m", Codec: "lossless", Session: "s", Cut: 1, Decode: 1, Prefill: 3, Pos: 3, Caches: true},
		{Op: opGenerateEnd, Model: "m", Session: "s", Caches: true},
		{Op: 0, Model: "m"},
	} {
		if _, err := r.marshal(); !errors.Is(err, errProtocol) {
			t.Errorf("marshal %+v: err = %v, want a protocol error", r, err)
		}
	}
}

func TestSegmentResponseRoundTrip(t *testing.T) {
	for _, r := range []segmentResponse{
		{},
		{Queue: 3 * time.Millisecond, Decode: 40 * time.Microsecond, Compute: 12 * time.Millisecond, Encode: 9 * time.Microsecond,
			RecvTime: 49 * time.Millisecond, RecvBytes: 98_000, Version: "f97717fe2f6e"},
	} {
		got, err := unmarshalSegmentResponse(r.marshal())
		if err != nil || got != r {
			t.Fatalf("round trip %+v → %+v (%v)", r, got, err)
		}
	}
	for _, tc := range []struct{ name, b, want string }{
		{"empty", "", "empty header"},
		{"old version", "\x01\x00\x00\x00\x00\x00\x00\x00", "version 1, want 2"},
		{"short", "\x02\x00\x00", "bad varint in compute"},
		{"overflow", string(binary.AppendUvarint([]byte{2}, 1<<63)), "queue = 9223372036854775808 overflows"},
		{"recv time without bytes", "\x02\x00\x00\x00\x00\x05\x00\x00", "recv time 5ns without recv bytes"},
		{"no model version", "\x02\x00\x00\x00\x00\x00\x00", "bad varint in model version length"},
		{"model version past end", "\x02\x00\x00\x00\x00\x00\x00\x05ab", "model version claims 5 bytes, 2 left"},
		{"trailing", "\x02\x00\x00\x00\x00\x00\x00\x00\x00", "1 trailing bytes"},
	} {
		_, err := unmarshalSegmentResponse([]byte(tc.b))
		if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A request whose header is not the node protocol is a bad request, named.
func TestServeSegmentBadHeader(t *testing.T) {
	err := (&Node{}).serveSegment(context.Background(), &transport.Request{Header: []byte{protocolVersion, 1}}, nil, nil)
	if transport.CodeOf(err) != transport.CodeBadRequest || !strings.Contains(err.Error(), "bad varint in model length") {
		t.Fatalf("err = %v, want a bad request naming the field", err)
	}
}

// recvClock times the body's arrival from the first read to the last, on
// the bubble's clock: exactly the 20 ms between the two writes.
func TestRecvClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 1000)) // came with the header
			time.Sleep(20 * time.Millisecond)
			pw.Write(make([]byte, 5000))
			pw.Close()
		}()
		rc := &recvClock{r: pr}
		io.Copy(io.Discard, rc)
		var rh segmentResponse
		rc.report(&rh)
		d, n, ok := rh.recvTiming()
		if !ok || n != 5000 || d != 20*time.Millisecond {
			t.Errorf("timing %v, %d bytes, ok %v; want 20ms, 5000 bytes", d, n, ok)
		}
	})
	one := &recvClock{r: strings.NewReader("tiny")}
	io.Copy(io.Discard, one)
	var rh segmentResponse
	one.report(&rh)
	if _, _, ok := rh.recvTiming(); ok {
		t.Error("a body read in one go reported a timing")
	}
}

// The request decoder never panics, returns only protocol errors, and what
// it accepts re-encodes to a header that decodes the same.
func FuzzDecodeSegmentRequest(f *testing.F) {
	for _, r := range []segmentRequest{
		{Op: opRun, Model: "lenet5", Version: "3f2a", Codec: "fp16", Nodes: []int{0, 1, 2, 3, 5, 7, 8}},
		{Op: opProbe, Model: "m"},
		{Op: opRunVia, Model: "m", Codec: "lossless", Nodes: []int{2, 3, 4, 5}, Split: 4, Next: "cloud-1", Codec2: "fp16"},
		{Op: opGenerate, Model: "gpt", Codec: "lossless", Session: "s", Cut: 1, Decode: 2, Prefill: 5, Pos: 5, Caches: true},
		{Op: opGenerateEnd, Model: "gpt", Session: "s"},
	} {
		b, _ := r.marshal()
		f.Add(b)
	}
	f.Add([]byte{1, 1, 1, 'm', 0, 0, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := unmarshalSegmentRequest(b)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		for i, v := range r.Nodes {
			if v < 0 || v >= maxModelNodes || (i > 0 && v <= r.Nodes[i-1]) {
				t.Fatalf("node set %v not ascending within [0,%d)", r.Nodes, maxModelNodes)
			}
		}
		b2, err := r.marshal()
		if err != nil {
			t.Fatalf("re-encode of %+v: %v", r, err)
		}
		if r2, err := unmarshalSegmentRequest(b2); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip %+v → %+v (%v)", r, r2, err)
		}
	})
}

// The response decoder never panics, returns only protocol errors, and
// what it accepts re-encodes to a header that decodes the same.
func FuzzDecodeSegmentResponse(f *testing.F) {
	f.Add((&segmentResponse{Queue: 5, Decode: 6, Compute: 7, Encode: 8, RecvTime: 9, RecvBytes: 10}).marshal())
	f.Add([]byte{1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := unmarshalSegmentResponse(b)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if r.Queue < 0 || r.RecvBytes < 0 || (r.RecvBytes == 0 && r.RecvTime != 0) {
			t.Fatalf("accepted %+v", r)
		}
		if r2, err := unmarshalSegmentResponse(r.marshal()); err != nil || r2 != r {
			t.Fatalf("round trip %+v → %+v (%v)", r, r2, err)
		}
	})
}
