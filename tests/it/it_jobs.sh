#!/bin/sh
# A single process running several runs at once (--jobs) handles failures as
# under mpirun: a run that segfaults, one whose loss becomes NaN and one that
# hangs past --run-timeout each give their row while the others run on and
# end ok; SIGTERM checkpoints and stops every running run (interrupted rows,
# exit 3), and --resume continues them from their checkpoints (that this gives
# the numbers of a run done in one go is it_checkpoint.sh's test).
# UNTANGLE_INJECT_FAULT is the test-only fault injection (README.md, Testing).
. tests/it/lib.sh
tiny_sweep "$TMP/s.yaml"
expect 2 "2 jobs: a crash, a NaN and a hang" env UNTANGLE_INJECT_FAULT="crash@1,nan@2,hang@3" \
    "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --jobs 2 --threads 1 --run-timeout 10 \
    --stop-grace 1
expect_err "2 at a time"
rows "$TMP/r.h5" >"$TMP/rows"
sed 's/^/   | /' "$TMP/rows"
grep -q "^1 1 failed the run crashed: signal 11" "$TMP/rows" && ok "segfault -> failed row" || fail "no failed row for the crash"
grep -q "^2 1 diverged .*loss is" "$TMP/rows" && ok "NaN -> diverged row" || fail "no diverged row"
grep -q "^3 1 timeout exceeded the run timeout" "$TMP/rows" && ok "hang -> timeout row" || fail "no timeout row"
[ "$(awk '$3 == "ok"' "$TMP/rows" | wc -l)" -eq 3 ] && ok "the 3 other runs are ok" || fail "other runs not all ok"

cat >"$TMP/long.yaml" <<YAML
name: twolong
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 300, batch_size: 16, lr: 1.0e-3, log_every: 100}
eval:  {images: 200, samples: 100, pairs: 5}
grid: {model: betavae, beta: [1, 4]}
seeds: 1
YAML
"$UNTANGLE" sweep "$TMP/long.yaml" -o "$TMP/l.h5" --jobs 2 --threads 1 2>"$TMP/term.log" &
pid=$!
sleep 2
kill -TERM "$pid"
wait "$pid"; code=$?
sed 's/^/   | /' "$TMP/term.log"
[ "$code" -eq 3 ] && ok "SIGTERM: exit 3" || fail "SIGTERM: exit $code, want 3"
[ "$(rows "$TMP/l.h5" | grep -c "interrupted stopped by a signal; checkpointed")" -eq 2 ] &&
    ok "both running runs checkpointed and stopped" || fail "rows: $(rows "$TMP/l.h5")"
expect 0 "resume continues both" "$UNTANGLE" sweep "$TMP/long.yaml" -o "$TMP/l.h5" --resume --jobs 2 --threads 1
[ "$(count_ok "$TMP/l.h5")" -eq 2 ] && ok "both ok after the resume" || fail "rows: $(rows "$TMP/l.h5")"
finish
