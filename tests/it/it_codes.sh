#!/bin/sh
# `untangle eval --codes CODES.h5` on the real binary:
# - a trained run re-evaluated with --codes: the /evals row is a full-set
#   evaluation (encode full, eval_images 737,280) and CODES.h5 holds the
#   documented layout (docs/architecture.md section 7): factors in canonical
#   order (mixed radix over factor_sizes), mu and logvar (N, D); the row
#   holds disentanglement_lib's suite (NaN in the sample-mode training row);
# - h5py reads it back and recomputes the row's kl (the mean analytic KL of
#   the full set) from mu and logvar;
# - a second --codes evaluation replaces the run's group (with
#   UNTANGLE_LONG=1, as make soak runs it); --codes with --set encode=sample
#   is refused (exit 1, nothing written).
#
#   sh tests/it/it_codes.sh        (from the repository root)
# lane: unit (times nothing: tests/run_all.sh runs it after the unit tests, in parallel with the other lane)
. tests/it/lib.sh
cat >"$TMP/c.yaml" <<YAML
name: codes
data:  {name: dsprites, image_size: 32}
train: {arch: dlib, steps: 20, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {images: 200, samples: 50, pairs: 2, hist_images: 500, unsup_images: 500}
grid:
  - model: betatcvae
    latent_dim: 4
seeds: 1
YAML
expect 0 "train one run" "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/c.h5" --threads 1
expect 0 "eval --codes" "$UNTANGLE" eval "$TMP/c.h5" --codes "$TMP/codes.h5" --threads 1

cat >"$TMP/check.py" <<'PY'
import sys
import h5py
import numpy as np
from untangle import io

results, codes = sys.argv[1], sys.argv[2]
runs = io.load_runs(results)
assert len(runs) == 1, runs
row = runs.iloc[0]
assert row["evaluation"] == 1 and row["encode"] == "full", (row["evaluation"], row["encode"])
with h5py.File(codes, "r") as f:
    assert f.attrs["format"] == "untangle-codes" and f.attrs["format_version"] == 1
    sizes = f["factor_sizes"][:]
    names = [n.decode() if isinstance(n, bytes) else n for n in f["factor_names"][:]]
    fac = f["factors"][:]
    n = int(np.prod(sizes))
    assert list(sizes) == [3, 6, 40, 32, 32] and n == 737280 == f.attrs["n"], sizes
    assert names == ["shape", "scale", "orientation", "posX", "posY"], names
    # item i is canonical index i: mixed radix over the factor values
    idx = np.zeros(n, dtype=np.int64)
    for k, s in enumerate(sizes):
        idx = idx * s + fac[:, k]
    assert (idx == np.arange(n)).all()
    g = f["runs"][row["run_id"]]
    assert list(f["runs"].keys()) == [row["run_id"]]
    mu, lv = g["mu"][:].astype(np.float64), g["logvar"][:].astype(np.float64)
    assert mu.shape == (n, 4) and lv.shape == (n, 4), mu.shape
    assert g.attrs["model"] == "betatcvae"
kl = np.mean(np.sum(0.5 * (mu * mu + np.exp(lv) - lv - 1.0), axis=1))
assert row["eval_images"] == n, row["eval_images"]
assert abs(kl - row["kl"]) <= 1e-9 * max(1.0, abs(kl)), (kl, row["kl"])
print(f"kl recomputed from the codes: {kl:.10g} (row: {row['kl']:.10g})")
# disentanglement_lib's suite: computed on the full set, NaN in sample mode
suite = ["beta_vae_score", "factor_vae_score", "dci_disentanglement", "dci_completeness",
         "dci_informativeness", "sap", "modularity", "explicitness"]
for m in suite:
    assert 0.0 <= row[m] <= 1.0, (m, row[m])
assert np.isfinite(row["gaussian_wasserstein_corr_norm"]) and row["mutual_info_score"] >= 0
first = io.load_runs(results, evaluations="all").iloc[0]
assert first["evaluation"] == 0 and all(np.isnan(first[m]) for m in suite), first[suite]
print("suite:", ", ".join(f"{m} {row[m]:.3f}" for m in suite))
PY
expect 0 "h5py reads the codes back and recomputes kl" $PY "$TMP/check.py" "$TMP/c.h5" \
    "$TMP/codes.h5"
cat "$TMP/out"

# a second full-set evaluation (~40 s): in make soak (UNTANGLE_LONG=1)
if [ -n "${UNTANGLE_LONG:-}" ]; then
    expect 0 "eval --codes again: the run's group replaced" "$UNTANGLE" eval "$TMP/c.h5" \
        --codes "$TMP/codes.h5" --threads 1
    n=$($PY -c "import h5py, sys; print(len(h5py.File(sys.argv[1], 'r')['runs']))" "$TMP/codes.h5")
    [ "$n" -eq 1 ] && ok "one group per run" || fail "groups: $n"
fi
expect 1 "--codes with encode=sample refused" "$UNTANGLE" eval "$TMP/c.h5" \
    --codes "$TMP/other.h5" --set encode=sample
expect_err "--codes needs encode=full"
[ -e "$TMP/other.h5" ] && fail "a codes file was written" || ok "nothing written"
finish
