package mahimahi_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/internal/mahimahi"
)

func ExampleParse() {
	in := "# two opportunities at 1 ms, one at 3 ms and one at 4 ms; then again\n1\n1\n3\n4\n"
	tr, err := mahimahi.Parse(strings.NewReader(in), mahimahi.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(tr), "opportunities every", tr.Period())
	fmt.Printf("%.0f Mbit/s\n", tr.MeanRate()/1e6)
	fmt.Println(tr.Bytes(0, 10*time.Millisecond), "bytes in the first 10 ms")
	fmt.Println("opportunity 5 is at", tr.At(5))

	_, err = mahimahi.Parse(strings.NewReader("5\n3\n"), mahimahi.Limits{})
	fmt.Println(err)
	// Output:
	// 4 opportunities every 4ms
	// 12 Mbit/s
	// 15000 bytes in the first 10 ms
	// opportunity 5 is at 5ms
	// line 2: timestamp 3 ms is before the previous one (5 ms)
}
