// Package ortref runs ONNX models in ONNX Runtime, the reference edgesplit's
// tests and benchmarks compare against. It is the one place that sets up
// github.com/yalue/onnxruntime_go: finding the shared library that
// scripts/fetch-models.sh caches, initialising and destroying the runtime
// environment, and running a model on float32 tensors with fixed input and
// output shapes (those model.Simplify infers), single-threaded by default.
//
// Everything but this comment is behind the ortref build tag and needs cgo:
//
//	scripts/fetch-models.sh
//	go test -tags ortref ./model/onnx ./model/train
//
// It is test and benchmark support only. Only files built with the ortref
// tag may import it; edgesplit itself never depends on ONNX Runtime.
//
// A program calls [Init] once with the path [LibPath] returns (a test calls
// [InitTest], which skips when the library is not cached), then either [Run] for a one-shot inference or [New] for a
// [Session] that runs the same model repeatedly on reused buffers, as a
// benchmark loop wants.
package ortref
