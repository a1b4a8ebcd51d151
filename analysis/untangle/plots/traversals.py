"""Draw the latent traversal grid of a run: one row per latent unit, each
latent moved through the file's traversal steps (-2.5 to 2.5) around a fixed code (a discrete variable: one
cell per category), rows ordered by the latent's KL (most informative
first), each row labelled with the factors it captures according to the
run's mutual-information matrix.

    analysis/traversals.py RESULTS.h5 --index I [--index J ...] -o DIR
    analysis/traversals.py RESULTS.h5 --run-id ID -o DIR
    analysis/traversals.py RESULTS.h5 --best mig -o DIR    # best run per model

Writes DIR/traversal_<index or run_id>.png, or DIR/traversal_best_<model>.png with
--best. When the file stores no per-latent KL, rows are ordered by the MI
matrix's row maximum, and the title says so.
"""
import argparse
import math
import os
import sys

import numpy as np

from untangle import io, summary as su
from untangle.plots import plt

DPI = 200
MIN_NATS = 0.05   # an MI below this does not count as "captures"
BEST_CHOICES = ("mig", "mig_hist", "swap_acc", "recon", "elbo")


class TraversalError(Exception):
    pass


def unit_layout(d, n_steps):
    """(n_units, cell size S, unit names) of the run's traversal grid of n_steps
    cells per row."""
    t = d["traversal"]
    h, w = t.shape
    if d["mi"] is not None:
        n = d["mi"].shape[0]
    else:
        n = max(d["latent_dim"], 0) + d["n_discrete"]
    if n <= 0 or h % n or w != n_steps * (h // n):
        # trust the image: cells are square, n_steps per row
        s = w // n_steps
        n = h // s if s else 0
    else:
        s = h // n
    D = d["latent_dim"] if 0 <= d["latent_dim"] <= n else n
    cats = list(d["row"]["discrete"] or ()) if "row" in d else []
    names = [f"z{j}" for j in range(D)]
    for j in range(n - D):
        k = f" ({cats[j]} cats)" if j < len(cats) else ""
        names.append(f"c{j}{k}")
    return n, s, names


def order_units(d, n):
    """(order, how): unit indices, most informative first, and a phrase for
    the title saying what the order is based on."""
    if d.get("kl") is not None and len(d["kl"]) == n and np.isfinite(d["kl"]).any():
        kl = np.nan_to_num(d["kl"], nan=-np.inf)
        return list(np.argsort(-kl, kind="stable")), "rows ordered by KL, largest first"
    if d["mi"] is not None and d["mi"].shape[0] == n:
        rowmax = np.nan_to_num(d["mi"], nan=-np.inf).max(axis=1)
        return (list(np.argsort(-rowmax, kind="stable")),
                "per-latent KL not stored: rows ordered by max MI over factors")
    return list(range(n)), "per-latent KL and MI not stored: rows in latent order"


def captured(d, u):
    """'posY 1.1, posX 0.75' (nats): the factors unit u carries (MI at
    least MIN_NATS and at least half the row's max), or a dash."""
    if d["mi"] is None or u >= d["mi"].shape[0]:
        return "(no MI matrix)"
    row = d["mi"][u]
    top = np.nanmax(row) if np.isfinite(row).any() else float("nan")
    if not np.isfinite(top) or top < MIN_NATS:
        return "\u2014"
    ks = [k for k in np.argsort(-np.nan_to_num(row, nan=-np.inf))
          if row[k] >= MIN_NATS and row[k] >= 0.5 * top][:3]
    return ", ".join(f"{d['factors'][k]} {row[k]:.2g}" for k in ks)


def draw(path, d, out_png, runs=None, title_extra=""):
    """Draw one run's traversal grid into out_png."""
    if d["traversal"] is None:
        raise TraversalError(f"{path}: run #{d['grid_index']} (attempt {d['attempt']}, status "
                             f"{d['status']}) has no traversal image")
    steps = io.load_labels(path).traversal_steps
    n_steps = len(steps)
    n, s, names = unit_layout(d, n_steps)
    if n == 0:
        raise TraversalError(f"{path}: run #{d['grid_index']}: traversal image of shape "
                             f"{d['traversal'].shape} does not fit {n_steps} cells per row")
    order, how = order_units(d, n)
    img = d["traversal"][: n * s].reshape(n, s, -1)[order].reshape(n * s, -1)
    cell = 0.62
    fig, ax = plt.subplots(figsize=(n_steps * cell + 3.6, n * cell + 1.6))
    ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest",
              extent=(0, n_steps, n, 0))
    for i in range(1, n):
        ax.axhline(i, color="#808080", lw=0.8)
    ax.set_yticks([i + 0.5 for i in range(n)])
    ax.set_yticklabels([names[u] for u in order])
    ax.set_ylabel("latent unit")
    ax.set_xticks([i + 0.5 for i in range(n_steps)])
    vals = steps
    ax.set_xticklabels([f"{v:+.1f}" for v in vals], fontsize=8)
    D = min(max(d["latent_dim"], 0), n)
    ax.set_xlabel("value of the traversed latent (others fixed at the code of one image)")
    cats = list(d["row"]["discrete"] or ())
    for i, u in enumerate(order):
        if u >= D:  # a discrete variable: its cells are its categories, not values
            k = cats[u - D] if u - D < len(cats) else n_steps
            for t in range(min(k, n_steps)):
                ax.text(t + 0.06, i + 0.06, f"cat {t}", color="#ffd54f", fontsize=7,
                        va="top", ha="left")
    ax.set_xlim(0, n_steps)
    ax.set_ylim(n, 0)
    # what each row captures, as text right of the grid (a twin axis would
    # fight imshow's fixed aspect and shift the rows)
    for i, u in enumerate(order):
        ax.text(n_steps + 0.15, i + 0.5, captured(d, u), va="center", ha="left", fontsize=8,
                clip_on=False)
    ax.text(n_steps + 0.15, n + 0.2, "factors captured:\n"
            f"I(latent; factor) in nats (\u2265 {MIN_NATS})",
            va="top", ha="left", fontsize=8, style="italic", clip_on=False)
    row = d["row"]
    keys = su.label_keys(runs, row["model"]) if runs is not None else []
    cfg = su.config_label(row, keys)
    def f(v):
        return "n/a" if math.isnan(v) else f"{v:.3g}"
    ax.set_title(f"Latent traversals of run #{d['grid_index']}: {cfg}, seed {int(row['seed'])}"
                 f"{title_extra}\nMIG {f(row['mig'])}, MIG (hist) {f(row['mig_hist'])}, "
                 f"recon {f(row['recon'])} nats; {how}", fontsize=10)
    fig.savefig(out_png, dpi=DPI, bbox_inches="tight")
    fig.savefig(out_png[:-4] + ".pdf", bbox_inches="tight")
    plt.close(fig)
    return out_png


def draw_index(path, run, out, runs=None):
    """The traversal of one run, by index (int) or run_id (str)."""
    runs = io.load_runs(path) if runs is None else runs
    try:
        d = io.load_detail(path, run)
    except KeyError:
        what = "run_id" if isinstance(run, str) else "grid index"
        raise TraversalError(f"{path}: no run with {what} {run} in the file") from None
    return draw(path, d, os.path.join(out, f"traversal_{run}.png"), runs)


def draw_best(path, metric, out, runs=None, log=print):
    """The traversal of the best ok run of each model by metric. Returns the
    files written (none when no run is ok)."""
    runs = io.load_runs(path) if runs is None else runs
    best = su.best_runs(runs, metric) if len(runs) else []
    if len(best) == 0:
        log(f"{path}: no run finished ok: no traversal drawn")
        return []
    files = []
    for _, r in best.iterrows():
        d = io.load_detail(path, r["run_id"], int(r["attempt"]))
        if d["traversal"] is None:
            log(f"{path}: best {r['model']} run #{int(r['grid_index'])} has no traversal image")
            continue
        files.append(draw(path, d, os.path.join(out, f"traversal_best_{r['model']}.png"),
                          runs, title_extra=f" (best {r['model']} by {r['best_by']})"))
    return files


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="traversals.py",
        description="Draw the latent traversal grid of a run of an untangle sweep, rows "
                    "ordered by KL (or by the MI matrix when per-latent KL is not stored) "
                    "and labelled with the factors each latent captures.")
    p.add_argument("results", metavar="RESULTS.h5", help="results file of `untangle sweep`")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--index", type=int, action="append", metavar="I",
                   help="the run's index (repeat for several)")
    g.add_argument("--run-id", action="append", metavar="ID",
                   help="the run's run_id (repeat for several)")
    g.add_argument("--best", choices=BEST_CHOICES, metavar="METRIC",
                   help=f"the best ok run of each model by METRIC ({', '.join(BEST_CHOICES)})")
    p.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")
    a = p.parse_args(argv)
    try:
        os.makedirs(a.out, exist_ok=True)
        runs = io.load_runs(a.results)
        if a.best:
            files = draw_best(a.results, a.best, a.out, runs)
        else:
            files = [draw_index(a.results, i, a.out, runs) for i in a.index or a.run_id]
    except (io.UntangleFileError, TraversalError) as exc:
        print(f"traversals.py: error: {exc}", file=sys.stderr)
        return 1
    for f in files:
        print(f"traversals.py: wrote {f}")
    return 0
