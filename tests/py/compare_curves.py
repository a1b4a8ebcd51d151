#!/usr/bin/python3
"""compare_curves.py A.h5 B.h5: the training curves of the runs both files
chose (load_curves: each run's ok attempt) hold the same points, every value
equal bit for bit, matched by run id, step and name (attempt numbers may
differ between launches). Reads through untangle.io (analysis/ on
PYTHONPATH)."""
import sys

import numpy as np

from untangle import io


def points(path):
    df = io.load_curves(path)
    out = {}
    for run_id, step, name, value in zip(df["run_id"], df["step"], df["name"], df["value"]):
        out[(run_id, int(step), name)] = np.float64(value).tobytes()
    return out


def main():
    a, b = points(sys.argv[1]), points(sys.argv[2])
    if not a:
        sys.exit(f"{sys.argv[1]}: no curve points")
    if sorted(a) != sorted(b):
        sys.exit(f"the curves hold other points: {len(a)} vs {len(b)}")
    for k in sorted(a):
        if a[k] != b[k]:
            x, y = np.frombuffer(a[k])[0], np.frombuffer(b[k])[0]
            sys.exit(f"run {k[0]} step {k[1]} {k[2]}: {x!r} vs {y!r}")
    print(f"{len(a)} curve points, every value equal")


main()
