# qcal: `make` builds build/libqcal.a and build/calibrate.
# `make demo` and `make test` install what they need first (tools/setup.sh, idempotent).
CC      ?= cc
BUILD   ?= build
PROTO   ?= /usr/include/onnx/onnx.proto
VENV    ?= .venv
CFLAGS  ?= -O2 -g
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
override CFLAGS  += -std=c11 -ffp-contract=off -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -I$(BUILD)/gen \
           -Isrc/exec -Isrc/onnx -Isrc/core -Isrc/data -Icalib -Isrc/quant \
           $(shell pkg-config --cflags libprotobuf-c libpng 2>/dev/null)
LDLIBS  += -lprotobuf-c -lopenblas -lcjson -lpng -ljpeg -lm -lpthread

LIB_SRC  := $(sort $(wildcard src/*/*.c calib/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard test/*.c))
GEN_C    := $(BUILD)/gen/onnx.pb-c.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all setup test check-asan demo bench clean models fuzz peers acceptance report-demo
all: $(BUILD)/calibrate $(BUILD)/test_runner $(BUILD)/backend_test

$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=$(dir $(PROTO)) --c_out=$(BUILD)/gen $(PROTO)

$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) $(filter-out -Werror -Wextra,$(CFLAGS)) -w -c $< -o $@

$(BUILD)/%.o: %.c $(BUILD)/gen/onnx.pb-c.h $(wildcard include/*.h src/*/*.h calib/*.h test/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC $(BUILD)/$*.o"
	@$(CC) $(CFLAGS) -c $< -o $@

# Extra flags for the AVX-512 / AVX2 convolution kernels alone (tools/fuzz.sh: clang's UBSan on their
# unrolled intrinsics takes two minutes to compile and checks nothing the intrinsics do).
$(BUILD)/src/exec/conv_x86.o $(BUILD)/src/exec/conv_i8_x86.o $(BUILD)/src/exec/conv_avx2.o \
  $(BUILD)/src/exec/conv_wino.o: override CFLAGS += $(CONV_X86_CFLAGS)

$(BUILD)/libqcal.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/calibrate: $(TOOL_OBJ) $(BUILD)/libqcal.a
	$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libqcal.a $(LDLIBS)

# tools/ab/pass_ab.c: the calibration pass before and after derived gates, in one process
$(BUILD)/pass_ab: $(BUILD)/tools/ab/pass_ab.o $(BUILD)/libqcal.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqcal.a $(LDLIBS)

# tools/ab/env_ab.c: the float executor under two values of an environment variable
$(BUILD)/env_ab: $(BUILD)/tools/ab/env_ab.o $(BUILD)/libqcal.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqcal.a $(LDLIBS)

# tools/ab/hist_rate.c: nanoseconds a value of a histogram observer's update
$(BUILD)/hist_rate: $(BUILD)/tools/ab/hist_rate.o $(BUILD)/libqcal.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqcal.a $(LDLIBS)

$(BUILD)/test_runner: $(filter-out $(BUILD)/test/backend.o,$(TEST_OBJ)) $(BUILD)/libqcal.a
	$(CC) $(CFLAGS) -o $@ $(filter-out $(BUILD)/test/backend.o,$(TEST_OBJ)) \
	      $(BUILD)/libqcal.a $(LDLIBS)

$(BUILD)/backend_test: $(BUILD)/test/backend.o $(BUILD)/libqcal.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqcal.a $(LDLIBS)

setup:
	@tools/setup.sh

models: setup
	@tools/fetch_models.sh

# -O2: the sanitized suite runs ~20% faster than at -O1 (tools/run_tests.sh unit quant under
# QC_ASAN: 72 s against 92 s), except the convolution kernels: GCC takes 4.7 minutes on
# conv_x86.c and 1.8 on conv_i8_x86.c with the sanitizers at -O2 (AVX-512 kernels, not even run
# on a CPU without it), 1 minute for the whole build at -O1.
ASAN_CFLAGS = -O2 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
ASAN_MAKE   = BUILD=build-asan CFLAGS="$(ASAN_CFLAGS)" CONV_X86_CFLAGS=-O1

# The whole suite on the optimized build and again under ASan+UBSan+LSan.
test: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory -j$(JOBS) $(ASAN_MAKE) all
	@tools/test_all.sh

check-asan: setup
	@$(MAKE) --no-print-directory -j$(JOBS) $(ASAN_MAKE) all
	@QC_BUILD_DIR=build-asan QC_ASAN=1 tools/run_tests.sh

demo: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@tools/demo.sh

bench: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@tools/bench.sh

# The quantization suite with the calibrate issue's acceptance sizes: fidelity on held-out data
# and executor vs ORT on the QDQ model, both on all QC_QUANT_EVAL (32) eval samples (make test
# checks executor agreement on 8).
acceptance: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@QC_ACCEPTANCE=1 tools/run_tests.sh quant

# `calibrate compare --html` on the nudenet model: $(BUILD)/report.html, opened in headless
# Chromium (fails on any console error or network request) and screenshot to $(BUILD)/report.png,
# the best candidate's worst layer (its histogram and thresholds) to $(BUILD)/report-worst.png.
report-demo: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@tools/fetch_models.sh
	@$(VENV)/bin/python tools/make_inputs.py --min --models nudenet
	$(BUILD)/calibrate compare --data models/cache/data/nudenet/calib \
	    --eval models/cache/data/nudenet/eval models/cache/nudenet/320n.onnx \
	    --json $(BUILD)/report.json --html $(BUILD)/report.html
	$(VENV)/bin/python tools/report_check.py $(BUILD)/report.html $(BUILD)/report.png \
	    --element details.worst $(BUILD)/report-worst.png

# qcal against onnxruntime's quantize_static and NNCF on the integration models.
peers: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@tools/peers.sh

# libFuzzer targets (clang); FUZZ_SECONDS per target (default 60).
fuzz: setup
	@tools/fuzz.sh

clean:
	rm -rf build build-asan
