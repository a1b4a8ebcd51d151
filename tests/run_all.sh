#!/bin/sh
# Run each test program given as an argument, then the integration scripts
# (tests/it_*.sh) and the analysis tests; print one summary line at the end.
pass=0; fail=0; failed=""
run() { # name command...
    name=$1; shift
    log=build/tests/$(basename "$name").log
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (log: $log)"
        tail -n 30 "$log" | sed 's/^/     | /'
    fi
}
mkdir -p build/tests
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
for t in "$@"; do run "$t" "$t"; done
for s in tests/it_*.sh; do [ -e "$s" ] && run "$s" sh "$s"; done
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
