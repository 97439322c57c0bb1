// Package ortref runs ONNX models in ONNX Runtime, the reference edgesplit's
// tests and benchmarks compare against. It is the one place that sets up
// github.com/yalue/onnxruntime_go: finding the shared library that
// scripts/fetch-models.sh caches, initialising and destroying the runtime
// environment, and running a model on float32 tensors with fixed input and
// output shapes (those model.Simplify infers), single-threaded by default.
//
// Everything but this comment needs cgo (it is built when cgo is on, the
// default where a C compiler is installed); the library itself is loaded at
// run time, so building needs no ONNX Runtime. Its tests, and the parity
// tests in model/onnx and model/train, run in plain `go test ./...` once
// scripts/fetch-models.sh has cached the library, and skip without it —
// unless EDGESPLIT_REQUIRE_ORT=1 ([RequireEnv], set by .ci/run), which makes
// a missing library, or a build without cgo, a failure.
//
// It is test and benchmark support only: besides tests, only the programs
// bench/ortbench and model/onnx/internal/refgen may import it, which
// TestOnlyToolsImportORT checks; edgesplit itself never depends on ONNX
// Runtime.
//
// A program calls [Init] once with the path [LibPath] returns (a test calls
// [InitTest], which skips when the library is not cached), then either [Run] for a one-shot inference or [New] for a
// [Session] that runs the same model repeatedly on reused buffers, as a
// benchmark loop wants.
package ortref
