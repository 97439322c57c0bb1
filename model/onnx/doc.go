// Package onnx reads ONNX models into edgesplit's graph IR (model.Graph) and
// writes a graph — or any piece of one, such as the head or tail of a cut —
// back out as a standalone ONNX model that other runtimes can run.
//
// The importer only translates; it never runs anything. It accepts the
// default ONNX operator set at versions 9 to 17 (older and newer versions are
// tried with a warning; the pre-opset-7 broadcast attributes are translated),
// weights stored as initializers or as Constant nodes, and
// refuses with a clear error what edgesplit cannot represent: external-data
// files, sparse tensors, subgraphs (If, Loop, Scan), operators from other
// domains, string tensors. Every size read from a file is checked against the
// bytes actually present before anything is allocated, and the whole file is
// capped (1 GiB by default, see WithMaxBytes), so a malformed or hostile file
// gets an error, never a panic or an unbounded allocation.
//
// Tensor data types are narrowed to the two the engine works with: float32
// (from float, float16, bfloat16 and double) and int64 (from every integer
// type and bool).
//
// The exporter writes IR version 7 with opset 13 (or the graph's own opset,
// when it has one, so that opset-dependent node forms keep their meaning),
// float32 and int64 initializers as little-endian raw_data, and value_info
// with shapes for the graph inputs and outputs. Its output for the PP-OCR
// classifier — whole, after model.Simplify, and cut into head and tail at
// every single-tensor boundary — runs in ONNX Runtime 1.30 with the same
// results (see ortref_test.go; it needs cgo and the library that
// scripts/fetch-models.sh caches, and skips without it).
//
// The tests compare edgesplit with ONNX's own backend test data (a subset
// vendored in testdata/conformance, and all of Debian package
// libonnx-testdata when installed; TestConformance, run with -v for the
// list of cases run and skipped) and with ONNX Runtime's outputs for the PP-OCR
// classifier and the PP-OCRv4 recogniser and detector
// (TestPPOCR*MatchesONNXRuntime, after scripts/fetch-models.sh; reference
// tensors in testdata/ppocr, ppocr_rec and ppocr_det, written by
// internal/refgen).
package onnx
