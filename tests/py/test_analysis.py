"""Tests of analysis/ (the untangle package: reader, plots and report, and
its command-line scripts) on results files made by tiny sweeps of the real
binary.

    /usr/bin/python3 -m pytest tests/py       (pytest.ini puts analysis/ on the path)

Needs h5py, numpy, pandas, matplotlib (Debian's python3-* packages). The tests
that need results files run bin/untangle (or $UNTANGLE) and are skipped with a
reason when it does not exist; the others (bad files, --help, the attempt
choice) always run.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from untangle import io, summary
from untangle.plots import tradeoff, traversals

ROOT = Path(__file__).resolve().parents[2]
ANALYSIS = ROOT / "analysis"

UNTANGLE = Path(os.environ.get("UNTANGLE", ROOT / "bin" / "untangle"))
SCRIPTS = ("tradeoff.py", "traversals.py", "report.py")
# The figures of a sweep of betavae and betatcvae (no dsd: no swap accuracy),
# each also as PDF, and the summary.
DRAWN = ("mig", "mig_hist", "tc", "recon", "kl", "mi", "dwkl", "gaussian_tc")
TRADEOFF_FILES = ["recon_vs.png", "spearman.png", "factors_mig.png", "mi.png", "curves.png"] + \
                 [f"{kind}_{m}.png" for kind in ("hyper", "box") for m in DRAWN] + \
                 ["summary.csv", "summary.md"]

HEAD = """name: {name}
data:  {{name: dsprites, image_size: 32}}
train: {{arch: mlp, steps: {steps}, batch_size: 16, lr: 1.0e-3, log_every: 10}}
eval:  {{images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}}
"""
TINY_GRID = """grid:
  - model: betavae
    beta: [1, 4]
  - model: betatcvae
    beta: [4]
seeds: 2
"""


def env(**extra):
    e = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
             OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    e.pop("UNTANGLE_INJECT_FAULT", None)
    e.update(extra)
    return e


def write_yaml(d, name, grid, steps=20):
    p = d / f"{name}.yaml"
    p.write_text(HEAD.format(name=name, steps=steps) + grid)
    return p


def untangle(args, ok=(0,), **extra_env):
    """Run bin/untangle; wait and retry while a concurrent `make` rebuilds
    it (missing or not executable for a moment)."""
    for attempt in range(30):
        if not UNTANGLE.exists() or not os.access(UNTANGLE, os.X_OK):
            time.sleep(1)
            continue
        try:
            p = subprocess.run([str(UNTANGLE)] + [str(a) for a in args], env=env(**extra_env),
                               capture_output=True, text=True, timeout=600)
        except OSError:  # ETXTBSY / ENOENT while the linker writes it
            time.sleep(1)
            continue
        if p.returncode in (126, 127):
            time.sleep(1)
            continue
        assert p.returncode in ok, f"untangle {args}: exit {p.returncode}\n{p.stderr[-2000:]}"
        return p
    pytest.fail(f"{UNTANGLE} stayed missing or broken for 30 s")


def sweep(d, name, grid, steps=20, ok=(0,), **extra_env):
    y = write_yaml(d, name, grid, steps)
    out = d / f"{name}.h5"
    untangle(["sweep", y, "-o", out], ok=ok, **extra_env)
    return out


def script(name, *args, cwd="/"):
    """Run an analysis script from another directory, as a user would."""
    return subprocess.run([sys.executable, str(ANALYSIS / name)] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="session")
def binary():
    """bin/untangle, or skip."""
    if not UNTANGLE.exists():
        pytest.skip(f"{UNTANGLE} does not exist: build it with `make` to run the analysis "
                    "tests on real results files")
    return UNTANGLE


@pytest.fixture(scope="session")
def files(binary, tmp_path_factory):
    """The results files every test reads, made once."""
    d = tmp_path_factory.mktemp("sweeps")
    out = {"dir": d}
    out["tiny"] = sweep(d, "tiny", TINY_GRID)
    # run 1 segfaults, run 2 diverges: exit 2 (some runs failed)
    out["fault"] = sweep(d, "fault", TINY_GRID, ok=(0, 2),
                         UNTANGLE_INJECT_FAULT="crash@1,nan@2")
    out["allfail"] = sweep(d, "allfail", "grid:\n  - model: betavae\n    beta: [4]\nseeds: 2\n",
                           ok=(0, 2), UNTANGLE_INJECT_FAULT="crash@0,nan@1")
    out["seeds"] = sweep(d, "seeds", "grid:\n  - model: betavae\n    beta: 4\nseeds: 3\n")
    # a job array: two shards of the seeds sweep, merged
    y = d / "seeds.yaml"
    for i in (0, 1):
        untangle(["sweep", y, "-o", d / f"shard{i}.h5", "--shard", f"{i}/2"])
    untangle(["merge", d / "merged.h5", d / "shard0.h5", d / "shard1.h5", "--expect", "3"])
    out["merged"] = d / "merged.h5"
    return out


def check_png(path):
    import matplotlib.image as mpimg
    assert path.exists(), f"{path.name} not written"
    assert path.stat().st_size > 5000, f"{path.name}: only {path.stat().st_size} bytes"
    img = mpimg.imread(str(path))
    assert img.shape[0] > 200 and img.shape[1] > 200, f"{path.name}: {img.shape}"
    assert float(np.std(img[..., :3])) > 0.01, f"{path.name} is blank"


# ---- the reader ------------------------------------------------------------------------

def test_load_runs_one_row_per_index_with_dtypes(files):
    runs = io.load_runs(files["tiny"])
    assert list(runs["grid_index"]) == list(range(6))
    assert runs["grid_index"].is_unique and runs["run_id"].is_unique
    assert (runs["status"] == "ok").all()
    assert list(runs["model"]) == ["betavae"] * 4 + ["betatcvae"] * 2
    assert list(runs["beta"]) == [1.0, 1.0, 4.0, 4.0, 4.0, 4.0]
    assert list(runs["seed"]) == [0, 1] * 3
    want = {"grid_index": np.int64, "attempt": np.int32, "seed": np.int64,
            "latent_dim": pd.Int64Dtype(), "steps": pd.Int64Dtype(), "beta": np.float64,
            "gamma": np.float64, "lr": np.float64, "n_attempts": np.int64,
            "wall_s": np.float64}
    metrics, factors = io.metric_names(runs.columns), io.factor_names(runs.columns)
    assert {"recon", "kl", "mig", "mig_hist", "swap_acc", "loss"} <= set(metrics)
    assert "n_attempts" not in metrics and not any(m.startswith("mig_") for m in metrics
                                                   if m != "mig_hist")
    want.update({m: np.float64 for m in metrics})
    want.update({f"mig_{f}": np.float64 for f in factors})
    for col, t in want.items():
        assert runs[col].dtype == t, f"{col}: {runs[col].dtype}, want {t}"
    table = io.runs_table(files["tiny"])
    strings = [n for n in table.dtype.names if table.dtype[n].kind == "S"]
    assert {"run_id", "model", "status", "error", "host"} <= set(strings)
    for col in strings:  # decoded; empty text is missing
        assert all(isinstance(v, str) or v is None for v in runs[col]), f"{col} not decoded"
    assert runs["error"].isna().all() and runs["estimator"][:4].isna().all()
    assert runs["gamma"][:4].isna().all()      # betavae takes no gamma: NaN
    assert (runs["gamma"][4:] == 1).all()      # betatcvae: its default
    assert runs["anneal_steps"].isna().all()   # integer key not applicable: <NA>
    assert runs["discrete"].isna().all()       # list key not applicable: None
    assert "index" not in runs.columns         # would shadow DataFrame.index
    assert runs["mig"].notna().all()
    assert (runs["file"] == str(files["tiny"])).all()


def test_load_runs_conventions(files, tmp_path):
    """pandas habits: missing values are missing (a mean of a key that does
    not apply is NaN, not -1), list keys are tuples, and load_runs takes a
    list of files or a glob."""
    runs = io.load_runs(files["tiny"])
    assert pd.isna(runs["anneal_steps"].mean())
    assert runs["latent_dim"].mean() == 10
    raw = io.load_attempts(files["tiny"], raw=True)
    assert (raw["anneal_steps"] == -1).all() and "index" in raw.columns
    both = io.load_runs([files["tiny"], files["seeds"]])
    assert len(both) == 9 and list(both["file"]) == [str(files["tiny"])] * 6 + \
        [str(files["seeds"])] * 3
    d = tmp_path / "g"
    d.mkdir()
    for i in (0, 1):
        shutil.copy(files["dir"] / f"shard{i}.h5", d / f"shard{i}.h5")
    shards = io.load_runs(str(d / "shard*.h5"))
    assert sorted(shards["run_id"]) == sorted(io.load_runs(files["seeds"])["run_id"])
    with pytest.raises(io.UntangleFileError, match="no file matches"):
        io.load_runs(str(d / "nothing*.h5"))
    df = pd.DataFrame({"index": [0, 1], "model": ["jointvae", "vae"],
                       "latent_dim": [6, 10], "discrete": ["[10, 3]", "[]"],
                       "anneal_steps": [-1, 500], "status": ["ok", "ok"]})
    c = io.conventions(df)
    assert list(c["discrete"]) == [(10, 3), None]
    assert c["anneal_steps"].isna().tolist() == [True, False]
    assert c["anneal_steps"].dtype == pd.Int64Dtype()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    back = pd.read_csv(tmp_path / "runs.csv")
    assert len(back) == len(runs) and back["anneal_steps"].isna().all()
    try:
        import pyarrow  # noqa: F401  (not packaged in Debian 12)
    except ImportError:
        return
    runs.to_parquet(tmp_path / "runs.parquet")
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == len(runs)


def test_load_curves(files):
    c = io.load_curves(files["tiny"])
    assert list(c.columns) == ["grid_index", "run_id", "attempt", "step", "name", "value"]
    assert c["grid_index"].dtype == np.int64 and c["value"].dtype == np.float64
    assert set(c["grid_index"]) == set(range(6))
    assert {"loss", "recon", "kl"} <= set(c["name"])
    assert {"tc", "mi", "dwkl"} <= set(c[c["grid_index"] == 4]["name"])  # betatcvae
    assert sorted(set(c["step"])) == [10, 20]


def test_open_that_fails_for_a_moment_is_retried(files, monkeypatch):
    """A sweep that is extending the file can make HDF5 refuse to open it
    ("truncated file") until the write lands: the reader tries again."""
    real, calls = h5py.File, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise OSError("Unable to open file (truncated file: eof = 16352)")
        return real(*args, **kwargs)

    monkeypatch.setattr(io.h5py, "File", flaky)
    assert len(io.load_curves(files["tiny"])) > 0
    assert len(calls) > 2


def test_load_detail(files):
    runs = io.load_runs(files["tiny"])
    d = io.load_detail(files["tiny"], 2)
    assert d["grid_index"] == 2 and d["attempt"] == 1 and d["model"] == "betavae"
    assert d["factors"] == io.factor_names(runs.columns)
    assert len(d["factors"]) == d["mi"].shape[1] == len(d["mig"])
    assert d["mi"].shape == (10, 5)
    assert d["mig"].shape == (5,) and d["swap_acc"].shape == (5,)
    assert d["traversal"].dtype == np.uint8 and d["traversal"].shape == (320, 320)
    row = runs[runs["grid_index"] == 2].iloc[0]
    np.testing.assert_allclose(d["mig"], [row[f"mig_{f}"] for f in d["factors"]])
    same = io.load_detail(files["tiny"], row["run_id"])
    np.testing.assert_array_equal(same["traversal"], d["traversal"])
    with pytest.raises(KeyError):
        io.load_detail(files["tiny"], 99)


def test_labels_from_the_file(files, tmp_path):
    """Keys, metrics and factors come from /runs' columns; key help, metric
    units and traversal steps from root attributes, with io's fallbacks for a
    file written before those attributes existed."""
    lab = io.load_labels(files["tiny"])
    runs = io.load_runs(files["tiny"])
    assert "beta" in lab.config_keys and "seed" not in lab.config_keys
    assert "model" not in lab.config_keys and "status" not in lab.config_keys
    assert list(lab.metrics) == io.metric_names(runs.columns)
    assert list(lab.factors) == io.factor_names(runs.columns)
    with h5py.File(files["tiny"], "r") as f:
        stored = "key_help" in f.attrs
    if not stored:
        assert lab.key_help == io.FALLBACK_KEY_HELP
        assert lab.metric_units == io.FALLBACK_METRIC_UNITS
        assert lab.traversal_steps == io.FALLBACK_TRAVERSAL_STEPS
    p = tmp_path / "attrs.h5"
    shutil.copy(files["tiny"], p)
    with h5py.File(p, "r+") as f:
        f.attrs["key_help"] = '{"beta": "the KL weight"}'
        f.attrs["metric_units"] = '{"recon": "bits"}'
        f.attrs["traversal_steps"] = "[-1.0, 0.0, 1.0]"
    lab = io.load_labels(p)
    assert lab.key_label("beta") == "beta (the KL weight)" and lab.key_label("gamma") == "gamma"
    assert lab.metric_units == {"recon": "bits"}
    assert lab.traversal_steps == (-1.0, 0.0, 1.0)
    assert summary.metric_label("recon", lab) == "reconstruction NLL (bits)"


def test_swept_keys_beta64():
    # beta follows from beta64 and the image size: only beta64 is swept
    runs = pd.DataFrame({"model": ["betavae"] * 2, "beta": [1.0, 2.0], "beta64": [4.0, 8.0],
                         "seed": [0, 0], "status": ["ok", "ok"]})
    assert summary.swept_keys(runs, "betavae") == ["beta64"]
    assert summary.swept_keys(runs.drop(columns="beta64"), "betavae") == ["beta"]


def test_swept_keys_and_summary(files):
    runs = io.load_runs(files["tiny"])
    assert summary.swept_keys(runs, "betavae") == ["beta"]
    assert summary.swept_keys(runs, "betatcvae") == []
    assert summary.label_keys(runs, "betatcvae") == ["beta"]  # labelled beta=4 next to betavae
    s = summary.summarize(runs)
    assert list(s["config"]) == ["betavae beta=1", "betavae beta=4", "betatcvae beta=4"]
    assert list(s["n_ok"]) == [2, 2, 2]
    want = np.median(runs[(runs["model"] == "betavae") & (runs["beta"] == 4)]["mig"])
    assert s.loc[1, "mig_median"] == pytest.approx(want)
    assert (s["mig_iqr"] >= 0).all()


def test_choose_attempts():
    a = pd.DataFrame({
        "index":   [0, 0, 1, 1, 2, 2, 3, 3],
        "attempt": [1, 2, 1, 2, 1, 2, 1, 1],
        "status":  ["ok", "failed", "failed", "diverged", "failed", "ok", "ok", "ok"],
        "tag":     ["a", "b", "c", "d", "e", "f", "g", "h"],
    })
    r = io.choose_attempts(a)
    assert list(r["index"]) == [0, 1, 2, 3]
    # latest ok; the last when none is ok; the later row on a tie (merged file)
    assert list(r["tag"]) == ["a", "d", "f", "h"]
    assert list(r["n_attempts"]) == [2, 2, 2, 2]
    # with run_id, a run is its run_id: a resumed sweep whose grid grew moved
    # run "b" from index 1 to index 2, and run "c" took index 1
    a = pd.DataFrame({"index": [1, 1, 2, 1], "run_id": ["b", "b", "b", "c"],
                      "attempt": [1, 2, 3, 1],
                      "status": ["failed", "failed", "ok", "ok"]})
    r = io.choose_attempts(a)
    assert list(zip(r["run_id"], r["index"], r["attempt"])) == [("c", 1, 1), ("b", 2, 3)]
    assert list(r["n_attempts"]) == [1, 3]


def test_zero_rows_are_skipped(files, tmp_path):
    """A killed writer can leave all-zero rows: never valid, never read."""
    p = tmp_path / "zeros.h5"
    shutil.copy(files["tiny"], p)
    with h5py.File(p, "r+") as f:
        f["runs"].resize((f["runs"].shape[0] + 2,))
    assert len(io.load_attempts(p)) == 6
    assert len(io.load_runs(p)) == 6


# ---- the scripts -------------------------------------------------------------------------

def test_tradeoff_writes_every_plot(files, tmp_path):
    out = tmp_path / "plots"
    p = script("tradeoff.py", files["tiny"], "-o", out)
    assert p.returncode == 0, p.stderr
    for name in TRADEOFF_FILES:
        if name.endswith(".png"):
            check_png(out / name)
            assert (out / (name[:-4] + ".pdf")).stat().st_size > 1000, f"{name}: no PDF"
        else:
            assert (out / name).stat().st_size > 0
    assert not list(out.glob("*swap_acc*")), "swap accuracy drawn without a dsd run"
    csv = pd.read_csv(out / "summary.csv")
    assert len(csv) == 3 and {"mig_median", "mig_q25", "mig_q75", "recon_iqr"} <= set(csv)
    md = (out / "summary.md").read_text()
    assert "| betavae beta=4 | 2 / 2 |" in md


def test_traversals(files, tmp_path):
    p = script("traversals.py", files["tiny"], "--index", "3", "-o", tmp_path)
    assert p.returncode == 0, p.stderr
    check_png(tmp_path / "traversal_3.png")
    p = script("traversals.py", files["tiny"], "--best", "mig", "-o", tmp_path)
    assert p.returncode == 0, p.stderr
    for m in ("betavae", "betatcvae"):
        check_png(tmp_path / f"traversal_best_{m}.png")


def test_traversal_order_without_kl(files):
    d = io.load_detail(files["tiny"], 0)
    order, how = traversals.order_units(d, 10)
    assert "KL not stored" in how
    rowmax = d["mi"].max(axis=1)
    assert list(rowmax[order]) == sorted(rowmax, reverse=True)
    d["kl"] = np.arange(10.0)
    order, how = traversals.order_units(d, 10)
    assert order == list(range(9, -1, -1)) and "ordered by KL" in how


def test_report(files, tmp_path):
    out = tmp_path / "report"
    p = script("report.py", files["tiny"], "-o", out)
    assert p.returncode == 0, p.stderr
    assert str(out / "index.html") in p.stdout
    html = (out / "index.html").read_text()
    for name in TRADEOFF_FILES + ["traversal_best_betavae.png"]:
        if name.endswith(".png"):
            check_png(out / name)
            assert name in html


def test_failed_runs(files, tmp_path):
    runs = io.load_runs(files["fault"])
    assert list(runs["grid_index"]) == list(range(6))
    st = dict(zip(runs["grid_index"], runs["status"]))
    assert st[1] == "failed" and st[2] == "diverged"
    assert "signal" in runs.loc[runs["grid_index"] == 1, "error"].iloc[0]
    assert np.isnan(runs.loc[runs["grid_index"] == 1, "mig"].iloc[0])
    d = io.load_detail(files["fault"], 1)
    assert d["traversal"] is None and d["mi"] is None
    out = tmp_path / "report"
    p = script("report.py", files["fault"], "-o", out)
    assert p.returncode == 0, p.stderr
    for name in TRADEOFF_FILES:
        if name.endswith(".png"):
            check_png(out / name)
    md = (out / "summary.md").read_text()
    assert "4 ok, 2 not ok" in md
    assert "#1 betavae beta=1 seed=1: failed" in md
    assert "#2 betavae beta=4 seed=0: diverged" in md
    assert "| betavae beta=1 | 1 / 2 |" in md
    p = script("traversals.py", files["fault"], "--index", "1", "-o", tmp_path)
    assert p.returncode == 1 and "no traversal" in p.stderr


def test_retry_then_ok(files, tmp_path):
    """Resuming a file with failed runs under --retries (--retry-diverged:
    the diverged run's fault injection is gone, so its rerun differs): the
    latest ok attempt is chosen, and the failed attempts still count."""
    p = tmp_path / "fault.h5"
    shutil.copy(files["fault"], p)
    shutil.copy(str(files["fault"]) + ".journal", str(p) + ".journal")
    untangle(["sweep", files["dir"] / "fault.yaml", "-o", p, "--resume", "--retries", "1",
              "--retry-diverged"])
    runs = io.load_runs(p)
    assert list(runs["grid_index"]) == list(range(6))
    assert (runs["status"] == "ok").all()
    assert list(runs["n_attempts"]) == [1, 2, 2, 1, 1, 1]
    assert list(runs["attempt"]) == [1, 2, 2, 1, 1, 1]
    assert len(io.load_attempts(p)) == 8
    c = io.load_curves(p)
    assert set(zip(c["grid_index"], c["attempt"])) == set(zip(runs["grid_index"], runs["attempt"]))


def test_resume_with_grown_grid(files, tmp_path):
    """Resuming with a YAML that adds a beta value moves the indices of the
    runs after it: runs are matched by run_id, not index."""
    p = tmp_path / "grown.h5"
    shutil.copy(files["tiny"], p)
    shutil.copy(str(files["tiny"]) + ".journal", str(p) + ".journal")
    grown = TINY_GRID.replace("beta: [1, 4]", "beta: [1, 2, 4]")
    y = write_yaml(tmp_path, "tiny", grown)
    untangle(["sweep", y, "-o", p, "--resume"])
    before, after = io.load_runs(files["tiny"]), io.load_runs(p)
    assert len(after) == 8 and after["run_id"].is_unique and (after["status"] == "ok").all()
    assert set(before["run_id"]) < set(after["run_id"])
    assert list(after[after["beta"] == 2]["grid_index"]) == [2, 3]
    c = io.load_curves(p)
    assert set(c["run_id"]) == set(after["run_id"])
    for _, r in after.iterrows():
        d = io.load_detail(p, r["run_id"])
        assert d["traversal"] is not None and d["run_id"] == r["run_id"]
    out = tmp_path / "report"
    r = script("report.py", p, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "| betavae beta=2 | 2 / 2 |" in (out / "summary.md").read_text()


def test_only_failed_runs(files, tmp_path):
    runs = io.load_runs(files["allfail"])
    assert len(runs) == 2 and not (runs["status"] == "ok").any()
    out = tmp_path / "report"
    p = script("report.py", files["allfail"], "-o", out)
    assert p.returncode == 0, p.stderr
    assert "none of the 2 runs finished ok" in p.stdout
    assert not list(out.glob("*.png")), "plots drawn from a file without an ok run"
    md = (out / "summary.md").read_text()
    assert "No run finished ok" in md and "failed" in md and "diverged" in md
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv["n_ok"]) == [0] and csv["mig_median"].isna().all()
    p = script("traversals.py", files["allfail"], "--best", "mig", "-o", tmp_path)
    assert p.returncode == 0 and "no run finished ok" in p.stdout


def test_empty_file(files, tmp_path):
    """A file created by a sweep that has not finished a run yet."""
    p = tmp_path / "empty.h5"
    shutil.copy(files["tiny"], p)
    with h5py.File(p, "r+") as f:
        f["runs"].resize((0,))
        f["curves"].resize((0,))
    assert len(io.load_runs(p)) == 0 and len(io.load_curves(p)) == 0
    out = tmp_path / "report"
    r = script("report.py", p, "-o", out)
    assert r.returncode == 0, r.stderr
    assert not list(out.glob("*.png"))
    assert "no finished run" in (out / "summary.md").read_text()


def test_seed_only_sweep(files, tmp_path):
    runs = io.load_runs(files["seeds"])
    assert len(runs) == 3 and summary.swept_keys(runs, "betavae") == []
    out = tmp_path / "report"
    p = script("report.py", files["seeds"], "-o", out)
    assert p.returncode == 0, p.stderr
    for name in TRADEOFF_FILES:
        if name.endswith(".png"):
            check_png(out / name)
    md = (out / "summary.md").read_text()
    assert "betavae: sweeps nothing but the seed" in md and "| betavae | 3 / 3 |" in md


def test_merged_job_array(files, tmp_path):
    merged, whole = io.load_runs(files["merged"]), io.load_runs(files["seeds"])
    cols = ["grid_index", "run_id", "model", "beta", "seed", "status"]
    pd.testing.assert_frame_equal(merged[cols], whole[cols])
    assert len(io.load_curves(files["merged"])) == len(io.load_curves(files["seeds"]))
    out = tmp_path / "report"
    p = script("report.py", files["merged"], "-o", out)
    assert p.returncode == 0, p.stderr
    check_png(out / "recon_vs.png")


def test_file_being_written(binary, tmp_path):
    """Read, plot and summarise while a sweep appends to the file."""
    grid = "grid:\n  - model: betavae\n    beta: [1, 4]\nseeds: 3\n"
    y = write_yaml(tmp_path, "running", grid)
    h5 = tmp_path / "running.h5"
    proc = subprocess.Popen([str(UNTANGLE), "sweep", str(y), "-o", str(h5)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen, plotted = set(), False
    try:
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline:
            if not h5.exists():
                time.sleep(0.05)
                continue
            runs = io.load_runs(h5)
            still = proc.poll() is None
            io.load_curves(h5)
            if len(runs):
                io.load_detail(h5, runs["run_id"].iloc[-1])
            if still:
                seen.add(len(runs))
            if still and 0 < len(runs) < 6 and not plotted:
                out = tmp_path / "partial"
                p = script("report.py", h5, "-o", out)
                assert p.returncode == 0, p.stderr
                check_png(out / "recon_vs.png")
                plotted = "still writing" in (out / "summary.md").read_text() or \
                    proc.poll() is not None
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert any(0 < n < 6 for n in seen), f"never read a partial file: row counts {seen}"
    assert plotted
    assert len(io.load_runs(h5)) == 6


# ---- bad input and --help ------------------------------------------------------------------

@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name):
    p = script(name, "--help")
    assert p.returncode == 0 and "RESULTS.h5" in p.stdout
    first = (ANALYSIS / name).read_text().splitlines()[0]
    assert first == "#!/usr/bin/python3"
    assert os.access(ANALYSIS / name, os.X_OK), f"{name} is not executable"


@pytest.mark.parametrize("name", SCRIPTS)
def test_bad_files(name, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a results file\n")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    extra = ["--index", "0"] if name == "traversals.py" else []
    for path, says in ((tmp_path / "missing.h5", "no such file"),
                       (text, "not an HDF5 file"),
                       (other, "not an untangle results file"),
                       (tmp_path, "is a directory")):
        p = script(name, path, "-o", tmp_path / "out", *extra)
        assert p.returncode == 1, (path, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, f"{name} {path}: {p.stderr}"
        assert says in lines[0] and str(path) in lines[0] and lines[0].startswith(name)
    with pytest.raises(io.UntangleFileError):
        io.load_runs(other)


# ---- the figures' statistics ---------------------------------------------------------------

def test_mean_ci_known_values():
    mu, h = summary.mean_ci([1.0, 2.0, 3.0])  # sd 1, n 3: t(0.975, 2) = 4.303
    assert mu == 2.0 and abs(h - 4.303 / np.sqrt(3)) < 1e-9
    mu, h = summary.mean_ci([5.0])
    assert mu == 5.0 and np.isnan(h)
    assert summary.fmt_ci([1.0, 2.0, 3.0]) == "2.00 ± 2.48"
    assert summary.fmt_ci([0.5]) == "0.500" and summary.fmt_ci([]) == "n/a"


def test_sign_test_known_values():
    assert summary.sign_test([1, 2, 3]) == (3, 0, 0.25)      # 2 * (1/2)^3
    assert summary.sign_test([1, -2, 0, 3]) == (2, 1, 1.0)   # the zero dropped
    k, n, p = summary.sign_test([0.1] * 10)
    assert (k, n) == (10, 0) and abs(p - 2 / 1024) < 1e-15


def test_paired_table():
    rows = []
    for model, base in (("betavae", 0.1), ("betatcvae", 0.3)):
        for b in (1, 4):
            for seed in range(3):
                rows.append({"model": model, "beta": b, "seed": seed, "status": "ok",
                             "mig": base + 0.01 * seed * b})
    runs = pd.DataFrame(rows)
    lines = summary.paired_table(runs)
    assert len(lines) == 7, lines
    assert lines[2].startswith("| betatcvae − betavae | beta=1 | +0.200 +0.200 +0.200 |")
    assert "| 3 of 3 | 0.25 |" in lines[3]
    # both values pooled: 6 pairs, all positive, p = 2 / 2^6
    assert lines[4].startswith("| betatcvae − betavae | all 2 values | the 6 pairs above |")
    assert lines[4].endswith("| 6 of 6 | 0.0312 |")
    # within each method, beta=4 against beta=1: +0, +0.03, +0.06 (the tie dropped)
    assert lines[5].startswith("| beta=4 − beta=1 | betavae | +0.000 +0.030 +0.060 |")
    assert lines[5].endswith("| 2 of 2 | 0.5 |") and lines[6].startswith("| beta=4 − beta=1 | betatcvae |")


def test_variance_table_splits_the_sum_of_squares():
    # method means 0 and 1; within betatcvae the two betas differ by 0.2;
    # seeds differ by +-0.1 around each configuration's mean
    rows = []
    for model, base in (("betavae", 0.0), ("betatcvae", 1.0)):
        for b, shift in ((1, -0.1), (4, 0.1)):
            for seed, e in ((0, -0.1), (1, 0.1)):
                rows.append({"model": model, "beta": b, "seed": seed, "status": "ok",
                             "mig": base + (shift if model == "betatcvae" else 0.0) + e})
    runs = pd.DataFrame(rows)
    lines = summary.variance_table(runs, ["mig"])
    # SS: methods 8 * 0.5^2 = 2, values 4 * 0.1^2 = 0.04, seeds 8 * 0.1^2 = 0.08
    assert lines[2] == "| mig | 8 | 94 % | 2 % | 4 % |", lines
    assert summary.variance_table(runs[runs["model"] == "betavae"], ["mig"]) == []


def test_representative_run_is_the_median_seed_of_the_best_configuration():
    runs = pd.DataFrame({
        "grid_index": range(6), "run_id": list("abcdef"), "model": ["betavae"] * 6,
        "beta": [1.0] * 3 + [4.0] * 3, "seed": [0, 1, 2] * 2, "status": ["ok"] * 6,
        "mig": [0.9, 0.1, 0.2, 0.5, 0.4, 0.6], "mig_hist": [0.0] * 6, "recon": [1.0] * 6})
    rep = summary.representative_runs(runs, "mig")
    # beta=1 holds the best seed (0.9) but beta=4 the best median (0.5 > 0.2)
    assert list(rep["run_id"]) == ["d"] and rep["n_seeds"][0] == 3
    assert list(summary.best_runs(runs, "mig")["run_id"]) == ["a"]


def test_spearman_matches_ranks(files):
    from untangle.plots import paper
    runs = io.load_runs(files["tiny"])
    st = paper.Study(files["tiny"], runs)
    rho = paper.spearman(st)
    assert list(rho.columns) == list(rho.index) and np.allclose(np.diag(rho), 1.0)
    a, b = rho.columns[0], rho.columns[1]
    ra, rb = st.ok[a].rank().to_numpy(), st.ok[b].rank().to_numpy()
    assert abs(rho.loc[a, b] - np.corrcoef(ra, rb)[0, 1]) < 1e-12


def test_capacity_betavae_reads_as_annealedvae():
    """Files written before annealedvae had its name hold its runs as betavae
    with c_max set: the reader names them as untangle resolves them now."""
    df = pd.DataFrame({"index": [0, 1, 2], "model": ["betavae", "betavae", "vae"],
                       "beta": [4.0, np.nan, np.nan], "c_max": [np.nan, 5.0, np.nan],
                       "status": ["ok", "ok", "ok"]})
    out = io.conventions(df)
    assert list(out["model"]) == ["betavae", "annealedvae", "vae"]
    assert list(df["model"]) == ["betavae", "betavae", "vae"]  # the input is left alone


def test_every_method_has_its_own_colour():
    from untangle.plots import paper
    methods = ["vae", "betavae", "annealedvae", "betatcvae", "factorvae", "dipvae1", "dipvae2",
               "jointvae", "dsd"]
    colours = paper.method_colours(methods)
    assert set(paper.METHOD_COLOURS) >= set(methods)
    assert len(set(colours.values())) == len(methods)


LOCATELLO_GRID = """grid:
  - model: annealedvae
    c_max: [5, 25]
  - model: factorvae
    gamma: [10, 40]
  - model: dipvae1
    lambda_od: [1, 10]
  - model: dipvae2
    lambda_od: [1, 10]
seeds: 1
"""


def test_locatello_methods_are_read_and_drawn(binary, tmp_path):
    """The methods of disentanglement_lib's study train, are read with their
    own names and keys, and are drawn each in its own colour."""
    h5 = sweep(tmp_path, "loc", LOCATELLO_GRID)
    runs = io.load_runs(h5)
    assert list(runs["model"]) == (["annealedvae"] * 2 + ["factorvae"] * 2 + ["dipvae1"] * 2 +
                                   ["dipvae2"] * 2)
    assert (runs["status"] == "ok").all()
    assert list(runs["lambda_d"][4:]) == [10, 100, 1, 10]  # lambda_d_factor 10 (I), 1 (II)
    assert runs["lambda_od"][:4].isna().all() and runs["beta"].isna().all()
    labels = list(summary.configurations(runs)["label"])
    assert len(labels) == 8 and not any("n/a" in lab for lab in labels), labels
    assert "annealedvae gamma=1000, c_max=5" in labels and "factorvae gamma=40" in labels
    assert "dipvae2 lambda_od=10, lambda_d=10" in labels
    c = io.load_curves(h5)
    assert {"tc", "disc"} <= set(c[c["grid_index"] == 2]["name"])  # factorvae's terms
    assert "dip" in set(c[c["grid_index"] == 6]["name"])
    out = tmp_path / "plots"
    p = script("tradeoff.py", h5, "-o", out)
    assert p.returncode == 0, p.stderr
    for name in ("hyper_mig.png", "box_mig.png", "recon_vs.png", "curves.png"):
        check_png(out / name)
