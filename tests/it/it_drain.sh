#!/bin/sh
# Drain: SIGUSR1 mid-sweep stops new work, lets the running runs finish,
# writes, and exits 3 within --deadline plus a few seconds; --resume then
# completes the sweep with every index exactly once. A deadline too short for
# the runs interrupts them (status interrupted, not failed, no retry used up);
# no run starts with less than --min-start left.
. tests/it/lib.sh
cat >"$TMP/d.yaml" <<YAML
name: draintest
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 150, batch_size: 16, lr: 1.0e-3, log_every: 50}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid: {model: betavae, beta: [1, 2, 4]}
seeds: 2
YAML
start=$(date +%s)
mpirun -np 3 "$UNTANGLE" sweep "$TMP/d.yaml" -o "$TMP/d.h5" --threads 1 --deadline 60 --min-start 0 2>"$TMP/drain.log" &
pid=$!
sleep 4
kill -USR1 "$pid"
sig=$(date +%s)
wait "$pid"; code=$?
end=$(date +%s)
sed 's/^/   | /' "$TMP/drain.log"
[ "$code" -eq 3 ] && ok "exit 3 after SIGUSR1" || fail "exit $code after SIGUSR1, want 3"
[ $((end - sig)) -le 15 ] && ok "drained $((end - sig)) s after the signal" || fail "drain took $((end - sig)) s"
[ $((end - start)) -le 65 ] && ok "ended within --deadline plus a few seconds" || fail "ran $((end - start)) s"
grep -q "draining" "$TMP/drain.log" && ok "the log says it drains" || fail "no drain message"
done_before=$(count_ok "$TMP/d.h5")
[ "$done_before" -lt 6 ] && ok "$done_before of 6 runs done before the drain" || fail "the drain did not stop the sweep"
expect 0 "resume completes the sweep" mpirun -np 3 "$UNTANGLE" sweep "$TMP/d.yaml" -o "$TMP/d.h5" --resume --threads 1
[ "$(count_ok "$TMP/d.h5")" -eq 6 ] && [ "$(count_ok_indices "$TMP/d.h5")" -eq 6 ] &&
    ok "every index exactly once" || fail "ok rows: $(rows "$TMP/d.h5")"

# a deadline shorter than the runs: running runs are interrupted, exit 3
# (two of the runs above: the stop and the rerun are per run)
sed 's/seeds: 2/seeds: 1/; s/beta: \[1, 2, 4\]/beta: [1, 2]/' "$TMP/d.yaml" >"$TMP/e.yaml"
expect 3 "deadline interrupts running runs" "$UNTANGLE" sweep "$TMP/e.yaml" -o "$TMP/e.h5" --threads 1 --deadline 1 --min-start 0 --stop-grace 2
rows "$TMP/e.h5" | grep -q "^0 1 interrupted" && ok "interrupted row" || fail "no interrupted row: $(rows "$TMP/e.h5")"
expect 0 "resume after the deadline" "$UNTANGLE" sweep "$TMP/e.yaml" -o "$TMP/e.h5" --resume --threads 1
[ "$(count_ok "$TMP/e.h5")" -eq 2 ] && ok "both ok after resume (stops used no retry)" ||
    fail "not all ok"

# Ctrl-C in a single-process sweep: the first says which run is finishing,
# the second checkpoints it and stops; the resumed run continues from it
cat >"$TMP/long.yaml" <<YAML
name: ctrlc
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 3000, batch_size: 32, lr: 1.0e-3, log_every: 100}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid: {model: betavae, beta: [4]}
seeds: 1
YAML
"$UNTANGLE" sweep "$TMP/long.yaml" -o "$TMP/c.h5" --threads 1 2>"$TMP/ctrlc.log" &
pid=$!
# wait_log FILE TEXT: until the log has TEXT (at most 30 s)
wait_log() { n=0; until grep -qF -- "$2" "$1" || [ "$n" -ge 150 ]; do n=$((n + 1)); sleep 0.2; done; }
wait_log "$TMP/ctrlc.log" "runs (1 to run)"
sleep 1 # inside the run
kill -INT "$pid"
wait_log "$TMP/ctrlc.log" "is finishing"
kill -INT "$pid"
wait "$pid"; code=$?
sed 's/^/   | /' "$TMP/ctrlc.log"
[ "$code" -eq 3 ] && ok "two Ctrl-C: exit 3" || fail "two Ctrl-C: exit $code, want 3"
grep -q "run #0 is finishing (Ctrl-C again to checkpoint it and stop now)" "$TMP/ctrlc.log" &&
    ok "the first Ctrl-C says which run finishes" || fail "no message after the first Ctrl-C"
grep -q "run #0: checkpointing and stopping" "$TMP/ctrlc.log" &&
    ok "the second Ctrl-C checkpoints and stops" || fail "no message after the second Ctrl-C"
rows "$TMP/c.h5" | grep -q "^0 1 interrupted stopped by a signal; checkpointed" &&
    ok "interrupted row, checkpointed" || fail "row: $(rows "$TMP/c.h5")"
ls "$TMP/c.h5.runs/"*.ckpt >/dev/null 2>&1 && ok "the checkpoint is there" || fail "no checkpoint"

# --min-start: no run starts with less time left than that before the deadline
expect 3 "nothing starts with less than --min-start left" "$UNTANGLE" sweep "$TMP/d.yaml" \
    -o "$TMP/f.h5" --threads 1 --deadline 20 --min-start 30
[ -z "$(rows "$TMP/f.h5")" ] && ok "no run started" || fail "runs started: $(rows "$TMP/f.h5")"
finish
