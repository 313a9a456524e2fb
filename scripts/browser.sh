#!/usr/bin/env bash
# Debian's Chromium for the browser tests (driven by puppeteer-core; no browser download).
# Prints its path. Installs it with apt when missing (root, or sudo).
set -euo pipefail
for c in chromium chromium-browser; do
  if command -v "$c" >/dev/null; then command -v "$c"; exit 0; fi
done
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
echo "[browser] installing chromium (apt)" >&2
export DEBIAN_FRONTEND=noninteractive
as_root apt-get install -y -q chromium >/dev/null 2>&1 ||
  { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q chromium >/dev/null; } ||
  { echo "[browser] ERROR: apt-get install chromium failed" >&2; exit 1; }
command -v chromium
