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
# The API docs build without warnings (no public item links a private one).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked
# No message text lost its line continuation: a string literal with a run of spaces between
# two words (a `\` dropped at a line break joins the lines with the next line's indent).
if grep -rnE '"[^"]*[[:alnum:],;:.)] {8,}[[:alnum:](][^"]*"' src tests --include='*.rs'; then
  echo "string literals above hold runs of spaces: a lost line continuation?" >&2
  exit 1
fi
# The benchmark comparison scripts (standard library only; the PyTorch part is skipped where
# torch is not installed).
if command -v python3 >/dev/null 2>&1; then
  python3 -m unittest -q scripts/test_bench_compare.py
  python3 scripts/gen_matmul_texture.py --check
  python3 scripts/gen_attention_texture.py --check
fi
