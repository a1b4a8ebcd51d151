#!/bin/sh
# A run's numbers do not depend on its thread count (README, "Same numbers
# however a run is launched"): the same runs -- mlp and conv, a method with a
# discrete latent (jointvae), dsd, and factorvae (a discriminator of six
# 1000-unit layers with its own Adam) -- trained with --threads 1, 2 and 3
# give every /runs metric and every curve value equal bit for bit.
# lane: unit (times nothing: tests/run_all.sh runs it after the unit tests, in parallel with the other lane)
. tests/it/lib.sh
cat >"$TMP/t.yaml" <<YAML
name: threads
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 12, batch_size: 32, lr: 1.0e-3, log_every: 3}
eval:  {images: 300, samples: 100, pairs: 5}
grid:
  - model: betavae
    beta: 4
    arch: [mlp, conv, dlib]
  - model: jointvae
    arch: conv
  - model: dsd
  - model: factorvae
seeds: 1
YAML
for t in 1 2 3; do
    expect 0 "sweep with --threads $t" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$TMP/t$t.h5" \
        --threads "$t" --jobs 1
done
expect 0 "6 ok runs" test "$(count_ok "$TMP/t1.h5")" -eq 6
for t in 2 3; do
    expect 0 "/runs: 1 thread == $t threads" $PY "$TOOLS/compare_runs.py" "$TMP/t1.h5" "$TMP/t$t.h5"
    expect 0 "/curves: 1 thread == $t threads" $PY "$TOOLS/compare_curves.py" "$TMP/t1.h5" "$TMP/t$t.h5"
done
finish
