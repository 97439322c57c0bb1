package partition

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/model"
)

// The analytic reference device: a node takes ReferencePerNode, plus its
// MACs at ReferenceMACsPerSec, plus the float32 bytes it reads and writes
// (activations in and out, weights) at ReferenceBytesPerSec — roughly one
// server core running the engine's float32 kernels. Analytic profiles on
// it; the simulator's zoo models are profiled so.
const (
	ReferenceMACsPerSec  = 5e9
	ReferenceBytesPerSec = 10e9
	ReferencePerNode     = 10 * time.Microsecond
)

// ReferenceDeviceName is the Device of an Analytic profile.
const ReferenceDeviceName = "reference"

// Analytic returns Static(g) with every node's latency on the analytic
// reference device, for a model known by its structure alone (a
// zoo.Skeleton, or any simplified graph). g's Shapes must be filled.
func Analytic(g *model.Graph) (*Profile, error) {
	p, err := Static(g)
	if err != nil {
		return nil, err
	}
	p.Device = ReferenceDeviceName
	for i, nd := range g.Nodes {
		var in int64
		for _, x := range nd.Inputs {
			if x == "" || g.IsInitializer(x) {
				continue
			}
			s, err := shapeOf(g, x)
			if err != nil {
				return nil, fmt.Errorf("partition: analytic profile of %s: %w", nd, err)
			}
			in += 4 * numel(s)
		}
		n := &p.Nodes[i]
		bytes := in + n.OutBytes + 4*n.Params
		n.Latency = ReferencePerNode + time.Duration((float64(n.MACs)/ReferenceMACsPerSec+float64(bytes)/ReferenceBytesPerSec)*1e9)
	}
	return p, nil
}
