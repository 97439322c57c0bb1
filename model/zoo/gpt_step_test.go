package zoo

import (
	"errors"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx"
)

func TestGPTConfigOf(t *testing.T) {
	g := GPTTiny(1)
	c, err := GPTConfigOf(g)
	if err != nil || c != GPTTinyConfig {
		t.Fatalf("GPTConfigOf(gpt-tiny) = %+v, %v; want %+v", c, err, GPTTinyConfig)
	}
	// Through the ONNX export, as `generate` loads a trained model.
	data, err := onnx.Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := GPTConfigOf(back); err != nil || c != GPTTinyConfig {
		t.Errorf("after an ONNX round trip: %+v, %v", c, err)
	}
	for name, g := range map[string]*model.Graph{"nil": nil, "cnn": SeedCNN(1), "vit": ViTTiny(1)} {
		if _, err := GPTConfigOf(g); !errors.Is(err, ErrNotGPT) {
			t.Errorf("%s: %v, want ErrNotGPT", name, err)
		}
	}
}

// TestGPTStepGraph checks that the decode-step graph shares every weight of
// the full graph (the same parameter count, the same backing arrays) and
// compiles; partition's tests check what it computes.
func TestGPTStepGraph(t *testing.T) {
	g := GPTTiny(3)
	step, err := GPTStep(g)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := ParamCount(step), ParamCount(g); a != b {
		t.Errorf("step graph has %d parameters, the full graph %d", a, b)
	}
	w := step.Initializers["blk2.mlp.fc1.weight"].Data().([]float32)
	if &w[0] != &g.Initializers["blk2.mlp.fc1.weight"].Data().([]float32)[0] {
		t.Error("the step graph copies the weights instead of sharing them")
	}
	wantIn := 3 + 2*GPTTinyConfig.Depth
	if len(step.Inputs) != wantIn || len(step.Outputs) != 1+2*GPTTinyConfig.Depth {
		t.Errorf("step graph: %d inputs, %d outputs", len(step.Inputs), len(step.Outputs))
	}
	net, err := model.Compile(step, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	withCache, err := GPTWithCache(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(withCache.Outputs) != 1+2*GPTTinyConfig.Depth || len(g.Outputs) != 1 {
		t.Errorf("GPTWithCache: %d outputs (the original now %d)", len(withCache.Outputs), len(g.Outputs))
	}
	if net, err = model.Compile(withCache, model.Options{}); err != nil {
		t.Fatal(err)
	}
	net.Close()
	// A weight of the wrong shape is refused.
	bad := GPTTiny(3)
	bad.Initializers["blk1.attn.q.weight"] = bad.Initializers["blk1.mlp.fc1.weight"]
	if _, err := GPTStep(bad); !errors.Is(err, ErrNotGPT) {
		t.Errorf("wrong-shaped weight: %v, want ErrNotGPT", err)
	}
}
