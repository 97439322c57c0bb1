#!/bin/sh
# Hidden-state codecs on a trained vit-tiny (issue 16, step 3): trains
# vit-tiny on MNIST as bench/train/vit.sh does (Adam, batch 64, learning rate
# 0.001 ×0.75 per epoch, seed 1, --shift 2; EPOCHS, default 6) unless MODEL
# names an existing ONNX file, then runs `edgesplit codec bench` over the
# MNIST test set (SAMPLES, default 10000) at the patch embedding, every
# block boundary, the mid-block residual cuts and the head's inputs (CUTS),
# for every preset plus the stage combinations in VARIANTS, and prints the
# Markdown table (ratio = float32 bytes ÷ message bytes, headers included ·
# top-1 agreement with the unsplit model). OUT (default /tmp/vit-codec) gets
# the binary (EDGESPLIT: use this one instead of building), the model, the
# logs, codec.csv and codec.md.
#
# Cut positions are those of the simplified vit-tiny graph (edgesplit
# inspect --model vit-tiny): 1 conv1.out [1,64,4,4], 3 tokens [1,16,64],
# 4 pos_add.out (block 1's input), 26/55/84/113 the residual between the
# attention and MLP halves of blocks 1–4, 33/62/91 the outputs of blocks
# 1–3, 120 block 4's output (the head's input), 121 ln.out, 122 pool.out
# [1,64]. Variant syntax: TRANSFORM[:LEVELS][/LAYOUT[/ENTROPY[:LEVEL]]][@AXIS];
# on a [1,T,D] hidden state @1 is one scale per token, @2 one per feature,
# and :63 quantises with 63 steps (≈ 6 bits, entropy-coded). About 7 minutes
# on 2 shared cores after training (≈ 8 more for 6 epochs).
set -eu
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/vit-codec}
SAMPLES=${SAMPLES:-10000}
CUTS=${CUTS:-1,3,4,26,33,55,62,84,91,113,120,121,122}
VARIANTS=${VARIANTS:-int8/plain/huff0,int8-channel/plain/huff0@1,int8-channel:127/plain/huff0@1,int8-channel:95/plain/huff0@1,int8-channel:63/plain/huff0@1,int8-channel:63/plain/zstd:4@1,int8-channel:47/plain/huff0@1,int8-channel:31/plain/huff0@1,int8-channel/plain/huff0@2,int8-channel:63/plain/huff0@2,int4-channel/plain/huff0@2}
mkdir -p "$OUT"
if [ -z "${EDGESPLIT:-}" ]; then
  EDGESPLIT=$OUT/edgesplit
  go build -o "$EDGESPLIT" ./cmd/edgesplit
fi
MODEL=${MODEL:-$OUT/vit-mnist.onnx}
if [ ! -f "$MODEL" ]; then
  nice -n 10 "$EDGESPLIT" train --arch vit-tiny --dataset mnist --epochs "${EPOCHS:-6}" --batch 64 --lr 0.001 \
    --lr-decay 0.75 --seed 1 --shift 2 --out "$MODEL" >"$OUT/train.out" 2>"$OUT/train.err"
  grep -E '^epoch|^test accuracy' "$OUT/train.out"
fi
sidecar=${MODEL%.onnx}.json
echo "model $MODEL: test accuracy $(sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p' "$sidecar" | head -n 1)"
nice -n 10 "$EDGESPLIT" codec bench --model "$MODEL" --dataset mnist --samples "$SAMPLES" --cuts "$CUTS" \
  --variants "$VARIANTS" --csv "$OUT/codec.csv" --markdown "$OUT/codec.md" >"$OUT/codec.out" 2>"$OUT/codec.err"
echo "$SAMPLES MNIST test images, $(date -u +%Y-%m-%d)"
cat "$OUT/codec.md"
