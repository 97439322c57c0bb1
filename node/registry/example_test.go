package registry_test

import (
	"fmt"
	"os"

	"github.com/edgesplit/edgesplit/node/registry"
)

// A version pushed to one store reaches another chunk by chunk.
func Example() {
	a, _ := os.MkdirTemp("", "store-a")
	b, _ := os.MkdirTemp("", "store-b")
	defer os.RemoveAll(a)
	defer os.RemoveAll(b)
	src, _ := registry.Open(a, registry.DefaultOptions())
	dst, _ := registry.Open(b, registry.DefaultOptions())

	e, _ := src.Put("seed-cnn", []byte("…onnx bytes…"), nil)
	d, _ := dst.Begin(e) // e travels as gossip/RPC metadata
	for _, i := range d.Missing() {
		chunk, _ := src.ReadChunk(e.Name, e.Version, i, nil) // served by a peer
		if err := d.Write(i, chunk); err != nil {
			fmt.Println(err)
			return
		}
	}
	got, err := d.Commit()
	fmt.Println(got.Name, got.Version == e.Version, err)
	// Output: seed-cnn true <nil>
}
