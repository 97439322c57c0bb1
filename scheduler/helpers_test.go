package scheduler

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// model is a hand-built model: its DAG and its profile on an edge device
// and on a cloud device.
type testModel struct {
	dag   *DAG
	edge  *partition.Profile
	cloud *partition.Profile
}

// builder makes DAGs and profiles node by node.
type builder struct {
	d     *DAG
	nodes []partition.NodeProfile
	rng   *rand.Rand
}

func newBuilder(inputBytes int64, seed uint64) *builder {
	b := &builder{d: &DAG{}, rng: rand.New(rand.NewPCG(seed, 7))}
	b.d.Tensors = append(b.d.Tensors, Tensor{Name: "input", Bytes: inputBytes, Producer: -1})
	return b
}

// node adds an operator reading tensors ins (indices into d.Tensors) and
// producing one tensor of outBytes; it returns the new tensor's index.
func (b *builder) node(op string, lat time.Duration, macs, outBytes int64, ins ...int) int {
	i := b.d.Nodes
	b.d.Nodes++
	for _, t := range ins {
		b.d.Tensors[t].Consumers = append(b.d.Tensors[t].Consumers, i)
	}
	name := fmt.Sprintf("%s%d", op, i)
	b.nodes = append(b.nodes, partition.NodeProfile{Index: i, Name: name, Op: op, Latency: lat, OutBytes: outBytes, MACs: macs})
	b.d.Tensors = append(b.d.Tensors, Tensor{Name: name, Bytes: outBytes, Producer: i})
	return len(b.d.Tensors) - 1
}

// finish marks tensor out as the graph output and builds the profiles; the
// cloud is speedup times faster.
func (b *builder) finish(name string, out int, speedup float64) testModel {
	b.d.Tensors[out].Output = true
	cuts := b.d.Cuts()
	edge := &partition.Profile{Model: name, Device: "edge", Nodes: b.nodes, Cuts: cuts,
		InputBytes: b.d.Tensors[0].Bytes, OutputBytes: b.d.Tensors[out].Bytes}
	cn := make([]partition.NodeProfile, len(b.nodes))
	for i, n := range b.nodes {
		n.Latency = time.Duration(float64(n.Latency) / speedup)
		cn[i] = n
	}
	cloud := *edge
	cloud.Device, cloud.Nodes = "cloud", cn
	return testModel{dag: b.d, edge: edge, cloud: &cloud}
}

// vggLike is a chain whose activations shrink while compute stays large,
// so the best cut moves with the bandwidth.
func vggLike() testModel {
	b := newBuilder(3*224*224*4, 1)
	t := 0
	size := int64(64 * 224 * 224 * 4)
	for stage := 0; stage < 5; stage++ {
		for j := 0; j < 2; j++ {
			t = b.node("Conv", 40*time.Millisecond, 1e9, size, t)
			t = b.node("Relu", 2*time.Millisecond, 0, size, t)
		}
		size /= 4
		t = b.node("MaxPool", 1*time.Millisecond, 0, size, t)
	}
	t = b.node("Gemm", 10*time.Millisecond, 1e8, 4096*4, t)
	t = b.node("Gemm", 2*time.Millisecond, 1e7, 1000*4, t)
	return b.finish("vgg-like", t, 10)
}

// resnetLike is a stem, residual blocks (every second with a 1×1
// downsample on the skip path) and a classifier, with random latencies.
func resnetLike(blocks int, seed uint64) testModel {
	b := newBuilder(3*224*224*4, seed)
	r := func(lo, hi int) time.Duration {
		return time.Duration(lo+b.rng.IntN(hi-lo+1)) * time.Millisecond
	}
	size := int64(64 * 56 * 56 * 4)
	x := b.node("Conv", r(5, 20), 1e8, size, 0)
	for i := 0; i < blocks; i++ {
		skip := x
		if i%2 == 1 {
			size /= 2
		}
		c1 := b.node("Conv", r(5, 30), 1e8, size, x)
		r1 := b.node("Relu", r(0, 2), 0, size, c1)
		c2 := b.node("Conv", r(5, 30), 1e8, size, r1)
		if i%2 == 1 {
			skip = b.node("Conv", r(1, 10), 1e7, size/int64(1+b.rng.IntN(3)), skip)
		}
		a := b.node("Add", r(0, 2), 0, size, c2, skip)
		x = b.node("Relu", r(0, 2), 0, size, a)
	}
	out := b.node("Gemm", r(1, 3), 1e6, 1000*4, x)
	return b.finish(fmt.Sprintf("resnet-like-%d", blocks), out, 8)
}

func (m testModel) inputs(upMbps float64, rtt time.Duration, codecs ...CodecModel) *Inputs {
	return &Inputs{
		Edge:   m.edge,
		DAG:    m.dag,
		Codecs: codecs,
		Clouds: []CloudInput{{ID: "c1", Profile: m.cloud, Link: LinkEstimate{RTT: rtt, Up: upMbps * 1e6 / 8, Down: 4 * upMbps * 1e6 / 8}}},
	}
}

var testCodecs = []CodecModel{
	{Name: "raw", Ratio: 1, Fidelity: Exact},
	{Name: "fp16", Ratio: 2, EncodeBps: 600e6, DecodeBps: 900e6, MaxRelErr: 1e-3, Fidelity: Bounded, CutAgreement: certifiedEverywhere},
	{Name: "uint8", Ratio: 7, EncodeBps: 200e6, DecodeBps: 500e6, MaxRelErr: 1e-2, CutAgreement: certifiedEverywhere},
}

// certifiedEverywhere is a calibration of 10 000 agreeing samples at every
// cut of any test model (a lower bound of 99.97 % at 95 %).
var certifiedEverywhere = func() []Agreement {
	a := make([]Agreement, 1024)
	for i := range a {
		a[i] = Agreement{Agree: 10000, Samples: 10000}
	}
	return a
}()
