#!/usr/bin/env bash
# Debian packages the project needs beyond Python and Rust: Graphviz (`trace --svg`).
# Idempotent and quiet; does nothing when they are present or when we are not root.
set -euo pipefail
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "note: install ${need[*]} (Debian packages) for SVG output" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
