#!/usr/bin/env bash
# Makes sure a Vulkan driver is present, installing Mesa's software driver (lavapipe) on
# Debian/Ubuntu when there is none. On macOS (Metal) and Windows (DirectX 12) nothing is needed.
set -euo pipefail

if [ "$(uname -s)" != "Linux" ]; then
  exit 0
fi
for dir in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
  if ls "$dir"/*.json >/dev/null 2>&1; then
    exit 0  # a Vulkan driver is installed (a GPU vendor's or lavapipe)
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "speckle: no Vulkan driver found; install your GPU's Vulkan driver or Mesa's lavapipe" >&2
  exit 1
fi
echo "speckle: no Vulkan driver found; installing Mesa's software driver (mesa-vulkan-drivers)" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers >/dev/null
