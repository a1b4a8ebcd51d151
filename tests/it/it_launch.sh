#!/bin/sh
# The same sweep gives the same numbers however it is launched (README,
# "Same numbers however a run is launched"): as a single process with the
# default options (--jobs: one run per core), under mpirun -np 2 and -np 3,
# and as 2 shards merged, with thread counts that differ between launches:
# every /runs metric and configuration column and every curve value equal bit
# for bit.
# lane: unit (times nothing: tests/run_all.sh runs it after the unit tests, in parallel with the other lane)
. tests/it/lib.sh
cat >"$TMP/l.yaml" <<YAML
name: launch
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 12, batch_size: 32, lr: 1.0e-3, log_every: 4}
eval:  {images: 300, samples: 100, pairs: 5}
grid:
  - model: betavae
    beta: [1, 4]
  - model: betatcvae
    arch: conv
    beta: 4
seeds: 2
YAML
expect 0 "single process, default options" "$UNTANGLE" sweep "$TMP/l.yaml" -o "$TMP/a.h5"
expect_err "at a time"
expect 0 "6 ok runs" test "$(count_ok "$TMP/a.h5")" -eq 6
expect 0 "mpirun -np 2" mpirun -np 2 "$UNTANGLE" sweep "$TMP/l.yaml" -o "$TMP/b.h5"
expect 0 "mpirun -np 3, 2 threads a run" mpirun -np 3 "$UNTANGLE" sweep "$TMP/l.yaml" \
    -o "$TMP/c.h5" --threads 2
expect 0 "shard 0/2, one job of all cores" "$UNTANGLE" sweep "$TMP/l.yaml" -o "$TMP/s0.h5" \
    --shard 0/2 --jobs 1
expect 0 "shard 1/2, 3 threads a run" "$UNTANGLE" sweep "$TMP/l.yaml" -o "$TMP/s1.h5" \
    --shard 1/2 --threads 3
expect 0 "merge of the shards" "$UNTANGLE" merge "$TMP/m.h5" "$TMP/s0.h5" "$TMP/s1.h5"
for f in b c m; do
    expect 0 "/runs: single process == $f" $PY "$TOOLS/compare_runs.py" "$TMP/a.h5" "$TMP/$f.h5"
    expect 0 "/curves: single process == $f" $PY "$TOOLS/compare_curves.py" "$TMP/a.h5" "$TMP/$f.h5"
done
finish
