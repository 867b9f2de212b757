#!/usr/bin/env bash
# Prepares a measured round on a CUDA machine (scripts/gpu_round.sh): builds the release
# binary and the test binaries of the GPU paths and copies them, stripped, into .gpu/ (kept
# out of git), after ../shared/gpu/prepare.sh where that exists (it fetches the Vulkan loader
# into .gl/). What travels to the device is limited (64 MiB with the checkout and .gl/): the
# binary is ~10 MB, each test binary ~7 MB, so only the GPU paths' tests go (seven: 57 MB in
# .gpu/ with the binary, 60 MB with the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f ../shared/gpu/prepare.sh ]; then
  bash ../shared/gpu/prepare.sh
fi
cargo build --release --locked --bin speckle
mkdir -p .gpu/tests
cp target/release/speckle .gpu/
strip .gpu/speckle
tests=(matmul_tiled matmul_f16 matmul_coop matmul_coop_staged project_optical attention_blocked tune)
for t in "${tests[@]}"; do
  exe=$(cargo test --release --locked --no-run --test "$t" --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | tail -1)
  cp "$exe" ".gpu/tests/$t"
  strip ".gpu/tests/$t"
done
du -sh .gpu
echo "ready: on the GPU machine, run: OUT=\$OUT bash scripts/gpu_round.sh"
