"""Cross-check of untangle's Chen et al. estimators (src/metrics/entropy.c:
tc, mi, dwkl, the MI matrix and MIG) and of the chunk MIG
(src/metrics/factors.c) against numpy written from the reference code of
Chen et al. 2018 (github.com/rtqichen/beta-tcvae: elbo_decomposition.py's
estimate_entropies and elbo_decomposition, disentanglement_metrics.py's
estimate_entropies and mutual_info_metric_shapes, metric_helpers/mi_metric.py's
compute_metric_shapes) and from the definition of the chunk MIG (plug-in
mutual information of each chunk's tuple of histogram bins, as
disentanglement_lib's discretisation and scikit-learn's mutual_info_score).

build/it/chen_codes (tests/it/chen_codes.c) writes a synthetic encoded set on
the full grid of 4 factors (576 items; 5 Gaussian latents and a categorical
one), its posterior samples, and what untangle computes from them as
run_evaluate calls the estimators: "full" (S >= n: every item's sample, as
full-set mode with every image covered) and "sub" (S = 100, no pick: the first
samples, as subsample mode). The entropies use the same samples here, so
TC, the MI matrix and the gaps must agree to float rounding (untangle
evaluates the log-densities in float32). mi and dwkl are untangle's
per-sample terms; Chen's elbo_decomposition uses the analytic E_x H(q(z|x))
and cross-entropy instead, so those agree within the Monte Carlo error of the
samples (4 standard errors), and exactly with the per-sample formula. Run
from the repository root; $BUILD names the build folder (default build).
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / os.environ.get("BUILD", "build") / "it" / "chen_codes"
sys.path.insert(0, str(ROOT / "tests" / "unit"))
import metrics_ref  # noqa: E402  (disentanglement_lib's discretisation, sklearn's MI)

LOG_2PI = math.log(2.0 * math.pi)
# float32 log-densities in untangle's kernel: the entropies agree to ~1e-7 nats
TOL = 1e-5


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    if not HELPER.exists():
        pytest.skip(f"{HELPER} is missing: build it with `make {HELPER.relative_to(ROOT)}`")
    path = tmp_path_factory.mktemp("chen") / "codes.h5"
    subprocess.run([str(HELPER), str(path), "0"], check=True, timeout=120)
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in f}
    for k in list(out):
        if out[k].shape == (1,):
            out[k] = out[k][0]
    return out


def logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def log_q(d, items, samples):
    """log q(z_s,u | x_n) (len(items), U, len(samples)): lib/dist.py's Normal
    log_density for the Gaussian units (logsigma = lv / 2), log alpha of the
    sampled category for the categorical one."""
    mu = d["mu"][items].astype(np.float64)[:, :, None]
    lv = d["lv"][items].astype(np.float64)[:, :, None]
    z = d["z"][samples].astype(np.float64).T[None]
    g = -0.5 * (LOG_2PI + lv + (z - mu) ** 2 * np.exp(-lv))
    la = np.log(d["alpha"][items].astype(np.float64))
    cat = la[:, d["c"][samples, 0]][:, None, :]
    return np.concatenate([g, cat], axis=1)


def estimate_entropies(d, items, samples):
    """estimate_entropies (elbo_decomposition.py): marginal entropies (U) and
    the joint entropy of the aggregate posterior of items, with samples:
    -log q(z) = log N - logsumexp_n log q(z|x_n), averaged over the samples."""
    lq = log_q(d, items, samples)
    n = len(items)
    marginal = (math.log(n) - logsumexp(lq, axis=0)).mean(axis=1)
    joint = (math.log(n) - logsumexp(lq.sum(axis=1), axis=0)).mean()
    return marginal, joint


def per_sample(d, samples):
    """log q(z_s|x_s) and log p(z_s) of each sample (its own item)."""
    mu, lv, z = (d[k][samples].astype(np.float64) for k in ("mu", "lv", "z"))
    lqx = (-0.5 * (LOG_2PI + lv + (z - mu) ** 2 * np.exp(-lv))).sum(axis=1)
    lqx += np.log(d["alpha"][samples, d["c"][samples, 0]].astype(np.float64))
    lp = (-0.5 * (LOG_2PI + z**2)).sum(axis=1) - math.log(d["alpha"].shape[1])
    return lqx, lp


def analytic(d):
    """elbo_decomposition's analytic terms, averaged over all N items:
    nlogqz_condx = E[-log q(z|x)] (q_dist.NLL: the entropy of q(z|x)) and
    nlogpz = E_q(z|x)[-log p(z)] (prior_dist.NLL), summed over the units (the
    categorical unit: its entropy, and log K for the uniform prior)."""
    lv = d["lv"].astype(np.float64)
    mu = d["mu"].astype(np.float64)
    a = d["alpha"].astype(np.float64)
    nlogqz_condx = (0.5 * (LOG_2PI + 1.0 + lv)).sum(axis=1) - (a * np.log(a)).sum(axis=1)
    nlogpz = (0.5 * (LOG_2PI + mu**2 + np.exp(lv))).sum(axis=1) + math.log(a.shape[1])
    return nlogqz_condx, nlogpz


def mode(d, m):
    n = d["mu"].shape[0]
    S = n if m == "full" else int(d["S_sub"])
    return n, S


@pytest.mark.parametrize("m", ["full", "sub"])
def test_tc_decomposition(d, m):
    n, S = mode(d, m)
    items, samples = np.arange(n), np.arange(min(S, n))
    h_u, h = estimate_entropies(d, items, samples)
    dependence = h_u.sum() - h  # KL(q(z) || prod_j q(z_j))
    assert abs(d[f"{m}_h_joint"] - h) < TOL
    assert abs(d[f"{m}_tc"] - dependence) < TOL, (d[f"{m}_tc"], dependence)
    # untangle's mi and dwkl: the per-sample terms on the same samples
    lqx, lp = per_sample(d, samples)
    assert abs(d[f"{m}_mi"] - (lqx.mean() + h)) < TOL
    assert abs(d[f"{m}_dwkl"] - (-h_u.sum() - lp.mean())) < TOL
    assert abs(d[f"{m}_kl_mc"] - (lqx.mean() - lp.mean())) < 1e-6
    # the analytic KL over all items: elbo_decomposition's analytical_cond_kl
    nlogqz_condx, nlogpz = analytic(d)
    assert abs(d[f"{m}_kl"] - (nlogpz - nlogqz_condx).mean()) < 1e-6


def test_mi_dwkl_against_analytic(d):
    """full: every item's sample once, so Chen's analytic information and
    dimension-wise KL are what untangle's per-sample terms estimate; they
    differ by the Monte Carlo error of one sample per item."""
    n, _ = mode(d, "full")
    h_u, h = estimate_entropies(d, np.arange(n), np.arange(n))
    nlogqz_condx, nlogpz = analytic(d)
    information = -nlogqz_condx.mean() + h
    dimwise_kl = -h_u.sum() + nlogpz.mean()
    lqx, lp = per_sample(d, np.arange(n))
    se_mi = (lqx + nlogqz_condx).std(ddof=1) / math.sqrt(n)
    se_dw = (-lp - nlogpz).std(ddof=1) / math.sqrt(n)
    assert abs(d["full_mi"] - information) < 4 * se_mi, (d["full_mi"], information, se_mi)
    assert abs(d["full_dwkl"] - dimwise_kl) < 4 * se_dw, (d["full_dwkl"], dimwise_kl, se_dw)
    # and the three terms add up to the analytic KL within the same error
    total = d["full_mi"] + d["full_tc"] + d["full_dwkl"]
    assert abs(total - d["full_kl"]) < 4 * (se_mi + se_dw)


@pytest.mark.parametrize("m", ["full", "sub"])
def test_mi_matrix_and_mig(d, m):
    """mutual_info_metric_shapes: H(z_u) against all items, H(z_u | v_k) the
    mean over the values of factor k of the entropies of each value's group
    (its own samples against its own posteriors; the full grid's groups are
    equal, so Chen's 1/|V_k| weights are n_v/n); compute_metric_shapes: the
    MI sorted over the units, clamped at 0, divided by log |V_k|, the gap of
    the top two, mean over the factors in the MIG (shape left out: use)."""
    n, S = mode(d, m)
    f, sizes, use = d["f"], d["sizes"], d["use"].astype(bool)
    K = len(sizes)
    h_u, _ = estimate_entropies(d, np.arange(n), np.arange(min(S, n)))
    cond = np.zeros((K, len(h_u)))
    for k in range(K):
        for v in range(sizes[k]):
            group = np.flatnonzero(f[:, k] == v)  # in item order
            assert len(group) == n // sizes[k]
            hv, _ = estimate_entropies(d, group, group[:min(S, len(group))])
            cond[k] += hv / sizes[k]
    mutual_infos = h_u[None] - cond  # (K, U)
    assert np.abs(d[f"{m}_mi_matrix"] - mutual_infos.T).max() < TOL
    srt = np.clip(np.sort(mutual_infos, axis=1)[:, ::-1], 0, None)
    mi_normed = srt / np.log(sizes)[:, None]
    gaps = mi_normed[:, 0] - mi_normed[:, 1]
    assert np.abs(d[f"{m}_gap"] - gaps).max() < TOL, (d[f"{m}_gap"], gaps)
    mig = gaps[use].mean()
    assert abs(d[f"{m}_mig"] - mig) < TOL
    assert mig > 0.05  # the table is not degenerate: the check has something to see


def test_chunk_mig(d):
    """Plug-in MI of each chunk's tuple of bins (max(20, largest factor)
    equal-width bins per dim, disentanglement_lib's _histogram_discretize on
    the float32 means) with each factor, gaps over the chunks normalised by
    the factor's plug-in entropy, mean over the factors in use."""
    mu, f, sizes = d["mu"], d["f"], d["sizes"]
    bins = max(20, int(sizes.max()))
    K, off = len(sizes), 0
    mi = np.zeros((len(d["chunks"]), K))
    for j, width in enumerate(d["chunks"]):
        b = metrics_ref.histogram_discretize(mu[:, off:off + width].T, bins).T
        _, labels = np.unique(b, axis=0, return_inverse=True)
        for k in range(K):
            mi[j, k] = metrics_ref.mutual_info_score(f[:, k], labels.ravel())
        off += width
    h = np.array([metrics_ref.mutual_info_score(f[:, k], f[:, k]) for k in range(K)])
    assert np.abs(d["chunk_mi"] - mi).max() < 1e-9
    srt = np.sort(mi, axis=0)[::-1]
    gaps = (srt[0] - srt[1]) / h
    assert np.abs(d["chunk_gap"] - gaps).max() < 1e-9
    assert abs(d["chunk_mig"] - gaps[d["use"].astype(bool)].mean()) < 1e-9
