#!/usr/bin/env bash
# Set up everything v2xdet needs on a fresh Debian/Ubuntu machine: system libraries (apt),
# a virtual environment in .venv, CPU torch, spconv, open3d and the package itself (editable).
# Idempotent: a second run only checks. Override the venv location with V2XDET_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${V2XDET_VENV:-.venv}"
PY="${PYTHON:-python3}"

# open3d needs libusb at import time and libgomp for its kernels; libgl for the legacy renderer.
need_apt=()
for lib in libusb-1.0.so.0 libgomp.so.1 libGL.so.1; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_apt+=("$lib")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing system libraries for: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libusb-1.0-0 libgomp1 libgl1 >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
stamp="$VENV/.v2xdet-installed"
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "[setup] installing torch (CPU), spconv, open3d and v2xdet into $VENV"
  "${PIP[@]}" install --upgrade pip setuptools wheel
  # CPU torch first so nothing pulls a CUDA build; GPU users install their torch before this.
  "$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" install "torch==2.13.0"
  "${PIP[@]}" install -e ".[${V2XDET_EXTRAS:-cpu,test}]"
  touch "$stamp"
fi
echo "[setup] ready: $VENV"
