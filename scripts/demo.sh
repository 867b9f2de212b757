#!/usr/bin/env bash
# The main job: shows the adapter, then benchmarks matmul against the CPU GEMM.
# Extra arguments go to `speckle bench matmul` (e.g. --sizes 256,512,1024,2048 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
cargo build --release --bin speckle
./target/release/speckle info
./target/release/speckle bench matmul "$@"
