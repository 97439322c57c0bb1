package zoo

import (
	"errors"
	"fmt"
	"sort"

	"github.com/edgesplit/edgesplit/model"
)

// ErrUnknownModel is returned (wrapped) by Build for a name not in Names.
var ErrUnknownModel = errors.New("zoo: unknown model")

// Tensor names shared by the zoo graphs.
const (
	// InputName is the single graph input of every zoo model.
	InputName = "input"
	// LogitsName is the output of the ImageNet models (1×1000 logits).
	LogitsName = "logits"
	// ProbsName is the output of seed-cnn and lenet5 (1×10 probabilities),
	// and the final exit of lenet-exits.
	ProbsName = "probs"
	// Exit1Name and Exit2Name are the early-exit outputs of lenet-exits and
	// resnet-exits (1×10 probabilities), listed before ProbsName in their
	// Outputs.
	Exit1Name = "exit1"
	Exit2Name = "exit2"
)

var registry = map[string]func(mode) *model.Graph{
	"alexnet":      alexNet,
	"vgg16":        vgg16,
	"resnet18":     resNet18,
	"mobilenetv2":  mobileNetV2,
	"seed-cnn":     seedCNN,
	"lenet5":       leNet5,
	"lenet-exits":  lenetExits,
	"resnet-exits": resNetExits,
	"vit-tiny":     vitTiny,
	"gpt-tiny":     gptTiny,
}

// Names lists the model names Build accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build returns the named model with weights drawn from seed. The error wraps
// ErrUnknownModel and lists the known names when name is not one of Names.
func Build(name string, seed uint64) (*model.Graph, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return f(weights(seed)), nil
}

func lookup(name string) (func(mode) *model.Graph, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownModel, name, Names())
	}
	return f, nil
}

// Skeleton returns the named model as model.Simplify would leave it — the
// same nodes in the same canonical order, with the same names and tensors
// (batch norm folded into the conv before it, dropout removed), and every
// tensor's shape in Shapes — but without weights: each weight initializer
// is a 0-D float32 placeholder, its real shape only in Shapes. It serves
// what depends on the structure alone (partition.Static: bytes, MACs,
// parameters and cuts; the scheduler's tensor DAG) at a small fraction of
// Build's time and memory (VGG-16 has 138 M weights). A skeleton cannot be
// compiled or run, and ParamCount does not apply to it. The error wraps
// ErrUnknownModel for a name not in Names.
func Skeleton(name string) (*model.Graph, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return f(mode{skeleton: true}), nil
}

// mnistShape is the input shape of the MNIST-family models: N×C×H×W.
var mnistShape = []int{1, 1, 28, 28}

// imageNetShape is the input shape of the ImageNet models.
var imageNetShape = []int{1, 3, 224, 224}

// SeedCNN is the reference MNIST model of the seed pipeline, exactly:
// Conv 32 3×3 (+bias) + Relu on 1×1×28×28 → MaxPool 2×2 → Flatten →
// Gemm 64 + Relu → Gemm 10 → Softmax (output "probs", 1×10). 347,146
// parameters.
func SeedCNN(seed uint64) *model.Graph { return seedCNN(weights(seed)) }

func seedCNN(m mode) *model.Graph {
	b := newBuilder("seed-cnn", m, InputName, mnistShape)
	x := b.relu(b.conv(InputName, 32, 3, 1, 0, 1, true))
	x = b.maxPool(x, 2, 2, 0)
	x = b.flatten(x)
	x = b.relu(b.gemm(x, 64))
	x = b.gemm(x, 10)
	b.softmax(x, ProbsName)
	return b.finish(ProbsName)
}

// LeNet5 is the ReLU/max-pool variant of LeNet-5 on 1×1×28×28: Conv 6 5×5
// pad 2 + Relu → MaxPool 2 → Conv 16 5×5 + Relu → MaxPool 2 → Flatten →
// Gemm 120 + Relu → Gemm 84 + Relu → Gemm 10 → Softmax ("probs"). 61,706
// parameters.
func LeNet5(seed uint64) *model.Graph { return leNet5(weights(seed)) }

func leNet5(m mode) *model.Graph {
	b := newBuilder("lenet5", m, InputName, mnistShape)
	x := b.maxPool(b.relu(b.conv(InputName, 6, 5, 1, 2, 1, true)), 2, 2, 0)
	x = b.maxPool(b.relu(b.conv(x, 16, 5, 1, 0, 1, true)), 2, 2, 0)
	x = b.lenetHead(x)
	b.softmax(x, ProbsName)
	return b.finish(ProbsName)
}

func (b *builder) lenetHead(x string) string {
	x = b.flatten(x)
	x = b.relu(b.gemm(x, 120))
	x = b.relu(b.gemm(x, 84))
	return b.gemm(x, 10)
}

// LenetExits is LeNet5 with two BranchyNet-style early-exit classifiers, one
// after each conv block. Outputs, in order: "exit1" (after block 1: Conv 8
// 3×3 pad 1 + Relu → MaxPool 2 → Flatten → Gemm 10 → Softmax), "exit2" (after
// block 2: Flatten → Gemm 10 → Softmax) and "probs" (the LeNet-5 head), each
// 1×10 probabilities.
func LenetExits(seed uint64) *model.Graph { return lenetExits(weights(seed)) }

func lenetExits(m mode) *model.Graph {
	b := newBuilder("lenet-exits", m, InputName, mnistShape)
	block1 := b.maxPool(b.relu(b.conv(InputName, 6, 5, 1, 2, 1, true)), 2, 2, 0) // 6×14×14
	e1 := b.maxPool(b.relu(b.conv(block1, 8, 3, 1, 1, 1, true)), 2, 2, 0)        // 8×7×7
	e1 = b.gemm(b.flatten(e1), 10)
	b.softmax(e1, Exit1Name)
	block2 := b.maxPool(b.relu(b.conv(block1, 16, 5, 1, 0, 1, true)), 2, 2, 0) // 16×5×5
	e2 := b.gemm(b.flatten(block2), 10)
	b.softmax(e2, Exit2Name)
	x := b.lenetHead(block2)
	b.softmax(x, ProbsName)
	return b.finish(Exit1Name, Exit2Name, ProbsName)
}

// ResNetExits is a small multi-exit ResNet for 1×1×28×28 images
// (Fashion-MNIST, MNIST): a stem Conv 8 3×3 pad 1 + BN + Relu, then three
// stages of one basic block each (two Conv 3×3 + BN, a 1×1 Conv + BN
// projection when the shape changes, Add, Relu) of 8 channels at 28×28, 16
// at 14×14 and 32 at 7×7 (stride 2), an early exit after each of the first
// two stages and the final one after the third, each GlobalAveragePool →
// Flatten → Gemm 10 → Softmax. Outputs, in order: "exit1", "exit2",
// "probs". 20,070 parameters (BN running statistics not counted).
func ResNetExits(seed uint64) *model.Graph { return resNetExits(weights(seed)) }

func resNetExits(m mode) *model.Graph {
	b := newBuilder("resnet-exits", m, InputName, mnistShape)
	x := b.relu(b.bn(b.conv(InputName, 8, 3, 1, 1, 1, false)))
	exit := func(x, name string) {
		b.softmax(b.gemm(b.flatten(b.globalAvgPool(x)), 10), name)
	}
	for i, c := range []int{8, 16, 32} {
		stride := 1
		if i > 0 {
			stride = 2
		}
		shortcut := x
		y := b.relu(b.bn(b.conv(x, c, 3, stride, 1, 1, false)))
		y = b.bn(b.conv(y, c, 3, 1, 1, 1, false))
		if stride != 1 || b.shape(x)[1] != c {
			shortcut = b.bn(b.conv(x, c, 1, stride, 0, 1, false))
		}
		x = b.relu(b.add(y, shortcut))
		exit(x, []string{Exit1Name, Exit2Name, ProbsName}[i])
	}
	return b.finish(Exit1Name, Exit2Name, ProbsName)
}

// AlexNet is torchvision's AlexNet on 1×3×224×224 (the adaptive 6×6 average
// pool is omitted: it is the identity at this input size), output "logits"
// 1×1000. 61,100,840 parameters.
func AlexNet(seed uint64) *model.Graph { return alexNet(weights(seed)) }

func alexNet(m mode) *model.Graph {
	b := newBuilder("alexnet", m, InputName, imageNetShape)
	x := b.maxPool(b.relu(b.conv(InputName, 64, 11, 4, 2, 1, true)), 3, 2, 0)
	x = b.maxPool(b.relu(b.conv(x, 192, 5, 1, 2, 1, true)), 3, 2, 0)
	x = b.relu(b.conv(x, 384, 3, 1, 1, 1, true))
	x = b.relu(b.conv(x, 256, 3, 1, 1, 1, true))
	x = b.maxPool(b.relu(b.conv(x, 256, 3, 1, 1, 1, true)), 3, 2, 0)
	x = b.flatten(x)
	x = b.relu(b.gemm(b.dropout(x, 0.5), 4096))
	x = b.relu(b.gemm(b.dropout(x, 0.5), 4096))
	x = b.gemm(x, 1000)
	b.rename(x, LogitsName)
	return b.finish(LogitsName)
}

// VGG16 is torchvision's VGG-16 (configuration D, no batch norm) on
// 1×3×224×224, output "logits" 1×1000. 138,357,544 parameters.
func VGG16(seed uint64) *model.Graph { return vgg16(weights(seed)) }

func vgg16(m mode) *model.Graph {
	b := newBuilder("vgg16", m, InputName, imageNetShape)
	x := InputName
	for _, stage := range [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}} {
		for _, c := range stage {
			x = b.relu(b.conv(x, c, 3, 1, 1, 1, true))
		}
		x = b.maxPool(x, 2, 2, 0)
	}
	x = b.flatten(x)
	x = b.dropout(b.relu(b.gemm(x, 4096)), 0.5)
	x = b.dropout(b.relu(b.gemm(x, 4096)), 0.5)
	x = b.gemm(x, 1000)
	b.rename(x, LogitsName)
	return b.finish(LogitsName)
}

// ResNet18 is torchvision's ResNet-18 on 1×3×224×224 (basic blocks
// [2,2,2,2], 1×1 stride-2 projection shortcuts, batch norm after every conv),
// output "logits" 1×1000. 11,689,512 parameters (BN running statistics not
// counted).
func ResNet18(seed uint64) *model.Graph { return resNet18(weights(seed)) }

func resNet18(m mode) *model.Graph {
	b := newBuilder("resnet18", m, InputName, imageNetShape)
	x := b.relu(b.bn(b.conv(InputName, 64, 7, 2, 3, 1, false)))
	x = b.maxPool(x, 3, 2, 1)
	for i, c := range []int{64, 128, 256, 512} {
		for j := 0; j < 2; j++ {
			stride := 1
			if i > 0 && j == 0 {
				stride = 2
			}
			shortcut := x
			y := b.relu(b.bn(b.conv(x, c, 3, stride, 1, 1, false)))
			y = b.bn(b.conv(y, c, 3, 1, 1, 1, false))
			if stride != 1 || b.shape(x)[1] != c {
				shortcut = b.bn(b.conv(x, c, 1, stride, 0, 1, false))
			}
			x = b.relu(b.add(y, shortcut))
		}
	}
	x = b.flatten(b.globalAvgPool(x))
	x = b.gemm(x, 1000)
	b.rename(x, LogitsName)
	return b.finish(LogitsName)
}

// MobileNetV2 is torchvision's MobileNetV2 (width 1.0) on 1×3×224×224, with
// ReLU6 written as Clip(0, 6) and a 0.2 Dropout before the classifier, output
// "logits" 1×1000. 3,504,872 parameters (BN running statistics not counted).
func MobileNetV2(seed uint64) *model.Graph { return mobileNetV2(weights(seed)) }

func mobileNetV2(m mode) *model.Graph {
	b := newBuilder("mobilenetv2", m, InputName, imageNetShape)
	x := b.relu6(b.bn(b.conv(InputName, 32, 3, 2, 1, 1, false)))
	for _, s := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		t, c, n, stride := s[0], s[1], s[2], s[3]
		for i := 0; i < n; i++ {
			st := 1
			if i == 0 {
				st = stride
			}
			in := x
			inC := b.shape(x)[1]
			hidden := inC * t
			y := x
			if t != 1 {
				y = b.relu6(b.bn(b.conv(y, hidden, 1, 1, 0, 1, false)))
			}
			y = b.relu6(b.bn(b.conv(y, hidden, 3, st, 1, hidden, false)))
			y = b.bn(b.conv(y, c, 1, 1, 0, 1, false))
			if st == 1 && inC == c {
				y = b.add(y, in)
			}
			x = y
		}
	}
	x = b.relu6(b.bn(b.conv(x, 1280, 1, 1, 0, 1, false)))
	x = b.flatten(b.globalAvgPool(x))
	x = b.gemm(b.dropout(x, 0.2), 1000)
	b.rename(x, LogitsName)
	return b.finish(LogitsName)
}

// ParamCount returns the number of learnable parameters of a zoo graph: the
// elements of every float32 initializer except batch-norm running statistics
// and scalar (0-D) constants such as Clip bounds.
func ParamCount(g *model.Graph) int64 {
	skip := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Op == "BatchNormalization" {
			skip[n.Input(3)] = true
			skip[n.Input(4)] = true
		}
	}
	var total int64
	for name, t := range g.Initializers {
		if skip[name] || t.Dims() == 0 || model.IsAdditiveMask(t) {
			continue
		}
		if _, ok := t.Data().([]float32); !ok {
			continue
		}
		total += int64(t.Shape().TotalSize())
	}
	return total
}
