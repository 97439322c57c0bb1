#!/bin/sh
# gpt-tiny (zoo.GPTTiny: 2 blocks, width 64, 4 heads, context 64, 116,705
# parameters) trained in Go on the Debian fortunes (every 20th entry held
# out), then its held-out perplexity re-measured by `generate` from the
# written file and a greedy continuation printed (docs/benchmarks.md,
# "Causal language model"). EPOCHS (default 6) sets the epochs; OUT
# (default /tmp/gpt-bench) gets the ONNX file, its .lm.json card and logs.
# Needs the Debian package fortunes.
set -eu
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpt-bench}
CORPUS=${CORPUS:-/usr/share/games/fortunes}
mkdir -p "$OUT"
go build -o "$OUT/edgesplit" ./cmd/edgesplit
start=$(date +%s)
nice -n 10 "$OUT/edgesplit" train --arch gpt-tiny --corpus "$CORPUS" --epochs "${EPOCHS:-6}" --seed 1 \
  --out "$OUT/gpt-tiny.onnx" 2>"$OUT/train.err" | tee "$OUT/train.out"
echo "wall_s=$(($(date +%s) - start))" | tee -a "$OUT/train.out"
"$OUT/edgesplit" generate --model "$OUT/gpt-tiny.onnx" --perplexity-corpus "$CORPUS" \
  --prompt "The trouble with computers is " -n 200 | tee "$OUT/generate.out"
