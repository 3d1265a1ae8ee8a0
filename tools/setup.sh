#!/usr/bin/env bash
# Create or reuse .venv and install lmnet with its pinned requirements. Idempotent: a second run
# with unchanged requirements returns in a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# Open3D's import needs libusb (Debian libusb-1.0-0); install it when we can.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian libusb-1.0-0 (needed by open3d)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null) \
            || echo "setup: warning: could not install libusb-1.0-0; meshes (open3d) will be unavailable" >&2
    else
        echo "setup: warning: libusb-1.0-0 missing and not root; run 'sudo apt-get install libusb-1.0-0' for meshes" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi

stamp=".venv/.lmnet-installed-$(cat requirements.txt pyproject.toml | sha1sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing requirements into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    .venv/bin/python -m pip install -q --no-deps -e .
    rm -f .venv/.lmnet-installed-*
    touch "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, lmnet; print("torch", torch.__version__, "lmnet", lmnet.__version__)'))"
