#!/usr/bin/env bash
# Prepares a measured round on a CUDA machine (scripts/gpu_round.sh): builds the release
# binary and the test binaries of the GPU paths, strips them and puts them into .gpu/ (kept
# out of git), the test binaries packed into .gpu/tests.tar.gz, after ../shared/gpu/prepare.sh
# where that exists (it fetches the Vulkan loader into .gl/). What travels to the device is
# limited (64 MiB with the checkout and .gl/): the binary is ~10 MB and each test binary
# ~7 MB, so only the GPU paths' tests go, compressed (gzip, through python3's tarfile, which
# the device has too); gpu_round.sh unpacks them there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f ../shared/gpu/prepare.sh ]; then
  bash ../shared/gpu/prepare.sh
fi
cargo build --release --locked --bin speckle
rm -rf .gpu/tests .gpu/tests.tar.gz
staging=$(mktemp -d)
mkdir -p .gpu "$staging/tests"
cp target/release/speckle .gpu/
strip .gpu/speckle
tests=(matmul_tiled matmul_skinny matmul_f16 matmul_coop matmul_coop_staged project_optical srht
  activation softmax layernorm reduce attention attention_blocked attention_combine attention_f16
  tune)
for t in "${tests[@]}"; do
  exe=$(cargo test --release --locked --no-run --test "$t" --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | tail -1)
  cp "$exe" "$staging/tests/$t"
  strip "$staging/tests/$t"
done
python3 - "$staging" <<'EOF'
import sys, tarfile
with tarfile.open(".gpu/tests.tar.gz", "w:gz") as tar:
    tar.add(sys.argv[1] + "/tests", arcname="tests")
EOF
rm -rf "$staging"
du -sh .gpu .gpu/tests.tar.gz
echo "ready: on the GPU machine, run: OUT=\$OUT bash scripts/gpu_round.sh"
