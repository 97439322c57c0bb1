package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/pki"
)

// An in-process pair of nodes sharing an ephemeral CA: the cloud node runs
// segments, the edge node calls it.
func ExampleEndpoint_Call() {
	ca, _ := pki.NewCA(pki.CAOptions{})
	cloudID, _ := ca.Issue("cloud", pki.IssueOptions{})
	edgeID, _ := ca.Issue("edge", pki.IssueOptions{})
	quiet := slog.New(slog.DiscardHandler)

	run := transport.HandlerFunc(func(ctx context.Context, req *transport.Request, body io.Reader, w transport.ResponseWriter) error {
		in, err := io.ReadAll(body) // the tensorcodec payload
		if err != nil {
			return err
		}
		if req.Model != "lenet" {
			return transport.Errorf(transport.CodeNotFound, "no model %q", req.Model)
		}
		_, err = fmt.Fprintf(w, "ran [%d,%d) on %d bytes", req.From, req.To, len(in))
		return err
	})
	cloud, err := transport.ListenAddr("127.0.0.1:0", transport.Config{Identity: cloudID, Handler: run, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cloud.Close()
	edge, err := transport.ListenAddr("127.0.0.1:0", transport.Config{Identity: edgeID, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer edge.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := &transport.Request{ID: 1, Model: "lenet", Version: "1", From: 2, To: 5, Codec: "fp16"}
	resp, err := edge.Call(ctx, cloud.Addr().String(), req, bytes.NewReader(make([]byte, 1000)))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(out))

	_, err = edge.Call(ctx, cloud.Addr().String(), &transport.Request{Model: "vgg"}, nil)
	fmt.Println(transport.CodeOf(err), err)
	// Output:
	// ran [2,5) on 1000 bytes
	// not found transport: not found (from peer): no model "vgg"
}
