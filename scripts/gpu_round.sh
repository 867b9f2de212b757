#!/usr/bin/env bash
# One measured round on a CUDA machine, in one call so that every ratio comes from one run on
# one card:
#   1. the test binaries of the GPU paths (from scripts/gpu_prepare.sh, unpacked from
#      .gpu/tests.tar.gz) run on the card, so a figure is only trusted for kernels that are
#      correct there;
#   2. speckle tune, one op at a time so that a stopped op keeps what the others wrote (the
#      cache in $OUT/cache/tune.json; each class's report as a JSON line in $OUT/tune.jsonl as
#      soon as it is measured, so that an op stopped at its limit keeps the classes it finished);
#   3. speckle bench all with that cache ($OUT/bench_all.json);
#   4. the PyTorch baselines of the same preset ($OUT/torch.jsonl);
#   5. the comparison ($OUT/compare.md, also printed).
# Usage, from the checkout on the GPU machine, after .gpu/on-device.sh has set up Vulkan:
#   OUT=/some/dir bash scripts/gpu_round.sh [--skip-tests] [--skip-tune]
# Logs of every step go to $OUT/log.txt (the device returns at most 8 files). A failing step
# is reported and the next one still runs; the exit status is non-zero if any step failed.
# Each step has a time limit (seconds; ROUND_TEST_S, ROUND_TUNE_S (for each op but srht),
# ROUND_TUNE_SRHT_S, ROUND_BENCH_S, ROUND_TORCH_S override them), so that one slow step cannot
# use up a device call that is itself limited to 600 s: with sixteen test binaries the
# defaults add up to 588 s at most.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
bin=${SPECKLE_BIN:-.gpu/speckle}
skip_tests=0
skip_tune=0
for arg in "$@"; do
  case "$arg" in
    --skip-tests) skip_tests=1 ;;
    --skip-tune) skip_tune=1 ;;
    *) echo "gpu_round: unknown argument $arg" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT/cache"
export SPECKLE_CACHE_DIR="$OUT/cache"
log="$OUT/log.txt"
failed=0
test_s=${ROUND_TEST_S:-11}
tune_s=${ROUND_TUNE_S:-30}
# The structured projection has few candidates on one problem of a few milliseconds.
tune_srht_s=${ROUND_TUNE_SRHT_S:-12}
bench_s=${ROUND_BENCH_S:-150}
torch_s=${ROUND_TORCH_S:-90}
# step NAME LIMIT_S OUTPUT_FILE COMMAND...: stdout to OUTPUT_FILE ("-" for the log, "+FILE"
# to append to FILE), stderr to the log; killed after LIMIT_S seconds.
step() {
  local name=$1 limit=$2 out=$3; shift 3
  local start=$SECONDS status
  echo "== $name (limit $limit s): $*" >> "$log"
  if [ "$out" = "-" ]; then
    timeout "$limit" "$@" >> "$log" 2>&1; status=$?
  elif [ "${out:0:1}" = "+" ]; then
    timeout "$limit" "$@" >> "${out:1}" 2>> "$log"; status=$?
  else
    timeout "$limit" "$@" > "$out" 2>> "$log"; status=$?
  fi
  if [ "$status" = 0 ]; then
    echo "== $name ok ($((SECONDS - start)) s)" | tee -a "$log"
  elif [ "$status" = 124 ]; then
    echo "== $name STOPPED at its limit of $limit s" | tee -a "$log"
    failed=1
  else
    echo "== $name FAILED with $status ($((SECONDS - start)) s)" | tee -a "$log"
    failed=1
  fi
}

step info 10 "$OUT/info.json" "$bin" info --json
if [ "$skip_tests" = 0 ] && [ -f .gpu/tests.tar.gz ]; then
  python3 -c 'import tarfile; tarfile.open(".gpu/tests.tar.gz").extractall(".gpu")' \
    || echo "== unpacking the test binaries FAILED" | tee -a "$log"
fi
if [ "$skip_tests" = 0 ] && [ -d .gpu/tests ]; then
  for t in .gpu/tests/*; do
    # The CLI tests look for the binary where it was built; the library tests run here.
    step "test $(basename "$t")" "$test_s" - "$t" --test-threads 1 --skip the_cli --skip speckle_tune
  done
fi
if [ "$skip_tune" = 0 ]; then
  : > "$OUT/tune.jsonl"
  # The ops of the newest kernels first; matmul (f32) has the most candidates.
  for op in matmul_f16 attention project_optical matmul; do
    step "tune $op" "$tune_s" "+$OUT/tune.jsonl" "$bin" tune --json-lines --ops "$op"
  done
  step "tune srht" "$tune_srht_s" "+$OUT/tune.jsonl" "$bin" tune --json-lines --ops srht
fi
step "bench all" "$bench_s" "$OUT/bench_all.json" "$bin" bench all --json
step torch "$torch_s" "$OUT/torch.jsonl" python3 scripts/torch_baselines.py --preset gpu
step compare 30 "$OUT/compare.md" python3 scripts/bench_compare.py "$OUT/bench_all.json" "$OUT/torch.jsonl"
cat "$OUT/compare.md" 2>/dev/null || true
exit $failed
