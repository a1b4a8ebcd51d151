#!/bin/sh
# The crash contract of the results file (docs/architecture.md section 7),
# tested the hard way: a writer (tests/it/results_writer.c, built by the
# Makefile into $BUILD/it/results_writer) appends attempts in a loop and prints
# each index once results_append has returned; it is SIGKILLed at a random
# moment, KILLS rounds (default 20), each time resuming the same file; every
# third round a second writer is killed early, during its reopen (while it
# repairs the previous kill's damage). After each round the file is reopened
# (recovered) and every printed index must be
# present exactly once, in the journal and in the HDF5 file, with no invalid
# row. Prints what recovery had to do. Correctness only: no timing checked.
#
#   sh tests/it/it_results_kill.sh [KILLS]      (from the repository root)
#
# RESULTS_WRITER names the writer (`make check` passes the one of its build,
# sanitized under SANITIZE=1); default build/it/results_writer.
set -u
KILLS=${1:-20}
cd "$(dirname "$0")/../.." || exit 1
WRITER=${RESULTS_WRITER:-build/it/results_writer}
if [ ! -x "$WRITER" ]; then
    echo "results_kill: no writer at $WRITER (make $WRITER builds it)" >&2
    exit 1
fi
W=$(mktemp -d /tmp/untangle_kill.XXXXXX) || exit 1
trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=1
# Under `make check SANITIZE=1`: the writer links Open MPI (libuntangle.a
# needs it); leak checking stays with the unit tests, as in tests/it/lib.sh.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
export PYTHONPATH="$PWD/analysis${PYTHONPATH:+:$PYTHONPATH}"

F=$W/results.h5
: >"$W/printed"
rand_ms() { # uniform in [$1, $2) milliseconds
    r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    echo $(($1 + r % ($2 - $1)))
}
fail() {
    echo "results_kill: FAIL after kill $i: $*" >&2
    [ -f "$W/check" ] && tail -n 5 "$W/check" >&2
    exit 1
}

torn=0 rebuilt=0 clean=0 kills=0
for i in $(seq 1 "$KILLS"); do
    "$WRITER" "$F" >>"$W/printed" 2>>"$W/writer.err" &
    pid=$!
    ms=$(rand_ms 30 700)
    sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ $((i % 3)) -eq 0 ]; then
        # a second kill soon after the restart: it lands in the reopen, where
        # the previous kill's damage is being repaired (a rebuild in progress)
        "$WRITER" "$F" >>"$W/printed" 2>>"$W/writer.err" &
        pid=$!
        early=$(rand_ms 5 250)
        sleep "$(awk -v m="$early" 'BEGIN { printf "%.3f", m / 1000 }')"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        ms="$ms + $early"
        kills=$((kills + 1))
    fi
    kills=$((kills + 1))
    if grep -q . "$W/writer.err"; then
        fail "the writer reported an error: $(cat "$W/writer.err")"
    fi
    "$WRITER" "$F" --check >"$W/check" 2>"$W/check.err" ||
        fail "reopening failed: $(cat "$W/check.err")"
    note=$(sed -n 's/^recovery: //p' "$W/check")
    case $note in
    "") clean=$((clean + 1)) ;;
    *) echo "kill $i after ${ms} ms: $note" | sed "s#$W/##g" ;;
    esac
    case $note in *torn*) torn=$((torn + 1)) ;; esac
    case $note in *rebuilt*) rebuilt=$((rebuilt + 1)) ;; esac
    # Every printed index exactly once among the file's rows and the journal's
    # attempts; no (index, attempt) twice anywhere; journal and file agree.
    awk '$1 == "H" { print $2 }' "$W/check" | LC_ALL=C sort >"$W/h"
    awk '$1 == "J" { print $2 }' "$W/check" | LC_ALL=C sort >"$W/j"
    LC_ALL=C sort "$W/printed" >"$W/p"
    [ -z "$(uniq -d "$W/h")" ] || fail "duplicate rows in the file: $(uniq -d "$W/h" | head -3)"
    cmp -s "$W/h" "$W/j" || fail "journal and file disagree"
    missing=$(comm -23 "$W/p" "$W/h" | head -5)
    [ -z "$missing" ] || fail "printed but missing after reopen: $missing"
done

rows=$(wc -l <"$W/h")
printed=$(wc -l <"$W/p")
damaged=$(find "$W" -name 'results.h5.damaged-*' | wc -l)
echo "results_kill: $kills kills in $KILLS rounds, $printed appends reported, $rows rows in the file" \
    "(every reported one exactly once; $((rows - printed)) finished but unreported)"
echo "results_kill: recovery: $clean clean reopens, $torn torn journal records dropped," \
    "$rebuilt rebuilds from the journal ($damaged damaged files kept)"
if /usr/bin/python3 -c 'import h5py, pandas' 2>/dev/null; then
    /usr/bin/python3 tests/py/read_results.py "$F" >"$W/py" || fail "read_results.py failed"
    head -n 1 "$W/py" | sed "s#$W/##"
fi
echo "results_kill: ok"
