#!/bin/sh
# The house's one-way arrows (docs/architecture.md section 1), checked on the
# sources: each rule names the headers a folder may not include, or the only
# folders that may include a third-party header. Also the size rules: no C
# file over 900 lines, no function over 120 lines, and no private copy of a
# helper that lives in src/util.
#
#   sh tests/it/it_layout.sh        (from the repository root)
# lane: python (times nothing: tests/run_all.sh runs it after the Python tests, in parallel with the other lane)
set -u
cd "$(dirname "$0")/../.." || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# includes FILES... : the #include lines of the files, as "file:header"
includes() { grep -H -E '^[[:space:]]*#[[:space:]]*include' "$@" 2>/dev/null |
    sed -E 's/^([^:]*):[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*)[>"].*/\1:\2/'; }

# never INCLUDERS... -- HEADER_REGEX WHY
never() {
    re=$1; why=$2; shift 2
    hits=$(includes "$@" | grep -E ":($re)\$")
    [ -n "$hits" ] && fail "$why:" && echo "$hits" | sed 's/^/   /'
}
# only_in HEADER_REGEX PATH_REGEX WHY: every include of the header is in a matching path
only_in() {
    hits=$(includes $(find src include tests/bench -name '*.[ch]') | grep -E ":($1)\$" |
        grep -v -E "^($2)")
    [ -n "$hits" ] && fail "$3:" && echo "$hits" | sed 's/^/   /'
}

never 'untangle/(model|run|nn)\.h' "metrics includes no model, run or nn header" \
    include/untangle/metrics.h src/metrics/*.[ch]
never 'untangle/run\.h' "model, results and config include spec.h, not run.h" \
    include/untangle/model.h include/untangle/results.h include/untangle/config.h \
    src/model/*.[ch] src/results/*.[ch] src/config/*.[ch]
never 'untangle/(nn|data|model|metrics|run|config|results|sweep|rng)\.h' \
    "spec uses nothing but err and util" include/untangle/spec.h src/spec/*.[ch]
never 'untangle/(spec|nn|data|model|metrics|run|config|results|sweep|rng)\.h' \
    "util is a leaf (err only)" src/util/*.[ch]
never 'untangle/(model|metrics|run|config|results|sweep)\.h' "nn and data are below the models" \
    include/untangle/nn.h include/untangle/data.h src/nn/*.[ch] src/data/*.[ch]
only_in 'mpi\.h' 'src/sweep/' "mpi.h only in src/sweep"
only_in 'yaml\.h' 'src/config/|tests/' "yaml.h only in src/config"
only_in 'hdf5\.h' 'src/results/|src/data/|src/util/h5util|src/run/ckpt|tests/' \
    "hdf5.h only in results, data, checkpoints and util/h5util"
only_in 'cblas\.h' 'src/nn/|tests/bench/' "cblas.h only in src/nn"

# one copy of each small helper: its name is defined in src/util only
for name in fnv1a crc32 write_all read_all; do
    hits=$(grep -n -E "^(static )?[a-z][a-z_ 0-9]*\*? ?[a-z_0-9]*${name}[a-z_0-9]*\(" \
        $(find src -name '*.c' ! -path 'src/util/*') 2>/dev/null)
    [ -n "$hits" ] && fail "a private copy of $name (it lives in src/util):" &&
        echo "$hits" | sed 's/^/   /'
done

for f in $(find src -name '*.c'); do
    n=$(wc -l <"$f")
    [ "$n" -gt 900 ] && fail "$f has $n lines (more than 900)"
    # a function: from a line starting with '{' to the next line starting with '}'
    awk -v f="$f" '/^\{/ { s = FNR; name = prev } /^\}/ && s { if (FNR - s + 1 > 120)
        printf "FAIL: %s:%d: %s is %d lines (more than 120)\n", f, s, name, FNR - s + 1; s = 0 }
        { if ($0 ~ /\(/) prev = $0 }' "$f" | grep . && fails=$((fails + 1))
done

[ "$fails" -eq 0 ] && { echo "all layout checks passed"; exit 0; }
echo "$fails layout checks failed"; exit 1
