package transport

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/transport/pki"
)

// BenchmarkCall measures request/response throughput on loopback (1 MiB up,
// 1 MiB down per call, one connection reused).
func BenchmarkCall(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		b.Run(map[int]string{1 << 10: "1KiB", 1 << 20: "1MiB"}[size], func(b *testing.B) {
			ca, err := pki.NewCA(pki.CAOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ep := func(name string, h Handler) *Endpoint {
				id, err := ca.Issue(name, pki.IssueOptions{})
				if err != nil {
					b.Fatal(err)
				}
				e, err := ListenAddr("127.0.0.1:0", Config{Identity: id, Handler: h, Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { e.Close() })
				return e
			}
			srv := ep("cloud", &echo{})
			cli := ep("edge", nil)
			data := payload(size)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.SetBytes(int64(2 * size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := cli.Call(ctx, srv.Addr().String(), &Request{ID: uint64(i)}, bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
