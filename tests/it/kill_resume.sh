#!/bin/sh
# kill_resume.sh [KILLS [SEEDS]]: the crash contract. A sweep of 4*SEEDS
# (default 16) short runs under
# mpirun; SIGKILL to mpirun at random moments, then --resume, KILLS times
# (default 6), then to completion: exactly one ok row per index, and every
# metric equal bit for bit to an uninterrupted run of the same sweep.
# tests/it/it_kill.sh runs it in `make check`; `sh tests/it/kill_resume.sh 50 40` is the soak.
. tests/it/lib.sh
kills=${1:-6}
seeds=${2:-4}
n=$((4 * seeds))
cat >"$TMP/k.yaml" <<YAML
name: killtest
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 60, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {images: 300, samples: 100, pairs: 5, hist_images: 300, unsup_images: 300}
grid:
  - model: betavae
    beta: [1, 2, 4]
  - model: betatcvae
seeds: $seeds
YAML
expect 0 "uninterrupted reference" mpirun -np 3 "$UNTANGLE" sweep "$TMP/k.yaml" -o "$TMP/ref.h5" --threads 1

i=0; landed=0
while [ $i -lt "$kills" ]; do
    i=$((i + 1))
    mpirun -np 3 "$UNTANGLE" sweep "$TMP/k.yaml" -o "$TMP/k.h5" --resume --threads 1 2>>"$TMP/kill.log" &
    pid=$!
    ms=$(shuf -i 400-3000 -n 1)
    sleep "$(echo "$ms" | awk '{printf "%.3f", $1 / 1000}')"
    if kill -9 "$pid" 2>/dev/null; then landed=$((landed + 1)); fi
    wait "$pid" 2>/dev/null
    sleep 0.5   # let the ranks and their run processes die with mpirun
    got=$( [ -e "$TMP/k.h5" ] && count_ok "$TMP/k.h5" || echo 0)
    echo "kill $i after ${ms} ms: $got ok rows"
done
echo "$landed of $kills kills landed while the sweep ran"
expect 0 "resume to completion" mpirun -np 3 "$UNTANGLE" sweep "$TMP/k.yaml" -o "$TMP/k.h5" --resume --threads 1
grep -h "rebuilt\|recover\|dropped" "$TMP/kill.log" "$TMP/err" | sort | uniq -c | sed 's/^/   | /'
[ "$(count_ok "$TMP/k.h5")" -eq $n ] && [ "$(count_ok_indices "$TMP/k.h5")" -eq $n ] &&
    ok "exactly one ok row per index" || fail "ok rows: $(rows "$TMP/k.h5" | awk '$3 == "ok"' | wc -l)"
expect 0 "every metric equals the uninterrupted run" $PY "$TOOLS/compare_runs.py" "$TMP/ref.h5" "$TMP/k.h5"
cat "$TMP/out"
finish
