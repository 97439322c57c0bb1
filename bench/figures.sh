#!/usr/bin/env bash
# bench/figures.sh — regenerate the figures of docs/benchmarks.md (CSV + PNG in
# docs/figures/) and the scheduler-quality tables.
#
# Usage: bench/figures.sh [FIGURE...]
#   FIGURE: latency energy load codec fidelity generation schedq adapt (default: all of them, ≈ 10 min)
# Each figure is one command of its own, e.g. `go run ./bench/figures latency`;
# flags go before or after the figure names (`go run ./bench/figures -h`).
# Model profiles are measured once with the engine and cached in bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out docs/figures
go build -o bench/out/figures ./bench/figures
go build -o bench/out/schedq ./bench/schedq
figs=("$@")
if [ ${#figs[@]} -eq 0 ]; then
	figs=(latency energy load codec fidelity generation schedq adapt)
fi
for f in "${figs[@]}"; do
	case "$f" in
	latency | energy | load | generation)
		bench/out/figures "$f"
		;;
	codec | fidelity)
		bench/out/figures "$f" | tee "docs/figures/$f.md"
		# the same run with the link estimator taken out of the comparison
		if [ "$f" = fidelity ]; then
			bench/out/figures -fidelity-policy cloud-only fidelity | tee docs/figures/fidelity-cloud-only.md
		fi
		;;
	schedq)
		# ResNet-18, MobileNetV2 and the trained MNIST CNN over four links;
		# VGG-16 (seconds per inference on an emulated Pi) on the cost
		# model's 8 best cuts only, one request each.
		bench/out/schedq -models resnet18,mobilenetv2,seed-cnn-trained -links wifi,5g-midband,lte,3g -tag small | tee docs/figures/schedq-small.md
		bench/out/schedq -models vgg16 -links wifi,lte -max-cuts 8 -reps 1 -auto-reps 2 -tag vgg16 | tee docs/figures/schedq-vgg16.md
		;;
	adapt)
		bench/out/schedq -quality=false -adapt -tag resnet18 | tee docs/figures/schedq-adapt-resnet18.md
		bench/out/schedq -quality=false -adapt -drop 3g -tag resnet18-3g | tee docs/figures/schedq-adapt-resnet18-3g.md
		;;
	*)
		echo "unknown figure $f (want latency energy load codec fidelity generation schedq adapt)" >&2
		exit 2
		;;
	esac
done
