#!/usr/bin/env bash
# On the GPU host: checks that `fr-spec export` matches Hugging Face transformers (see
# test/gpu/hf_equivalence.py), then, with --time, times CUDA sessions on the fp16 Llama export.
#
#   bash test/gpu/run-equivalence.sh [--time] [--provider cpu|cuda]
#
# Needs: python3 with torch, transformers, safetensors, onnxruntime, numpy; node (FR_SPEC_NODE or
# PATH; the offline kit's `eval "$(bash KIT/setup.sh)"` provides it and FR_SPEC_ORT_DIR) and the
# project's node_modules (tsx, commander, protobufjs, …).
set -euo pipefail
cd "$(dirname "$0")/../.."

TIME=0
PASS_ON=()
for arg in "$@"; do
  case "$arg" in
    --time) TIME=1 ;;
    *) PASS_ON+=("$arg") ;;
  esac
done

NODE="${FR_SPEC_NODE:-node}"
PYTHON="${PYTHON:-python3}"
command -v "$NODE" >/dev/null || { echo "node not found: set FR_SPEC_NODE or put node on PATH" >&2; exit 2; }
[ -d node_modules/tsx ] || { echo "node_modules is missing here: run npm ci, or bring the project's node_modules along" >&2; exit 2; }
"$PYTHON" -c "import torch, transformers, safetensors, onnxruntime, numpy" || { echo "missing python packages (torch transformers safetensors onnxruntime numpy)" >&2; exit 2; }
echo "node $("$NODE" --version), $("$PYTHON" --version)"

WORK="${WORK:-$(mktemp -d -t fr-spec-equivalence-XXXXXX)}"
"$PYTHON" test/gpu/hf_equivalence.py --work "$WORK" ${PASS_ON[@]+"${PASS_ON[@]}"}

if [ "$TIME" = 1 ]; then
  "$NODE" --import tsx test/gpu/time-sessions.ts "$WORK/llama-fp16"
fi
rm -rf "$WORK"
