# untangle: build, test, benchmark, install.
#
#   make            bin/untangle
#   make run        install what is missing, build, run sweeps/quick.yaml, draw its plots
#   make check      install what is missing, build, run every test
#   make bench      print the benchmarks (tests/bench)
#   make deps       install the Debian packages that are missing (root), or print the line
#   make install PREFIX=/opt/untangle

PREFIX  ?= /usr/local
CC      ?= cc
PKGS    := hdf5-serial yaml-0.1 openblas ompi-c
OPT     ?= -O2 -march=native
CFLAGS  ?= $(OPT) -g
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# Lazy (=): pkg-config may not exist before `make deps` has run.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LIBS       = $(PKG_LIBS) -lm

# Debian packages: build and test set, then SLURM and Python for their tests.
DEB_PKGS := build-essential pkg-config libopenmpi-dev openmpi-bin libopenblas-dev \
            libhdf5-dev libyaml-dev hdf5-tools libcmocka-dev \
            python3 python3-h5py python3-numpy python3-matplotlib python3-pandas python3-pytest

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=build/obj/%.o)
TESTS   := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/test_*.c))
BENCHES := $(patsubst tests/bench/%.c,build/bench/%,$(wildcard tests/bench/*.c))

.PHONY: all deps run check bench install clean
all: bin/untangle

build/obj/%.o: src/%.c $(wildcard include/untangle/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/libuntangle.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

bin/untangle: build/obj/main.o build/libuntangle.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

build/tests/%: tests/%.c build/libuntangle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< build/libuntangle.a $(LIBS) -lcmocka

build/bench/%: tests/bench/%.c build/libuntangle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< build/libuntangle.a $(LIBS)

deps:
	@sh tests/deps.sh $(DEB_PKGS)

check: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@sh tests/run_all.sh $(TESTS)

bench: all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; OPENBLAS_NUM_THREADS=1 $$b || exit 1; done

run: deps
	@$(MAKE) --no-print-directory all
	sh tests/quick_train.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/untangle
	install -m 755 bin/untangle $(DESTDIR)$(PREFIX)/bin/untangle
	cp -r sweeps jobs analysis $(DESTDIR)$(PREFIX)/share/untangle/

clean:
	rm -rf build bin
