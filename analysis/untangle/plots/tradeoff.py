"""Plot what a sweep found: the reconstruction / disentanglement trade-off,
each metric against the swept parameter(s) with the spread over seeds, the
per-factor MIG of each model's best run, the training curves, and a summary
table (median and interquartile range per configuration).

    analysis/tradeoff.py RESULTS.h5 -o DIR

Writes into DIR: tradeoff.png, metric_<name>.png for mig, mig_hist, tc, recon
and swap_acc, mig_per_factor.png, mi_best.png, curves.png, summary.csv and
summary.md. Which keys a sweep varies is found from the data (per model: the
configuration columns with more than one value, seeds excluded). Only runs
with status ok are drawn; the others are counted in the titles and listed in
summary.md. A file without any ok run gets a summary that says so and no plot.
"""
import argparse
import math
import os
import sys

import numpy as np
import pandas as pd

from untangle import io, summary as su
from untangle.plots import plt, Line2D

DPI = 120
# One colour per model, the same in every plot of every report.
MODEL_COLOURS = {"vae": "#7f7f7f", "betavae": "#1f77b4", "betatcvae": "#ff7f0e",
                 "jointvae": "#2ca02c", "dsd": "#d62728", "factorvae": "#9467bd",
                 "dipvae": "#8c564b"}
SPARE_COLOURS = ["#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
FRACTIONS = ("mig", "mig_hist", "swap_acc")
# The key put on the x axis when a model sweeps several (first one present).
PREFERRED_X = ("beta", "gamma", "supervision", "lambda", "c_max", "alpha", "c_z_max",
               "c_c_max", "w_swap", "latent_dim", "lr", "steps", "batch_size", "anneal_steps")
CURVE_ORDER = ["loss", "recon", "kl", "tc", "mi", "dwkl"]
# The metrics the trade-off plots show, in order.
PLOT_METRICS = ("mig", "mig_hist", "tc", "recon", "swap_acc")


def model_colours(models):
    out, spare = {}, iter(SPARE_COLOURS * 10)
    for m in models:
        out[m] = MODEL_COLOURS.get(m) or next(spare)
    return out


def _save(fig, path, written):
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    written.append(path)


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}g}"


class Sweep:
    """The ok runs of a results file, their configurations and how to draw
    them: which keys each model sweeps, colours, markers, panels."""

    def __init__(self, path, runs):
        self.path = path
        self.meta = io.load_meta(path)
        self.labels = io.load_labels(path)
        self.all = runs
        self.ok = runs[runs["status"] == "ok"].copy()
        self.n_bad = int((runs["status"] != "ok").sum())
        self.running = io.writer_pid(path) is not None
        self.models = list(pd.unique(self.ok["model"]))
        self.colour = model_colours(self.models)
        # swept keys from every row of the model (a failed run's
        # configuration is known too), so a failure does not hide an axis
        self.keys = {m: su.swept_keys(runs, m) for m in self.models}
        self.label_keys = {m: su.label_keys(runs, m) for m in self.models}
        self._panels()
        self._markers()

    # -- configurations and panels --
    def _panels(self):
        """Group models into panels that share an x axis: models sweeping the
        same keys; a model that sweeps nothing joins a panel whose keys it
        has (e.g. betatcvae at beta=4 next to betavae over beta), else the
        panel of fixed configurations, whose x axis is the model."""
        panels = {}
        for m in self.models:
            if self.keys[m]:
                panels.setdefault(tuple(self.keys[m]), []).append(m)
        fixed = []
        for m in self.models:
            if self.keys[m]:
                continue
            row = self.ok[self.ok["model"] == m].iloc[0]
            home = next((k for k in panels
                         if all(su.format_value(row[key]) != "n/a" for key in k)), None)
            if home is not None:
                panels[home].append(m)
            else:
                fixed.append(m)
        self.panels = [(k, ms) for k, ms in panels.items()]
        if fixed:
            self.panels.append(((), fixed))
        self.layout = {k: self._layout(k, ms) for k, ms in self.panels}
        self.series_colour = {}
        for keys, models in self.panels:
            skeys = self.layout[keys][1]
            for m in models:
                series = [v for v, _ in self.values_of(m, skeys)]
                for i, v in enumerate(series):
                    self.series_colour[(m, v)] = _shade(self.colour[m], i, len(series))

    def _layout(self, keys, models):
        """(x keys, series keys) of a panel: x is the main swept key (beta,
        gamma, ... or the one with most values) plus the keys zipped with it
        (a function of it, like c_z_max with gamma); every other key makes
        separate series (lines), like latent_dim crossed with beta."""
        if len(keys) <= 1:
            return tuple(keys), ()
        rows = self.ok[self.ok["model"].isin(models)]
        pref = [k for k in PREFERRED_X if k in keys]
        x = pref[0] if pref else max(keys, key=lambda k: rows[k].nunique(dropna=False))
        xkeys, skeys = [x], []
        for k in keys:
            if k == x:
                continue
            zipped = rows.groupby(x, dropna=False)[k].nunique(dropna=False).max() <= 1
            (xkeys if zipped else skeys).append(k)
        return tuple(xkeys), tuple(skeys)

    def values_of(self, model, keys):
        """[(values tuple for keys, ok runs)] of model, in value order."""
        return group_by(self.ok[self.ok["model"] == model], keys)

    def _markers(self):
        """A marker per value tuple of each panel's keys (shared by the models
        of the panel), so the trade-off plot can say which value a point is."""
        self.marker = {}
        for keys, models in self.panels:
            for i, v in enumerate(_distinct_values(self, keys, models)):
                self.marker[(keys, v)] = MARKERS[i % len(MARKERS)]

    def panel_of(self, model):
        return next((k, ms) for k, ms in self.panels if model in ms)

    def title_note(self):
        """A second title line: how many runs are not shown, whether a sweep
        is still writing the file; or ''."""
        notes = []
        if self.n_bad:
            notes.append(f"{self.n_bad} of {len(self.all)} runs not ok and not shown "
                         "(see summary.md)")
        if self.running:
            notes.append("sweep still running: runs finished so far")
        return "\n" + "; ".join(notes) if notes else ""

    def seeds_text(self):
        seeds = sorted(pd.unique(self.ok["seed"]))
        return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"

    def name(self):
        return self.meta.get("sweep_name", "?")


def group_by(df, keys):
    """[(values tuple of keys, rows)] in value order; [((), df)] without keys."""
    if not keys:
        return [((), df)]
    by = list(keys) if len(keys) > 1 else keys[0]
    items = [(k if isinstance(k, tuple) else (k,), g)
             for k, g in df.groupby(by, dropna=False, sort=False)]
    items.sort(key=lambda kv: [su.sort_key(v) for v in kv[0]])
    return items


def _shade(colour, i, n):
    """The i-th of n shades of colour, light to dark (the colour itself when
    n is 1)."""
    from matplotlib.colors import to_rgb
    base = np.array(to_rgb(colour))
    if n <= 1:
        return tuple(base)
    t = i / (n - 1)
    light, dark = base + (1 - base) * 0.55, base * 0.55
    return tuple(light * (1 - t) + dark * t)


def values_label(keys, values):
    if not keys:
        return ""
    return ", ".join(f"{k}={su.format_value(v)}" for k, v in zip(keys, values))


# ---- the trade-off ---------------------------------------------------------------

def plot_tradeoff(s, out, written):
    """Reconstruction against MIG: one panel per MIG estimator that some run
    computed (Chen et al.'s; the histogram one, which deterministic models
    such as dsd also get). Colour = model, marker = setting, small = one
    seed, large = median over seeds, spokes join them."""
    xs = [m for m in ("mig", "mig_hist") if s.ok[m].notna().any()]
    if not xs or s.ok["recon"].isna().all():
        return
    fig, axes = plt.subplots(1, len(xs), figsize=(6.2 * len(xs) + 2.6, 5), squeeze=False,
                             sharey=True, layout="constrained")
    for ax, xm in zip(axes[0], xs):
        missing = []
        for m in s.models:
            keys, _ = s.panel_of(m)
            xkeys, skeys = s.layout[keys]
            c = s.colour[m]
            med_x, med_y, med_s, med_o = [], [], [], []
            for v, g in s.values_of(m, keys):
                g = g[g[xm].notna() & g["recon"].notna()]
                if g.empty:
                    continue
                mk = s.marker.get((keys, v), "o")
                med_s.append(tuple(su.format_value(g.iloc[0][k]) for k in skeys))
                med_o.append([su.sort_key(g.iloc[0][k]) for k in xkeys])
                ax.scatter(g[xm], g["recon"], s=22, marker=mk, color=c, alpha=0.45,
                           linewidths=0, zorder=2)
                mx, my = g[xm].median(), g["recon"].median()
                med_x.append(mx)
                med_y.append(my)
                # a faint spoke from the median to each seed shows which seeds
                # belong to it and how far they spread
                for x, y in zip(g[xm], g["recon"]):
                    ax.plot([mx, x], [my, y], color=c, lw=0.6, alpha=0.3, zorder=1)
                ax.scatter([mx], [my], s=90, marker=mk, color=c, edgecolors="black",
                           linewidths=0.8, zorder=4)
            if not med_x:
                missing.append(m)
            elif xkeys:
                # join the medians along the x key, one line per series
                for sv in dict.fromkeys(med_s):
                    pts = [(med_o[i], med_x[i], med_y[i])
                           for i in range(len(med_x)) if med_s[i] == sv]
                    pts.sort()
                    if len(pts) > 1:
                        ax.plot([p[1] for p in pts], [p[2] for p in pts], color=c, lw=1.2,
                                alpha=0.8, zorder=3)
        if missing:
            ax.text(0.98, 0.02, f"not computed for {', '.join(missing)}",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                    color="#444444")
        ax.set_xlabel(su.metric_label(xm, s.labels) + "   (better \u2192)")
        ax.grid(alpha=0.3)
        if len(xs) > 1:
            ax.set_title({"mig": "MIG (Chen et al.)", "mig_hist": "MIG (histogram)"}[xm],
                         fontsize=10)
    axes[0][0].set_ylabel(su.metric_label("recon", s.labels) + "   (\u2190 better)")
    # the legend: what colours, markers and sizes mean
    handles = [Line2D([], [], color=s.colour[m], marker="o",
                      lw=1.2 if s.panel_of(m)[0] else 0,
                      markeredgecolor="black", markersize=8, label=m) for m in s.models]
    marker_handles = []
    for keys, models in s.panels:
        if not keys:
            continue
        who = "/".join(models) + ": " if len(s.panels) > 1 else ""
        for (k, v), mk in s.marker.items():
            if k == keys:
                marker_handles.append(Line2D([], [], color="grey", marker=mk, lw=0,
                                             markersize=8, label=who + values_label(keys, v)))
    size_handles = [
        Line2D([], [], color="grey", marker="o", lw=0, markersize=9, markeredgecolor="black",
               label="median over seeds"),
        Line2D([], [], color="grey", marker="o", lw=0, markersize=5, alpha=0.45,
               label="one seed"),
    ]
    swept = sorted({s.layout[keys][0][0] for keys, _ in s.panels if keys})
    if swept:
        size_handles.append(Line2D([], [], color="grey", lw=1.2,
                                   label=f"medians in {', '.join(swept)} order"))
    blank = Line2D([], [], lw=0, marker="", label=" ")
    header = [Line2D([], [], lw=0, marker="", label=t)
              for t in ("colour = model", "marker = setting", "point")]
    legend = [header[0]] + handles
    if marker_handles:
        legend += [blank, header[1]] + marker_handles
    legend += [blank, header[2]] + size_handles
    axes[0][-1].legend(handles=legend, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                       borderaxespad=0, fontsize=9, handlelength=1.6)
    fig.suptitle(f"Reconstruction vs disentanglement: sweep '{s.name()}', "
                 f"{len(s.ok)} runs, {s.seeds_text()}{s.title_note()}", fontsize=11)
    _save(fig, os.path.join(out, "tradeoff.png"), written)


# ---- each metric against the swept parameter ----------------------------------------

def plot_metric(s, metric, out, written):
    """One panel per group of models sharing an x axis; x = the swept values
    (categorical, in value order), a dot per seed, the median as a marker
    joined by a line, the interquartile range as a bar."""
    if s.ok[metric].isna().all():
        return False
    panels = s.panels
    n_seeds = int(s.ok.groupby(["model"] + sorted({k for ks, _ in panels for k in ks}),
                               dropna=False)[metric].count().max())
    widths = [max(3.2, 1.1 * len(_panel_values(s, s.layout[k][0], ms)) + 1.5)
              for k, ms in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 1.8, 4.6), squeeze=False,
                             sharey=True, gridspec_kw={"width_ratios": widths},
                             layout="constrained")
    for ax, (keys, models) in zip(axes[0], panels):
        xkeys, skeys = s.layout[keys]
        xs = _panel_values(s, xkeys, models)
        pos = {v: i for i, v in enumerate(xs)}
        series = [(m, sv, g) for m in models for sv, g in s.values_of(m, skeys)]
        n = len(series)
        span = min(0.7, 0.22 * n) if n > 1 else 0.0
        for j, (m, sv, gm) in enumerate(series):
            c = s.series_colour[(m, sv)]
            off = (j - (n - 1) / 2) * (span / (n - 1)) if n > 1 else 0.0
            line_x, line_y = [], []
            for v, g in group_by(gm, xkeys) if xkeys else [((m,), gm)]:
                y = g[metric].dropna().to_numpy(float)
                if len(y) == 0:
                    continue
                x0 = pos[v] + off
                jit = _jitter(len(y), 0.12 / max(n, 1))
                # seeds on top of the median marker, so a tight spread stays visible
                ax.scatter(x0 + jit, y, s=18, color=c, alpha=0.75, edgecolors="white",
                           linewidths=0.5, zorder=5)
                q25, med, q75 = np.percentile(y, [25, 50, 75])
                ax.plot([x0, x0], [q25, q75], color=c, lw=4, alpha=0.35,
                        solid_capstyle="butt", zorder=3)
                ax.scatter([x0], [med], s=60, marker="D", color=c, edgecolors="black",
                           linewidths=0.7, zorder=4)
                line_x.append(x0)
                line_y.append(med)
                if len(y) < n_seeds:  # fewer seeds than the others: say so
                    ax.annotate(f"n={len(y)}", (x0, med), xytext=(7, -3),
                                textcoords="offset points", fontsize=7, color="#444444")
            if xkeys and len(line_x) > 1:
                ax.plot(line_x, line_y, color=c, lw=1.3, zorder=3)
        ax.set_xticks(range(len(xs)))
        if xkeys:
            ax.set_xticklabels([_tick(xkeys, v) for v in xs])
            ax.set_xlabel(s.labels.key_label(xkeys[0]) if len(xkeys) == 1
                          else " / ".join(xkeys) + " (varied together)")
        else:
            ax.set_xticklabels([v[0] for v in xs])
            ax.set_xlabel("model (nothing swept but the seed)")
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        if len(panels) > 1:
            ax.set_title(", ".join(models), fontsize=10)
    if metric in FRACTIONS and (s.ok[metric].dropna() >= 0).all():
        # a fraction: start the axis at 0, so a difference near zero is not magnified
        top = axes[0][0].get_ylim()[1]
        axes[0][0].set_ylim(-0.04 * top, top)
    label, better = su.metric_label(metric, s.labels), su.METRIC_INFO[metric][1]
    hint = {True: "   (\u2191 better)", False: "   (\u2193 better)", None: ""}[better]
    axes[0][0].set_ylabel(label + hint)
    handles = []
    for keys, models in panels:
        skeys = s.layout[keys][1]
        for m in models:
            for sv, _ in s.values_of(m, skeys):
                handles.append(Line2D([], [], color=s.series_colour[(m, sv)], marker="D",
                                      markeredgecolor="black", lw=1.3,
                                      label=m + (" " + values_label(skeys, sv) if skeys else "")))
    handles += [
        Line2D([], [], color="grey", marker="D", markeredgecolor="black", lw=0,
               label="median over seeds"),
        Line2D([], [], color="grey", lw=4, alpha=0.35, label="interquartile range"),
        Line2D([], [], color="grey", marker="o", lw=0, alpha=0.75, markersize=5,
               markeredgecolor="white", label="one seed"),
    ]
    axes[0][-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                       borderaxespad=0, fontsize=9)
    xk = sorted({k for keys, _ in panels for k in s.layout[keys][0]})
    against = " / ".join(xk) if 0 < len(xk) <= 2 else "the swept parameters" if xk else "model"
    fig.suptitle(f"{metric} against {against}: sweep '{s.name()}', {len(s.ok)} runs, "
                 f"{s.seeds_text()}{s.title_note()}", fontsize=11)
    _save(fig, os.path.join(out, f"metric_{metric}.png"), written)
    return True


def _distinct_values(s, keys, models):
    """The value tuples of keys that the models take, sorted."""
    vals = []
    for m in models:
        for v, _ in s.values_of(m, keys):
            if v not in vals:
                vals.append(v)
    vals.sort(key=lambda v: [su.sort_key(x) for x in v])
    return vals


def _panel_values(s, keys, models):
    if not keys:
        return [(m,) for m in models]
    return _distinct_values(s, keys, models)


def _tick(keys, v):
    if len(keys) == 1:
        return su.format_value(v[0])
    return "\n".join(f"{k}={su.format_value(x)}" for k, x in zip(keys, v))


def _jitter(n, width):
    """Deterministic spread of n dots over [-width, width]."""
    if n <= 1:
        return np.zeros(n)
    return np.linspace(-width, width, n)


# ---- per-factor MIG and MI of the best runs --------------------------------------------

def plot_mig_per_factor(s, out, written):
    best = su.best_runs(s.ok, "mig")
    if best.empty:
        return
    factors = s.labels.factors
    cols = [f"mig_{f}" for f in factors]
    mat = best[cols].to_numpy(float)
    labels = [_best_label(s, r) for _, r in best.iterrows()]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.62 * len(best)))
    vmax = max(0.05, np.nanmax(mat) if np.isfinite(mat).any() else 0.05)
    im = ax.imshow(mat, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            ax.text(j, i, _fmt(v, 2), ha="center", va="center", fontsize=9,
                    color="white" if not np.isfinite(v) or v < 0.6 * vmax else "black")
    ax.set_xticks(range(len(factors)))
    ax.set_xticklabels(factors)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_xlabel("ground-truth factor")
    cb = fig.colorbar(im, ax=ax, pad=0.02)
    cb.set_label("MIG gap / H(factor)")
    by = best["best_by"].iloc[0]
    ax.set_title(f"Per-factor MIG of each model's best run (by {by}): sweep '{s.name()}'",
                 fontsize=11)
    _save(fig, os.path.join(out, "mig_per_factor.png"), written)


def _best_label(s, r):
    cfg = su.config_label(r, s.label_keys[r["model"]])
    by = r["best_by"]
    return f"{cfg}, seed {int(r['seed'])} (#{int(r['grid_index'])}, {by} {_fmt(r[by], 2)})"


def plot_mi_best(s, out, written):
    """The MI matrix (latents x factors) of each model's best run."""
    best = su.best_runs(s.ok, "mig")
    dets = []
    for _, r in best.iterrows():
        d = io.load_detail(s.path, r["run_id"], int(r["attempt"]))
        if d["mi"] is not None:
            dets.append((r, d))
    if not dets:
        return
    vmax = max(0.05, max(np.nanmax(d["mi"]) for _, d in dets))
    n = len(dets)
    units = max(d["mi"].shape[0] for _, d in dets)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 1.2, 2.0 + 0.3 * units), squeeze=False,
                             layout="constrained")
    im = None
    for ax, (r, d) in zip(axes[0], dets):
        mi = d["mi"]
        im = ax.imshow(mi, cmap="magma", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(mi.shape[1]))
        ax.set_xticklabels(d["factors"], rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(mi.shape[0]))
        ax.set_yticklabels(_unit_names(d), fontsize=8)
        cfg = su.config_label(r, s.label_keys[r["model"]])
        ax.set_title(f"{cfg}\nseed {int(r['seed'])} (#{int(r['grid_index'])}), "
                     f"MIG {_fmt(r['mig'], 2)}", fontsize=9)
    axes[0][0].set_ylabel("latent unit")
    cb = fig.colorbar(im, ax=list(axes[0]))
    cb.set_label("I(latent; factor) (nats)")
    fig.suptitle(f"Mutual information of each model's best run: sweep '{s.name()}'",
                 fontsize=11)
    _save(fig, os.path.join(out, "mi_best.png"), written)


def _unit_names(d):
    n = d["mi"].shape[0]
    D = d["latent_dim"] if 0 <= d["latent_dim"] <= n else n
    return [f"z{j}" for j in range(D)] + [f"c{j}" for j in range(n - D)]


# ---- training curves ---------------------------------------------------------------------

def plot_curves(s, out, written):
    curves = io.load_curves(s.path)
    key = io.attempt_key(curves)
    curves = curves.drop(columns=[c for c in ("grid_index",) if c not in key])
    curves = curves.merge(s.ok[["grid_index", "run_id", "attempt"]], on=key)
    if curves.empty:
        return
    names = [n for n in CURVE_ORDER if n in set(curves["name"])]
    names += sorted(set(curves["name"]) - set(names))
    ncol = min(3, len(names))
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol + 2.6, 3.3 * nrow),
                             squeeze=False, sharex=True, layout="constrained")
    conf_colour, handles = _conf_colours(s)
    for ax, name in zip(axes.flat, names):
        cn = curves[curves["name"] == name]
        positive = True
        for m in s.models:
            keys, _ = s.panel_of(m)
            for v, g in s.values_of(m, keys):
                c = conf_colour[(m, v)]
                pts = cn[cn["run_id"].isin(g["run_id"])]
                if pts.empty:
                    continue
                for _, one in pts.groupby("run_id"):
                    ax.plot(one["step"], one["value"], color=c, lw=0.7, alpha=0.35)
                med = pts.groupby("step")["value"].median()
                ax.plot(med.index, med.to_numpy(), color=c, lw=1.8)
                positive &= bool((pts["value"] > 0).all())
        vals = cn["value"].to_numpy(float)
        vals = vals[np.isfinite(vals)]
        if positive and len(vals) and vals.max() / max(vals.min(), 1e-300) > 20:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(s.labels.metric_units.get(name, ""), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes.flat[len(names) - ncol:len(names)]:  # the lowest visible panels
        ax.set_xlabel("optimiser step")
        ax.xaxis.set_tick_params(labelbottom=True)
    handles += [Line2D([], [], color="grey", lw=1.8, label="median over seeds"),
                Line2D([], [], color="grey", lw=0.7, alpha=0.5, label="one seed")]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=9,
               title="configuration")
    fig.suptitle(f"Training curves (minibatch estimates): sweep '{s.name()}', "
                 f"{len(s.ok)} runs{s.title_note()}", fontsize=11)
    _save(fig, os.path.join(out, "curves.png"), written)


def _conf_colours(s):
    """A shade of the model's colour per configuration (light = first)."""
    out, handles = {}, []
    for m in s.models:
        keys, _ = s.panel_of(m)
        vals = [v for v, _ in s.values_of(m, keys)]
        for i, v in enumerate(vals):
            c = _shade(s.colour[m], i, len(vals))
            out[(m, v)] = c
            lab = m + (f" {values_label(keys, v)}" if keys else "")
            handles.append(Line2D([], [], color=c, lw=1.8, label=lab))
    return out, handles


# ---- summary tables ------------------------------------------------------------------------

MD_METRICS = ("mig", "mig_hist", "tc", "recon", "kl", "swap_acc")


def write_summary(path, runs, out, written, plots=()):
    meta = io.load_meta(path)
    summ = su.summarize(runs) if len(runs) else pd.DataFrame()
    csv = os.path.join(out, "summary.csv")
    summ.to_csv(csv, index=False)
    written.append(csv)
    ok = runs[runs["status"] == "ok"] if len(runs) else runs
    lines = [f"# Sweep '{meta.get('sweep_name', '?')}'", "",
             f"- file: `{os.path.abspath(path)}` (created {meta.get('created', '?')}, "
             f"untangle {meta.get('untangle_version', '?')})",
             f"- runs in the file: {len(runs)} ({len(ok)} ok, {len(runs) - len(ok)} not ok; "
             "the latest attempt of each index)"]
    pid = io.writer_pid(path)
    if pid is not None:
        lines.append(f"- **a sweep (pid {pid}) is still writing this file: this summary covers "
                     "the runs finished so far**")
    if len(runs):
        for m in pd.unique(runs["model"]):
            keys = su.swept_keys(runs, m)
            fixed = [k for k in su.label_keys(runs, m) if k not in keys]
            at = su.config_label(runs[runs["model"] == m].iloc[0], fixed, with_model=False)
            lines.append(f"- {m}: sweeps {', '.join(keys) if keys else 'nothing but the seed'}"
                         + (f" (at {at})" if at else ""))
        seeds = sorted(pd.unique(runs["seed"]))
        lines.append(f"- seeds: {' '.join(str(int(x)) for x in seeds)}")
    lines.append("")
    if len(runs) == 0:
        lines += ["**The file holds no finished run yet: nothing to summarise or plot.**", ""]
    elif len(ok) == 0:
        lines += ["**No run finished ok: there is nothing to plot. "
                  "The runs and their errors are listed below.**", ""]
    else:
        lines += ["Median over seeds [interquartile range], ok runs only. "
                  "Units: recon, kl in nats / image; tc in nats; mig, mig_hist, "
                  "swap_acc in 0..1.", ""]
        head = ["configuration", "ok / runs"] + list(MD_METRICS)
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * len(MD_METRICS)) + "|")
        for _, r in summ.iterrows():
            cells = [r["config"], f"{r['n_ok']} / {r['n_runs']}"]
            for m in MD_METRICS:
                med = r[f"{m}_median"]
                cells.append("n/a" if math.isnan(med) else
                             f"{_fmt(med)} [{_fmt(r[f'{m}_q25'])}, {_fmt(r[f'{m}_q75'])}]")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    bad = su.describe_failures(runs) if len(runs) else []
    if bad:
        lines += ["## Runs that are not ok", ""] + [f"- {b}" for b in bad] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"- [{os.path.basename(p)}]({os.path.basename(p)})"
                                     for p in plots] + [""]
    md = os.path.join(out, "summary.md")
    with open(md, "w") as fh:
        fh.write("\n".join(lines))
    written.append(md)
    return lines


# ---- entry points ----------------------------------------------------------------------------

def make_plots(path, out, runs=None, log=print):
    """Write every plot and the summary of results file `path` into `out`.
    Returns the list of files written. Raises UntangleFileError."""
    os.makedirs(out, exist_ok=True)
    if runs is None:
        runs = io.load_runs(path)
    plots = []
    n_ok = int((runs["status"] == "ok").sum()) if len(runs) else 0
    if n_ok:
        s = Sweep(path, runs)
        plot_tradeoff(s, out, plots)
        for m in PLOT_METRICS:
            if not plot_metric(s, m, out, plots):
                log(f"{m}: not computed by any run: no plot")
        plot_mig_per_factor(s, out, plots)
        plot_mi_best(s, out, plots)
        plot_curves(s, out, plots)
    written = list(plots)
    write_summary(path, runs, out, written, plots)
    if io.writer_pid(path) is not None:
        log(f"{path}: a sweep is still writing this file: this covers the runs finished so far")
    if not len(runs):
        log(f"{path}: no finished run in the file yet: nothing to plot")
    elif not n_ok:
        log(f"{path}: none of the {len(runs)} runs finished ok: nothing to plot "
            f"(the failures are listed in {os.path.join(out, 'summary.md')})")
    return written


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="tradeoff.py",
        description="Plot the trade-offs of an untangle sweep: recon vs MIG, each metric "
                    "against the swept parameter with the spread over seeds, per-factor "
                    "MIG of the best runs, training curves, and summary.csv / summary.md "
                    "(median and interquartile range per configuration).")
    p.add_argument("results", metavar="RESULTS.h5", help="results file of `untangle sweep`")
    p.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")
    a = p.parse_args(argv)
    try:
        files = make_plots(a.results, a.out)
    except io.UntangleFileError as exc:
        print(f"tradeoff.py: error: {exc}", file=sys.stderr)
        return 1
    print(f"tradeoff.py: wrote {len(files)} files to {a.out}")
    return 0
