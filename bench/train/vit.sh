#!/bin/sh
# vit-tiny trained in Go on the full MNIST and Fashion-MNIST training sets
# (Adam, batch 64, learning rate 0.001 ×0.75 per epoch, seed 1; MNIST with
# random shifts of ±2 pixels, Fashion-MNIST as it is: the best settings
# measured, see docs/benchmarks.md), the two runs side by side under nice;
# prints each run's per-epoch lines, test accuracy and wall time, and fails
# when MNIST is below 98 % or Fashion-MNIST below 90 %. EPOCHS_MNIST (default
# 6) and EPOCHS_FASHION (default 8) set the epochs, FASHION_FLAGS adds flags;
# OUT (default /tmp/vit-bench) gets the ONNX files, sidecars and logs.
# Fashion-MNIST needs the Debian package dataset-fashion-mnist.
set -eu
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/vit-bench}
mkdir -p "$OUT"
go build -o "$OUT/edgesplit" ./cmd/edgesplit
run() { # run DATASET EPOCHS [FLAGS]
  start=$(date +%s)
  d=$1 e=$2
  shift 2
  nice -n 10 "$OUT/edgesplit" train --arch vit-tiny --dataset "$d" --epochs "$e" --batch 64 --lr 0.001 \
    --lr-decay 0.75 --seed 1 "$@" --out "$OUT/vit-$d.onnx" >"$OUT/$d.out" 2>"$OUT/$d.err"
  echo "wall_s=$(($(date +%s) - start))" >>"$OUT/$d.out"
}
run mnist "${EPOCHS_MNIST:-6}" --shift 2 &
# shellcheck disable=SC2086 # FASHION_FLAGS is a list of flags
run fashion-mnist "${EPOCHS_FASHION:-8}" ${FASHION_FLAGS:-} &
wait
status=0
for d in mnist:0.98 fashion-mnist:0.90; do
  name=${d%%:*} want=${d#*:}
  echo "== $name"
  grep -E '^epoch|accuracy|wall_s' "$OUT/$name.out" || true
  acc=$(sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p' "$OUT/vit-$name.json" | head -n 1)
  echo "$name test accuracy $acc (want >= $want)"
  awk -v a="$acc" -v w="$want" 'BEGIN { exit !(a >= w) }' || status=1
done
exit $status
