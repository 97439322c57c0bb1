// Package model is edgesplit's CNN engine: a graph intermediate representation
// (named tensors, nodes with attributes, a canonical topological order), shape
// inference and load-time folding, and float32 NCHW kernels that run a graph —
// or any piece of one — on gorgonia.org/tensor Dense tensors.
//
// A Graph is plain data: importers (model/onnx), the model zoo (model/zoo) and
// the trainer (model/train) build one; partition cuts one into pieces. Compile
// turns a Graph into a Net, which is read-only once built and safe for
// concurrent use; each inference runs on its own Extractor, which owns an arena
// so that steady-state inference allocates nothing.
package model
