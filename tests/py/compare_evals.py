#!/usr/bin/python3
"""compare_evals.py RESULTS.h5 [EVALUATION]: every /evals row of the given
evaluation number (default: every row) against the /runs row of the same
(run_id, attempt), bit for bit: every metric column, every per-factor column
and the /detail arrays (mi, mig, swap_acc, traversal). Prints one line per
difference and "N evaluations equal" at the end; exit 0 when all are equal,
1 otherwise (also when there is no /evals row to compare)."""
import sys

import h5py
import numpy as np

from untangle import io


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def main(path, evaluation=None):
    runs = io.runs_table(path)
    with h5py.File(path, "r", locking=False) as f:
        evals = f["evals"][()] if "evals" in f else np.zeros(0, dtype=runs.dtype)
        evals = evals[evals["status"] != b""] if len(evals) else evals
        cols = list(runs.dtype.names)
        metric_cols = io.metric_names(cols)
        metric_cols += [c for c in cols if c.startswith(("mig_", "swap_acc_")) and
                        c != "mig_hist"]
        n, bad = 0, 0
        for ev in evals:
            if evaluation is not None and int(ev["evaluation"]) != evaluation:
                continue
            run = runs[(runs["run_id"] == ev["run_id"]) & (runs["attempt"] == ev["attempt"])]
            rid = ev["run_id"].decode()
            if len(run) != 1:
                print(f"{rid}: {len(run)} /runs rows for attempt {ev['attempt']}")
                bad += 1
                continue
            for c in metric_cols:
                if not same(run[0][c], ev[c]):
                    print(f"{rid}: {c}: /runs {run[0][c]!r} /evals {ev[c]!r}")
                    bad += 1
            g0 = f["detail"][f"{rid}_{ev['attempt']}"]
            g1 = f["detail"][f"{rid}_{ev['attempt']}_e{ev['evaluation']}"]
            for k in ("mi", "mig", "swap_acc", "traversal"):
                if (k in g0) != (k in g1) or (k in g0 and not same(g0[k][()], g1[k][()])):
                    print(f"{rid}: /detail {k} differs")
                    bad += 1
            n += 1
    if n == 0:
        print("no /evals row to compare")
        return 1
    print(f"{n} evaluations equal" if bad == 0 else f"{bad} differences in {n} evaluations")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
