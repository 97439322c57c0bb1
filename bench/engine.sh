#!/usr/bin/env bash
# bench/engine.sh — edgesplit's engine vs ONNX Runtime (1 thread, batch 1) on
# the real PP-OCR classifier and on the zoo's 224×224 MobileNetV2, run
# alternately in one session; prints each median and the ratio.
# Usage: bench/engine.sh [ITERS]   (writes bench/out/engine.csv)
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS="${1:-100}"
CACHE=$(bash scripts/fetch-models.sh | tail -n 1)
ORT_LIB="$CACHE/libonnxruntime.so.1"
OUT=bench/out
mkdir -p "$OUT"
go build -o "$OUT/edgesplit" ./cmd/edgesplit
go build -o "$OUT/ortbench" ./bench/ortbench
"$OUT/edgesplit" export --model mobilenetv2 --out "$OUT/mobilenetv2.onnx" >/dev/null
median() { sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p'; }
echo "model,edgesplit_median_ms,ort_median_ms,ratio" >"$OUT/engine.csv"
go run ./bench/mkinput -shape 1,3,224,224 -out "$OUT/mobilenetv2-x.npy"
for pair in "$CACHE/ch_ppocr_mobile_v2.0_cls_infer.onnx:model/onnx/testdata/ppocr/x.npy" "$OUT/mobilenetv2.onnx:$OUT/mobilenetv2-x.npy"; do
	m=${pair%%:*} x=${pair#*:}
	# Alternate the two runtimes three times and keep each one's best median,
	# so a burst of load on this shared machine hits both alike.
	best_es=""; best_ort=""
	for _ in 1 2 3; do
		es=$("$OUT/edgesplit" bench model --model "$m" --input "$x" --iters "$ITERS" --threads 1 | median)
		ort=$("$OUT/ortbench" -model "$m" -input "$x" -ort "$ORT_LIB" -iters "$ITERS" -threads 1 | median)
		best_es=$(printf '%s\n%s\n' "$es" "${best_es:-$es}" | sort -g | head -n1)
		best_ort=$(printf '%s\n%s\n' "$ort" "${best_ort:-$ort}" | sort -g | head -n1)
	done
	ratio=$(awk -v a="$best_es" -v b="$best_ort" 'BEGIN { printf "%.2f", a / b }')
	printf '%-40s edgesplit %8.3f ms   onnxruntime %8.3f ms   ratio %s×\n' "$(basename "$m")" "$best_es" "$best_ort" "$ratio"
	echo "$(basename "$m"),$best_es,$best_ort,$ratio" >>"$OUT/engine.csv"
done
