"""The one reader of an untangle results file (HDF5): pandas and numpy out.

    from untangle import io
    runs = io.load_runs("results/quick.h5")         # one row per run
    runs.groupby(["model", "beta"])["mig"].median()

The layout is the contract of docs/architecture.md section 7, written by
src/results/ (its top comment documents every column):

  /  attributes: format_version, untangle_version, sweep_name, sweep_yaml,
     sweep_hash, created, hdf5_version, library_versions; newer files also
     key_help, metric_units (JSON objects) and traversal_steps (JSON list).
  /sweeps   one row per sweep YAML used (row 0 = the creating one).
  /runs     one row per finished attempt, in append order: index, run_id,
            attempt, model, the configuration keys (arch ... w_swap,
            lambda_od, lambda_d, then seed; -1 or NaN where a key does not apply, list keys as text
            like "[2, 2]"), status, error, rank, host, timings, steps_done,
            the metrics, then mig_<factor>, swap_acc_<factor> and (files
            since the full-set evaluation) chunk_mig_<factor>.
            Fixed-length strings come back from h5py as bytes; they are
            decoded here. A row whose status is EMPTY is left behind by a
            killed writer and is never valid.
  /curves   long format {index, run_id, attempt, step, name, value}.
  /detail/<run_id>_<attempt>   mi (units, factors) float32 with attribute
            factors, mig (factors), swap_acc (factors), traversal (H, W)
            uint8; mi and traversal absent when the run made none.
  /evals    (files that `untangle eval` wrote into) one row per
            re-evaluation of a run's saved model: the /runs columns of the
            evaluated attempt's row (the eval keys and metrics as measured)
            plus evaluation int32 (1, 2, ... per run; 0 stands for the
            training's own evaluation in /runs). Its detail is
            /detail/<run_id>_<attempt>_e<evaluation>.

What the file says about itself is read from it: the configuration keys,
the metrics and the factors from /runs' column names (config_keys,
metric_names, factor_names), the help text of the keys, the units of the
metrics and the traversal steps from root attributes (load_labels). Files
written before those attributes existed get the FALLBACK_* constants below,
the only copy of those C tables on the Python side.

A run is identified by its run_id (a hash of its configuration); index is its
position in the sweep YAML it ran under, which moves when a resumed sweep's
grid grows. In a file written by one YAML, one run = one index. Files of the
first layout (curves without run_id, /detail/<index>_<attempt>) are read too.

The frames follow pandas' conventions (conventions()): the file's index
column is grid_index, missing values are missing (<NA> in nullable Int64
integer keys, NaN in reals, None in text), list keys are tuples.
load_attempts(raw=True) and runs_table keep the file's own encoding.

The file may still be written by a running sweep: readers open it without
HDF5's file lock, and a read that meets a half-flushed chunk is retried.
"""
import glob
import json
import os
import time
from dataclasses import dataclass

import h5py
import numpy as np
import pandas as pd

__all__ = [
    "UntangleFileError", "Labels", "FALLBACK_FACTORS", "FALLBACK_KEY_HELP",
    "FALLBACK_METRIC_UNITS", "FALLBACK_TRAVERSAL_STEPS", "config_keys", "metric_names",
    "factor_names", "load_labels", "load_meta", "runs_table", "load_attempts", "load_runs",
    "load_curves", "load_detail", "choose_attempts", "attempt_key", "parse_list",
    "writer_pid", "evals_table", "EVAL_KEYS", "conventions",
]

# The configuration keys a re-evaluation may change (section "eval" of the key
# table): a re-evaluation's values replace the training's in load_runs.
EVAL_KEYS = ("images", "samples", "pairs", "encode", "hist_images", "unsup_images")

# ---- fallbacks for files written before the root attributes existed ------------------
# Copies of C tables, used only when the file does not carry them.

# The data set's factors (data_factor_names), for a file whose /runs has no
# swap_acc_<factor> column.
FALLBACK_FACTORS = ("shape", "scale", "orientation", "posX", "posY")
# Help text of the configuration keys (run_keys in src/run/keys.c), for axis
# labels; the root attribute key_help replaces it.
FALLBACK_KEY_HELP = {
    "beta": "KL weight; TC weight in betatcvae",
    "gamma": "capacity / discriminator TC / DWKL weight",
    "alpha": "MI weight",
    "lambda": "Gumbel-softmax temperature",
    "c_max": "capacity, nats",
    "c_z_max": "continuous capacity, nats",
    "c_c_max": "discrete capacity, nats",
    "latent_dim": "continuous latents",
    "lr": "Adam learning rate",
    "steps": "optimiser steps",
    "batch_size": "images / step",
    "supervision": "fraction of labeled pairs",
    "w_swap": "swap loss weight",
    "anneal_steps": "steps",
    "lambda_od": "off-diagonal covariance weight",
    "lambda_d": "diagonal covariance weight",
}
# Unit of each metric (and of the training curves of the same name); the
# root attribute metric_units replaces it.
FALLBACK_METRIC_UNITS = {
    "recon": "nats / image",
    "kl": "nats / image",
    "elbo": "nats / image",
    "tc": "nats",
    "mi": "nats",
    "dwkl": "nats",
    "mig": "normalised, 0..1",
    "mig_hist": "normalised, 0..1",
    "gaussian_tc": "nats",
    "swap_acc": "fraction, 0..1",
    "loss": "nats / image",
    "chunk_mig": "normalised, 0..1",
    "eval_images": "images",
    "disc_acc": "fraction, 0..1",
}
# The values a traversal moves each continuous latent through
# (METRICS_TRAV_STEPS of them from -2.5 to 2.5); the root attribute
# traversal_steps replaces it.
FALLBACK_TRAVERSAL_STEPS = tuple(float(v) for v in np.linspace(-2.5, 2.5, 10))


class UntangleFileError(Exception):
    """The path is missing, not HDF5, or not an untangle results file. The
    message is one line that names the path."""


class _CannotOpen(UntangleFileError):
    """HDF5 refused to open the file. A sweep that is extending the file can
    cause this for a moment (its end of file is past what is on disk yet)."""


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
        raise _CannotOpen(f"{path}: cannot open: {_one_line(exc)}") from None
    if "runs" not in f or "format_version" not in f.attrs:
        f.close()
        raise UntangleFileError(f"{path}: not an untangle results file "
                                "(no /runs dataset or format_version attribute)")
    return f


def _one_line(exc):
    return " ".join(str(exc).split())


def _retry(path, fn, tries=20, wait=0.1):
    """fn(h5py.File) with the file opened fresh on each try: a sweep that is
    flushing a row can make an open or a read fail for a moment. The last
    failure is raised: "cannot open" or "cannot read"."""
    for i in range(tries):
        try:
            f = _open(path)
        except _CannotOpen as exc:
            last = exc
        else:
            try:
                return fn(f)
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                last = UntangleFileError(f"{os.fspath(path)}: cannot read: {_one_line(exc)}")
            finally:
                f.close()
        if i < tries - 1:
            time.sleep(wait * (1 + i // 5))
    raise last


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


# ---- what the columns of /runs say ---------------------------------------------------

def config_keys(columns):
    """The configuration keys among /runs' columns, in the file's order: those
    between model and status, seed excepted (run_keys in src/run/keys.c)."""
    cols = list(columns)
    if "model" not in cols or "status" not in cols:
        return []
    return [c for c in cols[cols.index("model") + 1:cols.index("status")] if c != "seed"]


def factor_names(columns):
    """The data set's factors, from the swap_acc_<factor> columns (in the
    order of the mi matrix's columns); FALLBACK_FACTORS without them."""
    out = [c[len("swap_acc_"):] for c in columns if c.startswith("swap_acc_")]
    return out or list(FALLBACK_FACTORS)


# Columns the readers add to /runs' own (load_attempts, load_runs).
_ADDED = ("row", "n_attempts", "evaluation")


def metric_names(columns):
    """The metric columns (run_metric_names): those between steps_done and the
    first per-factor column (mig_<factor>, swap_acc_<factor>)."""
    cols = [c for c in columns if c not in _ADDED]
    if "steps_done" not in cols:
        return []
    per_factor = {f"{m}_{f}" for m in ("mig", "swap_acc") for f in factor_names(cols)}
    out = []
    for c in cols[cols.index("steps_done") + 1:]:
        if c in per_factor:
            break
        out.append(c)
    return out


@dataclass(frozen=True)
class Labels:
    """What a results file says about its own columns, for tables and plots."""
    config_keys: tuple      # configuration keys, seed excepted
    metrics: tuple          # metric columns
    factors: tuple          # data set factors
    key_help: dict          # key -> help text (keys without help are absent)
    metric_units: dict      # metric / curve name -> unit
    traversal_steps: tuple  # the values each continuous latent is moved through

    def key_label(self, key):
        """'beta (KL weight; TC weight in betatcvae)', or the key alone."""
        h = self.key_help.get(key)
        return f"{key} ({h})" if h else key


def _json_attr(attrs, name, fallback):
    """Root attribute `name` parsed from JSON, or fallback when the file was
    written before the attribute existed (or holds something unreadable)."""
    if name not in attrs:
        return fallback
    try:
        return json.loads(_attr(attrs[name]))
    except (TypeError, ValueError):
        return fallback


def load_labels(path):
    """The Labels of a results file: keys, metrics and factors from /runs'
    columns; key_help, metric_units and traversal_steps from the root
    attributes of those names, or the FALLBACK_* constants for older files."""
    def read(f):
        cols = f["runs"].dtype.names or ()
        help_ = _json_attr(f.attrs, "key_help", FALLBACK_KEY_HELP)
        units = _json_attr(f.attrs, "metric_units", FALLBACK_METRIC_UNITS)
        steps = _json_attr(f.attrs, "traversal_steps", FALLBACK_TRAVERSAL_STEPS)
        return Labels(config_keys=tuple(config_keys(cols)), metrics=tuple(metric_names(cols)),
                      factors=tuple(factor_names(cols)), key_help=dict(help_),
                      metric_units=dict(units), traversal_steps=tuple(float(v) for v in steps))
    return _retry(path, read)


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


def runs_table(path):
    """The valid rows of /runs as stored: a numpy structured array in append
    order, strings as bytes, rows with an empty status (left by a killed
    writer) skipped. For bit-for-bit comparisons; load_attempts is the
    DataFrame."""
    data = _retry(path, lambda f: f["runs"][()])
    return data[data["status"] != b""] if len(data) else data


def _attempts(path):
    """Every valid row of /runs in append order as stored (strings decoded),
    plus row (append order, a tie-breaker)."""
    data = runs_table(path)
    df = pd.DataFrame.from_records(data) if len(data) else \
        pd.DataFrame(np.zeros(0, dtype=data.dtype))
    _decode(df)
    df["row"] = np.arange(len(df), dtype=np.int64)
    return df


def load_attempts(path, raw=False):
    """Every valid row of /runs (one per finished attempt) in append order, as a
    DataFrame (rows with an empty status are skipped), with the pandas
    conventions of load_runs, and row (append order). raw=True keeps the
    file's own encoding (index, -1, "" and "[2, 2]" as stored) for tools that
    compare rows with the file."""
    df = _attempts(path)
    return df if raw else conventions(df)


def evals_table(path):
    """The valid rows of /evals (re-evaluations by `untangle eval`) as stored,
    a numpy structured array in append order; None when the file has no
    /evals."""
    data = _retry(path, lambda f: f["evals"][()] if "evals" in f else None)
    if data is None:
        return None
    return data[data["status"] != b""] if len(data) else data


def load_runs(paths, evaluations="latest"):
    """One row per run (run_id; in a file written by one sweep YAML, one per
    grid index): its latest attempt with status ok, or its last attempt when
    none is ok. paths: a results file, a list of them, or a glob pattern
    ("out/shard-*.h5"); the rows of several files are concatenated in the
    order given (sorted for a glob), and the column file says where each row
    comes from.

    Columns follow pandas' conventions (see conventions()): those of /runs
    with grid_index for the file's index, missing values missing (integer
    keys nullable Int64 with <NA>, real keys and metrics float64 with NaN,
    text None, list keys tuples or None), plus n_attempts (the run's
    attempts in its file), evaluation and file. Sorted by grid_index within
    a file. An empty DataFrame (with the columns) when no file holds a valid
    row yet.

    Re-evaluations (/evals, `untangle eval`): by default ("latest") a run's
    row shows its latest evaluation: the metric and per-factor columns, the
    eval keys (EVAL_KEYS) and eval_s of its highest evaluation number replace
    the training's, and evaluation says which (0: the training's own).
    evaluations="all" returns one row per evaluation of each chosen attempt
    (0 first), sorted by index and evaluation."""
    if evaluations not in ("latest", "all"):
        raise ValueError(f"evaluations must be 'latest' or 'all', not {evaluations!r}")
    frames = []
    for path in _paths(paths):
        df = conventions(_runs_of(path, evaluations))
        df["file"] = os.fspath(path)
        frames.append(df)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _paths(paths):
    """The files that load_runs' argument names: one path, a list, or a glob."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        p = os.fsdecode(paths)
        if not os.path.exists(p) and glob.has_magic(p):
            found = sorted(glob.glob(p))
            if not found:
                raise UntangleFileError(f"{p}: no file matches")
            return found
        return [p]
    out = [q for p in paths for q in _paths(p)]
    if not out:
        raise UntangleFileError("load_runs: an empty list of files")
    return out


def _runs_of(path, evaluations):
    """load_runs of one file, in the file's own encoding."""
    runs = choose_attempts(_attempts(path))
    runs["evaluation"] = np.zeros(len(runs), dtype=np.int32)
    ev = evals_table(path)
    if ev is None or len(ev) == 0 or len(runs) == 0:
        return runs
    ev = _decode(pd.DataFrame.from_records(ev))
    cols = list(runs.columns)
    per_factor = [c for c in cols
                  if c.startswith(("mig_", "swap_acc_", "chunk_mig_")) and c != "mig_hist"]
    measured = [c for c in metric_names(cols) + per_factor + list(EVAL_KEYS) + ["eval_s"]
                if c in ev]
    out = []
    for _, run in runs.iterrows():
        mine = ev[(ev["run_id"] == run["run_id"]) & (ev["attempt"] == run["attempt"])]
        mine = mine.sort_values("evaluation", kind="stable")
        if evaluations == "all":
            out.append(run.to_frame().T)
        for _, e in (mine.tail(1) if evaluations == "latest" else mine).iterrows():
            r = run.copy()
            for c in measured:
                r[c] = e[c]
            r["evaluation"] = int(e["evaluation"])
            out.append(r.to_frame().T)
        if evaluations == "latest" and len(mine) == 0:
            out.append(run.to_frame().T)
    df = pd.concat(out, ignore_index=True).astype(runs.dtypes.to_dict())
    df = df.sort_values(["index", "evaluation"], kind="stable")
    return df.reset_index(drop=True)


def conventions(df):
    """A frame of /runs rows in the file's encoding -> pandas' conventions:
    index renamed grid_index (a column named index would shadow
    DataFrame.index); model "betavae" with a c_max (older files' capacity
    form) renamed "annealedvae"; integer configuration keys nullable Int64 with <NA>
    where the file says -1 (not applicable); empty text None; list keys
    ("[2, 2]") tuples of ints, None where empty ("[]"). Real columns keep
    NaN. Returns a new frame."""
    df = df.rename(columns={"index": "grid_index"})
    # betavae with c_max (the capacity form of files written before
    # 2026-11-29) is annealedvae, as untangle itself resolves it now
    if "model" in df and "c_max" in df and len(df):
        old = (df["model"] == "betavae") & df["c_max"].notna()
        if old.any():
            df = df.copy()
            df.loc[old, "model"] = "annealedvae"
    keys = set(config_keys(df.columns))
    for col in df.columns:
        kind = df[col].dtype.kind
        if col in keys and kind in "iu":
            df[col] = df[col].astype("Int64").mask(df[col] == -1)
        elif kind == "O":
            vals = list(df[col])
            if col in keys and any(isinstance(v, str) and v.startswith("[") for v in vals):
                df[col] = pd.Series([tuple(parse_list(v)) or None for v in vals],
                                    index=df.index, dtype=object)
            else:
                df[col] = pd.Series([None if v == "" else v for v in vals],
                                    index=df.index, dtype=object)
    return df


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
    """The columns that identify an attempt in /curves and /runs (files of the
    first layout have no run_id)."""
    if "run_id" in df:
        return ["run_id", "attempt"]
    return ["grid_index" if "grid_index" in df else "index", "attempt"]


def load_curves(path, all_attempts=False):
    """The training curves as a long DataFrame (grid_index, run_id, attempt, step,
    name, value), names decoded. By default only the attempt load_runs
    chooses for each run; all_attempts=True returns every point in the
    file."""
    def read(f):
        return f["curves"][()] if "curves" in f else None
    data = _retry(path, read)
    if data is None or len(data) == 0:
        return pd.DataFrame({"grid_index": pd.Series(dtype=np.int64),
                             "run_id": pd.Series(dtype=object),
                             "attempt": pd.Series(dtype=np.int32),
                             "step": pd.Series(dtype=np.int64),
                             "name": pd.Series(dtype=object),
                             "value": pd.Series(dtype=np.float64)})
    df = _decode(pd.DataFrame.from_records(data))
    df = df[[c for c in ("index", "run_id", "attempt", "step", "name", "value") if c in df]]
    df = df.rename(columns={"index": "grid_index"})
    key = attempt_key(df)
    if not all_attempts:
        chosen = load_runs(path)[key]
        df = df.merge(chosen, on=key, how="inner")
    order = ["grid_index"] + [k for k in key if k != "grid_index"] + ["name", "step"]
    return df.sort_values(order).reset_index(drop=True)


def load_detail(path, run, attempt=None):
    """The detail of one run as a dict. run: its grid index (int; when runs of
    several sweep YAMLs share an index, the one appended last) or its run_id
    (str). attempt None: the one load_runs chooses. Keys:
      grid_index, attempt, run_id, model, status, latent_dim, n_discrete
      factors   list of the K factor names (columns of mi)
      mi        (units, K) float array, I(unit; factor) in nats, or None;
                units = the latent_dim continuous latents, then one per
                discrete variable
      mig       (K,) per-factor MIG (Chen et al.'s gap / H(v_k))
      swap_acc  (K,) per-factor swap accuracy
      traversal (H, W) uint8 image grid, one row of 10 cells per unit, or None
      kl        (units,) per-unit KL in nats if the file stores it, else None
      row       the run's row of /runs (a pandas Series); with attempt None
                its latest evaluation's (load_runs), whose detail this is
    Raises KeyError when the file holds no such run / attempt."""
    by = "run_id" if isinstance(run, str) else "grid_index"
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
    factors = factor_names(rows.columns)

    def read(f):
        out = {"mi": None, "traversal": None, "kl": None,
               "mig": np.full(len(factors), np.nan), "swap_acc": np.full(len(factors), np.nan),
               "factors": list(factors)}
        names = [f"{row['run_id']}_{attempt}", f"{int(row['grid_index'])}_{attempt}"]
        if int(row.get("evaluation", 0) or 0) > 0:  # a re-evaluation's own detail
            names.insert(0, f"{row['run_id']}_{attempt}_e{int(row['evaluation'])}")
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
    discrete = row.get("discrete") or ()
    latent_dim = row["latent_dim"]
    out.update(grid_index=int(row["grid_index"]), attempt=attempt, run_id=row["run_id"],
               model=row["model"], status=row["status"],
               latent_dim=0 if pd.isna(latent_dim) else int(latent_dim),
               n_discrete=len(discrete), row=row)
    return out


def parse_list(text):
    """A list key's text ("[3, 2]") as a list of ints."""
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


