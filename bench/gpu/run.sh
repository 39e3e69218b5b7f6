#!/usr/bin/env bash
# The GPU benchmark of record, end to end, in resumable steps of under 10 minutes (docs/bench-gpu.md).
#
#   bench/gpu/run.sh RUN [STEP...]
#
#   RUN   working folder: RUN/{data,target,eagle,draft,model} (training/run.sh's layout) and RUN/results
#   STEP  data vocab target eagle draft export profile spec code-math sampling engines, or all (the default);
#         also engines-sampling (the fused loops at temperature 1), big-model, roofline and host-time (not in all: a random-weight model of a real shape, default Llama-3-8B,
#         for the HBM roofline of the fused loop, ≈ 32 GB of disk; host-time: bench/loop-nodes.ts on it, the host time
#         of each node kind a fused iteration runs on CUDA). Training steps
#         stop at their call budget with exit code 75: run the same command again to continue. Bench
#         steps are resumable too (each measured pair is saved; rerunning skips what is done).
#
# Environment:
#   CORPUS          folder of corpus shards (.jsonl / .jsonl.gz / .jsonl.zst, e.g. ../shared/corpora/slimpajama-mix;
#                   .jsonl.xz for the data step only); default ../shared/corpora/slimpajama-mix
#   BENCH_DATA      folder with spec_bench.jsonl, human_eval.jsonl, gsm8k.jsonl (default ../shared/bench-data)
#   TARGET_MINUTES, EAGLE_MINUTES, DRAFT_MINUTES   training budgets (default 5, 2.5, 1: the whole run fits one 30-minute machine)
#   PER_CATEGORY    Spec-Bench questions per category, greedy (default 10; categories are interleaved, so a
#                   step cut short still covers all six); SAMPLING_PER_CATEGORY at temperature 1 (default 2)
#   CODE_MATH_LIMIT HumanEval / GSM8K questions (default 10)
#   MAX_NEW         new tokens per turn (default 128)
#   METHODS         Spec-Bench greedy (default vanilla,eagle2,fr-spec:8192,fr-spec:16384,fr-spec:32768,fr-spec:65536,sps,ouroboros)
#   CODE_MATH_METHODS  HumanEval and GSM8K (default vanilla,eagle2,fr-spec:8192,fr-spec:32768)
#   SAMPLING_METHODS   Spec-Bench at temperature 1 (default vanilla,eagle2,fr-spec:32768,sps)
#   OPS             operators of the model folder the bench steps use: fused ($RUN/model, fr-spec export's default)
#                   or standard ($RUN/model-standard, --ops standard); default fused. The export step writes both.
#                   (The 2026-11-26 record was measured with standard operators, before fused became the default.)
#   BIG_SHAPE       shape of the big-model step (bench/gpu/random-model.ts; default llama3-8b)
#   BIG_OPS         operator sets big-model exports (each to $RUN/big-SHAPE/model-OPS) and roofline times
#                   (default fused; "standard fused" for both)
#   BIG_TOKENIZER   folder with the Llama-3 tokenizer.json (default models/demo)
#   BASELINE        optional: a checkout of an earlier commit (with node_modules); the roofline step then also
#                   times the fused loops of that code on the same exported model, on the same machine
#                   (roofline-SHAPE-OPS-baseline.txt), so a change is compared within one machine
#   STEP_SECONDS    wall-clock limit of one bench step before it stops to be resumed (default 540)
#   NODE, PYTHON    interpreters (default node, python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
RUN=$1
shift
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(all)
[ "${STEPS[*]}" = "all" ] && STEPS=(data vocab target eagle draft export profile spec code-math sampling engines)

CORPUS=${CORPUS:-$REPO/../shared/corpora/slimpajama-mix}
BENCH_DATA=${BENCH_DATA:-$REPO/../shared/bench-data}
PER_CATEGORY=${PER_CATEGORY:-10}
SAMPLING_PER_CATEGORY=${SAMPLING_PER_CATEGORY:-2}
CODE_MATH_LIMIT=${CODE_MATH_LIMIT:-10}
MAX_NEW=${MAX_NEW:-128}
METHODS=${METHODS:-vanilla,eagle2,fr-spec:8192,fr-spec:16384,fr-spec:32768,fr-spec:65536,sps,ouroboros}
CODE_MATH_METHODS=${CODE_MATH_METHODS:-vanilla,eagle2,fr-spec:8192,fr-spec:32768}
SAMPLING_METHODS=${SAMPLING_METHODS:-vanilla,eagle2,fr-spec:32768,sps}
STEP_SECONDS=${STEP_SECONDS:-540}
OPS=${OPS:-fused}
case "$OPS" in fused) MODEL=$RUN/model ;; standard) MODEL=$RUN/model-standard ;; *) echo "bench/gpu/run.sh: OPS must be standard or fused, not $OPS" >&2; exit 2 ;; esac
BIG_SHAPE=${BIG_SHAPE:-llama3-8b}
BIG=$RUN/big-$BIG_SHAPE
BIG_OPS=${BIG_OPS:-fused}
BIG_TOKENIZER=${BIG_TOKENIZER:-$REPO/models/demo}
NODE=${NODE:-node}
PYTHON=${PYTHON:-python3}
export NODE PYTHON
RESULTS=$RUN/results
mkdir -p "$RESULTS"

log() { echo "$*" | tee -a "$RESULTS/commands.txt"; }

train() {
  local step=$1 minutes=$2
  log "STEP_ARGS=\"--minutes $minutes\" training/run.sh bench $RUN $step"
  STEP_ARGS="--minutes $minutes" training/run.sh bench "$RUN" "$step"
}

# The machine's card and measured copy bandwidth (GB/s), once per run.
bandwidth() {
  [ -f "$RESULTS/gpu.txt" ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$RESULTS/gpu.txt"
  [ -f "$RESULTS/bandwidth.txt" ] || "$PYTHON" bench/gpu/bandwidth.py > "$RESULTS/bandwidth.txt"
  sed -n 's/^bandwidth_gbs=//p' "$RESULTS/bandwidth.txt"
}

# Sets cmd to bench/gpu/engines.ts on a model folder with the flags every engines-style step shares (Spec-Bench
# prompts, one repeat, MAX_NEW tokens, the measured bandwidth, CPU fallback disabled) and logs it.
engines_command() {
  local folder=$1
  shift
  cmd=("$NODE" --import tsx bench/gpu/engines.ts "$folder" --ep cuda "$@"
    --prompts "$BENCH_DATA/spec_bench.jsonl" --repeats 1 --max-new-tokens "$MAX_NEW" --bandwidth-gbs "$gbs" --strict)
  log "${cmd[*]}"
}

# One fr-spec bench invocation, stopped after STEP_SECONDS so that a step stays under the GPU runner's limit.
bench() {
  local name=$1
  shift
  local cmd=("$NODE" bin/fr-spec bench --model "$MODEL" --ep cuda --max-new-tokens "$MAX_NEW" --warmup 1 --quiet --out "$RESULTS/$name" "$@")
  log "${cmd[*]}"
  local status=0
  timeout --signal=INT "$STEP_SECONDS" "${cmd[@]}" > "$RESULTS/$name.txt" 2> "$RESULTS/$name.err" || status=$?
  if [ "$status" = 124 ] || [ "$status" = 130 ]; then
    echo "bench/gpu/run.sh: $name stopped after $STEP_SECONDS s; run the same step again to continue" >&2
    exit 75
  fi
  [ "$status" = 0 ] || { cat "$RESULTS/$name.err" >&2; exit "$status"; }
  cat "$RESULTS/$name.txt"
}


for step in "${STEPS[@]}"; do
  started=$(date +%s)
  echo "== $step"
  case "$step" in
    data)
      shopt -s nullglob
      shards=("$CORPUS"/train-*.jsonl "$CORPUS"/train-*.jsonl.gz "$CORPUS"/train-*.jsonl.xz)
      # prepare_data.py reads .zst only with the python zstandard module; decompress with fr-spec's reader instead.
      mkdir -p "$RUN/corpus"
      for zst in "$CORPUS"/train-*.jsonl.zst; do
        plain="$RUN/corpus/$(basename "$zst" .zst)"
        [ -f "$plain" ] || { log "node --import tsx bench/gpu/decompress.ts $zst $plain"; "$NODE" --import tsx bench/gpu/decompress.ts "$zst" "$plain"; }
        shards+=("$plain")
      done
      [ ${#shards[@]} -gt 0 ] || { echo "bench/gpu/run.sh: no train-* corpus shards in $CORPUS" >&2; exit 2; }
      log "training/run.sh bench $RUN data -- --val-fraction 0.02 ${shards[*]}"
      training/run.sh bench "$RUN" data -- --val-fraction 0.02 "${shards[@]}"
      ;;
    vocab)
      # FR-Spec's subsets, counted with the target's tokenizer over the same corpus; the export ships them.
      shopt -s nullglob
      shards=("$CORPUS"/train-*.jsonl "$CORPUS"/train-*.jsonl.gz "$CORPUS"/train-*.jsonl.zst)
      [ ${#shards[@]} -gt 0 ] || { echo "bench/gpu/run.sh: no .jsonl/.gz/.zst train shards in $CORPUS for build-vocab" >&2; exit 2; }
      evals=("$CORPUS"/validation-*.jsonl "$CORPUS"/validation-*.jsonl.gz "$CORPUS"/validation-*.jsonl.zst)
      cmd=("$NODE" bin/fr-spec build-vocab --tokenizer llama3 --corpus "${shards[@]}" ${evals[@]+--eval "${evals[@]}"} --workers "$(nproc)" --out "$RUN/vocab-maps" --force --quiet)
      log "${cmd[*]}"
      "${cmd[@]}"
      ;;
    target) train target "${TARGET_MINUTES:-5}" ;;
    eagle) train eagle "${EAGLE_MINUTES:-2.5}" ;;
    draft) train draft "${DRAFT_MINUTES:-1}" ;;
    export)
      # The subsets of the vocab step when it ran, else the shipped vocab-maps/llama3 (same command, same corpus mix).
      maps=$REPO/vocab-maps/llama3
      [ -f "$RUN/vocab-maps/manifest.json" ] && maps=$RUN/vocab-maps
      log "VOCAB_MAPS=$maps training/run.sh bench $RUN export card"
      VOCAB_MAPS=$maps training/run.sh bench "$RUN" export card
      # The same checkpoints with standard operators (same weights.data bytes, ≈ 2.5× more nodes per layer).
      cmd=("$NODE" bin/fr-spec export --target "$RUN/target/hf" --eagle "$RUN/eagle/hf" --draft "$RUN/draft/hf" --out "$RUN/model-standard"
        --dtype fp16 --ops standard --vocab-maps "$RUN/export-vocab-maps" --force --quiet)
      log "${cmd[*]}"
      "${cmd[@]}"
      ;;
    engines)
      gbs=$(bandwidth)
      # Both operator sets, same checkpoints: host and fused engines on each.
      for ops in standard fused; do
        folder=$RUN/model; suffix=-fused-ops
        [ "$ops" = standard ] && { folder=$RUN/model-standard; suffix=""; }
        [ -d "$folder" ] || { echo "bench/gpu/run.sh: no $folder (run the export step)" >&2; exit 2; }
        # (host+gqa and fused+gqa, vanilla's decode steps with GroupQueryAttention, are left out on CUDA: onnxruntime
        # 1.29's cuDNN path takes 23-66 ms per step in its first layer on these graphs, and with
        # ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 the kernel is no faster than the graph's attention; docs/fused-loop.md.)
        engines=host,fused
        engines_command "$folder" --methods vanilla,eagle2,fr-spec:32768,sps --engines "$engines" --limit 8 --json "$RESULTS/engines$suffix.json"
        "${cmd[@]}" | tee "$RESULTS/engines$suffix.txt"
      done
      ;;
    engines-sampling)
      # Sampling inside the loop (temperature 1; plain and top-p 0.9, which sorts the vocabulary of the rows it uses).
      gbs=$(bandwidth)
      for topp in 1 0.9; do
        engines_command "$MODEL" --methods vanilla,eagle2,fr-spec:32768 --engines fused --limit 4 --temperature 1 --top-p "$topp"
        timeout --signal=INT "$STEP_SECONDS" "${cmd[@]}" | tee -a "$RESULTS/engines-sampling.txt"
      done
      ;;
    big-model)
      # Random weights of a real model's shape: timings are the real model's, acceptance is not.
      df -h "$RUN" | tail -1
      log "node --import tsx bench/gpu/random-model.ts $BIG --shape $BIG_SHAPE --tokenizer $BIG_TOKENIZER"
      "$NODE" --import tsx bench/gpu/random-model.ts "$BIG" --shape "$BIG_SHAPE" --tokenizer "$BIG_TOKENIZER"
      for ops in $BIG_OPS; do
        cmd=("$NODE" bin/fr-spec export --target "$BIG/target" --eagle "$BIG/eagle" --draft "$BIG/draft" --out "$BIG/model-$ops" --dtype fp16 --ops "$ops" --vocab-maps vocab-maps/llama3 --force --quiet)
        log "${cmd[*]}"
        "${cmd[@]}"
      done
      rm -rf "$BIG/target" "$BIG/eagle" "$BIG/draft"
      ;;
    roofline)
      for ops in $BIG_OPS; do
        [ -d "$BIG/model-$ops" ] || { echo "bench/gpu/run.sh: no $BIG/model-$ops (run the big-model step with BIG_OPS=$ops)" >&2; exit 2; }
      done
      gbs=$(bandwidth)
      for ops in $BIG_OPS; do
        # Vanilla on both engines (the roofline), then the speculative methods' cycle cost on the fused one (sps with
        # the shape's draft model: Llama-3.2-1B's for Llama-3-8B). GroupQueryAttention (host+gqa, fused+gqa) is left out
        # on CUDA: its cuDNN path takes 23-66 ms per step in its first layer, and without it (ORT_ENABLE_CUDNN_FLASH_ATTENTION=0)
        # it is no faster than the graph's attention (docs/fused-loop.md).
        # Vanilla reserves its cache rows on CUDA (--reserve-rows, every step on the same shapes; both engines compute
        # the same thing, so their tokens are compared with each other); host+exact, fused+exact: caches at their exact
        # length (--no-reserve-rows), compared with each other.
        engines=host,fused,host+exact,fused+exact
        engines_command "$BIG/model-$ops" --methods vanilla --engines "$engines" --no-stop --limit 4
        "${cmd[@]}" | tee -a "$RESULTS/roofline-$BIG_SHAPE-$ops.txt"
        engines_command "$BIG/model-$ops" --methods eagle2,fr-spec:32768,sps --engines fused --no-stop --limit 4
        "${cmd[@]}" | tee -a "$RESULTS/roofline-$BIG_SHAPE-$ops.txt"
        if [ -n "${BASELINE:-}" ]; then
          # Absolute paths: the baseline's own engines.ts runs from its folder.
          BENCH_DATA=$(cd "$BENCH_DATA" && pwd) engines_command "$(cd "$BIG/model-$ops" && pwd)" --methods vanilla,eagle2,fr-spec:32768 --engines fused --no-stop --limit 4
          log "(in $BASELINE, $(git -C "$BASELINE" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
          (cd "$BASELINE" && "${cmd[@]}") | tee -a "$RESULTS/roofline-$BIG_SHAPE-$ops-baseline.txt"
        fi
      done
      ;;
    host-time)
      # The nodes one fused-loop iteration runs on CUDA and their host time, per operator and per eagle part.
      for ops in $BIG_OPS; do
        [ -d "$BIG/model-$ops" ] || { echo "bench/gpu/run.sh: no $BIG/model-$ops (run the big-model step with BIG_OPS=$ops)" >&2; exit 2; }
        cmd=("$NODE" --import tsx bench/loop-nodes.ts "$BIG/model-$ops" --run --ep cuda --max-new-tokens 32)
        log "${cmd[*]}"
        "${cmd[@]}" | tee "$RESULTS/host-time-$BIG_SHAPE-$ops.txt"
      done
      ;;
    profile)
      # Host engine with onnxruntime profiling: per-session run time of the EAGLE layer vs the draft LM head.
      prompt=$("$PYTHON" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["turns"][0])' "$BENCH_DATA/spec_bench.jsonl")
      for method in eagle2 fr-spec; do
        rm -rf "$RESULTS/profile-$method"
        cmd=("$NODE" bin/fr-spec generate --model "$MODEL" --ep cuda --engine host --method "$method" --max-new-tokens "$MAX_NEW" --chat --stats --profile "$RESULTS/profile-$method")
        log "${cmd[*]} <first Spec-Bench question>"
        "${cmd[@]}" "$prompt" > /dev/null 2> "$RESULTS/profile-$method.txt"
        cat "$RESULTS/profile-$method.txt"
      done
      ;;
    spec) bench spec-bench-greedy --dataset spec-bench --data "$BENCH_DATA/spec_bench.jsonl" --per-category "$PER_CATEGORY" --methods "$METHODS" ;;
    code-math)
      bench humaneval-greedy --dataset humaneval --data "$BENCH_DATA/human_eval.jsonl" --limit "$CODE_MATH_LIMIT" --methods "$CODE_MATH_METHODS"
      bench gsm8k-greedy --dataset gsm8k --data "$BENCH_DATA/gsm8k.jsonl" --limit "$CODE_MATH_LIMIT" --methods "$CODE_MATH_METHODS"
      ;;
    sampling) bench spec-bench-t1 --dataset spec-bench --data "$BENCH_DATA/spec_bench.jsonl" --per-category "$SAMPLING_PER_CATEGORY" --temperature 1 --methods "$SAMPLING_METHODS" ;;
    *) echo "bench/gpu/run.sh: unknown step $step" >&2; usage ;;
  esac
  echo "== $step done in $(( $(date +%s) - started )) s"
done
