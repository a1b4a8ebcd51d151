#!/bin/sh
# Run each test program given as an argument (the unit tests, tests/unit),
# then the integration scripts (tests/it/it_*.sh, which use $UNTANGLE, default
# bin/untangle, and $RESULTS_WRITER) and the Python tests (tests/py, pytest);
# print one summary line at the end. Each one's output goes to
# $BUILD/tests/NAME.log, shown when it fails. Run from the repository root.
pass=0; fail=0; failed=""
run() { # name command...
    name=$1; shift
    log=${BUILD:-build}/tests/$(basename "$name").log
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); echo "ok   $name"
        grep "^skipped:\\|^SKIPPED" "$log" | sed 's/^/     | /'
    else
        fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (log: $log)"
        tail -n 30 "$log" | sed 's/^/     | /'
    fi
}
mkdir -p "${BUILD:-build}/tests"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
for t in "$@"; do run "$t" "$t"; done
for s in tests/it/it_*.sh; do [ -e "$s" ] && run "$s" sh "$s"; done
# the analysis package, with the interpreter that has Debian's h5py
# (pytest.ini at the root puts analysis/ on the path)
for p in tests/py/test_*.py; do
    [ -e "$p" ] && run "$p" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider "$p"
done
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
