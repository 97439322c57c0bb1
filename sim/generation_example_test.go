package sim_test

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/sim"
)

// A GPT-2-small-class model on an edge 8× slower than the reference
// device, over LTE's round trip: each policy's time to the first token and
// its rate after it.
func ExampleSimulateGeneration() {
	p, err := sim.GenerationProfileNamed("gpt2-small", 8)
	if err != nil {
		fmt.Println(err)
		return
	}
	link := sim.GenerationLink{UpMbps: 10, DownMbps: 40, RTT: 55 * time.Millisecond}
	for _, pol := range []string{sim.GenerationEdgeOnly, sim.GenerationCloudOnly, sim.GenerationSplit, sim.GenerationAuto} {
		r, err := sim.SimulateGeneration(sim.Generation{Profile: p, Link: link, Prompt: 256, Tokens: 128, Policy: pol})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%-10s cuts (%d,%d): first token %5.2f s, %.1f tokens/s, %.0f bytes/token\n",
			pol, r.PrefillCut, r.DecodeCut, r.FirstToken.Seconds(), r.TokensPerSec, r.BytesPerToken)
	}
	// Output:
	// edge-only  cuts (12,12): first token 36.88 s, 1.5 tokens/s, 0 bytes/token
	// cloud-only cuts (0,0): first token  4.67 s, 7.3 tokens/s, 12 bytes/token
	// split      cuts (1,1): first token  7.97 s, 5.8 tokens/s, 9192 bytes/token
	// auto       cuts (0,0): first token  4.67 s, 7.3 tokens/s, 12 bytes/token
}
