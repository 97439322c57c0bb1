package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// Model is what the simulator needs of a model: its profile on a reference
// device (the cloud's slowdown 1 and the edge's slowdown scale it) and its
// tensor DAG (nil: a chain).
type Model struct {
	Profile *partition.Profile
	DAG     *scheduler.DAG

	codecs []scheduler.CodecModel // the scenario's codecs, calibrated for this model
}

// ModelFile is the JSON form of a Model (a scenario's models[].profile).
type ModelFile struct {
	Profile partition.Profile `json:"profile"`
	DAG     *scheduler.DAG    `json:"dag,omitempty"`
}

// maxModelBytes bounds a model file.
const maxModelBytes = 64 << 20

// ReadModel reads a ModelFile and checks it.
func ReadModel(r io.Reader) (Model, error) {
	var f ModelFile
	dec := json.NewDecoder(io.LimitReader(r, maxModelBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Model{}, fmt.Errorf("model file: %w", err)
	}
	m := Model{Profile: &f.Profile, DAG: f.DAG}
	return m, m.check()
}

// WriteModel writes m as a ModelFile.
func WriteModel(w io.Writer, m Model) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(ModelFile{Profile: *m.Profile, DAG: m.DAG})
}

func (m Model) check() error {
	if m.Profile == nil || len(m.Profile.Nodes) == 0 {
		return fmt.Errorf("model: profile has no nodes")
	}
	in := scheduler.Inputs{Edge: m.Profile, DAG: m.DAG}
	if err := in.Validate(); err != nil {
		return err
	}
	if m.DAG != nil {
		return m.DAG.Validate()
	}
	return nil
}

// Reference device of the synthetic models: 5 GMAC/s and 10 GB/s of memory
// traffic plus 10 µs per node — roughly one server core running the
// engine's float32 kernels.
const (
	refMACsPerSec  = 5e9
	refBytesPerSec = 10e9
	refOverhead    = 10 * time.Microsecond
)

type synthBuilder struct {
	d     *scheduler.DAG
	nodes []partition.NodeProfile
}

func newSynth(c, h, w int) *synthBuilder {
	b := &synthBuilder{d: &scheduler.DAG{}}
	b.d.Tensors = append(b.d.Tensors, scheduler.Tensor{Name: "input", Bytes: int64(4 * c * h * w), Producer: -1})
	return b
}

func (b *synthBuilder) node(op string, macs, params, outElems int64, ins ...int) int {
	i := b.d.Nodes
	b.d.Nodes++
	var inBytes int64
	for _, t := range ins {
		b.d.Tensors[t].Consumers = append(b.d.Tensors[t].Consumers, i)
		inBytes += b.d.Tensors[t].Bytes
	}
	out := 4 * outElems
	lat := refOverhead + time.Duration(float64(macs)/refMACsPerSec*1e9+float64(inBytes+out+4*params)/refBytesPerSec*1e9)
	name := fmt.Sprintf("%s_%d", op, i)
	b.nodes = append(b.nodes, partition.NodeProfile{Index: i, Name: name, Op: op, Latency: lat, OutBytes: out, MACs: macs, Params: params})
	b.d.Tensors = append(b.d.Tensors, scheduler.Tensor{Name: name, Bytes: out, Producer: i})
	return len(b.d.Tensors) - 1
}

func (b *synthBuilder) conv(x, cin, cout, k, stride, h, w int, relu bool) (int, int, int) {
	ho, wo := h/stride, w/stride
	t := b.node("Conv", int64(cout*cin*k*k*ho*wo), int64(cout*cin*k*k), int64(cout*ho*wo), x)
	if relu {
		t = b.node("Relu", 0, 0, int64(cout*ho*wo), t)
	}
	return t, ho, wo
}

func (b *synthBuilder) finish(name string, out int) Model {
	b.d.Tensors[out].Output = true
	p := &partition.Profile{Model: name, Device: "reference", Nodes: b.nodes, Cuts: b.d.Cuts(),
		InputBytes: b.d.Tensors[0].Bytes, OutputBytes: b.d.Tensors[out].Bytes}
	return Model{Profile: p, DAG: b.d}
}

func vgg16() Model {
	b := newSynth(3, 224, 224)
	x, c, h, w := 0, 3, 224, 224
	for _, stage := range [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}} {
		for _, co := range stage {
			x, h, w = b.conv(x, c, co, 3, 1, h, w, true)
			c = co
		}
		h, w = h/2, w/2
		x = b.node("MaxPool", 0, 0, int64(c*h*w), x)
	}
	x = b.node("Flatten", 0, 0, int64(c*h*w), x)
	in := c * h * w
	for i, o := range []int{4096, 4096, 1000} {
		x = b.node("Gemm", int64(in*o), int64(in*o), int64(o), x)
		if i < 2 {
			x = b.node("Relu", 0, 0, int64(o), x)
		}
		in = o
	}
	return b.finish("vgg16", x)
}

func resnet18() Model {
	b := newSynth(3, 224, 224)
	x, h, w := b.conv(0, 3, 64, 7, 2, 224, 224, true)
	h, w = h/2, w/2
	x = b.node("MaxPool", 0, 0, int64(64*h*w), x)
	c := 64
	for _, co := range []int{64, 128, 256, 512} {
		for blk := 0; blk < 2; blk++ {
			stride := 1
			if blk == 0 && co != 64 {
				stride = 2
			}
			skip := x
			y, ho, wo := b.conv(x, c, co, 3, stride, h, w, true)
			y, _, _ = b.conv(y, co, co, 3, 1, ho, wo, false)
			if stride != 1 || c != co {
				skip, _, _ = b.conv(skip, c, co, 1, stride, h, w, false)
			}
			a := b.node("Add", 0, 0, int64(co*ho*wo), y, skip)
			x = b.node("Relu", 0, 0, int64(co*ho*wo), a)
			c, h, w = co, ho, wo
		}
	}
	x = b.node("GlobalAveragePool", 0, 0, int64(c), x)
	x = b.node("Flatten", 0, 0, int64(c), x)
	x = b.node("Gemm", int64(c*1000), int64(c*1000), 1000, x)
	return b.finish("resnet18", x)
}

func mobilenetv2() Model {
	b := newSynth(3, 224, 224)
	clip := func(x int, elems int64) int { return b.node("Clip", 0, 0, elems, x) }
	x, h, w := b.conv(0, 3, 32, 3, 2, 224, 224, false)
	x = clip(x, int64(32*h*w))
	c := 32
	for _, st := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		t, co, n, s := st[0], st[1], st[2], st[3]
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 {
				stride = s
			}
			in := x
			y, hid := x, c*t
			if t != 1 {
				y, _, _ = b.conv(y, c, hid, 1, 1, h, w, false)
				y = clip(y, int64(hid*h*w))
			}
			ho, wo := h/stride, w/stride
			y = b.node("Conv", int64(hid*9*ho*wo), int64(hid*9), int64(hid*ho*wo), y) // depthwise 3×3
			y = clip(y, int64(hid*ho*wo))
			y, _, _ = b.conv(y, hid, co, 1, 1, ho, wo, false)
			if stride == 1 && c == co {
				y = b.node("Add", 0, 0, int64(co*ho*wo), y, in)
			}
			x, c, h, w = y, co, ho, wo
		}
	}
	x, _, _ = b.conv(x, c, 1280, 1, 1, h, w, false)
	x = clip(x, int64(1280*h*w))
	x = b.node("GlobalAveragePool", 0, 0, 1280, x)
	x = b.node("Flatten", 0, 0, 1280, x)
	x = b.node("Gemm", 1280*1000, 1280*1000, 1000, x)
	return b.finish("mobilenetv2", x)
}

// tiny is a 4-node chain for quick tests: 1×28×28 input, as an MNIST CNN.
func tiny() Model {
	b := newSynth(1, 28, 28)
	x, h, w := b.conv(0, 1, 8, 3, 1, 28, 28, true)
	h, w = h/2, w/2
	x = b.node("MaxPool", 0, 0, int64(8*h*w), x)
	x = b.node("Gemm", int64(8*h*w*10), int64(8*h*w*10), 10, x)
	return b.finish("tiny", x)
}

var synthetic = map[string]func() Model{"vgg16": vgg16, "resnet18": resnet18, "mobilenetv2": mobilenetv2, "tiny": tiny}

// SyntheticModels lists the names SyntheticModel knows.
func SyntheticModels() []string { return sortedKeys(synthetic) }

// SyntheticModel returns a model with the layer structure of name (vgg16,
// resnet18, mobilenetv2, tiny) and latencies of an analytic reference device (5 GMAC/s,
// 10 GB/s, 10 µs per node): for tests and for scenarios run before the
// real profiles exist. Each call returns a fresh copy.
func SyntheticModel(name string) (Model, error) {
	f, ok := synthetic[name]
	if !ok {
		names := SyntheticModels()
		sort.Strings(names)
		return Model{}, fmt.Errorf("sim: no synthetic model %q (have %v)", name, names)
	}
	return f(), nil
}

// scaled returns p with every latency multiplied by f.
func scaled(p *partition.Profile, f float64, device string) *partition.Profile {
	q := *p
	q.Device = device
	q.Nodes = make([]partition.NodeProfile, len(p.Nodes))
	for i, n := range p.Nodes {
		n.Latency = time.Duration(float64(n.Latency) * f)
		q.Nodes[i] = n
	}
	return &q
}
