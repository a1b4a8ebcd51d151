"""Plot what a sweep found: the figures of the papers (plots.paper), the
mutual information of each method's typical run, the training curves, and a
summary table (median and interquartile range per configuration).

    analysis/tradeoff.py RESULTS.h5 -o DIR

Writes into DIR: recon_vs, hyper_<metric>, box_<metric>, spearman and
factors_<mig|swap_acc> (plots.paper; PNG and PDF), mi.png, curves.png,
learning.png and learning_factors.png (runs trained with eval_every),
summary.csv and summary.md. Which keys a sweep varies is found from the data
(per model: the configuration columns with more than one value, seeds
excluded). Only runs with status ok are drawn; the others are counted in the
titles and listed in summary.md. A file without any ok run gets a summary
that says so and no plot.
"""
import argparse
import math
import os
import sys

import numpy as np
import pandas as pd

from untangle import io, summary as su
from untangle.plots import plt, Line2D, paper

CURVE_ORDER = ["loss", "recon", "kl", "tc", "mi", "dwkl"]
# the eval.<metric> learning curves (eval_every), in panel order
EVAL_CURVE_ORDER = [f"eval.{m}" for m in ("mig", "recon", "kl", "tc", "mig_hist", "swap_acc",
                                          "chunk_mig", "disc_acc")]


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}g}"


def _title_note(st, runs, path):
    """A second title line: runs not shown, a sweep still writing; or ''."""
    notes = []
    n_bad = int((runs["status"] != "ok").sum())
    if n_bad:
        notes.append(f"{n_bad} of {len(runs)} runs not ok and not shown (see summary.md)")
    if io.writer_pid(path) is not None:
        notes.append("sweep still running: runs finished so far")
    return "\n" + "; ".join(notes) if notes else ""


# ---- mutual information of each method's typical run ------------------------------------

def plot_mi(st, out, written):
    """The MI matrix (latents x factors) of each method's typical run: the
    median seed of its best configuration by median MIG."""
    rep = su.representative_runs(st.ok, "mig")
    dets = []
    for _, r in rep.iterrows():
        d = io.load_detail(st.path, r["run_id"], int(r["attempt"]))
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
        cfg = su.config_label(r, su.label_keys(st.ok, r["model"]))
        ax.set_title(f"{cfg}\nseed {int(r['seed'])} (#{int(r['grid_index'])}), "
                     f"{r['best_by']} {_fmt(r[r['best_by']], 2)}", fontsize=9)
    axes[0][0].set_ylabel("latent unit")
    fig.colorbar(im, ax=list(axes[0])).set_label("I(latent; factor) (nats)")
    fig.suptitle("Mutual information of each method's typical run (median seed of its "
                 f"best configuration): sweep '{st.name}'", fontsize=10)
    paper.save(fig, out, "mi", written)


def _unit_names(d):
    n = d["mi"].shape[0]
    D = d["latent_dim"] if 0 <= d["latent_dim"] <= n else n
    return [f"z{j}" for j in range(D)] + [f"c{j}" for j in range(n - D)]


# ---- training curves ---------------------------------------------------------------------

def plot_curves(st, runs, out, written):
    """Every curve of the ok runs: the training terms (curves.png) and, for
    runs trained with eval_every, the learning curves (learning.png: the
    eval.<metric> points; learning_factors.png: mi.<factor> and gap.<factor>).
    One thin line per run, the median over seeds of each configuration thick;
    colour = method, darker = larger value of its hyperparameter."""
    curves = io.load_curves(st.path)
    key = io.attempt_key(curves)
    curves = curves.drop(columns=[c for c in ("grid_index",) if c not in key])
    curves = curves.merge(st.ok[["grid_index", "run_id", "attempt"]], on=key)
    if curves.empty:
        return
    present = set(curves["name"])
    train = [n for n in CURVE_ORDER if n in present]
    train += sorted(n for n in present - set(train) if "." not in n)
    evals = [n for n in EVAL_CURVE_ORDER if n in present]
    factors = [f"{kind}.{f}" for kind in ("mi", "gap") for f in st.labels.factors
               if f"{kind}.{f}" in present]
    note = _title_note(st, runs, st.path)
    for names, stem, ncol, what in (
            (train, "curves", 3, "Training curves (minibatch estimates)"),
            (evals, "learning", 3, "Learning curves (evaluations during training)"),
            (factors, "learning_factors", len(st.labels.factors),
             "Learning curves per factor (top: the most MI any latent holds, nats; "
             "bottom: Chen's normalised gap)")):
        if names:
            _curve_panels(st, curves, names, f"{what}: sweep '{st.name}', {len(st.ok)} "
                          f"runs{note}", out, stem, written, ncol)


def _curve_panels(st, curves, names, title, out, stem, written, ncol):
    ncol = min(ncol, len(names))
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol + 2.6, 3.3 * nrow),
                             squeeze=False, sharex=True, layout="constrained")
    confs = su.configurations(st.ok)
    colour = {}
    for _, c in confs.iterrows():
        fam = st.family_of(c["rows"][0])
        x = st.xkey[fam]
        colour[c["label"]] = st.value_shade(fam, None if x is None else
                                            st.ok.loc[c["rows"][0], x])
    for ax, name in zip(axes.flat, names):
        cn = curves[curves["name"] == name]
        positive = True
        for _, c in confs.iterrows():
            pts = cn[cn["run_id"].isin(st.ok.loc[c["rows"], "run_id"])]
            if pts.empty:
                continue
            for _, one in pts.groupby("run_id"):
                ax.plot(one["step"], one["value"], color=colour[c["label"]], lw=0.7,
                        alpha=0.35)
            med = pts.groupby("step")["value"].median()
            ax.plot(med.index, med.to_numpy(), color=colour[c["label"]], lw=1.8,
                    marker="o" if "." in name else None, ms=3)
            positive &= bool((pts["value"] > 0).all())
        vals = cn["value"].to_numpy(float)
        vals = vals[np.isfinite(vals)]
        if positive and len(vals) and vals.max() / max(vals.min(), 1e-300) > 20:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(st.labels.metric_units.get(name.removeprefix("eval."), ""), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes.flat[len(names) - ncol:len(names)]:  # the lowest visible panels
        ax.set_xlabel("optimiser step")
        ax.xaxis.set_tick_params(labelbottom=True)
    handles = [Line2D([], [], color=colour[lab], lw=1.8, label=lab) for lab in colour]
    handles += [Line2D([], [], color="grey", lw=1.8, label="median over seeds"),
                Line2D([], [], color="grey", lw=0.7, alpha=0.5, label="one seed")]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=8,
               title="configuration")
    fig.suptitle(title, fontsize=11)
    paper.save(fig, out, stem, written)


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
        lines += ["", "## Mean over seeds", "",
                  "Mean over the ok seeds ± the half width of its 95 % t interval.", ""]
        lines += su.mean_ci_table(runs) + [""]
        claims = su.claim_metrics(runs)
        paired = [t + [""] for t in (su.paired_table(runs, m) for m in claims) if t]
        if paired:
            lines += ["## Paired by seed", "",
                      "Differences at equal seed: of two methods at the same hyperparameter "
                      "values, and of each configuration of a method against its first "
                      "(lowest). The sign test asks whether positive and negative "
                      "differences are equally likely.", ""] + sum(paired, [])
        spread = su.variance_table(runs, claims + [
            m for m in ("mig_hist", "recon") if su.has_values(runs, m)])
        if spread:
            lines += ["## Where the spread comes from", "",
                      "Shares of each metric's sum of squares over the ok runs: between the "
                      "methods' means, between the configurations of a method (its "
                      "hyperparameter values) and between the seeds of a configuration.",
                      ""] + spread + [""]
        learning = su.learning_table(runs, io.load_curves(path))
        if learning:
            lines += ["## Learning curves", "",
                      "The evaluations during training (eval_every; the last one is the "
                      "run's final evaluation): mean over the ok seeds ± 95 %.", ""]
            lines += learning + [""]
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
        st = paper.Study(path, runs)
        paper.make_figures(st, out, plots)
        plot_mi(st, out, plots)
        plot_curves(st, runs, out, plots)
        drawn = {os.path.basename(p)[len("hyper_"):-4] for p in plots
                 if os.path.basename(p).startswith("hyper_")}
        for m in io.metric_names(runs.columns):
            if m not in drawn and m not in paper.SKIP_METRICS:
                log(f"{m}: not computed by any ok run: no plot")
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
        description="Plot what an untangle sweep found: reconstruction against each "
                    "disentanglement metric, each metric against each method's "
                    "hyperparameter (mean, 95 %% interval and every seed) and per method "
                    "and value (box plots), the metrics' rank correlations, per-factor "
                    "medians, the MI of each method's typical run, training curves, and "
                    "summary.csv / summary.md (median and interquartile range per "
                    "configuration). Figures as PNG and PDF.")
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
