// Package train trains edgesplit's CNNs and vision transformers in Go:
// reverse-mode gradients for
// the layers of a *model.Graph, softmax cross-entropy (fused with the graph's
// final Softmax), SGD with momentum and Adam, seeded He/Glorot
// initialisation, a mini-batch loop split across worker goroutines,
// evaluation with a confusion matrix and early-exit statistics, and export
// of the trained graph to ONNX with a JSON sidecar.
//
// Trainable operators (TrainableOps): Conv (stride, padding, dilation,
// groups), Gemm, MaxPool, AveragePool, GlobalAveragePool, Relu, Clip,
// Flatten, Identity, Add, BatchNormalization (training mode with running
// statistics), Dropout, and Softmax as the last op of an output; for
// transformers (xformer.go) Reshape and Transpose that keep the batch
// first, MatMul by a 2-D weight or batched between two activations,
// LayerNormalization and Softmax over the last axis, Gelu (Erf or tanh
// form), ReduceMean over one axis, Add of a weight broadcast over trailing
// axes (biases, position embeddings) and Mul by a scalar constant (the
// attention scale). Every layer's forward and backward passes work on the
// worker's preallocated buffers and allocate nothing.
//
// Determinism: for a given graph, Seed, Batch and Workers, training gives
// the same weights bit for bit. Each worker has its own activation and
// gradient buffers; the per-worker parameter gradients are summed in worker
// order before the optimiser step, and dropout masks come from a generator
// reseeded from (Seed, step, worker) every step.
//
// Layers call the kernels of model/internal/kern (Sgemm, Im2col, Col2im).
package train
