#!/usr/bin/env bash
# The fuzz targets (test/fuzz/fuzz_*.c) without libFuzzer: each is linked with
# test/fuzz/replay.c against $BUILD/libqcal.a (with ASan+UBSan under QC_ASAN=1) and run once
# on every committed regression input (test/fuzz/regressions/<target>/: inputs that crashed
# before a fix) and on its generated seed corpus (test/fuzz/make_seeds.py). A crash, a
# sanitizer report, a leak or a broken error contract (fuzz_util.h) fails the target.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"

TARGETS="model model_extdata prepare npy tensor_pb image params"
CC=${CC:-cc}
FLAGS=(-O1 -g -std=c11 -D_GNU_SOURCE -w)
# shellcheck disable=SC2054
[ "${QC_ASAN:-0}" = 1 ] && FLAGS+=(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                                   -fno-omit-frame-pointer)
INC=(-Iinclude -I"$BUILD/gen" -Isrc/exec -Isrc/onnx -Isrc/core -Isrc/data -Icalib -Isrc/quant
     -Itest/fuzz)
read -r -a PKG <<<"$(pkg-config --cflags libprotobuf-c libpng 2>/dev/null)"
LIBS=(-lprotobuf-c -lopenblas -lcjson -lpng -ljpeg -lm -lpthread)
SEEDS=$CLI_TMP/seeds
export OPENBLAS_NUM_THREADS=1
export QC_FUZZ_TMP=$CLI_TMP

if [ ! -f "$BUILD/libqcal.a" ]; then
    cli_fail setup "$BUILD/libqcal.a not built"
    cli_done cli-fuzz-regressions
    exit 1
fi
if ! "$PY" test/fuzz/make_seeds.py "$SEEDS" >"$CLI_TMP/seeds.log" 2>&1; then
    cli_fail seeds "test/fuzz/make_seeds.py: $(tail -1 "$CLI_TMP/seeds.log")"
fi
mkdir -p "$SEEDS/image"
if ! "$CC" -O1 -o "$CLI_TMP/make_image_seeds" test/fuzz/make_image_seeds.c "${PKG[@]}" \
        -lpng -ljpeg >"$CLI_TMP/img.log" 2>&1 ||
        ! "$CLI_TMP/make_image_seeds" "$SEEDS/image" >>"$CLI_TMP/img.log" 2>&1; then
    cli_fail image_seeds "$(tail -1 "$CLI_TMP/img.log")"
fi

for t in $TARGETS; do
    bin=$CLI_TMP/replay_$t
    if ! "$CC" "${FLAGS[@]}" "${INC[@]}" "${PKG[@]}" "test/fuzz/fuzz_$t.c" test/fuzz/replay.c \
            "$BUILD/libqcal.a" "${LIBS[@]}" -o "$bin" >"$CLI_TMP/cc.log" 2>&1; then
        cli_fail "replay_$t" "cannot build: $(head -3 "$CLI_TMP/cc.log" | tr '\n' ' ')"
        continue
    fi
    dirs=()
    [ -d "test/fuzz/regressions/$t" ] && dirs+=("test/fuzz/regressions/$t")
    [ -d "$SEEDS/$t" ] && dirs+=("$SEEDS/$t")
    [ "$t" = prepare ] && dirs+=("$SEEDS/model")
    if [ ${#dirs[@]} = 0 ]; then
        cli_fail "replay_$t" "no inputs"
        continue
    fi
    rc=0
    "$bin" "${dirs[@]}" >"$CLI_TMP/replay.out" 2>"$CLI_TMP/replay.err" || rc=$?
    if [ "$rc" = 0 ]; then
        cli_ok "replay_$t: $(tail -1 "$CLI_TMP/replay.out" | sed 's/^replay: //')"
    else
        last=$(grep '^replay: ' "$CLI_TMP/replay.err" | tail -1 | sed 's/^replay: //')
        why=$(grep -E 'ERROR|runtime error|^fuzz: ' "$CLI_TMP/replay.err" | head -1)
        cli_fail "replay_$t" "exit $rc on $last: ${why:-$(tail -1 "$CLI_TMP/replay.err")}"
    fi
done

cli_done cli-fuzz-regressions
