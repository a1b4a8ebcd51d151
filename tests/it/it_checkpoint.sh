#!/bin/sh
# Checkpoints survive SIGKILL: one run is trained as a single-process sweep
# that is SIGKILLed (the sweep; its run dies with it) at random moments
# KILLS times (default 10), checkpointing every 0.3 s of training;
# each time the sweep is resumed and the run continues from its newest
# intact checkpoint. The final row equals the run done in one go bit for bit
# (every /runs column but timings, host and attempt; and the curves), and
# the run's checkpoint is gone, its saved model there.
#
#   sh tests/it/it_checkpoint.sh [KILLS]        (from the repository root)
. tests/it/lib.sh
KILLS=${1:-10}
cat >"$TMP/c.yaml" <<YAML
name: killckpt
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 500, batch_size: 32, lr: 1.0e-3, log_every: 25}
eval:  {images: 300, samples: 100, pairs: 5, hist_images: 300, unsup_images: 300}
grid: {model: betatcvae, beta: [6]}
seeds: 1
YAML
expect 0 "the run in one go" "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/whole.h5" --threads 1

rand_ms() { # uniform in [$1, $2) milliseconds
    r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    echo $(($1 + r % ($2 - $1)))
}
kills=0 damaged=0
while [ "$kills" -lt "$KILLS" ]; do
    "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/part.h5" --resume --threads 1 \
        --checkpoint-every 0.3 >"$TMP/part.log" 2>&1 &
    pid=$!
    ms=$(rand_ms 800 2500)
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null # the run dies with it (PR_SET_PDEATHSIG)
        kills=$((kills + 1))
    fi
    wait "$pid" 2>/dev/null
    grep -q "starting from step 0\|continuing from" "$TMP/part.log" && damaged=$((damaged + 1))
    [ "$(count_ok "$TMP/part.h5")" -gt 0 ] && break
done
echo "   $kills kills; $damaged resumes found a damaged newest checkpoint"
[ "$kills" -ge "$KILLS" ] && ok "$kills kills during training" ||
    fail "the run finished after $kills kills: lengthen it"
expect 0 "resume after the last kill" "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/part.h5" --resume --threads 1
[ "$(count_ok "$TMP/part.h5")" -eq 1 ] && ok "one ok row" || fail "rows: $(rows "$TMP/part.h5")"
expect 0 "bit-identical to the run in one go" $PY "$TOOLS/compare_runs.py" "$TMP/whole.h5" "$TMP/part.h5"
sed 's/^/   | /' "$TMP/out"
expect 0 "the same curves" $PY -c "
import sys, numpy as np
from untangle.io import load_curves
a, b = (load_curves(p) for p in sys.argv[1:])
cols = ['step', 'name', 'value']
a = a[cols].sort_values(['name', 'step']).reset_index(drop=True)
b = b[cols].sort_values(['name', 'step']).reset_index(drop=True)
sys.exit(0 if len(a) > 0 and a.equals(b) else 'curves differ')" "$TMP/whole.h5" "$TMP/part.h5"
[ -z "$(ls "$TMP/part.h5.runs/" | grep ckpt)" ] && ok "no checkpoint left" ||
    fail "left: $(ls "$TMP/part.h5.runs/")"
[ "$(ls "$TMP/part.h5.runs/" | grep -c '\.model$')" -eq 1 ] && ok "the saved model is there" ||
    fail "no saved model"
finish
