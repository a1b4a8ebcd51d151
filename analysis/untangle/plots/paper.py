"""The figures of the papers, from any results file (ok runs only):

    hyper_<metric>     each metric against each method's hyperparameter:
                       numeric axis (log where the values span a decade),
                       the mean over seeds with its 95 % interval and every
                       seed as a point (Chen et al. 2018, Fig. 4 style)
    box_<metric>       the spread per method x value: a box over the seeds
                       and every seed as a point (Locatello et al. 2019 style)
    spearman           Spearman rank correlation between all metric columns
                       over the ok runs (Locatello et al. 2019, Fig. 2)
    recon_vs           reconstruction against each disentanglement metric,
                       every seed a point
    factors_<metric>   per-factor scores (mig_<factor>, ...): the median
                       over seeds of each configuration

Each is written as PNG and PDF. In every figure a colour is one method and
one thing only; within a method, a darker shade is a larger value of its
hyperparameter. A method for which a metric is NaN everywhere (Chen's MIG
of a deterministic code) is left out of that metric's figures, and the
figure says so; swap accuracy is drawn only beside a dsd run, the one method
that learns to swap a factor's chunk.
"""
import math
import os
import textwrap

import numpy as np
import pandas as pd

from untangle import io, summary as su
from untangle.plots import plt, Line2D

DPI = 200
FORMATS = ("png", "pdf")
# One colour per method, the same in every figure of every report.
METHOD_COLOURS = {"vae": "#7f7f7f", "betavae": "#1f77b4", "betatcvae": "#ff7f0e",
                  "jointvae": "#2ca02c", "dsd": "#d62728", "factorvae": "#9467bd",
                  "dipvae1": "#8c564b", "dipvae2": "#bcbd22", "annealedvae": "#e377c2"}
SPARE_COLOURS = ["#17becf", "#393b79", "#637939", "#843c39", "#7b4173"]
# The key a method's figures put on the x axis when it sweeps several (first present).
PREFERRED_X = ("beta64", "beta", "gamma", "supervision", "lambda", "c_max", "lambda_od", "alpha",
               "c_z_max", "c_c_max", "w_swap", "lambda_d", "latent_dim", "lr", "steps",
               "batch_size", "anneal_steps")
# Not drawn against the hyperparameters: the training loss (its scale
# depends on the method's weights), the ELBO (-(recon + kl)) and the number
# of images the estimators used.
SKIP_METRICS = ("loss", "elbo", "eval_images")
# The metrics that measure disentanglement (recon_vs has one panel each).
DISENTANGLEMENT = ("mig", "mig_hist", "chunk_mig", "swap_acc", "beta_vae_score",
                   "factor_vae_score", "dci_disentanglement", "sap", "modularity", "disc_acc")
# Metrics that only mean something beside a given method: swap accuracy
# measures the swap of a factor's chunk, which only dsd learns to make; the
# discrete latent's accuracy on shape needs jointvae's discrete latent.
NEEDS_METHOD = {"swap_acc": "dsd", "disc_acc": "jointvae"}


def method_colours(methods):
    spare = iter(SPARE_COLOURS * 10)
    return {m: METHOD_COLOURS.get(m) or next(spare) for m in methods}


def shade(colour, t):
    """colour lightened (t = 0) to darkened (t = 1)."""
    from matplotlib.colors import to_rgb
    base = np.array(to_rgb(colour))
    light, dark = base + (1 - base) * 0.6, base * 0.6
    return tuple(light * (1 - t) + dark * t)


def save(fig, out, name, written):
    """name.png and name.pdf; the PNG's path is recorded in written."""
    for ext in FORMATS:
        path = os.path.join(out, f"{name}.{ext}")
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        if ext == "png":
            written.append(path)
    plt.close(fig)


class Study:
    """The ok runs of a results file, drawn by family: the runs of one method
    that give a value to the same of the method's swept keys. A method whose
    grid blocks all set the same keys is one family, named after the method;
    a method with blocks that set different keys (locatello2019.yaml's
    betavae: a block over beta, and the capacity block over c_max with
    gamma, where beta has no value) has one family per set of keys, named
    "method [keys]", each with its own x axis, so that no block is dropped
    for lack of a value on another block's axis. Per family: the
    hyperparameter its figures put on the x axis (None when it sweeps only
    the seed) and the other keys it varies. `methods` lists the families
    (the plotting units), `models` the methods; a family has its method's
    colour."""

    def __init__(self, path, runs):
        self.path = path
        self.labels = io.load_labels(path)
        self.name = io.load_meta(path).get("sweep_name", "?")
        self.ok = runs[runs["status"] == "ok"].copy()
        self.models = list(pd.unique(self.ok["model"]))
        colours = method_colours(self.models)
        self.family = pd.Series(None, index=runs.index, dtype=object)
        self.methods, self.model_of, self.colour, self.xkey, self.other = [], {}, {}, {}, {}
        for m in pd.unique(runs["model"]):
            rows = runs[runs["model"] == m]
            keys = su.swept_keys(runs, m)
            given = rows[keys].notna().apply(tuple, axis=1) if keys else \
                pd.Series([()] * len(rows), index=rows.index)
            patterns = list(pd.unique(given))
            for pat in patterns:
                sel = given.index[given == pat]
                mine = [k for k, on in zip(keys, pat) if on]
                name = m if len(patterns) == 1 else f"{m} [{', '.join(mine)}]"
                self.family[sel] = name
                if m not in self.models or not self.ok.index.isin(sel).any():
                    continue
                fam = runs.loc[sel]
                varied = [k for k in mine if fam[k].nunique(dropna=False) > 1]
                pref = [k for k in PREFERRED_X if k in varied]
                x = pref[0] if pref else (varied[0] if varied else None)
                self.methods.append(name)
                self.model_of[name] = m
                self.colour[name] = colours[m]
                self.xkey[name] = x
                # a key that follows from x (dipvae's lambda_d from lambda_od,
                # beta from beta64) splits no series
                self.other[name] = [k for k in varied if k != x and (
                    x is None or fam.groupby(x)[k].nunique(dropna=False).max() > 1)]
        self.metrics = [c for c in io.metric_names(self.ok.columns)
                        if c not in SKIP_METRICS and self.ok[c].notna().any()
                        and NEEDS_METHOD.get(c, self.models[0]) in self.models]

    def family_of(self, row):
        """The family of the run with row label `row`."""
        return self.family[row]

    def rows(self, method, metric=None):
        """The ok runs of family `method`, those with a value of metric when given."""
        r = self.ok[self.family[self.ok.index] == method]
        return r if metric is None else r[r[metric].notna()]

    def methods_with(self, metric):
        """(methods that computed metric somewhere, methods that did not)."""
        have = [m for m in self.methods if self.rows(m, metric).shape[0]]
        return have, [m for m in self.methods if m not in have]

    def x_values(self, method):
        """The sorted numeric values of the method's x key."""
        x = self.xkey[method]
        return sorted(float(v) for v in pd.unique(self.rows(method)[x].dropna()))

    def value_shade(self, method, value):
        """The method's colour for one value of its x key (darker = larger)."""
        vals = self.x_values(method) if self.xkey[method] else []
        if len(vals) <= 1 or value is None or pd.isna(value):
            return shade(self.colour[method], 0.5)
        return shade(self.colour[method], vals.index(float(value)) / (len(vals) - 1))

    def series(self, method, metric):
        """[(label, rows)] of the method: one per value of its other swept keys."""
        rows = self.rows(method, metric)
        keys = self.other[method]
        if not keys:
            return [("", rows)]
        out = []
        for v, g in rows.groupby(keys if len(keys) > 1 else keys[0], dropna=False):
            v = v if isinstance(v, tuple) else (v,)
            out.append((", ".join(f"{k}={su.format_value(x)}" for k, x in zip(keys, v)), g))
        out.sort(key=lambda kv: kv[0])
        return out

    def is_log(self, method):
        vals = self.x_values(method)
        return len(vals) > 2 and vals[0] > 0 and vals[-1] / vals[0] >= 10

    def note_missing(self, ax, missing):
        if missing:
            ax.text(0.99, 0.01, "not defined for " + ", ".join(missing), transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="#555555")


SERIES_STYLES = ("-", "--", ":", "-.")


def plot_hyper(st, metric, out, written):
    """metric against each method's hyperparameter: one panel per method."""
    have, missing = st.methods_with(metric)
    if not have:
        return
    fig, axes = plt.subplots(1, len(have), figsize=(3.4 * len(have) + 0.6, 3.4),
                             squeeze=False, sharey=True, layout="constrained")
    ymin, ymax = math.inf, -math.inf
    for ax, m in zip(axes[0], have):
        x = st.xkey[m]
        c = st.colour[m]
        handles = []
        for i, (label, g) in enumerate(st.series(m, metric)):
            style = SERIES_STYLES[i % len(SERIES_STYLES)]
            if x is None:
                xs, groups = [0.0], [g]
            else:
                groups = [grp for _, grp in sorted(g.groupby(g[x].astype(float)),
                                                   key=lambda kv: kv[0])]
                xs = [float(grp[x].iloc[0]) for grp in groups]
            means, lo, hi = [], [], []
            for xv, grp in zip(xs, groups):
                y = grp[metric].to_numpy(float)
                ax.scatter(np.full(len(y), xv), y, s=14, color=c, alpha=0.55,
                           edgecolors="none", zorder=3)
                mu, h = su.mean_ci(y)
                means.append(mu)
                lo.append(mu - h if np.isfinite(h) else mu)
                hi.append(mu + h if np.isfinite(h) else mu)
            ax.plot(xs, means, style, color=c, lw=1.6, marker="_", ms=10, zorder=4)
            ax.fill_between(xs, lo, hi, color=c, alpha=0.18, lw=0, zorder=2)
            if label:
                handles.append(Line2D([], [], color=c, ls=style, label=label))
        if x is None:
            ax.set_xticks([0.0])
            ax.set_xticklabels(["(seeds only)"])
        else:
            if st.is_log(m):
                ax.set_xscale("log")
            ax.set_xlabel(textwrap.fill(st.labels.key_label(x), 45), fontsize=8)
        ax.set_title(m, fontsize=10, color=c)
        ax.grid(alpha=0.3)
        # the axis shows the seeds; an interval of few seeds may run past it
        y = st.rows(m, metric)[metric].to_numpy(float)
        pad = 0.15 * (y.max() - y.min()) or 0.05 * (abs(y.max()) or 1.0)
        ymin, ymax = min(ymin, y.min() - pad), max(ymax, y.max() + pad)
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="best")
    axes[0][0].set_ylim(ymin, ymax)
    axes[0][0].set_ylabel(su.metric_label(metric, st.labels), fontsize=9)
    st.note_missing(axes[0][-1], missing)
    fig.legend(handles=[Line2D([], [], color="grey", lw=1.6, label="mean over seeds"),
                        plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.18,
                                      label="95 % interval of the mean (t; clipped to the seeds' range + 15 %)"),
                        Line2D([], [], color="grey", marker="o", lw=0, alpha=0.55, ms=4,
                               label="one seed")],
               loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{su.METRIC_INFO.get(metric, (metric,))[0]} against each method's "
                 f"hyperparameter: sweep '{st.name}'", fontsize=10)
    save(fig, out, f"hyper_{metric}", written)


def plot_box(st, metric, out, written):
    """A box per method x value over the seeds, every seed as a point."""
    have, missing = st.methods_with(metric)
    if not have:
        return
    groups, labels, colours, starts = [], [], [], []
    for m in have:
        starts.append(len(groups))
        rows = st.rows(m, metric)
        x = st.xkey[m]
        items = [(None, rows)] if x is None else \
            sorted(rows.groupby(rows[x].astype(float)), key=lambda kv: kv[0])
        for v, g in items:
            groups.append(g[metric].to_numpy(float))
            labels.append(m if v is None else f"{x}={su.format_value(v)}")
            colours.append(st.value_shade(m, v))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(groups) + 1.5), 3.8),
                           layout="constrained")
    pos = np.arange(len(groups), dtype=float)
    bp = ax.boxplot(groups, positions=pos, widths=0.6, patch_artist=True, showfliers=False,
                    medianprops={"color": "black"})
    for patch, c in zip(bp["boxes"], colours):
        patch.set_facecolor(c)
        patch.set_alpha(0.6)
    for p, y in zip(pos, groups):
        ax.scatter(p + np.linspace(-0.12, 0.12, len(y)) if len(y) > 1 else [p], y, s=12,
                   color="black", alpha=0.7, zorder=3)
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    for m, s0 in zip(have, starts):
        ax.text(s0 - 0.4, 1.01, m, transform=ax.get_xaxis_transform(), fontsize=8,
                color=st.colour[m], ha="left", va="bottom")
        if s0:
            ax.axvline(s0 - 0.5, color="#bbbbbb", lw=0.8)
    ax.set_ylabel(su.metric_label(metric, st.labels), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    st.note_missing(ax, missing)
    fig.suptitle(f"{su.METRIC_INFO.get(metric, (metric,))[0]} per method and value "
                 f"(box: quartiles over seeds; dots: seeds): sweep '{st.name}'", fontsize=9)
    save(fig, out, f"box_{metric}", written)


def spearman(st):
    """The Spearman rank correlation matrix of the metric columns over the
    ok runs (columns with at least 3 values and some spread)."""
    cols = [m for m in st.metrics
            if st.ok[m].notna().sum() >= 3 and st.ok[m].nunique(dropna=True) > 1]
    return st.ok[cols].astype(float).corr(method="spearman", min_periods=3)


def plot_spearman(st, out, written):
    rho = spearman(st)
    if rho.shape[0] < 2:
        return
    n = rho.shape[0]
    fig, ax = plt.subplots(figsize=(0.55 * n + 2.2, 0.5 * n + 1.4), layout="constrained")
    im = ax.imshow(rho.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(n):
        for j in range(n):
            v = rho.iat[i, j]
            ax.text(j, i, "" if np.isnan(v) else f"{v:.2f}".replace("0.", ".", 1)
                    .replace("-.", "\u2212."), ha="center", va="center", fontsize=6,
                    color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(n))
    ax.set_xticklabels(rho.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n))
    ax.set_yticklabels(rho.columns, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8).set_label("Spearman's \u03c1", fontsize=8)
    ax.set_title(f"Rank correlation of the metrics over {len(st.ok)} ok runs: "
                 f"sweep '{st.name}'", fontsize=9)
    save(fig, out, "spearman", written)


def plot_recon_vs(st, out, written):
    """Reconstruction against each disentanglement metric; every seed a point,
    colour = method, shade = the method's hyperparameter (darker = larger)."""
    ms = [m for m in st.metrics if m in DISENTANGLEMENT]
    if not ms or "recon" not in st.metrics:
        return
    fig, axes = plt.subplots(1, len(ms), figsize=(3.6 * len(ms) + 0.8, 3.6), squeeze=False,
                             sharey=True, layout="constrained")
    for ax, metric in zip(axes[0], ms):
        have, missing = st.methods_with(metric)
        for m in have:
            rows = st.rows(m, metric)
            x = st.xkey[m]
            cs = [st.value_shade(m, None if x is None else v)
                  for v in (rows[x] if x else [None] * len(rows))]
            ax.scatter(rows[metric], rows["recon"], s=16, c=cs, edgecolors="none", alpha=0.85)
        ax.set_xlabel(su.metric_label(metric, st.labels), fontsize=8)
        ax.grid(alpha=0.3)
        st.note_missing(ax, missing)
    axes[0][0].set_ylabel(su.metric_label("recon", st.labels) + "  (\u2190 better)", fontsize=8)
    handles = [Line2D([], [], color=st.colour[m], marker="o", lw=0,
                      label=m + (f" (darker = larger {st.xkey[m]})" if st.xkey[m] else ""))
               for m in st.methods]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8, frameon=False)
    fig.suptitle(f"Reconstruction against disentanglement, every seed: sweep '{st.name}'",
                 fontsize=10)
    save(fig, out, "recon_vs", written)


def factor_table(st, prefix):
    """(configuration labels, factor names, median over seeds per factor) of
    the per-factor columns <prefix>_<factor>; None without any value."""
    factors = [f for f in st.labels.factors if f"{prefix}_{f}" in st.ok.columns]
    cols = [f"{prefix}_{f}" for f in factors]
    if not cols or not st.ok[cols].notna().any().any():
        return None
    labels, rows = [], []
    for m in st.methods:
        sub = st.rows(m)
        keys = [k for k in ([st.xkey[m]] if st.xkey[m] else []) + st.other[m]]
        items = [((), sub)] if not keys else \
            sorted((((v if isinstance(v, tuple) else (v,)), g)
                    for v, g in sub.groupby(keys if len(keys) > 1 else keys[0], dropna=False)),
                   key=lambda kv: [su.sort_key(x) for x in kv[0]])
        for v, g in items:
            vals = g[cols].astype(float)
            if not vals.notna().any().any():
                continue
            labels.append(f"{m} " + ", ".join(f"{k}={su.format_value(x)}"
                                               for k, x in zip(keys, v)) + f" (n={len(g)})")
            rows.append(np.array([vals[c].dropna().median() if vals[c].notna().any()
                                  else np.nan for c in cols]))
    return (labels, factors, np.array(rows)) if rows else None


def plot_factors(st, prefix, out, written):
    t = factor_table(st, prefix)
    if t is None:
        return
    labels, factors, mat = t
    fig, ax = plt.subplots(figsize=(1.1 * len(factors) + 4.0, 0.32 * len(labels) + 1.4),
                           layout="constrained")
    vmax = max(0.05, float(np.nanmax(mat)))
    im = ax.imshow(mat, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                    fontsize=6, color="white" if np.isnan(v) or v < 0.6 * vmax else "black")
    ax.set_xticks(range(len(factors)))
    ax.set_xticklabels(factors, fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("ground-truth factor", fontsize=8)
    fig.colorbar(im, ax=ax, pad=0.02).set_label(f"{prefix} (median over seeds)", fontsize=8)
    ax.set_title(f"Per-factor {prefix}, median over seeds of each configuration: "
                 f"sweep '{st.name}'", fontsize=9)
    save(fig, out, f"factors_{prefix}", written)


def make_figures(st, out, written):
    """Every figure of the module for Study st into out."""
    plot_recon_vs(st, out, written)
    for metric in st.metrics:
        plot_hyper(st, metric, out, written)
        plot_box(st, metric, out, written)
    plot_spearman(st, out, written)
    for prefix in ("mig", "swap_acc"):
        if prefix in st.metrics:
            plot_factors(st, prefix, out, written)
