#!/usr/bin/python3
"""Read an untangle results file with h5py into pandas, and check it.

    /usr/bin/python3 tests/py/read_results.py RESULTS.h5                 # summary
    /usr/bin/python3 tests/py/read_results.py RESULTS.h5 --expect X.json # + checks

Exit status: 0 ok, 1 a check failed, 77 h5py/pandas/numpy missing (skip).

Layout (src/results/results.c documents it in full; names are a contract):

  /  attributes: format_version (int), untangle_version, sweep_name,
     sweep_yaml (full text of the YAML the file was created with), sweep_hash
     (uint64), created (ISO 8601 UTC), hdf5_version, library_versions.
     String attributes are variable-length: h5py returns str.
  /sweeps   one row per sweep YAML used (row 0 = the creating one):
            opened, sweep_name, sweep_hash, untangle_version, library_versions,
            sweep_yaml.
  /runs     one row per finished attempt: index, run_id, attempt, model, arch,
            every configuration key (name, image_size, path, steps, ..., seed;
            -1 / NaN / "" where a key does not apply; list keys as text like
            "[2, 2]"), status, error, rank, host, wall_s, train_s, eval_s,
            imgs_per_s, steps_done, the metrics (recon, kl, elbo, tc, mi, dwkl,
            mig, mig_hist, gaussian_tc, swap_acc, loss; NaN where not computed),
            mig_<factor> and swap_acc_<factor> for shape, scale, orientation,
            posX, posY. Fixed-length strings come back as bytes: decode them.
            A row with an EMPTY status is not a row (a killed writer can leave
            zero rows at the end): skip it, as load_runs does.
  /curves   long format: index, run_id, attempt, step, name, value.
  /detail/<run_id>_<attempt>   a group per row: mi (n_units, 5) float32 with
            attribute factors, mig (5), swap_acc (5), traversal (H, W) uint8
            (mi and traversal absent when the run made none).
"""
import json
import math
import sys

STATUSES = {"ok", "failed", "diverged", "timeout", "interrupted"}


def _decode(df):
    """Fixed-length string columns (bytes) -> str."""
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                       for v in df[col]]
    return df


def load_runs(path):
    """/runs as a DataFrame: one row per valid attempt, strings decoded."""
    import h5py
    import pandas as pd
    with h5py.File(path, "r") as f:
        data = f["runs"][()]
    df = _decode(pd.DataFrame.from_records(data))
    if len(df):
        df = df[df["status"] != ""].reset_index(drop=True)
    return df


def load_curves(path):
    """/curves as a long DataFrame (index, attempt, step, name, value)."""
    import h5py
    import pandas as pd
    with h5py.File(path, "r") as f:
        data = f["curves"][()]
    return _decode(pd.DataFrame.from_records(data))


def load_meta(path):
    """Root attributes as a dict (str values, ints for the numbers)."""
    import h5py
    with h5py.File(path, "r") as f:
        out = {}
        for k, v in f.attrs.items():
            out[k] = v.decode() if isinstance(v, bytes) else v
        out["sweeps"] = [
            {n: (r[n].decode() if isinstance(r[n], bytes) else r[n]) for n in r.dtype.names}
            for r in f["sweeps"][()]
        ]
    return out


def load_detail(path, run_id, attempt):
    """The detail of one attempt: dict of numpy arrays (absent ones missing)."""
    import h5py
    with h5py.File(path, "r") as f:
        g = f["detail"][f"{run_id}_{attempt}"]
        out = {name: g[name][()] for name in g}
        if "mi" in g:
            out["factors"] = [s.decode() if isinstance(s, bytes) else s
                              for s in g["mi"].attrs["factors"]]
    return out


def _same(want, got):
    if want is None:  # JSON null: NaN expected
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, float) and isinstance(got, float):
        return got == want or abs(got - want) <= 1e-12 * max(1.0, abs(want))
    return got == want


def check(path, expect):
    """expect: {"rows": [{column: value, ..., "curves": n, "mi_shape": [..],
    "traversal_shape": [..]}], "sweep_name": .., "n_sweeps": ..}. Returns the
    list of problems."""
    import numpy as np
    problems = []
    runs = load_runs(path)
    curves = load_curves(path)
    meta = load_meta(path)
    rows = expect.get("rows", [])
    if len(runs) != len(rows):
        problems.append(f"{len(runs)} rows, expected {len(rows)}")
    keys = list(zip(runs["run_id"], runs["attempt"]))
    if len(set(keys)) != len(keys):
        problems.append("a (run_id, attempt) appears twice")
    for col in ("run_id", "model", "arch", "status", "error", "host", "discrete", "chunks"):
        bad = [v for v in runs[col] if not isinstance(v, str)]
        if bad:
            problems.append(f"column {col} not decoded to str: {bad[:3]}")
    for s in runs["status"]:
        if s not in STATUSES:
            problems.append(f"bad status {s!r}")
    for want in rows:
        sel = runs[(runs["index"] == want["index"]) & (runs["attempt"] == want["attempt"])]
        where = f"row {want['index']}_{want['attempt']}"
        if len(sel) != 1:
            problems.append(f"{where}: {len(sel)} rows, expected 1")
            continue
        got = sel.iloc[0]
        for col, v in want.items():
            if col in ("curves", "mi_shape", "traversal_shape"):
                continue
            g = got[col]
            g = g.item() if hasattr(g, "item") else g
            if not _same(v, g):
                problems.append(f"{where}: {col} = {g!r}, expected {v!r}")
        n_curve = int(((curves["index"] == want["index"]) &
                       (curves["attempt"] == want["attempt"])).sum())
        if "curves" in want and n_curve != want["curves"]:
            problems.append(f"{where}: {n_curve} curve points, expected {want['curves']}")
        run_id = got["run_id"].decode() if isinstance(got["run_id"], bytes) else got["run_id"]
        d = load_detail(path, run_id, want["attempt"])
        for name, shape in (("mi", want.get("mi_shape")),
                            ("traversal", want.get("traversal_shape"))):
            if shape is None:
                if name in d:
                    problems.append(f"{where}: unexpected {name}")
            elif name not in d or list(d[name].shape) != shape:
                problems.append(f"{where}: {name} shape "
                                f"{None if name not in d else list(d[name].shape)}, "
                                f"expected {shape}")
        if "mi" in d and d.get("factors") != ["shape", "scale", "orientation", "posX", "posY"]:
            problems.append(f"{where}: mi factors attribute {d.get('factors')}")
        if not np.array_equal(np.isnan(d["mig"]),
                              np.isnan(np.array([got[f"mig_{k}"] for k in
                                                 ("shape", "scale", "orientation", "posX",
                                                  "posY")], dtype=float))):
            problems.append(f"{where}: detail mig and mig_<factor> columns disagree")
    if "sweep_name" in expect and meta["sweep_name"] != expect["sweep_name"]:
        problems.append(f"sweep_name {meta['sweep_name']!r}")
    if "sweep_yaml" in expect and meta["sweep_yaml"] != expect["sweep_yaml"]:
        problems.append("sweep_yaml differs")
    if "n_sweeps" in expect and len(meta["sweeps"]) != expect["n_sweeps"]:
        problems.append(f"{len(meta['sweeps'])} sweeps, expected {expect['n_sweeps']}")
    for attr in ("format_version", "untangle_version", "created", "hdf5_version",
                 "library_versions", "sweep_hash"):
        if attr not in meta:
            problems.append(f"root attribute {attr} missing")
    return problems


def main(argv):
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        print(f"read_results.py: skipped: {exc}", file=sys.stderr)
        return 77
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--expect"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = argv[1]
    runs = load_runs(path)
    meta = load_meta(path)
    print(f"{path}: sweep {meta['sweep_name']!r}, {len(runs)} rows, "
          f"{len(meta['sweeps'])} sweep YAML(s)")
    if len(runs):
        print(runs[["index", "attempt", "model", "status", "wall_s", "mig"]].to_string())
    if len(argv) == 4:
        with open(argv[3]) as fh:
            expect = json.load(fh)
        problems = check(path, expect)
        for p in problems:
            print("FAIL", p, file=sys.stderr)
        if problems:
            return 1
        print("read_results.py: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
