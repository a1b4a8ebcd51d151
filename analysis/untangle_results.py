"""Read an untangle results file (HDF5) into pandas and numpy.

    import sys; sys.path.insert(0, "analysis")      # or run from analysis/
    from untangle_results import load_runs, load_curves, load_detail
    runs = load_runs("results/quick.h5")            # one row per run
    runs.groupby(["model", "beta"])["mig"].median()

The layout is the contract of DESIGN.md section 7, written by
src/results/results.c (its top comment documents every column):

  /runs     one row per finished attempt, in append order: index, run_id,
            attempt, model, arch, every configuration key (-1 or NaN where a
            key does not apply, list keys as text like "[2, 2]"), status,
            error, rank, host, timings, steps_done, the metrics, then
            mig_<factor> and swap_acc_<factor>. Fixed-length strings come back
            from h5py as bytes; they are decoded here. A row whose status is
            EMPTY is left behind by a killed writer and is never valid.
  /curves   long format {index, run_id, attempt, step, name, value}.
  /detail/<run_id>_<attempt>   mi (units, 5) float32 with attribute factors,
            mig (5), swap_acc (5), traversal (H, W) uint8; mi and traversal
            absent when the run made none.

A run is identified by its run_id (a hash of its configuration); index is its
position in the sweep YAML it ran under, which moves when a resumed sweep's
grid grows. In a file written by one YAML, one run = one index. Files of the
first layout (curves without run_id, /detail/<index>_<attempt>) are read too.

The file may still be written by a running sweep: readers open it without
HDF5's file lock, and a read that meets a half-flushed chunk is retried.
"""
import math
import os
import time

import h5py
import numpy as np
import pandas as pd

__all__ = [
    "UntangleFileError", "FACTORS", "CONFIG_KEYS", "METRICS", "PLOT_METRICS",
    "METRIC_INFO", "load_meta", "load_attempts", "load_runs", "load_curves",
    "load_detail", "choose_attempts", "swept_keys", "label_keys", "config_label",
    "configurations", "best_runs", "summarize", "describe_failures", "writer_pid",
    "format_value", "sort_key", "attempt_key",
]

# The data set's factors, in the order of the mi matrix's columns and of the
# mig_<f> / swap_acc_<f> columns (data_factor_names).
FACTORS = ("shape", "scale", "orientation", "posX", "posY")

# Configuration keys (run_keys in src/run/keys.c, table order) except model
# and seed: the candidates for "what a sweep varies".
CONFIG_KEYS = (
    "arch", "name", "image_size", "path", "steps", "batch_size", "lr", "log_every",
    "images", "samples", "pairs", "latent_dim", "beta", "gamma", "alpha", "lambda",
    "c_max", "anneal_steps", "estimator", "discrete", "c_z_max", "c_c_max", "chunks",
    "supervision", "w_swap",
)
STRING_KEYS = ("run_id", "model", "arch", "name", "path", "estimator", "discrete",
               "chunks", "status", "error", "host")
# Metric columns (run_metric_names in src/run/keys.c).
METRICS = ("recon", "kl", "elbo", "tc", "mi", "dwkl", "mig", "mig_hist", "gaussian_tc",
           "swap_acc", "loss")
# The metrics the trade-off plots show, in order.
PLOT_METRICS = ("mig", "mig_hist", "tc", "recon", "swap_acc")
# name -> (axis label with unit, True when higher is better, or None)
METRIC_INFO = {
    "recon": ("reconstruction NLL (nats / image)", False),
    "kl": ("KL(q(z|x) || p(z)) (nats / image)", None),
    "elbo": ("ELBO (nats / image)", True),
    "tc": ("total correlation (nats)", False),
    "mi": ("index-code MI (nats)", None),
    "dwkl": ("dimension-wise KL (nats)", None),
    "mig": ("MIG, Chen et al. (normalised, 0..1)", True),
    "mig_hist": ("MIG, histogram estimator (normalised, 0..1)", True),
    "gaussian_tc": ("Gaussian TC of the means (nats)", False),
    "swap_acc": ("swap accuracy (fraction, 0..1)", True),
    "loss": ("training loss (nats / image)", False),
}
# Columns that are never "what the sweep varies".
_NOT_SWEPT = {"index", "run_id", "attempt", "seed", "status", "error", "rank", "host",
              "wall_s", "train_s", "eval_s", "imgs_per_s", "steps_done", "n_attempts",
              "model"} | set(METRICS) | {f"mig_{f}" for f in FACTORS} | \
             {f"swap_acc_{f}" for f in FACTORS}


class UntangleFileError(Exception):
    """The path is missing, not HDF5, or not an untangle results file. The
    message is one line that names the path."""


# ---- opening ------------------------------------------------------------------

def _open(path):
    """h5py.File opened read-only without HDF5's file lock (a running sweep
    keeps the file open). Raises UntangleFileError with a one-line message."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UntangleFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UntangleFileError(f"{path}: is a directory, not a results file")
    if not h5py.is_hdf5(path):
        raise UntangleFileError(f"{path}: not an HDF5 file (an untangle results file is "
                                "written by `untangle sweep -o`)")
    try:
        try:
            f = h5py.File(path, "r", locking=False)
        except TypeError:  # an h5py without the locking argument
            f = h5py.File(path, "r")
    except OSError as exc:
        raise UntangleFileError(f"{path}: cannot open: {_one_line(exc)}") from None
    if "runs" not in f or "format_version" not in f.attrs:
        f.close()
        raise UntangleFileError(f"{path}: not an untangle results file "
                                "(no /runs dataset or format_version attribute)")
    return f


def _one_line(exc):
    return " ".join(str(exc).split())


def _retry(path, fn, tries=20, wait=0.1):
    """fn(h5py.File) with the file opened fresh on each try: a sweep that is
    flushing a row can make a read fail for a moment."""
    last = None
    for i in range(tries):
        f = _open(path)
        try:
            return fn(f)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            last = exc
        finally:
            f.close()
        time.sleep(wait * (1 + i // 5))
    raise UntangleFileError(f"{os.fspath(path)}: cannot read: {_one_line(last)}")


def _decode(df, columns=None):
    """Fixed-length string columns (bytes) -> str, in place."""
    for col in (columns if columns is not None else df.columns):
        if col in df.columns and df[col].dtype == object:
            df[col] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                       for v in df[col]]
    return df


def _attr(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.generic):
        return v.item()
    return v


# ---- the public readers ---------------------------------------------------------

def load_meta(path):
    """The root attributes as a dict (format_version, untangle_version,
    sweep_name, sweep_yaml, sweep_hash, created, hdf5_version,
    library_versions) plus "sweeps": a list of dicts, one per sweep YAML used."""
    def read(f):
        out = {k: _attr(v) for k, v in f.attrs.items()}
        out["sweeps"] = []
        if "sweeps" in f:
            for r in f["sweeps"][()]:
                out["sweeps"].append({n: _attr(r[n]) for n in r.dtype.names})
        return out
    return _retry(path, read)


def load_attempts(path):
    """Every valid row of /runs (one per finished attempt) in append order, as a
    DataFrame with decoded strings. Rows with an empty status are skipped."""
    data = _retry(path, lambda f: f["runs"][()])
    df = pd.DataFrame.from_records(data) if len(data) else \
        pd.DataFrame(np.zeros(0, dtype=data.dtype))
    _decode(df)
    if len(df):
        df = df[df["status"] != ""].reset_index(drop=True)
    df["row"] = np.arange(len(df), dtype=np.int64)  # append order, a tie-breaker
    return df


def load_runs(path):
    """One row per run (run_id; in a file written by one sweep YAML, one per
    index): its latest attempt with status ok, or its last attempt when none
    is ok. Columns: those of /runs (strings decoded; integer keys int64 with
    -1 = not applicable, real keys and metrics float64 with NaN = not
    applicable / not computed) plus n_attempts (the run's attempts in the
    file). Sorted by index. An empty DataFrame (with the columns) when the
    file holds no valid row yet."""
    return choose_attempts(load_attempts(path))


def choose_attempts(attempts):
    """load_runs' choice on a DataFrame of attempts (run_id or index, attempt,
    status, and row = append order, which breaks ties)."""
    df = attempts.copy()
    key = "run_id" if "run_id" in df else "index"
    if "row" not in df:
        df["row"] = np.arange(len(df), dtype=np.int64)
    df["n_attempts"] = df.groupby(key)[key].transform("size").astype(np.int64)
    df["_ok"] = df["status"] == "ok"
    # Last in (ok first, attempt, append order) wins.
    df = df.sort_values([key, "_ok", "attempt", "row"], kind="stable")
    df = df.groupby(key, sort=False).tail(1)
    df = df.sort_values(["index", "row"], kind="stable")
    return df.drop(columns=["_ok", "row"]).reset_index(drop=True)


def attempt_key(df):
    """The columns that identify an attempt in /curves and /runs."""
    return ["run_id", "attempt"] if "run_id" in df else ["index", "attempt"]


def load_curves(path, all_attempts=False):
    """The training curves as a long DataFrame (index, run_id, attempt, step,
    name, value), names decoded. By default only the attempt load_runs
    chooses for each run; all_attempts=True returns every point in the
    file."""
    def read(f):
        return f["curves"][()] if "curves" in f else None
    data = _retry(path, read)
    if data is None or len(data) == 0:
        return pd.DataFrame({"index": pd.Series(dtype=np.int64),
                             "run_id": pd.Series(dtype=object),
                             "attempt": pd.Series(dtype=np.int32),
                             "step": pd.Series(dtype=np.int64),
                             "name": pd.Series(dtype=object),
                             "value": pd.Series(dtype=np.float64)})
    df = _decode(pd.DataFrame.from_records(data))
    df = df[[c for c in ("index", "run_id", "attempt", "step", "name", "value") if c in df]]
    key = attempt_key(df)
    if not all_attempts:
        chosen = load_runs(path)[key]
        df = df.merge(chosen, on=key, how="inner")
    return df.sort_values(["index"] + key + ["name", "step"]).reset_index(drop=True)


def load_detail(path, run, attempt=None):
    """The detail of one run as a dict. run: its index (int; when runs of
    several sweep YAMLs share an index, the one appended last) or its run_id
    (str). attempt None: the one load_runs chooses. Keys:
      index, attempt, run_id, model, status, latent_dim, n_discrete
      factors   list of the 5 factor names (columns of mi)
      mi        (units, 5) float array, I(unit; factor) in nats, or None;
                units = the latent_dim continuous latents, then one per
                discrete variable
      mig       (5,) per-factor MIG (Chen et al.'s gap / H(v_k))
      swap_acc  (5,) per-factor swap accuracy
      traversal (H, W) uint8 image grid, one row of 10 cells per unit, or None
      kl        (units,) per-unit KL in nats if the file stores it, else None
      row       the run's row of /runs (a pandas Series)
    Raises KeyError when the file holds no such run / attempt."""
    by = "run_id" if isinstance(run, str) else "index"
    if attempt is None:
        rows = load_runs(path)
    else:
        rows = load_attempts(path)
        rows = rows[rows["attempt"] == attempt]
    sel = rows[rows[by] == run]
    if len(sel) == 0:
        raise KeyError(f"{os.fspath(path)}: no run with {by} {run}"
                       + ("" if attempt is None else f" and attempt {attempt}"))
    row = sel.iloc[-1]
    attempt = int(row["attempt"])

    def read(f):
        out = {"mi": None, "traversal": None, "kl": None,
               "mig": np.full(len(FACTORS), np.nan), "swap_acc": np.full(len(FACTORS), np.nan),
               "factors": list(FACTORS)}
        names = [f"{row['run_id']}_{attempt}", f"{int(row['index'])}_{attempt}"]
        name = next((n for n in names if "detail" in f and n in f["detail"]), None)
        if name is None:
            return out
        g = f["detail"][name]
        if "mi" in g:
            out["mi"] = g["mi"][()].astype(np.float64)
            if "factors" in g["mi"].attrs:
                out["factors"] = [_attr(s) for s in g["mi"].attrs["factors"]]
        for k in ("mig", "swap_acc", "kl"):
            if k in g:
                out[k] = g[k][()].astype(np.float64)
        if "traversal" in g:
            out["traversal"] = g["traversal"][()]
        return out
    out = _retry(path, read)
    discrete = _parse_list(row.get("discrete", "[]"))
    out.update(index=int(row["index"]), attempt=attempt, run_id=row["run_id"],
               model=row["model"], status=row["status"], latent_dim=int(row["latent_dim"]),
               n_discrete=len(discrete), row=row)
    return out


def _parse_list(text):
    text = (text or "").strip().strip("[]")
    return [int(t) for t in text.split(",") if t.strip()]


def writer_pid(path):
    """The pid of the `untangle sweep` that is writing path (it holds a flock
    on PATH.journal), or None. Reads /proc/locks only, so it never disturbs
    the writer; None where /proc/locks does not exist."""
    try:
        st = os.stat(os.fspath(path) + ".journal")
        with open("/proc/locks") as fh:
            lines = fh.readlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        if len(f) >= 6 and f[1] == "FLOCK":
            try:
                ino = int(f[5].split(":")[2])
            except (IndexError, ValueError):
                continue
            if ino == st.st_ino:
                return int(f[4])
    return None


# ---- what the sweep varies ----------------------------------------------------------

def swept_keys(runs, model=None):
    """The configuration keys with more than one value among the rows of
    `model` (all rows when None), in the file's column order. Seed, index,
    run_id, status, metrics and timings never count."""
    rows = runs if model is None else runs[runs["model"] == model]
    out = []
    for col in runs.columns:
        if col in _NOT_SWEPT or col not in CONFIG_KEYS:
            continue
        if rows[col].nunique(dropna=False) > 1:
            out.append(col)
    return out


def label_keys(runs, model):
    """The keys that name a configuration of `model`: its swept keys, plus the
    keys other models sweep that apply to it (a betatcvae run at the fixed
    beta=4 next to a betavae sweep over beta is labelled beta=4)."""
    own = swept_keys(runs, model)
    rows = runs[runs["model"] == model]
    if rows.empty:
        return own
    first = rows.iloc[0]
    other = set()
    for m in pd.unique(runs["model"]):
        if m != model:
            other.update(swept_keys(runs, m))
    return [c for c in runs.columns
            if c in own or (c in other and format_value(first[c]) != "n/a")]


def format_value(v):
    """A key's value as short text: 4, 0.001, [3], n/a for -1 / NaN / ""."""
    if isinstance(v, str):
        return v if v else "n/a"
    if isinstance(v, (float, np.floating)):
        return "n/a" if math.isnan(v) else f"{v:g}"
    if isinstance(v, (int, np.integer)):
        return "n/a" if v == -1 else str(int(v))
    return str(v)


def config_label(row, keys, with_model=True):
    """'betavae beta=4' (or 'betavae' when keys is empty)."""
    parts = [f"{k}={format_value(row[k])}" for k in keys]
    if with_model:
        return " ".join([row["model"]] + ([", ".join(parts)] if parts else []))
    return ", ".join(parts)


def sort_key(v):
    """Order of a key's values: numbers ascending (NaN first), then text."""
    if isinstance(v, str):
        return (1, 0.0, v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return (2, 0.0, str(v))
    return (0, -math.inf if math.isnan(f) else f, "")


def configurations(runs):
    """The configurations of runs: a DataFrame with one row per (model, the
    values of the model's label_keys), columns model, keys (tuple of key names),
    values (tuple), label, rows (the runs' row labels), in model order of first
    appearance and value order within a model."""
    out = []
    for model in pd.unique(runs["model"]):
        sub = runs[runs["model"] == model]
        keys = label_keys(runs, model)
        if keys:
            by = keys if len(keys) > 1 else keys[0]
            groups = sub.groupby(by, dropna=False, sort=False)
            items = [(k if isinstance(k, tuple) else (k,), g) for k, g in groups]
        else:
            items = [((), sub)]
        items.sort(key=lambda kv: [sort_key(v) for v in kv[0]])
        for values, g in items:
            out.append({"model": model, "keys": tuple(keys), "values": tuple(values),
                        "label": config_label(g.iloc[0], keys), "rows": list(g.index)})
    return pd.DataFrame(out, columns=["model", "keys", "values", "label", "rows"])


def best_runs(runs, metric="mig"):
    """The best ok run of each model by `metric` (highest; lowest for recon,
    tc, loss, gaussian_tc), falling back to mig_hist when the metric is NaN for
    all of a model's runs. A DataFrame, one row per model with an ok run, plus
    a column best_by naming the metric used."""
    rows = []
    ok = runs[runs["status"] == "ok"]
    for model in pd.unique(ok["model"]):
        sub = ok[ok["model"] == model]
        for m in (metric, "mig_hist", "recon"):
            vals = sub[m]
            if vals.notna().any():
                higher = METRIC_INFO.get(m, ("", True))[1] is not False
                i = vals.idxmax() if higher else vals.idxmin()
                r = sub.loc[i].copy()
                r["best_by"] = m
                rows.append(r)
                break
    return pd.DataFrame(rows).reset_index(drop=True)


# ---- summaries --------------------------------------------------------------------

def summarize(runs, metrics=METRICS):
    """Median and interquartile range over seeds per configuration (model and
    the model's swept keys): one row per configuration with columns model,
    config, <swept keys>, n_runs, n_ok, n_failed, seeds, then
    <metric>_median, <metric>_q25, <metric>_q75, <metric>_iqr for each metric
    (over the ok runs; NaN when none is ok)."""
    out = []
    all_keys = []
    confs = configurations(runs)
    for _, c in confs.iterrows():
        for k in c["keys"]:
            if k not in all_keys:
                all_keys.append(k)
    for _, c in confs.iterrows():
        sub = runs.loc[c["rows"]]
        ok = sub[sub["status"] == "ok"]
        rec = {"model": c["model"], "config": c["label"]}
        first = sub.iloc[0]
        for k in all_keys:
            rec[k] = first[k] if k in c["keys"] else (first[k] if k in sub else np.nan)
        rec.update(n_runs=len(sub), n_ok=len(ok), n_failed=len(sub) - len(ok),
                   seeds=" ".join(str(int(s)) for s in sorted(sub["seed"])))
        for m in metrics:
            v = ok[m].dropna().to_numpy(dtype=float) if m in ok else np.array([])
            if len(v):
                q25, med, q75 = np.percentile(v, [25, 50, 75])
            else:
                q25 = med = q75 = np.nan
            rec[f"{m}_median"] = med
            rec[f"{m}_q25"] = q25
            rec[f"{m}_q75"] = q75
            rec[f"{m}_iqr"] = q75 - q25
        out.append(rec)
    return pd.DataFrame(out)


def describe_failures(runs):
    """One line per run that is not ok: '#3 betavae beta=4 seed=1: failed
    (error text)'."""
    lines = []
    for _, r in runs[runs["status"] != "ok"].iterrows():
        keys = label_keys(runs, r["model"])
        err = f" ({r['error']})" if r["error"] else ""
        lines.append(f"#{int(r['index'])} {config_label(r, keys)} seed={int(r['seed'])}: "
                     f"{r['status']}{err}")
    return lines
