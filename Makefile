# untangle: build, test, benchmark, install.
#
#   make                 bin/untangle
#   make run             install what is missing, build, run sweeps/quick.yaml, draw its report
#   make check           install what is missing, build, run every test
#   make check SANITIZE=1  the same under AddressSanitizer + UBSan (build-san/)
#   make valgrind        the unit tests under valgrind memcheck (build-vg/; slow)
#   make fuzz            fuzz the YAML loader, the journal reader and the results-file
#                        reader with libFuzzer (FUZZ_SECONDS each, default 600)
#   make soak            the long tests: fault soak (SOAK_FAULTS, default 200), SLURM requeue,
#                        a second full-set evaluation into a codes file
#   make bench           print the benchmarks (tests/bench; installs python3-torch for
#                        the PyTorch comparison)
#
# Tests: tests/unit (cmocka, one program per module), tests/it (integration
# scripts under mpirun and their helper programs), tests/py (pytest of
# analysis/ and the Python tools the scripts use); tests/run_all.sh runs them.
#   make report RESULTS=FILE.h5   plots and tables of any results file
#   make deps            install the Debian packages that are missing (root), or print the line
#   make install PREFIX=/opt/untangle

PREFIX  ?= /usr/local
CC      ?= cc
PKGS    := hdf5-serial yaml-0.1 openblas ompi-c zlib

# Variants build into their own folders so that objects never mix.
ifeq ($(SANITIZE),1)
BUILD   := build-san
OPT     ?= -O1 -march=native
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(VALGRIND),1)
BUILD   := build-vg
OPT     ?= -O1 -march=x86-64-v2
else
BUILD   := build
OPT     ?= -O2 -march=native
endif
CFLAGS  ?= $(OPT) -g
BIN     := $(if $(filter build,$(BUILD)),bin/untangle,$(BUILD)/untangle)

# Lazy (=): pkg-config may not exist before `make deps` has run.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude $(PKG_CFLAGS) $(CFLAGS) $(SANFLAGS)
# Header dependencies: every compile writes a .d file next to its output
# (-MP: a deleted header is not an error), included at the end.
DEPFLAGS   = -MMD -MP
LIBS       = $(PKG_LIBS) -lm

# Debian packages: the build and test set, SLURM and shellcheck for the job
# scripts' tests, clang for the fuzzer, Python for the analysis (and
# scikit-learn for the cross-check of disentanglement_lib's metrics), Chromium
# for the report's browser test.
DEB_PKGS := build-essential pkg-config libopenmpi-dev openmpi-bin libopenblas-dev \
            libhdf5-dev libyaml-dev zlib1g-dev hdf5-tools libcmocka-dev slurm-wlm shellcheck \
            python3 python3-h5py python3-numpy python3-matplotlib python3-pandas python3-pytest \
            python3-sklearn chromium

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
TESTS   := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/test_*.c))
# Helper programs of the integration scripts (tests/it/*.c), e.g. the
# results writer that it_results_kill.sh kills.
IT_PROGS := $(patsubst tests/it/%.c,$(BUILD)/it/%,$(wildcard tests/it/*.c))
BENCHES := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/*.c))

.PHONY: all deps run report check valgrind fuzz soak bench bench-deps install clean
all: $(BIN)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(VECFLAGS) -c $< -o $@

# gcc 12 at -O2 leaves loops that need a scalar tail unvectorised; nn's
# elementwise loops (activations, losses) are a tenth of a conv step. The
# dynamic cost model vectorises them, and -fno-trapping-math lets gcc
# if-convert the clamps of util/vmath.h's exp (as for entropy.o below); with
# -std=c11 (no FMA contraction) and no reassociation the numbers do not
# change from run to run.
$(BUILD)/obj/nn/%.o: VECFLAGS = -ftree-vectorize -fvect-cost-model=dynamic -fno-trapping-math
# Chen's estimators spend their time in one exp per sample x posterior x
# unit (src/metrics/entropy.c): the clamp in its exp is a comparison that
# gcc if-converts only when it may ignore floating-point exception flags.
# -fno-trapping-math changes no value (no reassociation, no contraction), and
# the loop runs three times faster vectorised.
$(BUILD)/obj/metrics/entropy.o: VECFLAGS = -fno-trapping-math

$(BUILD)/libuntangle.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/main.o $(BUILD)/libuntangle.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libuntangle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ -o $@ $< $(BUILD)/libuntangle.a $(LIBS) -lcmocka

$(BUILD)/it/%: tests/it/%.c $(BUILD)/libuntangle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ -o $@ $< $(BUILD)/libuntangle.a $(LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libuntangle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ -o $@ $< $(BUILD)/libuntangle.a $(LIBS)

deps:
	@sh tests/deps.sh $(DEB_PKGS)

# Sanitized runs: MPI and HDF5 keep some allocations for the process
# lifetime (tests/lsan.supp names them); handle_segv=0 lets a crashing run
# die of its signal, so the isolation tests see the crash they inject.
SAN_ENV = ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:handle_segv=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

check: deps
	@$(MAKE) --no-print-directory all $(TESTS) $(IT_PROGS)
	@$(if $(SANFLAGS),$(SAN_ENV)) UNTANGLE=$(CURDIR)/$(BIN) BUILD=$(BUILD) \
	  RESULTS_WRITER=$(CURDIR)/$(BUILD)/it/results_writer sh tests/run_all.sh $(TESTS)

valgrind: deps
	@$(MAKE) --no-print-directory VALGRIND=1 all $(patsubst build/%,build-vg/%,$(TESTS))
	@for t in $(patsubst build/%,build-vg/%,$(TESTS)); do echo "== $$t"; \
	  OPENBLAS_NUM_THREADS=1 valgrind -q --error-exitcode=9 --leak-check=full \
	    --suppressions=tests/valgrind.supp $$t >/dev/null 2>$$t.valgrind || { tail -n 40 $$t.valgrind; exit 1; }; \
	  echo "clean"; done

# Journal and results targets: an input that takes over 60 s is a hang
# (libFuzzer's default allows 20 min, past FUZZ_SECONDS). HDF5 1.10 allocates
# what a damaged file claims (a variable-length string's length, read before
# the string: 1.8 GB seen) and fails cleanly when it is refused: an
# allocation over 256 MB returns NULL (max_allocation_size_mb,
# allocator_may_return_null), which the code must handle like any failed
# malloc (a crash if not), and a small quarantine keeps freed blocks from
# counting as the fuzzer's out-of-memory. HDF5's own error paths leak after
# such a refusal: tests/lsan.supp suppresses libhdf5 as in SANITIZE=1.
# Inputs that crashed (the reading child's survived crashes among them) are
# saved in build/fuzz_artifacts/.
FUZZ_SECONDS ?= 600
fuzz: deps
	@sh tests/deps.sh clang
	@mkdir -p build/fuzz_corpus build/fuzz_artifacts
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
	  $(PKG_CFLAGS) tests/fuzz/fuzz_config.c $(LIB_SRC) -o build/fuzz_config $(LIBS)
	build/fuzz_config -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz_artifacts/ \
	  -dict=tests/fuzz/config.dict \
	  build/fuzz_corpus tests/fuzz/corpus
	@for t in journal results; do \
	  mkdir -p build/fuzz_$${t}_corpus; \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
	    $(PKG_CFLAGS) tests/fuzz/fuzz_$$t.c $(LIB_SRC) -o build/fuzz_$$t $(LIBS) || exit 1; \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=256:quarantine_size_mb=64 \
	    build/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=60 -malloc_limit_mb=4096 \
	    -artifact_prefix=build/fuzz_artifacts/ \
	    build/fuzz_$${t}_corpus || exit 1; \
	done

# The long tests, kept out of make check for its time: the fault soak
# (tests/it/soak_faults.sh: SOAK_FAULTS random faults -- kills of master and
# workers, stopped workers, full disks as root, flipped bytes -- interleaved
# with --resume, then the comparison with an undisturbed sweep) and the
# real-SLURM requeue of a run three times the job's time limit (5 min).
SOAK_FAULTS ?= 200
soak: deps
	@$(MAKE) --no-print-directory all
	UNTANGLE=$(CURDIR)/$(BIN) sh tests/it/soak_faults.sh $(SOAK_FAULTS)
	UNTANGLE=$(CURDIR)/$(BIN) sh tests/it/long_slurm_requeue.sh
	UNTANGLE=$(CURDIR)/$(BIN) UNTANGLE_LONG=1 sh tests/it/it_codes.sh

# The training table once per OpenBLAS kernel: the one the environment names
# (Haswell, AVX2) and the one OpenBLAS detects itself (OPENBLAS_CORETYPE
# unset), each followed by PyTorch's step beside untangle's, timed in turns
# (tests/bench/torch_step.py; python3-torch is the bench's own dependency);
# then the other benches.
BENCH_KERNELS := OPENBLAS_CORETYPE=Haswell -u:OPENBLAS_CORETYPE

bench-deps:
	@$(PYTHON) -c 'import torch' 2>/dev/null || sh tests/deps.sh python3-torch

bench: all $(BENCHES) bench-deps
	@for k in $(BENCH_KERNELS); do k=$$(echo $$k | tr : ' '); \
	  echo "== $(BUILD)/bench/bench_train (env $$k)"; \
	  env $$k OPENBLAS_NUM_THREADS=1 $(BUILD)/bench/bench_train || exit 1; \
	  env $$k OPENBLAS_NUM_THREADS=1 $(PYTHON) tests/bench/torch_step.py $(BUILD)/bench/bench_train || exit 1; done
	@for b in $(filter-out %/bench_train,$(BENCHES)); do echo "== $$b"; OPENBLAS_NUM_THREADS=1 $$b || exit 1; done
	@echo "== tests/bench/sweep_overhead.sh"; sh tests/bench/sweep_overhead.sh

# The default job: sweeps/quick.yaml under mpirun (a master and one worker
# per core), then its report. --resume: running it again finishes what is
# missing (or nothing).
CORES  := $(shell nproc 2>/dev/null || echo 2)
RANKS  ?= $(shell echo $$(( $(CORES) + 1 )))
MPIRUN  = OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
          mpirun --oversubscribe -np $(RANKS)
PYTHON ?= /usr/bin/python3
RESULTS ?= results/quick.h5

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p results
	$(MPIRUN) bin/untangle sweep sweeps/quick.yaml -o results/quick.h5 --resume --threads 1
	@$(MAKE) --no-print-directory report RESULTS=results/quick.h5

report:
	$(PYTHON) analysis/report.py $(RESULTS) -o $(basename $(RESULTS))-report

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/untangle
	install -m 755 bin/untangle $(DESTDIR)$(PREFIX)/bin/untangle
	cp -r sweeps jobs analysis $(DESTDIR)$(PREFIX)/share/untangle/
	rm -rf $(DESTDIR)$(PREFIX)/share/untangle/analysis/untangle/__pycache__ \
	  $(DESTDIR)$(PREFIX)/share/untangle/analysis/untangle/plots/__pycache__

clean:
	rm -rf build build-san build-vg bin

# The header dependencies of whatever has been built (none on a clean tree).
-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/main.d $(addsuffix .d,$(TESTS) $(IT_PROGS) $(BENCHES))
