"""`untangle eval` as analysis sees it: load_runs shows each run's latest
evaluation by default (its metric columns and eval keys replace the
training's, the evaluation column says which) and evaluations="all" returns
every evaluation as its own row; load_detail gives the latest evaluation's
detail; a file without /evals reads as before (evaluation 0).

    /usr/bin/python3 -m pytest tests/py/test_eval.py

Runs bin/untangle (or $UNTANGLE): skipped when it does not exist."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from untangle import io

ROOT = Path(__file__).resolve().parents[2]
UNTANGLE = Path(os.environ.get("UNTANGLE", ROOT / "bin" / "untangle"))
YAML = """name: evtest
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 20, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid: {model: betavae, beta: [4]}
seeds: 2
"""
pytestmark = pytest.mark.skipif(not UNTANGLE.exists(), reason=f"{UNTANGLE} not built")


def untangle(*args, code=0):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("UNTANGLE_INJECT_FAULT", None)
    p = subprocess.run([str(UNTANGLE), *map(str, args)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == code, p.stderr
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    (d / "s.yaml").write_text(YAML)
    untangle("sweep", d / "s.yaml", "-o", d / "r.h5", "--threads", "1")
    before = io.load_runs(d / "r.h5")
    untangle("eval", d / "r.h5", "--threads", "1")                       # evaluation 1
    untangle("eval", d / "r.h5", "--threads", "1", "--set", "images=500")  # evaluation 2
    return d / "r.h5", before


def test_without_evals_evaluation_is_zero(files):
    _, before = files
    assert (before["evaluation"] == 0).all() and len(before) == 2


def test_latest_evaluation_by_default(files):
    path, before = files
    runs = io.load_runs(path)
    ev = io.evals_table(path)
    assert len(runs) == 2 and (runs["evaluation"] == 2).all()
    assert (runs["images"] == 500).all()
    for _, r in runs.iterrows():
        e = ev[(ev["run_id"] == r["run_id"].encode()) & (ev["evaluation"] == 2)]
        assert len(e) == 1
        for m in ("recon", "kl", "mig", "mig_hist", "gaussian_tc", "mig_shape"):
            assert np.array_equal(e[m][0], r[m], equal_nan=True), m
    # the training's identity and timings stay
    assert list(runs["run_id"]) == list(before["run_id"])
    assert np.array_equal(runs["train_s"], before["train_s"])
    # images=500 measured something else than 200
    assert not np.array_equal(runs["recon"], before["recon"])


def test_all_evaluations(files):
    path, before = files
    every = io.load_runs(path, evaluations="all")
    assert len(every) == 6
    assert list(every["evaluation"]) == [0, 1, 2, 0, 1, 2]
    assert list(every["images"]) == [200, 200, 500] * 2
    first = every[every["evaluation"] == 0].reset_index(drop=True)
    same = every[every["evaluation"] == 1].reset_index(drop=True)
    for m in io.metric_names(before.columns):
        assert np.array_equal(first[m], before[m], equal_nan=True), m
        assert np.array_equal(same[m], before[m], equal_nan=True), m  # bit for bit
    with pytest.raises(ValueError):
        io.load_runs(path, evaluations="first")


def test_detail_of_latest_evaluation(files):
    path, _ = files
    runs = io.load_runs(path)
    d = io.load_detail(path, runs["run_id"][0])
    assert np.array_equal(d["mig"], runs.loc[0, [f"mig_{f}" for f in d["factors"]]]
                          .to_numpy(dtype=float), equal_nan=True)
