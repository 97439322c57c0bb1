package sim_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/edgesplit/edgesplit/sim"
)

func Example() {
	s, err := sim.ParseScenario(strings.NewReader(`
name: example
seed: 42
duration: 1m
policy: neurosurgeon
codecs: [{name: raw, ratio: 1}, {name: uint8, ratio: 7, encode_mbps: 300, decode_mbps: 1200, agreement: {agree: 3000, samples: 3000}}]
models: [{name: vgg16, synthetic: vgg16}]
edges:
  - {name: phone, count: 10, model: vgg16, slowdown: 0.2, link: {profile: 5g-midband}, arrivals: {rate: 1}, deadline: 1s}
clouds: [{name: gpu, workers: 4, slowdown: 0.01}]
`), "example.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := sim.Run(context.Background(), s, sim.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d requests, %d offloaded, SLO hit rate %.2f\n", sum.Requests, sum.Offloaded, sum.SLOHitRate)
	// Output: 578 requests, 578 offloaded, SLO hit rate 1.00
}
