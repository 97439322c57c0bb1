package linkem_test

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/edgesplit/edgesplit/transport/linkem"
)

// Wrap a UDP socket in an emulated LTE link; hand the result to
// quic.Transport{Conn: lc}.
func ExampleNew() {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := linkem.LookupProfile("lte")
	lc, err := linkem.New(udp, p.Up, p.Down, linkem.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lc.Close()
	fmt.Printf("%s: up %.1f Mbit/s, RTT %v\n", p.Name, lc.Settings(linkem.Uplink).Rate/1e6, p.Up.Delay+p.Down.Delay)
	// Output: lte: up 6.3 Mbit/s, RTT 55ms
}

// Convert a per-second capacity series to a Mahimahi trace.
func ExampleConvertCSV() {
	var sb strings.Builder
	if err := linkem.ConvertCSV(&sb, strings.NewReader("second,mbps\n0,0.036\n")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Print(sb.String())
	tr, _ := linkem.ParseTrace(strings.NewReader(sb.String()))
	fmt.Println(tr.Len(), "opportunities per", tr.Period().Milliseconds(), "ms")
	// Output:
	// 334
	// 667
	// 1000
	// 3 opportunities per 1000 ms
}
