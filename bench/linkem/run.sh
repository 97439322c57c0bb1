#!/bin/sh
# Link-emulator benchmarks: goodput ÷ configured rate (1–1000 Mbit/s), every
# profile both ways, pass-through ÷ raw quic-go, per-window trace tracking and
# RTT error. Each number is a ratio against a reference measured in the same
# run. Takes ≈ 3 minutes on 2 cores; results land in bench/linkem/results.txt.
set -eu
cd "$(dirname "$0")/../.."
go test -run '^$' -bench "${1:-.}" -benchtime 1x -timeout 20m ./transport/linkem/ | tee bench/linkem/results.txt
