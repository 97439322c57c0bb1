package zoo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
)

// TrainedName names the embedded trained seed-cnn in model specs.
const TrainedName = "seed-cnn-trained"

// SpecHelp describes the model specs Load accepts, for flag help.
const SpecHelp = "ONNX file, " + TrainedName + " (the embedded trained MNIST CNN), or a zoo model name (alexnet, vgg16, resnet18, mobilenetv2, seed-cnn, lenet5, lenet-exits, resnet-exits, vit-tiny; NAME@SEED picks the weight seed)"

// Load resolves a model spec, the one way every command, benchmark and
// tool names a model: TrainedName (the embedded trained seed-cnn with its
// sidecar), a path to an ONNX file (with its sidecar M.json when present),
// or a zoo name NAME or NAME@SEED (weights drawn from SEED, default 1). The
// graph is returned as read, not simplified. An unknown name wraps
// ErrUnknownModel.
func Load(spec string) (*model.Graph, *dataset.Sidecar, error) {
	if spec == TrainedName {
		g, s, err := SeedCNNTrained()
		if err != nil {
			return nil, nil, err
		}
		return g, &s, nil
	}
	if _, statErr := os.Stat(spec); statErr == nil || strings.HasSuffix(spec, ".onnx") {
		g, err := onnx.Load(spec)
		if err != nil {
			return nil, nil, err
		}
		s, err := dataset.ReadSidecar(dataset.SidecarPath(spec))
		switch {
		case err == nil:
			return g, &s, nil
		case errors.Is(err, fs.ErrNotExist):
			return g, nil, nil
		default:
			return nil, nil, err
		}
	}
	name, seed := spec, uint64(1)
	if i := strings.LastIndexByte(spec, '@'); i > 0 {
		if _, err := fmt.Sscan(spec[i+1:], &seed); err != nil {
			return nil, nil, fmt.Errorf("zoo: model %q: bad seed after @: %w", spec, err)
		}
		name = spec[:i]
	}
	g, err := Build(name, seed)
	if err != nil {
		return nil, nil, fmt.Errorf("model %q is neither a readable .onnx file nor a zoo model (%s, %s): %w",
			spec, TrainedName, strings.Join(Names(), ", "), err)
	}
	return g, nil, nil
}
