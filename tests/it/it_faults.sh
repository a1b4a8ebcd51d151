#!/bin/sh
# Isolated runs: under mpirun with 3 ranks, a run that segfaults, one whose
# loss becomes NaN and one that hangs past --run-timeout each give their row
# and status, and every other run of the sweep ends ok. Then --resume with
# --retries 1 --retry-diverged reruns exactly those three (without
# --retry-diverged the diverged one is given up: it would diverge again).
# UNTANGLE_INJECT_FAULT is the test-only fault injection (README.md, Testing).
. tests/it/lib.sh
tiny_sweep "$TMP/s.yaml"
expect 2 "sweep with a crash, a NaN and a hang" env UNTANGLE_INJECT_FAULT="crash@1,nan@2,hang@3" \
    mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --threads 1 --run-timeout 15 --stop-grace 1
rows "$TMP/r.h5" >"$TMP/rows"
sed 's/^/   | /' "$TMP/rows"
grep -q "^1 1 failed the run crashed: signal 11" "$TMP/rows" && ok "segfault -> failed row" || fail "no failed row for the crash"
grep -q "^2 1 diverged .*loss is" "$TMP/rows" && ok "NaN -> diverged row" || fail "no diverged row"
grep -q "^3 1 timeout exceeded the run timeout" "$TMP/rows" && ok "hang -> timeout row" || fail "no timeout row"
[ "$(awk '$3 == "ok"' "$TMP/rows" | wc -l)" -eq 3 ] && ok "the 3 other runs are ok" || fail "other runs not all ok"

expect 2 "resume with --retries 1 reruns the crash and the hang, not the divergence" \
    mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --resume --retries 1 --threads 1
rows "$TMP/r.h5" >"$TMP/rows"
[ "$(awk '$2 == 2' "$TMP/rows" | cut -d' ' -f1 | tr '\n' ' ')" = "1 3 " ] && ok "runs 1 and 3 retried" ||
    fail "retried: $(cat "$TMP/rows")"
expect 0 "--retry-diverged reruns the diverged run" \
    mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --resume --retries 1 --retry-diverged --threads 1
rows "$TMP/r.h5" >"$TMP/rows"
[ "$(awk '$3 == "ok" && $2 == 2' "$TMP/rows" | wc -l)" -eq 3 ] && ok "attempt 2 of each is ok" || fail "retries: $(cat "$TMP/rows")"
[ "$(count_ok_indices "$TMP/r.h5")" -eq 6 ] && [ "$(count_ok "$TMP/r.h5")" -eq 6 ] && ok "one ok row per index" || fail "ok rows per index"
expect 0 "a finished sweep resumes to nothing" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --resume
[ "$(count_ok "$TMP/r.h5")" -eq 6 ] && ok "no run repeated" || fail "runs repeated"
finish
