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
		// req.Header is the application's own (opaque to transport).
		if string(req.Header) != "lenet [2,5)" {
			return transport.Errorf(transport.CodeNotFound, "no segment %q", req.Header)
		}
		w.SetHeader([]byte("done"))
		_, err = fmt.Fprintf(w, "ran %s on %d bytes", req.Header, len(in))
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
	req := &transport.Request{ID: 1, Header: []byte("lenet [2,5)")}
	resp, err := edge.Call(ctx, cloud.Addr().String(), req, bytes.NewReader(make([]byte, 1000)))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(resp.Header), string(out))

	_, err = edge.Call(ctx, cloud.Addr().String(), &transport.Request{Header: []byte("vgg")}, nil)
	fmt.Println(transport.CodeOf(err), err)
	// Output:
	// done ran lenet [2,5) on 1000 bytes
	// not found transport: not found (from peer): no segment "vgg"
}
