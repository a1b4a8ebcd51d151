#!/bin/sh
# Run each test program given as an argument (the unit tests, tests/unit)
# and, beside them, the Python tests (tests/py, pytest): two lanes at once,
# each in turn, each followed by the integration scripts that time nothing
# and name it (a line "# lane: unit" or "# lane: python" in the script).
# Then the other integration scripts (tests/it/it_*.sh, which use
# $UNTANGLE, default bin/untangle, and $RESULTS_WRITER) one at a time, alone
# on the machine, since they time signals and deadlines. Prints a line per test and one summary line at the
# end. Each one's output goes to $BUILD/tests/NAME.log, shown when it fails.
# Run from the repository root.
dir=${BUILD:-build}/tests
run() { # name command...: "ok   name (Ns)" or "FAIL name" (and the log's tail)
    name=$1; shift
    log=$dir/$(basename "$name").log
    t0=$(date +%s)
    if "$@" >"$log" 2>&1; then
        echo "ok   $name ($(( $(date +%s) - t0 ))s)"
        grep "^skipped:\\|^SKIPPED" "$log" | sed 's/^/     | /'
    else
        echo "FAIL $name (log: $log)"
        tail -n 30 "$log" | sed 's/^/     | /'
    fi
}
mkdir -p "$dir"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# the unit tests | the analysis package, with the interpreter that has
# Debian's h5py (pytest.ini at the root puts analysis/ on the path)
beside() { # lane: the integration scripts marked "# lane: LANE" (they time nothing)
    for s in tests/it/it_*.sh; do grep -q "^# lane: $1 " "$s" && run "$s" sh "$s"; done
}
(for t in "$@"; do run "$t" "$t"; done
beside unit) >"$dir/lane-unit.out" &
unit=$!
(for p in tests/py/test_*.py; do
    [ -e "$p" ] && run "$p" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider "$p"
done
beside python) >"$dir/lane-py.out"
wait $unit
cat "$dir/lane-unit.out" "$dir/lane-py.out"
(for s in tests/it/it_*.sh; do grep -q "^# lane: " "$s" || run "$s" sh "$s"; done) |
    tee "$dir/lane-it.out"
echo
cat "$dir/lane-unit.out" "$dir/lane-py.out" "$dir/lane-it.out" >"$dir/all.out"
pass=$(grep -c "^ok   " "$dir/all.out")
fail=$(grep -c "^FAIL " "$dir/all.out")
[ "$fail" -gt 0 ] && echo "failed:$(sed -n 's/^FAIL \([^ ]*\).*/ \1/p' "$dir/all.out" | tr -d '\n')"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
