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
    mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --threads 1 --run-timeout 8 --stop-grace 1
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
# A stopped worker (SIGSTOP) cannot hold the job: the master writes it off
# after the deadline plus twice the stop grace, its run gets an interrupted
# row, the job ends with exit 3, and --resume completes every run once.
cat >"$TMP/h.yaml" <<YAML
name: hung
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 150, batch_size: 16, lr: 1.0e-3, log_every: 50}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid: {model: betavae, beta: [1, 4]}
seeds: 2
YAML
start=$(date +%s)
mpirun -np 3 "$UNTANGLE" sweep "$TMP/h.yaml" -o "$TMP/h.h5" --threads 1 --deadline 10 \
    --min-start 0 --stop-grace 1 >"$TMP/hung.log" 2>&1 &
pid=$!
sleep 3
stopped=
for p in $(pgrep -P "$pid"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
        kill -STOP "$p" && stopped=$p
    fi
done
wait "$pid"; code=$?
end=$(date +%s)
[ -n "$stopped" ] && kill -CONT "$stopped" 2>/dev/null
sed 's/^/   | /' "$TMP/hung.log" | grep -v '^   | --' | tail -n 8
[ -n "$stopped" ] && ok "rank 1 stopped (pid $stopped)" || fail "no rank 1 found to stop"
[ "$code" -eq 3 ] && ok "the job ends with exit 3" || fail "exit $code, want 3"
[ $((end - start)) -le 40 ] && ok "ended $((end - start)) s after the start (deadline 10 s)" ||
    fail "ran $((end - start)) s"
grep -q "written off" "$TMP/hung.log" && ok "the stopped rank was written off" || fail "no write-off"
expect 0 "resume completes the sweep" mpirun -np 3 "$UNTANGLE" sweep "$TMP/h.yaml" -o "$TMP/h.h5" --resume --threads 1
[ "$(count_ok "$TMP/h.h5")" -eq 4 ] && [ "$(count_ok_indices "$TMP/h.h5")" -eq 4 ] &&
    ok "every run exactly once" || fail "rows: $(rows "$TMP/h.h5")"
finish
