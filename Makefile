# apr-tools: one non-recursive Makefile.  Every variable can be overridden:
#   make                  CPU build (the default) into $(BUILD)
#   make WERROR=1         warnings are errors (CI)
#   make CUDA=1           add the CUDA backend (needs nvcc)
#   make check            unit tests (check) then CLI tests; prints "N passed, N failed"
#   make check-asan       the same under ASan + UBSan, in build-asan/
#   make fuzz             libFuzzer harnesses (clang), short smoke run each
#   make bench            benchmarks with same-run baselines
#   make bench-run        CPU runtime tokens/s on a TinyLlama-shaped model (LLAMA_BENCH=...)
#   make demo             install missing packages, build, run the tools on a generated model
#   make install          PREFIX=/usr/local DESTDIR=
.SUFFIXES:

VERSION   = 0.1.0
BUILD    ?= build
CC       ?= cc
AR       ?= ar
PREFIX   ?= /usr/local
DESTDIR  ?=
NVCC     ?= /usr/local/cuda/bin/nvcc
CUDA     ?= 0
WERROR   ?= 0
SAN      ?= 0
PKG_CONFIG ?= pkg-config

# -ffp-contract=off: the reference quantizers are bit-exact only without FMA contraction
# (reference/gguf-quant.md 4).  -fno-strict-aliasing is not needed: no pointer casts into data.
CFLAGS   ?= -O2 -g
WARN      = -Wall -Wextra -Wpedantic -Wshadow -Wvla -Wno-overlength-strings
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DAPR_TOOLS_VERSION='"$(VERSION)"' $(WARN) -ffp-contract=off \
             -pthread -MMD -MP $(CFLAGS)
ifeq ($(WERROR),1)
ALL_CFLAGS += -Werror
endif
ifeq ($(SAN),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_SAN = -fsanitize=address,undefined
endif
# PCRE2 (UTF + UCP): the tokenizer's pre-tokenizer regexes; utf8proc: NFC/NFKC
# normalizers of tokenizer.json.
TOK_LIBS := $(shell $(PKG_CONFIG) --libs libpcre2-8 libutf8proc 2>/dev/null || echo -lpcre2-8 -lutf8proc)
LDLIBS   ?= -lcrypto -lz -lm
LDLIBS   += $(TOK_LIBS)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck)

# Library sources (installed): the layers, everything under these directories.
LIB_DIRS  = common formats formats/gguf formats/safetensors formats/apr dequant compare runtime
LIB_SRC   = $(filter-out %/main.c %_main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJ   = $(LIB_SRC:%.c=$(BUILD)/%.o)
# Tool internals (not installed, not library API): linked into the tools and the tests.
TOOL_DIRS = convert inspect diff hash
TOOL_SRC  = $(filter-out %/main.c %_main.c,$(foreach d,$(TOOL_DIRS),$(wildcard $(d)/*.c)))
TOOL_OBJ  = $(TOOL_SRC:%.c=$(BUILD)/%.o)
TOOL_LIB  = $(BUILD)/libaprtools-tools.a
CUDA_SRC  = $(wildcard dequant/cuda/*.cu runtime/cuda/*.cu)
ifeq ($(CUDA),1)
LIB_OBJ  += $(CUDA_SRC:%.cu=$(BUILD)/%.cu.o)
ALL_CFLAGS += -DAPR_CUDA=1 -I/usr/local/cuda/include
LDLIBS   += -L/usr/local/cuda/lib64 -Wl,-rpath,/usr/local/cuda/lib64 -lcublas -lcudart_static -ldl -lrt -lstdc++
NVFLAGS  ?= -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
            -Xcompiler -Wall,-Wextra,-fPIC -DAPR_CUDA=1 -MMD -MP
ifeq ($(WERROR),1)
NVFLAGS  += -Xcompiler -Werror
endif
endif
LIB       = $(BUILD)/libaprtools.a

# Tools: name = main source.
TOOLS     = apr-inspect apr-convert apr-diff apr-hash apr-run
apr-inspect_MAIN = inspect/inspect_main.c
apr-convert_MAIN = convert/main.c
apr-diff_MAIN    = diff/main.c
apr-hash_MAIN    = hash/main.c
apr-run_MAIN     = runtime/main.c
TOOL_BINS = $(foreach t,$(TOOLS),$(if $(wildcard $($(t)_MAIN)),$(BUILD)/$(t)))

UNIT_SRC  = $(filter-out tests/unit/check_main.c,$(wildcard tests/unit/check_*.c))
UNIT_OBJ  = $(UNIT_SRC:%.c=$(BUILD)/%.o)
FUZZ_SRC  = $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC = $(wildcard tests/bench/*.c)
BENCH_BINS = $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

all: $(LIB) $(TOOL_LIB) $(TOOL_BINS) $(BUILD)/mkfix        ## the library, the tools, the fixture generator

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# SIMD paths: compiled for AVX2/FMA/F16C and chosen at run time (dq_cpu.c checks the CPU).
$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -mavx2 -mfma -mf16c -c $< -o $@

# AVX-512 paths (runtime/kern_avx512.c, kern_gemm_avx512.c), chosen at run time (runtime/matmul.c checks the CPU).
$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(TOOL_LIB): $(TOOL_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(TOOL_OBJ)

define TOOL_RULE
$(BUILD)/$(1): $(BUILD)/$(basename $($(1)_MAIN)).o $(TOOL_LIB) $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_SAN) -o $$@ $$< $(TOOL_LIB) $(LIB) $(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call TOOL_RULE,$(t))))

$(BUILD)/mkfix: $(BUILD)/tests/fixtures/mkfix.o $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_SAN) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(TOOL_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TOOL_LIB) $(LIB) $(LDLIBS)

# The unit-test runner: one binary; suites are found by their "Suite *x_suite(void)" line.
$(BUILD)/tests/suites.h: $(UNIT_SRC)
	@mkdir -p $(@D)
	sh tests/unit/gen_suites.sh $(UNIT_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/unit/check_main.o: $(BUILD)/tests/suites.h
$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -I$(BUILD)/tests -c $< -o $@

$(BUILD)/tests/check_all: $(UNIT_OBJ) $(BUILD)/tests/unit/check_main.o $(TOOL_LIB) $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_SAN) -o $@ $(UNIT_OBJ) $(BUILD)/tests/unit/check_main.o $(TOOL_LIB) $(LIB) $(CHECK_LIBS) $(LDLIBS)

# The CUDA tests and benchmarks (tests/cuda/*.c, each one program over the library); the
# runners skip, saying why, where there is no device.
CUDA_TEST_BINS = $(patsubst tests/cuda/%.c,$(BUILD)/tests/cuda/%,$(wildcard tests/cuda/*.c))
$(BUILD)/tests/cuda/%: $(BUILD)/tests/cuda/%.o $(TOOL_LIB) $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TOOL_LIB) $(LIB) $(LDLIBS)

check-cuda:                                   ## CUDA backend vs its CPU twins (CUDA=1)
ifeq ($(CUDA),1)
	$(MAKE) all $(CUDA_TEST_BINS)
	@sh tests/cuda/run.sh $(BUILD) $(FIXTURES)
else
	@echo "check-cuda: needs CUDA=1"; exit 2
endif

bench-cuda:                                   ## 7B-shaped decode/prompt tokens/s, kernel bandwidth (CUDA=1)
ifeq ($(CUDA),1)
	$(MAKE) $(CUDA_TEST_BINS)
	$(BUILD)/tests/cuda/bench_kern
	$(BUILD)/tests/cuda/bench_cuda
else
	@echo "bench-cuda: needs CUDA=1"; exit 2
endif

deps:                                         ## install missing Debian packages (as root)
	@sh tools/deps.sh

check: deps                                   ## unit tests, then CLI tests
	$(MAKE) all $(BUILD)/tests/check_all $(BENCH_BINS)
	@sh tests/run_all.sh $(BUILD)

check-asan: deps                              ## the same under AddressSanitizer + UBSan
	$(MAKE) BUILD=build-asan SAN=1 CFLAGS="-O1 -g" check

fuzz: deps                                    ## libFuzzer harnesses, FUZZ_SECONDS each
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: deps                                   ## benchmarks against same-run baselines
	$(MAKE) all $(BENCH_BINS)
	@sh tests/bench/run.sh $(BUILD)

bench-run: deps                               ## CPU runtime tokens/s vs roofline (LLAMA_BENCH=path: vs llama.cpp)
	$(MAKE) all $(BUILD)/bench/bench_run
	@sh tests/bench/bench_run.sh $(BUILD)
.PHONY: bench-run

bench-tok: deps                               ## tokenizer MB/s (LLAMA_TOKENIZE=path: beside llama.cpp)
	$(MAKE) all $(BUILD)/bench/bench_tok
	@sh tests/bench/bench_tok.sh $(BUILD)

demo: deps                                    ## build and run the tools on a generated model
	$(MAKE) all
	@sh tools/demo.sh $(BUILD)

PCFILE = $(BUILD)/apr-tools.pc
$(PCFILE): Makefile
	@mkdir -p $(@D)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include/apr-tools\n\nName: apr-tools\nDescription: GGUF, SafeTensors and APR readers, writers and dequantizers\nVersion: %s\nLibs: -L$${libdir} -laprtools\nLibs.private: -lcrypto -lz -lm $(TOK_LIBS) -pthread\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' > $@

install: all $(PCFILE)                        ## binaries, man pages, library, headers, pkg-config
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	         $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/apr-tools
	for t in $(TOOL_BINS); do install -m 755 $$t $(DESTDIR)$(PREFIX)/bin/; done
	for m in man/*.1; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done; true
	for m in man/*.5; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man5/; done; true
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(PCFILE) $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	for h in $$(find $(wildcard common formats dequant compare runtime) -name '*.h' ! -name '*_impl.h'); do \
	    mkdir -p $(DESTDIR)$(PREFIX)/include/apr-tools/$$(dirname $$h); \
	    install -m 644 $$h $(DESTDIR)$(PREFIX)/include/apr-tools/$$h; done

clean:
	rm -rf build build-asan build-fuzz build-cuda

.PHONY: all deps check check-cuda bench-cuda check-asan fuzz bench bench-tok demo install clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
