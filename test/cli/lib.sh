# shellcheck shell=bash disable=SC2034
# Shared by test/cli/test_*.sh (sourced, not run). Each check prints "ok   NAME" or
# "FAIL NAME: why"; cli_done prints "<suite>: N passed, N failed" and returns 0 or 1.
# Environment: QC_BUILD_DIR (default build), VENV (default .venv).

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
BUILD=${QC_BUILD_DIR:-build}
CAL=$BUILD/calibrate
PY=${VENV:-.venv}/bin/python
# shellcheck source=tools/shared.sh
source tools/shared.sh
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

# cli_models SUITE N_CALIB N_EVAL: the integration models and their samples (models_ready);
# on failure a FAIL line, the suite's summary, and 1.
cli_models() {
    local why
    if ! why=$(models_ready "$CLI_TMP" "$2" "$3"); then
        cli_fail "${why%%: *}" "${why#*: }"
        cli_done "$1"
        return 1
    fi
}

# tally NAME COMMAND...: runs an oracle (oracle_tally), counts its ok/FAIL lines; a failure it
# did not report itself is one more, NAME.
tally() {
    local name=$1
    shift
    oracle_tally "$@"
    CLI_PASSED=$((CLI_PASSED + TALLY_OK))
    CLI_FAILED=$((CLI_FAILED + TALLY_FAIL))
    [ -z "$TALLY_WHY" ] || cli_fail "$name" "$TALLY_WHY"
}

cli_done() {
    echo "$1: $CLI_PASSED passed, $CLI_FAILED failed"
    [ "$CLI_FAILED" = 0 ]
}
