#!/usr/bin/env bash
# `calibrate compare --html`: the report of the tiny fixture model (and of nudenet when the
# integration models are present) checked against the --json report of the same run by
# test/oracles/report_html_check.py (well-formed, self-contained, ranking, per-layer SQNR
# chart, every method's range drawn on every tensor's histogram), with |x| histograms and
# without any histogram; the checker rejects reports broken on purpose; an unwritable path is
# an I/O error. When `chromium` is installed, tools/report_check.py opens the reports in
# headless Chromium: no console message of level error/warning, no exception, no request but
# the page itself, threshold lines rendered, a non-empty PNG screenshot.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
M=$FX/conv.onnx
D=$FX/data_ok
CHECK=test/oracles/report_html_check.py

# check NAME HTML JSON [checker args]: report_html_check.py's ok/FAIL lines count as checks
check() {
    local name=$1 out rc=0
    shift
    out=$("$PY" "$CHECK" "$@" 2>&1) || rc=$?
    echo "$out" | sed "s/^ok   /ok   ${name}_/; s/^FAIL /FAIL ${name}_/"
    CLI_PASSED=$((CLI_PASSED + $(grep -c '^ok ' <<<"$out")))
    CLI_FAILED=$((CLI_FAILED + $(grep -c '^FAIL ' <<<"$out")))
    if [ "$rc" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
        cli_fail "$name" "checker exit $rc: $(tail -1 <<<"$out")"
    fi
}

# compare NAME ARGS...: one run writing NAME.html and NAME.json
compare() {
    local name=$1
    shift
    if ! "$CAL" compare "$@" --html "$CLI_TMP/$name.html" --json "$CLI_TMP/$name.json" -q \
            >"$CLI_TMP/$name.log" 2>&1; then
        cli_fail "$name" "compare failed: $(tail -1 "$CLI_TMP/$name.log")"
        return 1
    fi
}

# "auto" adds the shared signed histogram to any grid: left out where the grid alone matters
NO_AUTO=()
"$CAL" compare --help 2>/dev/null | grep -q -- '--auto MODE' && NO_AUTO=(--auto no)

if compare fx --data "$D" --eval "$D" "$M"; then
    check fx "$CLI_TMP/fx.html" "$CLI_TMP/fx.json" --absval 0
    # the graph input's histogram holds every value of the one calibration sample
    if v=$("$PY" - "$CLI_TMP/fx.html" "$D/s0.npy" 2>&1 <<'EOF'
import re, sys
import numpy as np
sec = re.search(r'<details id="t0".*?</details>', open(sys.argv[1]).read(), re.S).group(0)
got = int(re.search(r'class="bar".*?<title>x histogram, (\d+) values', sec, re.S).group(1))
want = np.load(sys.argv[2]).size
assert got == want, (got, want)
print(f"{got} values in the bars of the input's histogram")
EOF
    ); then
        cli_ok "fx_histogram_counts: $v"
    else
        cli_fail fx_histogram_counts "$(tail -1 <<<"$v")"
    fi
fi
# symmetric activations only: every histogram is the |x| one
if compare sym --data "$D" --eval "$D" "$M" --symmetric-activations yes \
        --methods minmax,percentile,entropy --percentiles 99.99 "${NO_AUTO[@]}"; then
    check sym "$CLI_TMP/sym.html" "$CLI_TMP/sym.json" --absval 1
fi
# no histogram-based candidate: the lines are still drawn, on an empty plot
if compare nohist --data "$D" --eval "$D" "$M" --methods minmax,ema --per-channel yes \
        "${NO_AUTO[@]}"; then
    check nohist "$CLI_TMP/nohist.html" "$CLI_TMP/nohist.json"
    if grep -q 'class="bar"' "$CLI_TMP/nohist.html" ||
       ! grep -q 'no histogram' "$CLI_TMP/nohist.html"; then
        cli_fail nohist_no_bars "bars drawn without a histogram, or no note"
    else
        cli_ok nohist_no_bars
    fi
fi

# The checker must be able to fail: a method's lines removed, an external image added.
if [ -s "$CLI_TMP/fx.html" ]; then
    grep -v 'data-m="mm"' "$CLI_TMP/fx.html" >"$CLI_TMP/broken1.html"
    sed 's|</body>|<img src="https://example.com/x.png"></body>|' "$CLI_TMP/fx.html" \
        >"$CLI_TMP/broken2.html"
    for b in 1 2; do
        want=$([ $b = 1 ] && echo histograms || echo self_contained)
        if "$PY" "$CHECK" "$CLI_TMP/broken$b.html" "$CLI_TMP/fx.json" 2>&1 |
                grep -q "^FAIL $want"; then
            cli_ok "checker_rejects_broken_$want"
        else
            cli_fail "checker_rejects_broken_$want" "report_html_check.py passed a broken report"
        fi
    done
fi

expect_error html_unwritable 4 "no_such_dir" -- "$CAL" compare --data "$D" --eval "$D" "$M" \
    --methods minmax -q --html "$CLI_TMP/no_such_dir/r.html"

# A real model (~300 observed activations): same checks, and a size bound.
NN=models/cache/nudenet/320n.onnx
NND=models/cache/data/nudenet
if [ -f "$NN" ] && [ -d "$NND/calib" ] && [ "${QC_ASAN:-0}" != 1 ]; then
    if compare nudenet --data "$NND/calib" --eval "$NND/eval" "$NN" --limit 4 --eval-limit 1 \
            --methods minmax,ema,percentile,mse,entropy; then
        check nudenet "$CLI_TMP/nudenet.html" "$CLI_TMP/nudenet.json" \
            --max-bytes-per-tensor 8000
    fi
else
    echo "skip nudenet: no integration model (make models) or QC_ASAN=1"
fi

# Headless Chromium: console, exceptions, network, rendering, screenshot.
if command -v chromium >/dev/null 2>&1; then
    printf '<!DOCTYPE html><html><head><script>console.error("x"); nosuch();</script></head>'\
'<body></body></html>\n' >"$CLI_TMP/bad.html"
    if "$PY" tools/report_check.py "$CLI_TMP/bad.html" "$CLI_TMP/bad.png" \
            >"$CLI_TMP/bad.out" 2>&1; then
        cli_fail chromium_detects_errors "a page with console.error passed"
    elif grep -q "console.error: x" "$CLI_TMP/bad.out" &&
         grep -q "exception: ReferenceError" "$CLI_TMP/bad.out"; then
        cli_ok chromium_detects_errors
    else
        cli_fail chromium_detects_errors "$(tail -2 "$CLI_TMP/bad.out" | tr '\n' ' ')"
    fi
    for r in fx nudenet; do
        [ -s "$CLI_TMP/$r.html" ] || continue
        rc=0
        out=$("$PY" tools/report_check.py "$CLI_TMP/$r.html" "$CLI_TMP/$r.png" \
                --element details.worst "$CLI_TMP/$r-worst.png" 2>&1) || rc=$?
        sig=$(head -c 8 "$CLI_TMP/$r.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
        size=$(stat -c %s "$CLI_TMP/$r.png" 2>/dev/null || echo 0)
        lines=$(sed -n 's/.*histograms, \([0-9]*\) threshold lines visible.*/\1/p' <<<"$out")
        if [ "$rc" = 0 ] && [ "$sig" = 89504e470d0a1a0a ] && [ "$size" -gt 10000 ] &&
           [ -s "$CLI_TMP/$r-worst.png" ] &&
           [ "${lines:-0}" -gt 0 ]; then
            cli_ok "chromium_$r: $out"
        else
            cli_fail "chromium_$r" "exit $rc, PNG $sig $size bytes: $(tr '\n' ' ' <<<"$out")"
        fi
    done
else
    echo "skip chromium: not installed (tools/setup.sh installs it)"
fi
cli_done report_html
