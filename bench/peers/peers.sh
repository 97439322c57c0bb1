#!/usr/bin/env bash
# bench/peers/peers.sh — the peers side by side (issue 19.6): the public
# Neurosurgeon and DADS reimplementations decide the cut of AlexNet and
# VGG-16 on our profiles and bandwidth grid, and bench/peers prices their cuts,
# every forced cut and auto's plan with the scheduler's cost model
# (docs/figures/peers.csv, markdown table on stdout).
#
# Usage: bench/peers/peers.sh [flags of `go run ./bench/peers -h`]
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
		git --git-dir="$git" archive HEAD | tar -x -C "$tmp/$1"
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
bench/out/peers -neurosurgeon "$tmp/Neurosurgeon" -dads "$tmp/DADS" "$@"
