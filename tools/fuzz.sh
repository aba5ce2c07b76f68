#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets (test/fuzz/fuzz_*.c) with clang, ASan and UBSan
# into build-fuzz/, generates their seed corpora there (test/fuzz/make_seeds.py,
# make_image_seeds.c), replays the committed regression inputs, then fuzzes each target for
# FUZZ_SECONDS. Per target it prints executions and crashes; the closing line is
# "fuzz: N passed, N failed" and the exit status is non-zero on any crash.
#
#   tools/fuzz.sh [TARGET...]     (default: model model_extdata prepare npy tensor_pb image
#                                  params; prepare runs constant folding, i.e. the kernels, on
#                                  the file's initializers)
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_JOBS (targets fuzzed at the same
# time, default 1), FUZZ_BUILD (default build-fuzz),
# FUZZ_ARGS (extra libFuzzer flags), VENV (default .venv).
# A crash, leak, timeout (> 10 s for one input) or out-of-memory (> 2048 MB) leaves the input
# in $FUZZ_BUILD/artifacts/<target>/ and copies it (if under 64 KiB) to
# test/fuzz/regressions/<target>/, where test/cli/test_fuzz_regressions.sh replays it on every
# `make test`: fix the bug, keep the file. The corpus grows in $FUZZ_BUILD/corpus/<target>/
# across runs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

SECONDS_PER=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
B=${FUZZ_BUILD:-build-fuzz}
PY=${VENV:-.venv}/bin/python
ALL="model model_extdata prepare npy tensor_pb image params"
TARGETS=${*:-$ALL}
CC=${FUZZ_CC:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS_LIB="-O1 -g -fno-omit-frame-pointer $SAN -fsanitize=fuzzer-no-link"
LDLIBS="-lprotobuf-c -lopenblas -lcjson -lpng -ljpeg -lm -lpthread"
INC="-std=c11 -D_GNU_SOURCE -Iinclude -I$B/gen -Isrc/exec -Isrc/onnx -Isrc/core -Isrc/data
     -Icalib -Isrc/quant $(pkg-config --cflags libprotobuf-c libpng 2>/dev/null)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OPENBLAS_NUM_THREADS=1

die() { echo "fuzz: $*" >&2; echo "fuzz: 0 passed, 1 failed"; exit 1; }

command -v "$CC" >/dev/null ||
    die "$CC not found (Debian: apt-get install clang libclang-rt-14-dev)"
for t in $TARGETS; do
    [ -f "test/fuzz/fuzz_$t.c" ] || die "unknown target '$t' (targets: $ALL)"
done

echo "fuzz: building the library with $CC + ASan/UBSan + fuzzer instrumentation in $B/"
# conv_x86.c without UBSan (still ASan): with it clang -O1 takes two minutes on that file alone
make --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" BUILD="$B" CC="$CC" \
    CFLAGS="$CFLAGS_LIB" CONV_X86_CFLAGS="-fno-sanitize=undefined" "$B/libqcal.a" \
    >"$B.build.log" 2>&1 || { tail -20 "$B.build.log"; die "library build failed"; }
mkdir -p "$B/fuzz" "$B/seeds" "$B/corpus" "$B/artifacts" "$B/logs"
mv -f "$B.build.log" "$B/logs/build.log"
for t in $TARGETS; do
    # shellcheck disable=SC2086
    "$CC" $CFLAGS_LIB -fsanitize=fuzzer $INC -Itest/fuzz "test/fuzz/fuzz_$t.c" \
        -o "$B/fuzz/fuzz_$t" "$B/libqcal.a" $LDLIBS 2>"$B/logs/cc_$t.log" ||
        { cat "$B/logs/cc_$t.log"; die "cannot build fuzz_$t"; }
done

echo "fuzz: generating seed corpora in $B/seeds/"
rm -rf "$B/seeds"
mkdir -p "$B/seeds/image"
"$PY" test/fuzz/make_seeds.py "$B/seeds" >"$B/logs/seeds.log" 2>&1 ||
    { tail -5 "$B/logs/seeds.log"; die "test/fuzz/make_seeds.py failed"; }
read -r -a PNG_CFLAGS <<<"$(pkg-config --cflags libpng 2>/dev/null)"
if ! cc -O1 -o "$B/make_image_seeds" test/fuzz/make_image_seeds.c "${PNG_CFLAGS[@]}" -lpng \
        -ljpeg >>"$B/logs/seeds.log" 2>&1 ||
        ! "$B/make_image_seeds" "$B/seeds/image" >>"$B/logs/seeds.log" 2>&1; then
    die "image seeds failed (see $B/logs/seeds.log)"
fi
tail -1 "$B/logs/seeds.log"

QC_FUZZ_TMP=$(mktemp -d /dev/shm/qc-fuzz-run.XXXXXX 2>/dev/null || mktemp -d)
export QC_FUZZ_TMP
trap 'rm -rf "$QC_FUZZ_TMP"' EXIT

# fuzz_one TARGET: replays the target's regression inputs, then fuzzes it; its verdict line(s)
# go to $B/logs/result_TARGET, the first word "ok" or "FAIL".
fuzz_one() {
    local t=$1 bin=$B/fuzz/fuzz_$1 reg=test/fuzz/regressions/$1 art=$B/artifacts/$1
    local log=$B/logs/fuzz_$1.log res=$B/logs/result_$1
    mkdir -p "$B/corpus/$t" "$art"
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        if ! "$bin" -rss_limit_mb=2048 -timeout=10 "$reg"/* >"$B/logs/replay_$t.log" 2>&1; then
            echo "FAIL $t: a regression input in $reg crashes (see $B/logs/replay_$t.log)" >"$res"
            return
        fi
    fi
    local seeds=$B/seeds/$t
    [ "$t" = prepare ] && seeds=$B/seeds/model      # the same models, folded
    local dict=() maxlen=()
    [ -f "$B/seeds/$t.dict" ] && dict=("-dict=$B/seeds/$t.dict")
    case $t in
        model* | prepare) maxlen=(-max_len=262144) ;;  # skeletons of the real models fit
        image) maxlen=(-max_len=16384) ;;       # decoding cost grows with the pixels
    esac
    local before rc=0 execs secs corpus new crashes
    before=$(find "$art" -type f | wc -l)
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_PER" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "${maxlen[@]}" \
        ${FUZZ_ARGS:-} "$B/corpus/$t" "$seeds" >"$log" 2>&1 || rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
    secs=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 |
           sed -E 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/')
    corpus=$(find "$B/corpus/$t" -type f | wc -l)
    new=$(find "$art" -type f | wc -l)
    crashes=$((new - before))
    [ "$rc" != 0 ] && [ "$crashes" = 0 ] && crashes=1
    if [ "$crashes" = 0 ]; then
        echo "ok   $t: ${execs:-?} executions in ${secs:-$SECONDS_PER} s, 0 crashes," \
             "corpus $corpus" >"$res"
        return
    fi
    {
        echo "FAIL $t: ${execs:-?} executions, $crashes crash(es) (exit $rc; see $log)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -3 | sed 's/^/     /'
        mkdir -p "$reg"
        find "$art" -type f -newer "$B/logs/cc_$t.log" -size -64k | while read -r f; do
            cp "$f" "$reg/"
            echo "     input kept as $reg/$(basename "$f")"
        done
    } >"$res"
}

# FUZZ_JOBS targets at a time (CI: one per core), results printed in target order.
running=0
for t in $TARGETS; do
    rm -f "$B/logs/result_$t"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
passed=0 failed=0
for t in $TARGETS; do
    if [ ! -f "$B/logs/result_$t" ]; then
        echo "FAIL $t: no result (see $B/logs/fuzz_$t.log)"
        failed=$((failed + 1))
        continue
    fi
    cat "$B/logs/result_$t"
    if head -1 "$B/logs/result_$t" | grep -q '^ok '; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
