#!/bin/sh
# Run each test program given as an argument, then the integration scripts
# (tests/it_*.sh, which use $UNTANGLE, default bin/untangle) and the analysis
# tests; print one summary line at the end. Each one's output goes to
# $BUILD/tests/NAME.log, shown when it fails.
pass=0; fail=0; failed=""
run() { # name command...
    name=$1; shift
    log=${BUILD:-build}/tests/$(basename "$name").log
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); echo "ok   $name"
        grep "^skipped:" "$log" | sed 's/^/     | /'
    else
        fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (log: $log)"
        tail -n 30 "$log" | sed 's/^/     | /'
    fi
}
mkdir -p "${BUILD:-build}/tests"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
for t in "$@"; do run "$t" "$t"; done
for s in tests/it_*.sh; do [ -e "$s" ] && run "$s" sh "$s"; done
# the analysis scripts, with the interpreter that has Debian's h5py
[ -e tests/test_analysis.py ] && run tests/test_analysis.py /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_analysis.py
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
