# Shared by the integration scripts (tests/it/it_*.sh, run from the
# repository root): sourced, not run.
set -u
UNTANGLE=${UNTANGLE:-$PWD/bin/untangle}
PY=/usr/bin/python3
# The Python tools (tests/py) read results files through the analysis package.
TOOLS=$PWD/tests/py
export PYTHONPATH="$PWD/analysis${PYTHONPATH:+:$PYTHONPATH}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
# Under `make check SANITIZE=1`: Open MPI's components are dlopen'ed and
# unloaded at exit, so their leftovers cannot be suppressed by name; leak
# checking stays on for the unit tests, address and UB checks stay on here.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
TMP=$(mktemp -d /tmp/untangle-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# expect CODE DESCRIPTION COMMAND...: the command must exit with CODE
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"; got=$?
    if [ "$got" -eq "$want" ]; then ok "$what (exit $got)"; else
        fail "$what: exit $got, want $want"; sed 's/^/   | /' "$TMP/err" | tail -n 20; fi
}
# the stderr of the last expect must contain TEXT
expect_err() {
    if grep -qF -- "$1" "$TMP/err"; then ok "message has '$1'"; else
        fail "message lacks '$1'"; sed 's/^/   | /' "$TMP/err" | tail -n 5; fi
}
finish() {
    [ "$fails" -eq 0 ] && { echo "all checks passed"; exit 0; }
    echo "$fails checks failed"; exit 1
}
# a tiny sweep of N*2 runs: tiny_sweep FILE [extra yaml lines]
tiny_sweep() {
    cat >"$1" <<YAML
name: tiny
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 20, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid:
  - model: betavae
    beta: [1, 4]
  - model: betatcvae
    beta: [4]
seeds: 2
YAML
}
# rows FILE: "index attempt status error" per valid row
rows() { $PY "$TOOLS/rows.py" "$1"; }
# the number of ok rows of FILE and the number of distinct indices among them
count_ok() { rows "$1" | awk '$3 == "ok"' | wc -l; }
count_ok_indices() { rows "$1" | awk '$3 == "ok" {print $1}' | sort -u | wc -l; }
