#!/usr/bin/python3
"""Check an untangle results file, read through untangle.io (the package in
analysis/; tests/it/lib.sh and tests/unit/test_results.c put analysis/ on
PYTHONPATH), against what its writer expected.

    /usr/bin/python3 tests/py/read_results.py RESULTS.h5                 # summary
    /usr/bin/python3 tests/py/read_results.py RESULTS.h5 --expect X.json # + checks

Exit status: 0 ok, 1 a check failed, 77 h5py/pandas/numpy missing (skip).

The layout is documented once, at the top of src/results/results_impl.h; the
checks: every row the writer reported, once, with its values; strings
decoded; statuses known; curve points and detail shapes per row; the mi
matrix's factors attribute naming the file's mig_<factor> columns; the root
attributes present.
"""
import json
import math
import sys

STATUSES = {"ok", "failed", "diverged", "timeout", "interrupted"}


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
    from untangle import io
    problems = []
    runs = io.load_attempts(path, raw=True)
    curves = io.load_curves(path, all_attempts=True)
    meta = io.load_meta(path)
    factors = io.factor_names(runs.columns)
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
        n_curve = int(((curves["grid_index"] == want["index"]) &
                       (curves["attempt"] == want["attempt"])).sum())
        if "curves" in want and n_curve != want["curves"]:
            problems.append(f"{where}: {n_curve} curve points, expected {want['curves']}")
        run_id = got["run_id"].decode() if isinstance(got["run_id"], bytes) else got["run_id"]
        d = io.load_detail(path, run_id, want["attempt"])
        for name, shape in (("mi", want.get("mi_shape")),
                            ("traversal", want.get("traversal_shape"))):
            if shape is None:
                if d[name] is not None:
                    problems.append(f"{where}: unexpected {name}")
            elif d[name] is None or list(d[name].shape) != shape:
                problems.append(f"{where}: {name} shape "
                                f"{None if d[name] is None else list(d[name].shape)}, "
                                f"expected {shape}")
        if d["mi"] is not None and d["factors"] != factors:
            problems.append(f"{where}: mi factors attribute {d['factors']}")
        if not np.array_equal(np.isnan(d["mig"]),
                              np.isnan(np.array([got[f"mig_{k}"] for k in factors],
                                                dtype=float))):
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
        from untangle import io
    except ImportError as exc:
        if exc.name not in ("h5py", "numpy", "pandas"):
            raise  # the package itself is missing: analysis/ is not on PYTHONPATH
        print(f"read_results.py: skipped: {exc}", file=sys.stderr)
        return 77
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--expect"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = argv[1]
    runs = io.load_attempts(path, raw=True)
    meta = io.load_meta(path)
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
