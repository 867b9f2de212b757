#!/usr/bin/env bash
# One measured round on a CUDA machine, in one call so that every ratio comes from one run on
# one card:
#   1. the test binaries of the GPU paths (from scripts/gpu_prepare.sh) run on the card, so a
#      figure is only trusted for kernels that are correct there;
#   2. speckle tune (its cache in $OUT/cache/tune.json, its report in $OUT/tune.json);
#   3. speckle bench all with that cache ($OUT/bench_all.json);
#   4. the PyTorch baselines of the same preset ($OUT/torch.jsonl);
#   5. the comparison ($OUT/compare.md, also printed).
# Usage, from the checkout on the GPU machine, after .gpu/on-device.sh has set up Vulkan:
#   OUT=/some/dir bash scripts/gpu_round.sh [--skip-tests] [--skip-tune]
# Logs of every step go to $OUT/log.txt (the device returns at most 8 files). A failing step
# is reported and the next one still runs; the exit status is non-zero if any step failed.
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
# step NAME OUTPUT_FILE COMMAND...: stdout to OUTPUT_FILE ("-" for the log), stderr to the log.
step() {
  local name=$1 out=$2; shift 2
  local start=$SECONDS status
  echo "== $name: $*" >> "$log"
  if [ "$out" = "-" ]; then
    "$@" >> "$log" 2>&1; status=$?
  else
    "$@" > "$out" 2>> "$log"; status=$?
  fi
  if [ "$status" = 0 ]; then
    echo "== $name ok ($((SECONDS - start)) s)" | tee -a "$log"
  else
    echo "== $name FAILED with $status ($((SECONDS - start)) s)" | tee -a "$log"
    failed=1
  fi
}

step info "$OUT/info.json" "$bin" info --json
if [ "$skip_tests" = 0 ] && [ -d .gpu/tests ]; then
  for t in .gpu/tests/*; do
    # The CLI tests look for the binary where it was built; the library tests run here.
    step "test $(basename "$t")" - "$t" --test-threads 1 --skip the_cli --skip speckle_tune
  done
fi
if [ "$skip_tune" = 0 ]; then
  step tune "$OUT/tune.json" "$bin" tune --json --ops matmul,matmul_f16,attention,project_optical
fi
step "bench all" "$OUT/bench_all.json" "$bin" bench all --json
step torch "$OUT/torch.jsonl" python3 scripts/torch_baselines.py --preset gpu
step compare "$OUT/compare.md" python3 scripts/bench_compare.py "$OUT/bench_all.json" "$OUT/torch.jsonl"
cat "$OUT/compare.md" 2>/dev/null || true
exit $failed
