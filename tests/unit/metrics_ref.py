#!/usr/bin/python3
"""Independent reference for metrics_mig_hist: disentanglement_lib's MIG
(evaluation/metrics/mig.py, utils._histogram_discretize,
utils.discrete_mutual_info, utils.discrete_entropy) in numpy, with
sklearn.metrics.mutual_info_score rewritten from its contingency-table
formula (sklearn is not installed here).

Input file (written by tests/unit/test_metrics.c):
    n D K
    |V_1| ... |V_K|
    n rows: D codes (float32 text) then K factor classes
Output: K per-factor gaps then the MIG, one per line, %.17g.
Usage: metrics_ref.py TABLE
"""
import sys

import numpy as np


def histogram_discretize(target, num_bins=20):
    """utils._histogram_discretize: target (num_codes, n) -> bin ids."""
    discretized = np.zeros_like(target, dtype=np.int64)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def mutual_info_score(labels_true, labels_pred):
    """sklearn.metrics.mutual_info_score (nats) from the contingency table."""
    _, ti = np.unique(labels_true, return_inverse=True)
    _, pi_ = np.unique(labels_pred, return_inverse=True)
    c = np.zeros((ti.max() + 1, pi_.max() + 1), dtype=np.int64)
    np.add.at(c, (ti, pi_), 1)
    if c.shape[0] == 1 or c.shape[1] == 1:
        return 0.0
    n = c.sum()
    nzx, nzy = np.nonzero(c)
    nz = c[nzx, nzy].astype(np.float64)
    a = c.sum(axis=1)
    b = c.sum(axis=0)
    outer = a[nzx].astype(np.int64) * b[nzy].astype(np.int64)
    log_outer = -np.log(outer) + np.log(a.sum()) + np.log(b.sum())
    p = nz / n
    mi = p * (np.log(nz) - np.log(n)) + p * log_outer
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return max(float(mi.sum()), 0.0)


def compute_mig(mus, ys):
    """mig._compute_mig: mus (num_codes, n), ys (num_factors, n)."""
    d = histogram_discretize(mus)
    m = np.zeros((d.shape[0], ys.shape[0]))
    for i in range(d.shape[0]):
        for j in range(ys.shape[0]):
            m[i, j] = mutual_info_score(ys[j, :], d[i, :])
    h = np.array([mutual_info_score(ys[j, :], ys[j, :]) for j in range(ys.shape[0])])
    sorted_m = np.sort(m, axis=0)[::-1]
    gaps = (sorted_m[0, :] - sorted_m[1, :]) / h
    return gaps, float(np.mean(gaps))


def main():
    with open(sys.argv[1]) as fh:
        n, D, K = (int(t) for t in fh.readline().split())
        fh.readline()  # factor sizes: the classes are taken as they are
        rows = np.loadtxt(fh, dtype=np.float64, ndmin=2)
    assert rows.shape == (n, D + K), rows.shape
    mus = rows[:, :D].astype(np.float32).T  # float32, as the encoder's means
    ys = rows[:, D:].astype(np.int64).T
    gaps, mig = compute_mig(mus, ys)
    for g in gaps:
        print("%.17g" % g)
    print("%.17g" % mig)


if __name__ == "__main__":
    main()
