"""The report of a sweep: every trade-off plot and the summary
(plots.tradeoff), the latent traversals of each model's best run by MIG
(plots.traversals), and DIR/index.html that shows them all on one page.

    analysis/report.py RESULTS.h5 -o DIR
    make report RESULTS=results/quick.h5

Prints where the report is. Works on a file still being written by a
running sweep (it reports what has finished), on a file whose runs all
failed (the summary says so and nothing is plotted) and on a merged file of
a job array (same layout).
"""
import argparse
import html
import os
import sys

from untangle import io
from untangle.plots import tradeoff, traversals

CAPTIONS = {
    "tradeoff.png": "Reconstruction against MIG: each model's configurations, median over "
                    "seeds (large) and each seed (small).",
    "metric_mig.png": "MIG (Chen et al.) against the swept parameter.",
    "metric_mig_hist.png": "MIG (histogram estimator, disentanglement_lib) against the swept "
                           "parameter.",
    "metric_tc.png": "Total correlation against the swept parameter.",
    "metric_recon.png": "Reconstruction NLL against the swept parameter.",
    "metric_swap_acc.png": "Swap accuracy against the swept parameter.",
    "mig_per_factor.png": "Per-factor MIG of each model's best run.",
    "mi_best.png": "Mutual information between latents and factors, best run of each model.",
    "curves.png": "Training curves.",
}


def write_index(path, out, plots, summary_lines):
    """DIR/index.html: the summary (as preformatted markdown) and every plot."""
    meta = io.load_meta(path)
    parts = ["<!doctype html><meta charset='utf-8'>",
             f"<title>untangle report: {html.escape(str(meta.get('sweep_name', '?')))}</title>",
             "<style>body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em}"
             "img{max-width:100%;border:1px solid #ddd}figure{margin:1.5em 0}"
             "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style>",
             f"<h1>Sweep '{html.escape(str(meta.get('sweep_name', '?')))}'</h1>",
             "<pre>" + html.escape("\n".join(summary_lines)) + "</pre>"]
    for p in plots:
        name = os.path.basename(p)
        cap = CAPTIONS.get(name)
        if cap is None and name.startswith("traversal_best_"):
            cap = f"Latent traversals of the best {name[15:-4]} run by MIG."
        parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(name)}'>"
                     f"<figcaption>{html.escape(cap or name)}</figcaption></figure>")
    index = os.path.join(out, "index.html")
    with open(index, "w") as fh:
        fh.write("\n".join(parts) + "\n")
    return index


def make_report(path, out, log=print):
    """Write the whole report of `path` into `out`; returns the index file."""
    os.makedirs(out, exist_ok=True)
    runs = io.load_runs(path)
    files = tradeoff.make_plots(path, out, runs=runs, log=log)
    trav = traversals.draw_best(path, "mig", out, runs=runs, log=lambda m: None)
    plots = [f for f in files if f.endswith(".png")] + trav
    # the summary again, now listing the traversals too
    lines = tradeoff.write_summary(path, runs, out, [], plots)
    return write_index(path, out, plots, lines), plots


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="report.py",
        description="Write the report of an untangle sweep into DIR: the trade-off plots, "
                    "summary.csv / summary.md, the latent traversals of each model's best "
                    "run, and index.html showing them all.")
    p.add_argument("results", metavar="RESULTS.h5", help="results file of `untangle sweep`")
    p.add_argument("-o", "--out", metavar="DIR", default=None,
                   help="output directory (default: RESULTS without .h5, plus -report)")
    a = p.parse_args(argv)
    out = a.out or os.path.splitext(a.results)[0] + "-report"
    try:
        index, plots = make_report(a.results, out)
    except (io.UntangleFileError, traversals.TraversalError) as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return 1
    print(f"report.py: {len(plots)} plots; summary: {os.path.join(out, 'summary.md')}")
    print(f"report: {os.path.abspath(index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
