"""What a sweep found, as tables: which keys it varies, its configurations,
the best run of each model, the median and interquartile range over seeds,
and the runs that failed. Works on the DataFrames of untangle.io."""
import math

import numpy as np
import pandas as pd

from untangle import io

__all__ = [
    "METRIC_INFO", "metric_label", "swept_keys", "label_keys", "format_value",
    "config_label", "sort_key", "configurations", "best_runs", "representative_runs",
    "summarize",
    "describe_failures",
]

# name -> (what the metric is, True when higher is better, or None); the
# unit comes from the file (io.Labels.metric_units).
METRIC_INFO = {
    "recon": ("reconstruction NLL", False),
    "kl": ("KL(q(z|x) || p(z))", None),
    "elbo": ("ELBO", True),
    "tc": ("total correlation", False),
    "mi": ("index-code MI", None),
    "dwkl": ("dimension-wise KL", None),
    "mig": ("MIG, Chen et al.", True),
    "mig_hist": ("MIG, histogram estimator", True),
    "gaussian_tc": ("Gaussian TC of the means", False),
    "swap_acc": ("swap accuracy", True),
    "chunk_mig": ("MIG over chunks", True),
    "beta_vae_score": ("BetaVAE score", True),
    "factor_vae_score": ("FactorVAE score", True),
    "dci_disentanglement": ("DCI disentanglement", True),
    "dci_completeness": ("DCI completeness", True),
    "dci_informativeness": ("DCI informativeness", True),
    "sap": ("SAP", True),
    "modularity": ("modularity", True),
    "explicitness": ("explicitness", True),
    "gaussian_wasserstein_corr_norm": ("Gaussian Wasserstein correlation (norm.)", False),
    "mutual_info_score": ("mutual information score", False),
    "disc_acc": ("discrete latent's accuracy on shape", True),
    "loss": ("training loss", False),
}


def metric_label(metric, labels):
    """Axis label of a metric with its unit: 'total correlation (nats)'."""
    title = METRIC_INFO.get(metric, (metric, None))[0]
    unit = labels.metric_units.get(metric)
    return f"{title} ({unit})" if unit else title


# ---- what the sweep varies ----------------------------------------------------------

def swept_keys(runs, model=None):
    """The configuration keys with more than one value among the rows of
    `model` (all rows when None), in the file's column order. Seed, index,
    run_id, status, metrics and timings never count; nor does beta where
    beta64 varies (beta follows from it and the image size)."""
    rows = slice(None) if model is None else runs["model"].to_numpy() == model
    # distinct values by their text, a missing one counting as one value (as
    # nunique(dropna=False)): a report asks this thousands of times, and
    # filtering the frame and pandas' nunique take seven times longer
    out = [k for k in io.config_keys(runs.columns)
           if len(set(map(repr, runs[k].to_numpy(object)[rows]))) > 1]
    if "beta64" in out and "beta" in out:
        out.remove("beta")
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
    """A key's value as short text: 4, 0.001, [3], n/a where missing."""
    if v is None or v is pd.NA:
        return "n/a"
    if isinstance(v, str):
        return v if v else "n/a"
    if isinstance(v, tuple):
        return "[" + ", ".join(str(x) for x in v) + "]"
    if isinstance(v, (float, np.floating)):
        return "n/a" if math.isnan(v) else f"{v:g}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def config_label(row, keys, with_model=True):
    """'betavae beta=4' (or 'betavae' when keys is empty)."""
    parts = [f"{k}={format_value(row[k])}" for k in keys]
    if with_model:
        return " ".join([row["model"]] + ([", ".join(parts)] if parts else []))
    return ", ".join(parts)


def sort_key(v):
    """Order of a key's values: numbers ascending (NaN first), then text."""
    if v is None or v is pd.NA:
        return (0, -math.inf, "")
    if isinstance(v, str):
        return (1, 0.0, v)
    if isinstance(v, tuple):
        return (2, 0.0, format_value(v))
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


def representative_runs(runs, metric="mig"):
    """Per model with an ok run: its best configuration by the median of
    `metric` over seeds (highest; lowest where lower is better), and within
    it the seed at the median (the lower one for an even count), so that a
    figure of one run shows a typical seed, not the luckiest. Falls back to
    mig_hist and recon as best_runs does. A DataFrame like best_runs', with
    best_by and n_seeds."""
    rows = []
    ok = runs[runs["status"] == "ok"]
    confs = configurations(ok)
    for model in pd.unique(ok["model"]):
        mine = confs[confs["model"] == model]
        for m in (metric, "mig_hist", "recon"):
            higher = METRIC_INFO.get(m, ("", True))[1] is not False
            med = [ok.loc[r, m].dropna().median() if ok.loc[r, m].notna().any() else np.nan
                   for r in mine["rows"]]
            if not any(np.isfinite(v) for v in med):
                continue
            med = np.array(med, float)
            best = int(np.nanargmax(med) if higher else np.nanargmin(med))
            sub = ok.loc[mine["rows"].iloc[best]]
            sub = sub[sub[m].notna()].sort_values(m, kind="stable")
            r = sub.iloc[(len(sub) - 1) // 2].copy()
            r["best_by"], r["n_seeds"] = m, len(sub)
            rows.append(r)
            break
    return pd.DataFrame(rows).reset_index(drop=True)


# ---- summaries --------------------------------------------------------------------

def summarize(runs, metrics=None):
    """Median and interquartile range over seeds per configuration (model and
    the model's swept keys): one row per configuration with columns model,
    config, <swept keys>, n_runs, n_ok, n_failed, seeds, then
    <metric>_median, <metric>_q25, <metric>_q75, <metric>_iqr for each metric
    (over the ok runs; NaN when none is ok). metrics: the file's metric
    columns by default."""
    if metrics is None:
        metrics = io.metric_names(runs.columns)
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


# Student's t quantile t(0.975, df) for df = 1..30; 1.96 beyond.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
        2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
        2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci(y):
    """(mean, half width of the 95 % t interval; NaN for one value)."""
    y = np.asarray(y, float)
    n = len(y)
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(y[0]), math.nan
    t = T975[n - 2] if n - 1 <= len(T975) else 1.96
    return float(y.mean()), float(t * y.std(ddof=1) / math.sqrt(n))


def fmt_ci(y):
    """'0.290 ± 0.033' (mean ± half width of the 95 % t interval; decimals
    3, 2 or 1 as the mean is below 1, 10 or not), or the one value, or 'n/a'."""
    y = np.asarray([v for v in y if np.isfinite(v)], float)
    mu, h = mean_ci(y)
    if math.isnan(mu):
        return "n/a"
    f = "{:.1f}" if abs(mu) >= 10 else "{:.2f}" if abs(mu) >= 1 else "{:.3f}"
    return f.format(mu) + ("" if math.isnan(h) else f" ± {f.format(h)}")


def sign_test(d):
    """Two-sided exact sign test of paired differences d (zeros dropped):
    (positives, negatives, p)."""
    d = [v for v in d if np.isfinite(v) and v != 0]
    n, k = len(d), sum(1 for v in d if v > 0)
    if n == 0:
        return 0, 0, math.nan
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2 ** n
    return k, n - k, min(1.0, 2 * tail)


def has_values(runs, metric):
    """True when some ok run has a finite value of metric."""
    ok = runs[runs["status"] == "ok"]
    return metric in ok and bool(np.isfinite(ok[metric].to_numpy(float)).any())


def claim_metrics(runs):
    """The measures a study's claims rest on: Chen's MIG where the models
    have a posterior, else the chunk MIG and swap accuracy (DSD's codes), and
    disc_acc where a discrete latent exists; those with values."""
    out = ["mig"] if has_values(runs, "mig") else [
        m for m in ("chunk_mig", "swap_acc") if has_values(runs, m)]
    return out + (["disc_acc"] if has_values(runs, "disc_acc") else [])


def mean_ci_table(runs, metrics=None):
    """Markdown lines: per configuration, the number of ok seeds and each
    metric's mean over them ± the half width of its 95 % t interval (by
    default the claim_metrics, recon and kl)."""
    if metrics is None:
        metrics = claim_metrics(runs) + [m for m in ("recon", "kl") if has_values(runs, m)]
    ok = runs[runs["status"] == "ok"]
    lines = ["| configuration | seeds | " + " | ".join(metrics) + " |",
             "|---|---:|" + "---:|" * len(metrics)]
    for _, c in configurations(ok).iterrows():
        sub = ok.loc[c["rows"]]
        lines.append(f"| {c['label']} | {len(sub)} | " +
                     " | ".join(fmt_ci(sub[m].to_numpy(float)) for m in metrics) + " |")
    return lines


def _by_seed(ok, rows_a, rows_b, metric):
    """b's metric minus a's for each seed both have, in ascending seed order."""
    m = ok.loc[rows_a, ["seed", metric]].merge(
        ok.loc[rows_b, ["seed", metric]], on="seed", suffixes=("_a", "_b")).sort_values("seed")
    return (m[f"{metric}_b"] - m[f"{metric}_a"]).to_numpy(float)


def _difference_line(what, at, d, each=None):
    pos, neg, p = sign_test(d)
    if each is None:
        each = " ".join(f"{v:+.3f}" for v in d)
    p = "n/a" if math.isnan(p) else f"{p:.3g}"  # every difference zero
    return f"| {what} | {at} | {each} | {fmt_ci(d)} | {pos} of {pos + neg} | {p} |"


def paired_table(runs, metric="mig"):
    """Markdown lines of differences in metric at equal seed: every two
    methods that sweep the same keys at the same values (betatcvae against
    betavae at equal beta64; the later method minus the earlier in file order,
    and over all the values they share when there are several), and within a
    method, each configuration against its first (dsd's supervision 1
    against 0). Empty when nothing pairs up."""
    ok = runs[runs["status"] == "ok"]
    confs = configurations(ok)
    models = list(pd.unique(ok["model"]))
    lines = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            if label_keys(ok, a) != label_keys(ok, b):
                continue
            of_b = {c["values"]: c["rows"] for _, c in confs[confs["model"] == b].iterrows()}
            pooled = []
            for _, c in confs[confs["model"] == a].iterrows():
                d = _by_seed(ok, c["rows"], of_b.get(c["values"], []), metric)
                if len(d):
                    at = ", ".join(f"{k}={format_value(v)}" for k, v in zip(c["keys"], c["values"]))
                    lines.append(_difference_line(f"{b} − {a}", at, d))
                    pooled.append(d)
            if len(pooled) > 1:
                d = np.concatenate(pooled)
                lines.append(_difference_line(f"{b} − {a}", f"all {len(pooled)} values",
                                              d, f"the {len(d)} pairs above"))
    for m in models:
        keys = swept_keys(ok, m)
        own = confs[confs["model"] == m]
        if not keys or len(own) < 2:
            continue
        base = own.iloc[0]

        def name(c):
            return ", ".join(f"{k}={format_value(c['values'][c['keys'].index(k)])}"
                             for k in keys)
        for _, c in own.iloc[1:].iterrows():
            d = _by_seed(ok, base["rows"], c["rows"], metric)
            if len(d):
                lines.append(_difference_line(f"{name(c)} − {name(base)}", m, d))
    if lines:
        lines = [f"| {metric}: difference | at | per seed (ascending seed) | mean ± 95 % | "
                 "positive | sign test p |", "|---|---|---|---:|---:|---:|"] + lines
    return lines


def variance_table(runs, metrics):
    """Markdown lines: how much of each metric's spread over the ok runs lies
    between methods, between a method's configurations (its hyperparameter
    values) and between the seeds of one configuration, as shares of the total
    sum of squares (Locatello et al.'s question). Empty with one method."""
    ok = runs[runs["status"] == "ok"]
    if ok["model"].nunique() < 2:
        return []
    conf_of = pd.Series(index=ok.index, dtype=object)
    for _, c in configurations(ok).iterrows():
        conf_of[c["rows"]] = c["label"]
    lines = ["| metric | runs | between methods | between values of a method | "
             "between seeds |", "|---|---:|---:|---:|---:|"]
    for m in metrics:
        x = ok[m].astype(float)
        keep = np.isfinite(x)
        x, model, conf = x[keep], ok["model"][keep], conf_of[keep]
        total = float(((x - x.mean()) ** 2).sum())
        if len(x) < 2 or total == 0:
            continue
        m_mean = x.groupby(model).transform("mean")
        c_mean = x.groupby(conf).transform("mean")
        shares = [((m_mean - x.mean()) ** 2).sum(), ((c_mean - m_mean) ** 2).sum(),
                  ((x - c_mean) ** 2).sum()]
        lines.append(f"| {m} | {len(x)} | " +
                     " | ".join(f"{100 * v / total:.0f} %" for v in shares) + " |")
    return lines if len(lines) > 2 else []


def learning_table(runs, curves, names=("eval.mig", "eval.recon", "eval.kl")):
    """Markdown lines: per configuration and evaluation step (eval_every),
    the mean over the ok seeds ± 95 % of each learning curve in names. Empty
    when the file has no learning curves."""
    ok = runs[runs["status"] == "ok"]
    c = curves[curves["name"].isin(names)]
    c = c.merge(ok[["run_id", "attempt"]], on=["run_id", "attempt"])  # the ok attempts'
    if c.empty:
        return []
    lines = ["| configuration | step | " + " | ".join(n.removeprefix("eval.") for n in names)
             + " |", "|---|---:|" + "---:|" * len(names)]
    for _, conf in configurations(ok).iterrows():
        ids = set(ok.loc[conf["rows"], "run_id"])
        sub = c[c["run_id"].isin(ids)]
        for step in sorted(pd.unique(sub["step"])):
            at = sub[sub["step"] == step]
            lines.append(f"| {conf['label']} | {int(step)} | " + " | ".join(
                fmt_ci(at[at["name"] == n]["value"].to_numpy(float)) for n in names) + " |")
    return lines


def describe_failures(runs):
    """One line per run that is not ok: '#3 betavae beta=4 seed=1: failed
    (error text)'."""
    lines = []
    for _, r in runs[runs["status"] != "ok"].iterrows():
        keys = label_keys(runs, r["model"])
        err = f" ({r['error']})" if r["error"] else ""
        lines.append(f"#{int(r['grid_index'])} {config_label(r, keys)} seed={int(r['seed'])}: "
                     f"{r['status']}{err}")
    return lines
