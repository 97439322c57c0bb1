#!/usr/bin/env bash
# test-arm64.sh — the arm64 build (NEON kernels in model/internal/kern) on
# this machine: `go vet` and `go build` of the whole module for linux/arm64
# (and of model/... with the noasm tag), then the tests of model/... cross-compiled
# and run under qemu-user (Debian package qemu-user). It fails when no
# qemu-aarch64 can run an arm64 binary.
#
# What runs under emulation (measured on a 2-core machine, see
# docs/benchmarks.md): model/internal/kern in full (its tests compare the NEON
# kernels with the pure-Go ones bit for bit, and both with the references),
# and -short with -tags noasm (the pure-Go fallback alone, ≈ 20 s);
# the rest of model/... with -short, minus four tests that only repeat whole
# trainings or pool sharing, nothing arm64-specific, and take 1–2 minutes each
# under qemu: model/train's TestRetrainShort, TestDeterministic and
# TestLenetExitsEval, and model/zoo's TestSharedPool. ARM64_FULL=1 runs all
# of model/... in full instead (tens of minutes). The ONNX Runtime reference
# tests need cgo and the x86-64 library: they are not part of this run
# (CGO_ENABLED=0, and EDGESPLIT_REQUIRE_ORT is unset for it).
set -euo pipefail
cd "$(dirname "$0")/.."

qemu=""
for q in qemu-aarch64 qemu-aarch64-static; do
	if command -v "$q" >/dev/null 2>&1; then
		qemu=$(command -v "$q")
		break
	fi
done
if [ -z "$qemu" ]; then
	echo "test-arm64: no qemu-aarch64 or qemu-aarch64-static on PATH (apt-get install qemu-user)" >&2
	exit 1
fi

export GOOS=linux GOARCH=arm64 CGO_ENABLED=0
unset EDGESPLIT_REQUIRE_ORT

echo "test-arm64: go vet, go build (linux/arm64, and with -tags noasm)"
go vet ./...
go build ./...
go vet -tags noasm ./model/internal/kern/
go build -tags noasm ./model/...

# A trivial arm64 binary first, so that a qemu that cannot run at all is
# reported as such rather than as failing tests.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/main.go" <<'EOF'
package main

import (
	"fmt"
	"runtime"
)

func main() { fmt.Println(runtime.GOARCH) }
EOF
(cd "$tmp" && go mod init probe >/dev/null 2>&1 && go build -o probe .)
if [ "$("$qemu" "$tmp/probe" 2>&1)" != "arm64" ]; then
	echo "test-arm64: $qemu cannot run an arm64 binary" >&2
	exit 1
fi

start=$SECONDS
if [ "${ARM64_FULL:-0}" = 1 ]; then
	echo "test-arm64: go test under $qemu: model/... in full"
	go test -exec "$qemu" -count=1 -timeout 60m ./model/...
else
	echo "test-arm64: go test under $qemu: model/internal/kern in full, the rest of model/... -short"
	go test -exec "$qemu" -count=1 -timeout 30m ./model/internal/kern/
	go test -exec "$qemu" -count=1 -timeout 30m -short -tags noasm ./model/internal/kern/
	rest=$(go list ./model/... | grep -v '/model/internal/kern$' | grep -v '/model/train$')
	# shellcheck disable=SC2086
	go test -exec "$qemu" -count=1 -timeout 30m -short -skip '^TestSharedPool$' $rest
	go test -exec "$qemu" -count=1 -timeout 30m -short \
		-skip '^(TestRetrainShort|TestDeterministic|TestLenetExitsEval)$' ./model/train
fi
echo "test-arm64: tests passed under qemu in $((SECONDS - start)) s"
