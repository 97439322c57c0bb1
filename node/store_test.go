package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/edgesplit/edgesplit/transport"
)

// TestModelOpsRefused: the model store's protocol operations refuse what
// they must — a rollout order from a cloud certificate, a version not
// held, a malformed version — each with a code and a reason.
func TestModelOpsRefused(t *testing.T) {
	b1, err := onnx.Encode(zoo.LeNet5(7))
	if err != nil {
		t.Fatal(err)
	}
	v1 := registry.Digest(b1, nil)
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 2, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: storeWith(t, t.TempDir(), "lenet", b1, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge, c1, c2 := lc.Edges[0], lc.Clouds[0], lc.Clouds[1]
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		from *node.Node
		to   *node.Node
		hdr  []byte
		code transport.Code
		msg  string
	}{
		{"a cloud orders a rollout", c1, c2, node.ModelOpHeader("load", "lenet", string(v1), 0), transport.CodeUnauthenticated, "rollouts from edges only"},
		{"entry of a version not held", edge, c1, node.ModelOpHeader("entry", "lenet", other, 0), transport.CodeNotFound, "does not store"},
		{"chunk of a version not held", edge, c1, node.ModelOpHeader("chunk", "lenet", other, 0), transport.CodeNotFound, "no such model version"},
		{"chunk past the end", edge, c1, node.ModelOpHeader("chunk", "lenet", string(v1), 9), transport.CodeInternal, "has 1 chunks"},
		{"short version", edge, c1, node.ModelOpHeader("entry", "lenet", v1.Short(), 0), transport.CodeBadRequest, "not 64 hex digits"},
		{"load of a version nobody holds", edge, c1, node.ModelOpHeader("load", "lenet", other, 0), transport.CodeNotFound, "no source could serve the version"},
	} {
		_, err := tc.from.Endpoint().Call(context.Background(), tc.to.QUICAddr(), &transport.Request{ID: 1, Header: tc.hdr}, nil)
		var te *transport.Error
		if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want code %v with %q", tc.name, err, tc.code, tc.msg)
		}
	}
	// A chunk held is served, and fetching a version from a peer stores
	// exactly its bytes.
	resp, err := edge.Endpoint().Call(context.Background(), c1.QUICAddr(), &transport.Request{ID: 2, Header: node.ModelOpHeader("chunk", "lenet", string(v1), 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	blob := make([]byte, 3*registry.ChunkSize+17)
	rand.Read(blob)
	e, err := edge.StorePut("blob", blob)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.EnsureStored(context.Background(), "blob", e.Version, edge.Name()); err != nil {
		t.Fatal(err)
	}
	if got, err := c2.StoreRead("blob", e.Version); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("fetched version: %v (%d bytes, want %d)", err, len(got), len(blob))
	}
}

// BenchmarkPushFanOut pushes a 16 MiB version to one node and has nine
// others fetch it at once over QUIC with mutual TLS (each from every peer
// gossiping it: here the origin), reporting the goodput (bytes stored per
// second over all nodes) and the heap growth while it runs.
func BenchmarkPushFanOut(b *testing.B) {
	b1, err := onnx.Encode(zoo.LeNet5(7))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 9, Policy: "cloud-only", GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: storeWith(b, dir, "lenet", b1, nil),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lc.Kill)
	origin := lc.Edges[0]
	blob := make([]byte, 16<<20)
	rand.Read(blob)
	var total atomic.Int64
	var peak atomic.Uint64
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		name := fmt.Sprintf("big%d", i)
		e, err := origin.StorePut(name, blob)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		base := liveHeap()
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				if l := liveHeap(); l > base && l-base > peak.Load() {
					peak.Store(l - base)
				}
			}
		}()
		var wg sync.WaitGroup
		for _, c := range lc.Clouds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.EnsureStored(context.Background(), name, e.Version, origin.Name()); err != nil {
					b.Error(err)
					return
				}
				total.Add(e.Size())
			}()
		}
		wg.Wait()
		close(stop)
	}
	el := time.Since(start)
	b.ReportMetric(float64(total.Load())/el.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-live-heap-MiB")
}

// liveHeap is the heap the last GC found live (runtime/metrics).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
