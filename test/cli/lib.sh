# shellcheck shell=bash disable=SC2034
# Shared by test/cli/test_*.sh (sourced, not run). Each check prints "ok   NAME" or
# "FAIL NAME: why"; cli_done prints "<suite>: N passed, N failed" and returns 0 or 1.
# Environment: QC_BUILD_DIR (default build), VENV (default .venv).

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
BUILD=${QC_BUILD_DIR:-build}
CAL=$BUILD/calibrate
PY=${VENV:-.venv}/bin/python
CLI_PASSED=0
CLI_FAILED=0
CLI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qc-cli.XXXXXX")
trap 'rm -rf "$CLI_TMP"' EXIT

if [ ! -x "$CAL" ]; then
    echo "FAIL setup: $CAL not built"
    exit 1
fi
if ! "$PY" test/oracles/make_fixtures.py "$CLI_TMP/fx" >"$CLI_TMP/fx.log" 2>&1; then
    echo "FAIL setup: test/oracles/make_fixtures.py: $(tail -1 "$CLI_TMP/fx.log")"
    exit 1
fi
FX=$CLI_TMP/fx

cli_ok() { echo "ok   $1"; CLI_PASSED=$((CLI_PASSED + 1)); }
cli_fail() { echo "FAIL $1: $2"; CLI_FAILED=$((CLI_FAILED + 1)); }

# expect_error NAME EXIT_CODE 'substring'... -- command args...
# The command must exit with EXIT_CODE and print exactly one line on stderr, starting with
# "calibrate: " and containing every substring (fixed strings).
expect_error() {
    local name=$1 want=$2
    shift 2
    local pats=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do pats+=("$1"); shift; done
    shift
    local rc=0
    "$@" >"$CLI_TMP/out" 2>"$CLI_TMP/err" </dev/null || rc=$?
    local err lines
    err=$(head -c 600 "$CLI_TMP/err")
    lines=$(wc -l <"$CLI_TMP/err")
    if [ "$rc" != "$want" ]; then
        cli_fail "$name" "exit status $rc, expected $want (stderr: $err)"
        return
    fi
    if [ "$lines" != 1 ]; then
        cli_fail "$name" "$lines lines on stderr, expected 1: $err"
        return
    fi
    case "$err" in
        calibrate:\ *) ;;
        *) cli_fail "$name" "stderr does not start with 'calibrate: ': $err"; return ;;
    esac
    local p
    for p in "${pats[@]}"; do
        if ! grep -qF -- "$p" "$CLI_TMP/err"; then
            cli_fail "$name" "stderr lacks '$p': $err"
            return
        fi
    done
    cli_ok "$name"
}

# expect_success NAME -- command args...
expect_success() {
    local name=$1
    shift 2
    local rc=0
    "$@" >"$CLI_TMP/out" 2>"$CLI_TMP/err" </dev/null || rc=$?
    if [ "$rc" != 0 ]; then
        cli_fail "$name" "exit status $rc (stderr: $(head -c 400 "$CLI_TMP/err"))"
        return
    fi
    cli_ok "$name"
}

# expect_usage NAME 'substring' -- command args...
# A usage error: exit 2 and the first stderr line starts with "calibrate: " and contains the
# substring (a hint may follow).
expect_usage() {
    local name=$1 pat=$2 rc=0
    shift 3
    "$@" >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
    if [ "$rc" = 2 ] && head -1 "$CLI_TMP/err" | grep -q '^calibrate: ' &&
            head -1 "$CLI_TMP/err" | grep -qF -- "$pat"; then
        cli_ok "$name"
    else
        cli_fail "$name" "exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
    fi
}

# model_path NAME: the file of integration model NAME (models/manifest.txt).
model_path() {
    awk -v n="$1" '$1 == "model" && $2 == n { print "models/cache/" $9 }' models/manifest.txt
}

# cli_models SUITE N_CALIB N_EVAL: the integration models (tools/fetch_models.sh) and their
# samples (tools/make_inputs.py --min); on failure a FAIL line, the suite's summary, and 1.
cli_models() {
    if ! tools/fetch_models.sh >"$CLI_TMP/fetch.log" 2>&1; then
        cli_fail fetch_models "$(tail -1 "$CLI_TMP/fetch.log")"
        cli_done "$1"
        return 1
    fi
    if ! "$PY" tools/make_inputs.py --min --calib "$2" --eval "$3" \
            >"$CLI_TMP/inputs.log" 2>&1; then
        cli_fail make_inputs "$(tail -1 "$CLI_TMP/inputs.log")"
        cli_done "$1"
        return 1
    fi
}

# tally NAME COMMAND...: runs an oracle, echoes its output and counts its ok/FAIL lines; a
# failing exit status without a FAIL line is one failure, NAME.
tally() {
    local name=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    [ -n "$out" ] && echo "$out"
    CLI_PASSED=$((CLI_PASSED + $(grep -c '^ok ' <<<"$out")))
    CLI_FAILED=$((CLI_FAILED + $(grep -c '^FAIL ' <<<"$out")))
    if [ "$rc" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
        cli_fail "$name" "exit status $rc: $(tail -1 <<<"$out")"
    fi
}

cli_done() {
    echo "$1: $CLI_PASSED passed, $CLI_FAILED failed"
    [ "$CLI_FAILED" = 0 ]
}
