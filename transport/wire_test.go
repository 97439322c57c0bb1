package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// rawStream opens a stream to srv with a trusted identity.
func rawStream(t *testing.T, c *cluster, srv *Endpoint) *quic.Stream {
	t.Helper()
	conn, err := rawDial(t, srv.Addr(), c.identity("raw").ClientTLS("", ALPN))
	if err != nil {
		t.Fatal(err)
	}
	str, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return str
}

func readErrorReply(t *testing.T, str *quic.Stream, within time.Duration) *Error {
	t.Helper()
	str.SetReadDeadline(time.Now().Add(within))
	h, err := readResponse(bufio.NewReader(str), 1<<12)
	if err != nil {
		t.Fatalf("no reply within %v: %v", within, err)
	}
	if h.status != statusError {
		t.Fatal("malformed request got a success reply")
	}
	return &Error{Code: h.code, Message: h.message}
}

func TestMalformedFrames(t *testing.T) {
	c := newCluster(t)
	h := &countingHandler{}
	srv := c.endpoint("cloud", h, func(cfg *Config) { cfg.MaxHeaderBytes = 1024; cfg.HeaderTimeout = 300 * time.Millisecond })
	good, _ := appendRequest(nil, &Request{ID: 7, Header: []byte("m")}, 1024)
	cases := []struct {
		name string
		data []byte
		fin  bool
		code Code
	}{
		{"bad magic", []byte("XX\x01\x01\x00"), true, CodeBadRequest},
		{"bad version", []byte("ES\x09\x01\x00"), true, CodeBadRequest},
		{"version 1 (model, cut and meta in the frame)", []byte("ES\x01\x01\x00"), true, CodeBadRequest},
		{"unknown frame", []byte("ES\x02\x07\x00"), true, CodeBadRequest},
		{"truncated prefix", []byte("ES"), true, CodeBadRequest},
		{"oversized header", binary.AppendUvarint([]byte("ES\x02\x01"), 1<<20), false, CodeTooLarge},
		{"header shorter than claimed", append(binary.AppendUvarint([]byte("ES\x02\x01"), 50), 1, 2, 3), true, CodeBadRequest},
		{"garbage header", append(binary.AppendUvarint([]byte("ES\x02\x01"), 4), 0xff, 0xff, 0xff, 0xff), true, CodeBadRequest},
		{"trailing header bytes", func() []byte {
			b := binary.AppendUvarint([]byte("ES\x02\x01"), uint64(len(good)-5+1))
			return append(append(b, good[5:]...), 0)
		}(), true, CodeBadRequest},
		{"slowloris header", []byte("ES\x02"), false, CodeStalled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			str := rawStream(t, c, srv)
			str.Write(tc.data)
			if tc.fin {
				str.Close()
			}
			t0 := time.Now()
			e := readErrorReply(t, str, 2*time.Second)
			if e.Code != tc.code {
				t.Fatalf("code %v (%s), want %v", e.Code, e.Message, tc.code)
			}
			if tc.code == CodeStalled && time.Since(t0) > 1500*time.Millisecond {
				t.Fatalf("slowloris cut after %v, header timeout 300 ms", time.Since(t0))
			}
		})
	}
	if n := h.n.Load(); n != 0 {
		t.Fatalf("handler ran %d times on malformed input", n)
	}
	// The node keeps serving.
	cli := c.endpoint("edge", nil, nil)
	if err := callOnce(cli, srv, []byte("still here"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
}

func FuzzReadRequest(f *testing.F) {
	good, _ := appendRequest(nil, &Request{ID: 9, Header: []byte{1, 2, 3}, Timeout: time.Second}, 1<<10)
	f.Add(good)
	f.Add([]byte("ES\x02\x01\x00"))
	f.Add([]byte("ES\x02\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readRequest(bufio.NewReader(bytes.NewReader(data)), 1<<12)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		b, err := appendRequest(nil, r, 1<<12)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := readRequest(bufio.NewReader(bytes.NewReader(b)), 1<<12)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip %+v != %+v", r, r2)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	f.Add(appendResponse(nil, &responseHeader{status: statusOK, id: 3, peerGoodput: 100, header: []byte("k=v")}))
	f.Add(appendResponse(nil, &responseHeader{status: statusError, id: 3, code: CodeNotFound, message: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readResponse(bufio.NewReader(bytes.NewReader(data)), 1<<12)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		h2, err := readResponse(bufio.NewReader(bytes.NewReader(appendResponse(nil, h))), 1<<12)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip: %+v vs %+v (%v)", h, h2, err)
		}
	})
}
