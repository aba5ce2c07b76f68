# shellcheck shell=bash disable=SC2034
# Shell functions shared by tools/run_tests.sh, tools/bench.sh and test/cli/lib.sh (sourced,
# not run; from the repository root, with PY set to the venv's python).

# model_path NAME: the file of integration model NAME (models/manifest.txt).
model_path() {
    awk -v n="$1" '$1 == "model" && $2 == n { print "models/cache/" $9 }' models/manifest.txt
}

# models_ready LOGDIR N_CALIB N_EVAL: fetches the integration models (tools/fetch_models.sh)
# and makes their samples (tools/make_inputs.py --min), logs in LOGDIR; on failure prints
# "STEP: last log line" (STEP fetch_models or make_inputs) and returns 1.
models_ready() {
    if ! tools/fetch_models.sh >"$1/fetch.log" 2>&1; then
        echo "fetch_models: $(tail -1 "$1/fetch.log")"
        return 1
    fi
    if ! "$PY" tools/make_inputs.py --min --calib "$2" --eval "$3" >"$1/inputs.log" 2>&1; then
        echo "make_inputs: $(tail -1 "$1/inputs.log")"
        return 1
    fi
}

# oracle_tally COMMAND...: runs an oracle and echoes its output; sets TALLY_OK and TALLY_FAIL
# (its "ok " and "FAIL " lines) and TALLY_WHY: empty, or a failure the oracle did not report
# as a FAIL line (a failing exit status; no result line at all).
oracle_tally() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    [ -n "$out" ] && echo "$out"
    TALLY_OK=$(grep -c '^ok ' <<<"$out")
    TALLY_FAIL=$(grep -c '^FAIL ' <<<"$out")
    TALLY_WHY=
    if [ "$rc" != 0 ] && [ "$TALLY_FAIL" = 0 ]; then
        TALLY_WHY="exit status $rc: $(tail -1 <<<"$out")"
    elif [ "$TALLY_OK" = 0 ] && [ "$TALLY_FAIL" = 0 ]; then
        TALLY_WHY="no result"
    fi
}
