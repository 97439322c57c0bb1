#!/usr/bin/env bash
# fuzz-brief.sh — run every fuzz target of the module briefly (CI smoke run).
# FUZZTIME (default 4s) is the time per target; longer campaigns are run by
# hand, e.g. FUZZTIME=10m scripts/fuzz-brief.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-4s}"
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target ($FUZZTIME)"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/fuzz-$$.log 2>&1 || {
			cat /tmp/fuzz-$$.log
			rm -f /tmp/fuzz-$$.log
			echo "fuzz: $pkg $target FAILED" >&2
			exit 1
		}
		n=$((n + 1))
	done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: $n targets ran for $FUZZTIME each without a failure"
