#!/bin/sh
# The data sets beyond dSprites on the real binary (docs/architecture.md
# section 3):
# - `untangle shapes3d` writes a small file of the 3dshapes layout; a sweep
#   on it (betatcvae and dsd, full-set evaluation) writes a results file whose
#   per-factor columns are shapes3d's six factors, data_name shapes3d, dsd's
#   chunk scores per factor, swap_acc NaN; the analysis reads the factors from
#   the file and draws its report;
# - the same results file refuses a sweep of another data set (exit 1), and a
#   grid block that sets data.name is refused before anything is written;
# - a color_dsprites sweep gives dSprites' factor columns and real scores;
# - a noisy_dsprites run gives the same numbers with 1 and 2 threads;
# - shapes3d without its file says where to get it.
#
#   sh tests/it/it_datasets.sh        (from the repository root)
# lane: unit (times nothing: tests/run_all.sh runs it after the unit tests, in parallel with the other lane)
. tests/it/lib.sh

expect 0 "write a small 3dshapes file" "$UNTANGLE" shapes3d -o "$TMP/s3.h5" --sizes 3,2,2,3,2,3
expect 1 "shapes3d without -o" "$UNTANGLE" shapes3d --sizes 3,2,2,3,2,3
expect_err "-o FILE.h5 is required"

cat >"$TMP/s.yaml" <<YAML
name: s3
data:  {name: shapes3d, path: $TMP/s3.h5, image_size: 32}
train: {arch: mlp, steps: 30, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {encode: full, images: 216, samples: 50, pairs: 5, hist_images: 216, unsup_images: 216}
grid:
  - model: betatcvae
    latent_dim: 6
  - model: dsd
seeds: 1
YAML
expect 0 "a shapes3d sweep" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/s.h5" --threads 1

cat >"$TMP/check.py" <<'PY'
import math, sys
import h5py
from untangle.io import load_runs, load_labels, load_detail
path, want = sys.argv[1], sys.argv[2]
factors = {"shapes3d": ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"],
           "color_dsprites": ["shape", "scale", "orientation", "posX", "posY"]}[want]
with h5py.File(path, "r") as f:
    name = f.attrs["data_name"]
    name = name.decode() if isinstance(name, bytes) else name
    assert name == want, name
lab = load_labels(path)
assert list(lab.factors) == factors, lab.factors
df = load_runs(path)
assert (df["status"] == "ok").all(), df[["status", "error"]]
assert (df["name"] == want).all()
for fac in factors:
    for col in ("mig_", "swap_acc_", "chunk_mig_"):
        assert col + fac in df.columns, col + fac
for _, r in df.iterrows():
    assert math.isfinite(r["recon"]) and math.isfinite(r["mig_hist"]), r
    if want == "shapes3d":
        assert math.isnan(r["swap_acc"]), "swap accuracy is dSprites' only"
        assert r["eval_images"] == 216
    if r["model"] == "dsd":
        assert all(math.isfinite(r["chunk_mig_" + f]) for f in factors)
    else:
        assert all(math.isfinite(r["mig_" + f]) for f in factors)
        d = load_detail(path, r["run_id"])
        assert d["mi"].shape[1] == len(factors) and list(d["factors"]) == factors
print("checked", len(df), "runs of", want)
PY
expect 0 "the results of shapes3d" $PY "$TMP/check.py" "$TMP/s.h5" shapes3d
expect 0 "the report of a shapes3d file" $PY analysis/report.py "$TMP/s.h5" -o "$TMP/s-report"

# the file is shapes3d's: a dSprites sweep may not continue it
tiny_sweep "$TMP/d.yaml"
expect 1 "a dsprites sweep into a shapes3d file" "$UNTANGLE" sweep "$TMP/d.yaml" -o "$TMP/s.h5" --resume
expect_err "holds results of the data set shapes3d, this sweep's is dsprites"

cat >"$TMP/g.yaml" <<YAML
name: g
data:  {image_size: 32}
grid:
  - model: vae
    name: [dsprites, color_dsprites]
YAML
expect 1 "data.name in a grid block" "$UNTANGLE" sweep "$TMP/g.yaml" -o "$TMP/g.h5"
expect_err "g.yaml:5:5: name: the data set is fixed for a sweep"
[ -e "$TMP/g.h5" ] && fail "a refused sweep wrote its file" || ok "nothing written"

cat >"$TMP/c.yaml" <<YAML
name: colour
data:  {name: color_dsprites, image_size: 32}
train: {arch: conv, steps: 30, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {images: 300, samples: 50, pairs: 5, hist_images: 300, unsup_images: 300}
grid:
  - model: betavae
    beta: [1, 4]
seeds: 1
YAML
expect 0 "a color_dsprites sweep" "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/c.h5" --threads 1
expect 0 "the results of color_dsprites" $PY "$TMP/check.py" "$TMP/c.h5" color_dsprites

# the nuisance is drawn from the run's streams: any thread count, the same run
for t in 1 2; do
    "$UNTANGLE" train --set name=noisy_dsprites --set image_size=32 --set model=betavae \
        --set arch=conv --set steps=20 --set batch_size=16 --set images=200 --set samples=50 \
        --set pairs=0 --set hist_images=200 --set unsup_images=200 --set log_every=10 \
        --threads $t --json 2>/dev/null |
        $PY -c 'import json,sys; d=json.load(sys.stdin); [d.pop(k) for k in ("wall_s","train_s","eval_s","imgs_per_s")]; print(json.dumps(d, sort_keys=True))' \
        >"$TMP/noisy$t.json"
done
if [ -s "$TMP/noisy1.json" ] && cmp -s "$TMP/noisy1.json" "$TMP/noisy2.json"; then
    ok "noisy_dsprites: the same numbers with 1 and 2 threads"
else
    fail "noisy_dsprites: 1 and 2 threads differ"
fi

expect 1 "shapes3d without its file" "$UNTANGLE" train --set name=shapes3d --set steps=1
expect_err "https://github.com/deepmind/3d-shapes"
expect 1 "shapes3d with a missing file" "$UNTANGLE" train --set name=shapes3d \
    --set path="$TMP/none.h5" --set steps=1
expect_err "$TMP/none.h5: no such file"
finish
