#!/usr/bin/env bash
# bench/peers/peers.sh — the peers side by side (issue 19.6): the public
# Neurosurgeon and DADS reimplementations decide the cut of AlexNet and
# VGG-16 on our profiles and bandwidth grid, and bench/peers prices their cuts,
# every forced cut and auto's plan with the scheduler's cost model
# (docs/figures/peers.csv, markdown table on stdout).
#
# Usage: bench/peers/peers.sh [--measure] [flags of `go run ./bench/peers -h`]
#   --measure: first force every cut of AlexNet and VGG-16 on the emulated
#   cluster with bench/schedq (≈ 1 + 8 min, docs/figures/schedq-*peers-*),
#   whose medians are then the measured side (docs/figures/peers-measured.csv).
#   Without it the schedq CSVs already in docs/figures are used when present.
# The peers are never part of this repository. Give checkouts with
# NEUROSURGEON_DIR and DADS_DIR, or bare git dirs with NEUROSURGEON_GIT and
# DADS_GIT (default: the mirrors of github.com/Tjyy-1223/{Neurosurgeon,DADS}
# under /work/.mirror), which are exported to a temporary folder at run time.
# Needs /usr/bin/python3 with torch, sklearn, pandas, networkx, xlrd, xlwt
# (Debian: python3-torch python3-sklearn python3-pandas python3-networkx
# python3-xlrd python3-xlwt python3-joblib).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export_peer() { # NAME DIRVAR GITVAR DEFAULT_GIT
	local dir=${!2:-} git=${!3:-$4}
	if [ -n "$dir" ]; then
		cp -r "$dir" "$tmp/$1"
	elif [ -d "$git" ]; then
		mkdir -p "$tmp/$1"
		# only the Python sources, file by file: the mirrors may lack large
		# blobs (PDFs), which git archive stumbles on
		local f
		while IFS= read -r -d '' f; do
			mkdir -p "$(dirname "$tmp/$1/$f")"
			git --git-dir="$git" show "HEAD:$f" >"$tmp/$1/$f"
		done < <(git --git-dir="$git" ls-tree -r --name-only -z HEAD | grep -z '\.py$')
	else
		echo "peers.sh: skipped: no $1 ($2 unset and no git dir $git; fetch github.com/Tjyy-1223/$1)" >&2
		exit 0
	fi
}
export_peer Neurosurgeon NEUROSURGEON_DIR NEUROSURGEON_GIT /work/.mirror/Tjyy-1223+Neurosurgeon/repo
export_peer DADS DADS_DIR DADS_GIT /work/.mirror/Tjyy-1223+DADS/repo
if ! /usr/bin/python3 -c 'import torch, sklearn, pandas, networkx, xlrd, xlwt' 2>/dev/null; then
	echo "peers.sh: skipped: /usr/bin/python3 lacks torch/sklearn/pandas/networkx/xlrd/xlwt" >&2
	exit 0
fi
# Modules the peers import but the decision never uses: xlutils (not in
# Debian) and speedtest (their bandwidth monitor; we give the bandwidth).
stubs="$tmp/stubs"
mkdir -p "$stubs/xlutils"
: >"$stubs/xlutils/__init__.py"
echo 'def copy(x): return x' >"$stubs/xlutils/copy.py"
/usr/bin/python3 -c 'import speedtest' 2>/dev/null || : >"$stubs/speedtest.py"
rm -rf "$tmp"/*/__pycache__ "$tmp"/*/*/__pycache__
export PYTHONPATH="$stubs${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p bench/out
go build -o bench/out/peers ./bench/peers
links=wifi,5g-midband,lte,3g
if [ "${1:-}" = --measure ]; then
	shift
	go build -o bench/out/schedq ./bench/schedq
	for m in alexnet vgg16; do
		bench/out/schedq -models $m -links $links -tag peers-$m | tee docs/figures/schedq-peers-$m.md
	done
fi
measured=()
for m in alexnet vgg16; do
	f=docs/figures/schedq-requests-peers-$m.csv
	[ -f "$f" ] && measured+=("$f")
done
mflag=()
if [ ${#measured[@]} -gt 0 ]; then
	mflag=(-measured "$(IFS=,; echo "${measured[*]}")")
fi
run=(bench/out/peers -links $links -neurosurgeon "$tmp/Neurosurgeon" -dads "$tmp/DADS")
if [ $# -eq 0 ]; then
	"${run[@]}" "${mflag[@]}" | tee docs/figures/peers.md
else # other grids (flags given): the measured side is of the default grid only
	"${run[@]}" "$@"
fi
