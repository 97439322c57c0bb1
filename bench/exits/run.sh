#!/usr/bin/env bash
# bench/exits/run.sh — early exits under an SLO (docs/benchmarks.md, issue 19.1):
# lenet-exits on MNIST and resnet-exits on Fashion-MNIST, each behind LTE and
# 5G mid-band, a slow edge and one cloud. Models missing from bench/out/ are
# trained first. Writes docs/figures/exits-deadline-*.{csv,png} and
# bench/exits/results/ (per-request CSVs gzipped). The documented run: -n 400.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench/out bench/exits/results
go build -o bench/out/exits ./bench/exits
nice -n 19 bench/out/exits -arch lenet-exits -dataset mnist -device slowdown:1000 \
	-deadlines 25ms,30ms,35ms,40ms,50ms,60ms,80ms "$@" | tee bench/exits/results/lenet-exits.log
nice -n 19 bench/out/exits -arch resnet-exits -dataset fashion-mnist -device slowdown:400 \
	-deadlines 30ms,40ms,50ms,60ms,70ms,80ms,100ms "$@" | tee bench/exits/results/resnet-exits.log
gzip -f bench/exits/results/requests-*.csv
