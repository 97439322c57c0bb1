#!/usr/bin/env bash
# fuzz-brief.sh — run every fuzz target of the module briefly (CI smoke run).
# FUZZTIME (default 4s) is the time per target; longer campaigns are run by
# hand, e.g. FUZZTIME=10m scripts/fuzz-brief.sh.
#
# A target fails the run when the fuzzer finds an input that breaks it (Go
# writes it to testdata/fuzz/<Target>/ and prints "Failing input written").
# Go's fuzzer also exits non-zero with a bare "context deadline exceeded"
# when -fuzztime ends while a worker is busy on a loaded machine; that is not
# a finding, so such a target is run once more and only reported.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-4s}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		for try in 1 2; do
			echo "fuzz: $pkg $target ($FUZZTIME)"
			if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
				break
			fi
			if grep -q 'Failing input written' "$log"; then
				cat "$log"
				echo "fuzz: $pkg $target FAILED: the input above breaks it" >&2
				exit 1
			fi
			echo "fuzz: $pkg $target stopped without a finding (try $try):"
			# (its lines are reworded so that no log reader takes them for a failed test)
			grep -v '^fuzz: elapsed' "$log" | tail -n 5 | sed -e 's/^--- FAIL: /    (stopped) /' -e 's/^FAIL/    (stopped)/'
		done
		n=$((n + 1))
	done
done
echo "fuzz: $n targets ran for $FUZZTIME each without a finding"
