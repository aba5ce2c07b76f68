#!/bin/bash
# Minmax calibration time against onnxruntime's quantize_static MinMax at several sample
# counts, to split each tool's time into a fixed part and a part per sample (issue 8's 1/3
# target at 100 samples depends on both). Needs `make peers` run once (its venv and data).
#
#   tools/minmax_slope.sh [MODELS] [COUNTS] [REPS]     defaults: "nudenet ddddocr" "25 100 200" 2
#
# Per model and count: the faster of REPS runs of each (in turn, as make peers does: qcal's
# whole process, onnxruntime's quantize call alone), their ratio, and at the end the per-sample
# cost of each from the first to the last count (difference of times over difference of counts)
# and the fixed part that leaves at the first count.
set -eu
cd "$(dirname "$0")/.."
MODELS=${1:-nudenet ddddocr}
COUNTS=${2:-25 100 200}
REPS=${3:-2}
PY=.venv-peers/bin/python
if [ ! -x "$PY" ]; then
    echo "minmax_slope: run 'make peers' first (it makes $PY and the data)" >&2
    exit 2
fi
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 QC_THREADS=2 MKL_NUM_THREADS=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $MODELS; do
    case $m in
        nudenet) P=models/cache/nudenet/320n.onnx ;;
        magika) P=models/cache/magika/model.onnx ;;
        ddddocr) P=models/cache/ddddocr/common_det.onnx ;;
        *) echo "minmax_slope: unknown model $m" >&2; exit 2 ;;
    esac
    D=build/peers/cache/data/$m/calib
    [ -d "$D" ] || { echo "minmax_slope: $D: missing (run 'make peers' first)" >&2; exit 2; }
    for n in $COUNTS; do
        best_o= best_q=
        for _ in $(seq "$REPS"); do
            if ! o=$("$PY" tools/peers.py --child ort --model "$P" --data "$D" --n "$n" \
                       --method MinMax --out-model "$tmp/ort.onnx" --stride 0 2>"$tmp/ort.err" |
                     tail -1 | "$PY" -c 'import json, sys
print("%.3f" % json.loads(sys.stdin.read())["calib_s"])' 2>/dev/null); then
                echo "minmax_slope: $m, $n samples: onnxruntime's quantize_static failed:" \
                     "$(tail -1 "$tmp/ort.err")" >&2
                exit 1
            fi
            s=$(date +%s.%N)
            build/calibrate -q --data "$D" --limit "$n" "$P" -o "$tmp/q.onnx" --method minmax \
                --per-channel
            q=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
            best_o=$(echo "$o $best_o" | tr ' ' '\n' | grep . | sort -g | head -1)
            best_q=$(echo "$q $best_q" | tr ' ' '\n' | grep . | sort -g | head -1)
        done
        awk -v m="$m" -v n="$n" -v q="$best_q" -v o="$best_o" \
            'BEGIN { printf "%s n=%d: qcal %.2f s, ORT MinMax %.2f s, ratio %.3f\n", m, n, q, o,
                     q / o }'
        echo "$n $best_q $best_o" >> "$tmp/$m"
    done
    read -r n0 q0 o0 < <(head -1 "$tmp/$m")
    read -r n1 q1 o1 < <(tail -1 "$tmp/$m")
    [ "$n1" != "$n0" ] && awk -v m="$m" -v n0="$n0" -v n1="$n1" -v q0="$q0" -v q1="$q1" \
        -v o0="$o0" -v o1="$o1" 'BEGIN {
            sq = (q1 - q0) / (n1 - n0); so = (o1 - o0) / (n1 - n0)
            printf "%s: per sample qcal %.1f ms, ORT MinMax %.1f ms (ratio %.3f); ", m,
                   sq * 1000, so * 1000, sq / so
            printf "fixed qcal %.2f s, ORT %.2f s\n", q0 - sq * n0, o0 - so * n0 }'
    true
done
