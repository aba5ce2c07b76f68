#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: build dependencies from apt, and a Python
# venv (.venv) with the test oracles (onnxruntime, onnx, numpy). The C tool never needs Python.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential pkg-config libprotobuf-c-dev protobuf-c-compiler libonnx-dev
      libonnx-testdata libopenblas-dev libcjson-dev libpng-dev libjpeg-dev python3-venv
      clang libclang-rt-14-dev llvm chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

VENV=${VENV:-.venv}
REQ=tools/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/.requirements"; then
    echo "setup: creating Python venv $VENV (test oracles only)"
    PY=python3
    command -v /usr/bin/python3 >/dev/null && PY=/usr/bin/python3
    "$PY" -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -r "$REQ"
    cp "$REQ" "$VENV/.requirements"
fi
