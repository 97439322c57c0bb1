package node_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/node"
	"gorgonia.org/tensor"
)

// TestInferAPIBadInput: bad bodies and parameters get 4xx errors whose
// message says what is wrong, never a 500, a panic or a huge allocation; a
// request whose own deadline passes gets a 504 naming the deadline.
func TestInferAPIBadInput(t *testing.T) {
	lc, _ := startTestCluster(t, 1, "auto")
	h := lc.Edges[0].Handler()
	// A valid PNG header (IHDR with its CRC) claiming 100000×100000 pixels.
	ihdr := []byte{'I', 'H', 'D', 'R', 0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 0, 0, 0, 0}
	hugePNG := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	hugePNG = binary.BigEndian.AppendUint32(hugePNG, crc32.ChecksumIEEE(ihdr))
	good := func() []byte { return npyBytes(t, randInput(1, []int{1, 1, 28, 28})) }
	for _, tc := range []struct {
		name, query string
		body        []byte
		code        int
		want        string // in the error message
	}{
		{"garbage", "", []byte("hello"), http.StatusBadRequest, "neither .npy nor a PNG/JPEG image"},
		{"empty body", "", nil, http.StatusBadRequest, "neither .npy nor a PNG/JPEG image"},
		{"huge image", "", hugePNG, http.StatusBadRequest, "100000×100000 pixels"}, // refused from its header
		{"truncated npy", "", []byte("\x93NUMPY"), http.StatusBadRequest, "npy"},
		{"npy of the wrong shape", "", npyBytes(t, randInput(1, []int{1, 3, 8, 8})), http.StatusBadRequest, "shape [1 3 8 8]"},
		{"unknown model", "?model=nope", []byte("x"), http.StatusNotFound, `unknown model: \"nope\"`},
		{"bad deadline", "?deadline=-5s", good(), http.StatusBadRequest, "positive duration"},
		{"unknown policy", "?policy=magic", good(), http.StatusBadRequest, `unknown policy \"magic\"`},
		{"bad fixed cut", "?policy=fixed:-1", good(), http.StatusBadRequest, "cut K ≥ 0"},
		{"unknown codec", "?codec=magic", good(), http.StatusBadRequest, `unknown codec \"magic\"`},
		{"uncalibrated lossy codec", "?codec=int4-zstd&policy=cloud-only", good(), http.StatusBadRequest, "calibration"},
		{"max_loss not a number", "?max_loss=abc", good(), http.StatusBadRequest, "max_loss"},
		{"max_loss out of range", "?max_loss=1.5", good(), http.StatusBadRequest, "out of range"},
		{"deadline passed", "?deadline=1ns", good(), http.StatusGatewayTimeout, "deadline 1ns passed"},
		{"NaN input", "", npyBytes(t, withValue(randInput(1, []int{1, 1, 28, 28}), 57, float32(math.NaN()))), http.StatusBadRequest, "input element 57 (of shape [1 1 28 28]) is NaN"},
		{"Inf input", "", npyBytes(t, withValue(randInput(1, []int{1, 1, 28, 28}), 3, float32(math.Inf(-1)))), http.StatusBadRequest, "is -Inf"},
		{"16-bit image bomb", "", pngHeader(4096, 2048, 16, 6), http.StatusBadRequest, "64 MiB decoded"}, // RGBA64 claimed by 33 bytes
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer"+tc.query, bytes.NewReader(tc.body)))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), `"error"`) || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with an error naming %q", tc.name, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer", bytes.NewReader(good())))
	if rec.Code != http.StatusOK {
		t.Fatalf("good request: %d %s", rec.Code, rec.Body.String())
	}
}

func npyBytes(t *testing.T, x *tensor.Dense) []byte {
	var b bytes.Buffer
	if err := npy.Write(&b, x); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withValue sets element i of t to v.
func withValue(t *tensor.Dense, i int, v float32) *tensor.Dense {
	t.Data().([]float32)[i] = v
	return t
}

// pngHeader is a PNG signature and IHDR chunk claiming a w×h image of the
// given bit depth and colour type (6: RGBA), with its CRC.
func pngHeader(w, h uint32, depth, colour byte) []byte {
	ihdr := []byte{'I', 'H', 'D', 'R'}
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colour, 0, 0, 0)
	b := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

// TestInferAPIInflightCap: of MaxInflightRequests+MaxQueuedRequests+1
// requests whose bodies are still arriving (the cap in flight, the queue
// full), exactly one gets 429 with Retry-After at once, before any queued
// one's wait is over; when they end, requests are served again.
func TestInferAPIInflightCap(t *testing.T) {
	lc, _ := startTestCluster(t, 1, "edge-only")
	h := lc.Edges[0].Handler()
	var writers []*io.PipeWriter
	var wg sync.WaitGroup
	const total = node.MaxInflightRequests + node.MaxQueuedRequests + 1
	refused := make(chan *httptest.ResponseRecorder, total)
	start := time.Now()
	for range total {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer", pr))
			if rec.Code == http.StatusTooManyRequests {
				refused <- rec
			}
		}()
	}
	select {
	case rec := <-refused:
		if rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "in flight") {
			t.Errorf("429 without Retry-After or reason: %v %s", rec.Header(), rec.Body)
		}
		if d := time.Since(start); d >= node.MaxQueueWait {
			t.Errorf("the refusal took %v: it waited in the queue", d)
		}
	case <-time.After(node.MaxQueueWait):
		t.Fatal("no request refused with the cap in flight and the queue full")
	}
	for _, pw := range writers {
		pw.CloseWithError(errors.New("client gone"))
	}
	wg.Wait()
	if n := len(refused); n != 0 {
		t.Errorf("%d more requests refused, want exactly one", n)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer", bytes.NewReader(npyBytes(t, randInput(1, []int{1, 1, 28, 28})))))
	if rec.Code != http.StatusOK {
		t.Errorf("after the burst: %d %s", rec.Code, rec.Body)
	}
}

// TestBreakdownSumsToTotal: an answer's breakdown_ms terms add up to its
// total_ms, the first request (compiles, first QUIC contact) included.
func TestBreakdownSumsToTotal(t *testing.T) {
	lc, m := startTestCluster(t, 1, "cloud-only")
	h := lc.Edges[0].Handler()
	for i := range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/infer", bytes.NewReader(npyBytes(t, randInput(uint64(i), m.Graph.Inputs[0].Shape)))))
		var res node.InferResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
		var sum float64
		for _, k := range []string{"planning", "edge_compute", "encode", "transfer", "queue", "cloud_compute", "decode", "setup"} {
			v, ok := res.Breakdown[k]
			if !ok || v < 0 {
				t.Fatalf("request %d: breakdown %v lacks %s", i, res.Breakdown, k)
			}
			sum += v
		}
		if math.Abs(sum-res.RequestMS) > 0.01 {
			t.Errorf("request %d: breakdown sums to %.3f ms, total_ms %.3f", i, sum, res.RequestMS)
		}
		t.Logf("request %d: total %.2f ms = %v", i, res.RequestMS, res.Breakdown)
	}
}
