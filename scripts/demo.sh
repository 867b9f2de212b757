#!/usr/bin/env bash
# The main job: shows the adapter, then reconstructs the built-in image from the features of
# random-weight encoders (linear, ReLU, deep ReLU, optical) and writes
# speckle-reconstruct/{grid.png,psnr.png,report.json}.
# Extra arguments go to `speckle reconstruct` (e.g. --image photo.jpg --size 48 --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
cargo build --release --bin speckle
./target/release/speckle info
./target/release/speckle reconstruct "$@"
