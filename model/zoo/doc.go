// Package zoo builds edgesplit's reference CNNs as *model.Graph values with
// deterministic, seeded weights: the ImageNet-sized AlexNet, VGG16, ResNet18
// and MobileNetV2 (input 1×3×224×224, 1000 logits) used for partitioning and
// profiling, and the small MNIST-sized models the trainer (model/train)
// learns: seed-cnn, LeNet-5, lenet-exits (LeNet-5 with two BranchyNet-style
// early exits, a graph with three outputs), resnet-exits (a three-stage
// ResNet with an exit after each stage) and vit-tiny, a small Vision
// Transformer (vit.go; BuildViT sizes others).
//
// Every graph is NCHW float32 and uses ONNX operator types and attribute names
// exactly as ONNX opset 13 defines them (the ViTs: opset 20, for
// LayerNormalization and Gelu), so model/onnx can export and re-import it
// unchanged. Weights are drawn with He (Kaiming) normal
// initialisation from a PCG generator seeded with the given seed; batch
// normalisation layers get plausible, seeded statistics. The same name and
// seed always give the same graph, bit for bit.
//
// The MNIST-family graphs end in a separate Softmax node per output (the
// outputs are class probabilities); the trainer fuses that Softmax into its
// cross-entropy loss. The ImageNet graphs output logits, as torchvision does.
//
// Skeleton builds the same architectures without weights, already in the
// form model.Simplify gives them (batch norm folded, dropout removed), every
// shape known: enough for static profiles (partition.Static) and the
// scheduler's tensor DAG in microseconds, where Build draws every weight
// (138 M for VGG-16). The simulator's models come from it.
//
// A trained seed-cnn is embedded (assets/seed-cnn.onnx with its JSON sidecar)
// and returned by SeedCNNTrained, so demos run with no files and no network.
//
// Everything here is safe for concurrent use: there is no package state
// besides the read-only registry and embedded assets.
package zoo
