#!/usr/bin/env bash
# qcal against onnxruntime's quantize_static and Intel NNCF on the integration models, in one
# run: calibration time and peak memory, SQNR and task agreement on held-out samples, latency
# and the nodes left in float in onnxruntime. Tables on stdout and in build/peers.md.
#
#   tools/peers.sh [--quick] [peers.py options: --models a,b --calib N --eval N --runs N ...]
#
# The peers live in their own venv (.venv-peers, from tools/peers-requirements.txt, created
# here idempotently) so that the test venv stays lean; pip install is the only download.
# Environment: QC_BUILD_DIR (default build), PEERS_VENV (default .venv-peers, also used by
# fetch_models.sh), QC_PEERS_ORT_MEM_GB (default 8), QC_PEERS_TIMEOUT (600).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${QC_BUILD_DIR:-build}
PVENV=${PEERS_VENV:-.venv-peers}
REQ=tools/peers-requirements.txt

if [ ! -x "$PVENV/bin/python" ] || ! cmp -s "$REQ" "$PVENV/.requirements"; then
    echo "peers: creating Python venv $PVENV (onnxruntime, NNCF)"
    PY=python3
    command -v /usr/bin/python3 >/dev/null && PY=/usr/bin/python3
    rm -f "$PVENV/.requirements"
    "$PY" -m venv "$PVENV"
    "$PVENV/bin/pip" install -q --upgrade pip >/dev/null
    "$PVENV/bin/pip" install -q -r "$REQ"
    cp "$REQ" "$PVENV/.requirements"
fi

if [ ! -x "$BUILD/calibrate" ]; then
    make --no-print-directory BUILD="$BUILD" "$BUILD/calibrate"
fi
VENV=$PVENV tools/fetch_models.sh >/dev/null
QC_BUILD_DIR=$BUILD exec "$PVENV/bin/python" tools/peers.py "$@"
