#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test on whatever
# adapter is present (lavapipe when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-vulkan.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
cargo test --doc --locked
