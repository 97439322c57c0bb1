package transport_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/linkem"
)

// Two endpoints on an in-process network, the edge behind a shaped link: no
// sockets and no certificates.
func ExampleMemNetwork() {
	mn := transport.NewMemNetwork()
	quiet := slog.New(slog.DiscardHandler)
	upper := transport.HandlerFunc(func(ctx context.Context, req *transport.Request, body io.Reader, w transport.ResponseWriter) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		_, err = w.Write([]byte(strings.ToUpper(string(b))))
		return err
	})
	cloud, _ := mn.ListenMem("cloud:1", transport.Config{Handler: upper, Logger: quiet})
	defer cloud.Close()
	edge, _ := mn.ListenMem("", transport.Config{Logger: quiet})
	defer edge.Close()
	edge.SetLink(linkem.LinkSettings{Rate: linkem.Mbps(20), Delay: 10 * time.Millisecond}, linkem.LinkSettings{Delay: 10 * time.Millisecond})

	var nw transport.Transport = edge // what a node holds
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := nw.Call(ctx, "cloud:1", &transport.Request{ID: 1}, strings.NewReader("split me"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	est, _ := edge.Estimate("cloud:1")
	fmt.Println(string(out), edge.Addr(), est.SmoothedRTT)
	// Output: SPLIT ME mem:1 20ms
}
