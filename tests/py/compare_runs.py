#!/usr/bin/python3
"""compare_runs.py A.h5 B.h5: the /runs tables of two results files hold
exactly one ok row per index, the same indices, and every metric and
configuration column equal bit for bit (rank, host and timings aside).
Reads through untangle.io (analysis/ on PYTHONPATH)."""
import sys

import numpy as np

from untangle import io

SKIP = {"rank", "host", "wall_s", "train_s", "eval_s", "imgs_per_s", "attempt"}


def ok_rows(path):
    runs = io.runs_table(path)
    rows = runs[runs["status"] == b"ok"]
    idx = rows["index"]
    if len(set(idx.tolist())) != len(idx):
        sys.exit(f"{path}: more than one ok row for an index")
    return {int(r["index"]): r for r in rows}, runs.dtype.names


def main():
    a, names = ok_rows(sys.argv[1])
    b, _ = ok_rows(sys.argv[2])
    if sorted(a) != sorted(b):
        sys.exit(f"indices differ: {sorted(a)} vs {sorted(b)}")
    for i in sorted(a):
        for n in names:
            if n in SKIP:
                continue
            x, y = a[i][n], b[i][n]
            if isinstance(x, (bytes, np.bytes_)):
                same = x == y
            else:
                same = np.asarray(x).tobytes() == np.asarray(y).tobytes()
            if not same:
                sys.exit(f"index {i}: column {n} differs: {x!r} vs {y!r}")
    print(f"{len(a)} indices, every column equal")


main()
