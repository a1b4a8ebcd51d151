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

from untangle import io, summary as su
from untangle.plots import paper, tradeoff, traversals

# Sections of index.html: (title, file name prefix or name, caption maker).
SECTIONS = (
    ("Reconstruction against disentanglement", ("recon_vs",),
     "Every seed a point; colour = method, a darker shade = a larger value of the "
     "method's hyperparameter."),
    ("Metrics against the hyperparameters", ("hyper_",),
     "Mean over seeds (line) with its 95 % t interval (band) and every seed (dots), "
     "against each method's hyperparameter (log axis where its values span a decade)."),
    ("Spread per method and value", ("box_",),
     "Box: quartiles over seeds; dots: the seeds."),
    ("How the metrics agree", ("spearman",),
     "Spearman rank correlation between the metrics over the ok runs."),
    ("Per-factor scores", ("factors_",),
     "Median over seeds of each configuration, per ground-truth factor."),
    ("Typical runs", ("mi", "traversal_"),
     "The mutual information matrix of each method's typical run (the median seed of "
     "its best configuration); latent traversals of each method's best run by MIG."),
    ("Training curves", ("curves",),
     "Minibatch estimates; thin: one run, thick: median over seeds."),
    ("Learning curves", ("learning",),
     "Evaluations during training (eval_every), the last one the run's final "
     "evaluation; thin: one run, thick: median over seeds."),
)

# Sorting the tables by a click on a column head, and a mark on <body> that
# a test reads: data-ready once every image has loaded, data-broken-images,
# data-errors (script errors).
SCRIPT = """
var errors = 0;
window.addEventListener('error', function () {
  errors++; document.body.dataset.errors = errors; });
function sortBy(th) {
  var table = th.closest('table'), body = table.tBodies[0];
  var col = Array.prototype.indexOf.call(th.parentNode.children, th);
  var dir = th.dataset.dir === 'asc' ? -1 : 1;
  th.dataset.dir = dir > 0 ? 'asc' : 'desc';
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
    var fx = parseFloat(x), fy = parseFloat(y);
    if (isNaN(fx) || isNaN(fy)) return dir * String(x).localeCompare(String(y));
    return dir * (fx - fy);
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.querySelectorAll('th').forEach(function (th) {
  th.addEventListener('click', function () { sortBy(th); }); });
window.addEventListener('load', function () {
  var broken = 0;
  document.querySelectorAll('img').forEach(function (im) {
    if (!im.complete || im.naturalWidth === 0) broken++; });
  document.body.dataset.brokenImages = broken;
  document.body.dataset.errors = errors;
  document.body.dataset.ready = '1';
});
"""

STYLE = """body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222}
img{max-width:100%;height:auto;border:1px solid #ddd}figure{margin:1.2em 0}
figcaption{font-size:90%;color:#444}
table{border-collapse:collapse;font-size:85%;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:0.25em 0.6em}td.n{text-align:right}
th{background:#f0f0f0;cursor:pointer}tr:nth-child(even){background:#fafafa}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:85%}
dt{font-weight:bold}"""


def _esc(v):
    return html.escape(str(v), quote=True)


def html_table(head, rows):
    """A sortable table: rows of (text, sort value, numeric) cells."""
    out = ["<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td data-v='{_esc(v)}'{' class=n' if num else ''}>{_esc(t)}</td>"
            for t, v, num in r) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _num(v, digits=3):
    f = float(v)
    return ("n/a", "", True) if f != f else (f"{f:.{digits}g}", repr(f), True)


def summary_table(runs):
    """Median [q25, q75] over seeds per configuration, as an HTML table."""
    summ = su.summarize(runs)
    metrics = [m for m in io.metric_names(runs.columns)
               if f"{m}_median" in summ and summ[f"{m}_median"].notna().any()]
    head = ["configuration", "ok", "runs"] + metrics
    rows = []
    for _, r in summ.iterrows():
        cells = [(r["config"], r["config"], False), (str(r["n_ok"]), r["n_ok"], True),
                 (str(r["n_runs"]), r["n_runs"], True)]
        for m in metrics:
            med = r[f"{m}_median"]
            t, v, _ = _num(med)
            if t != "n/a" and r["n_ok"] > 1:
                t += f" [{float(r[f'{m}_q25']):.3g}, {float(r[f'{m}_q75']):.3g}]"
            cells.append((t, v, True))
        rows.append(cells)
    return html_table(head, rows), metrics


def failures_table(runs):
    bad = runs[runs["status"] != "ok"]
    rows = [[(str(r["grid_index"]), r["grid_index"], True), (r["run_id"], r["run_id"], False),
             (r["model"], r["model"], False), (str(r["seed"]), r["seed"], True),
             (r["status"], r["status"], False), (r["error"] or "", r["error"] or "", False)]
            for _, r in bad.iterrows()]
    return html_table(["#", "run_id", "method", "seed", "status", "error"], rows)


def png_width(path):
    """The width in pixels from a PNG's header (0 when unreadable)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
        return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 0
    except OSError:
        return 0


def write_index(path, out, plots, runs):
    """DIR/index.html: run counts, the summary as a sortable table, every
    figure inline by section, the runs that are not ok, the sweep's YAML and
    the library versions."""
    meta = io.load_meta(path)
    name = meta.get("sweep_name", "?")
    n_ok = int((runs["status"] == "ok").sum()) if len(runs) else 0
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>untangle report: {_esc(name)}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>Sweep '{_esc(name)}'</h1>",
             "<dl>",
             f"<dt>file</dt><dd>{_esc(os.path.abspath(path))} (created "
             f"{_esc(meta.get('created', '?'))}, untangle "
             f"{_esc(meta.get('untangle_version', '?'))})</dd>",
             f"<dt>runs</dt><dd>{len(runs)} ({n_ok} ok"
             + "".join(f", {int(v)} {_esc(k)}" for k, v in sorted(counts.items()) if k != "ok")
             + ")</dd>"]
    if io.writer_pid(path) is not None:
        parts.append("<dt>note</dt><dd><strong>a sweep is still writing this file: this "
                     "report covers the runs finished so far</strong></dd>")
    parts.append("</dl>")
    if len(runs):
        table, _ = summary_table(runs)
        parts += ["<h2>Summary</h2>",
                  "<p>Median [interquartile range] over the seeds of each configuration, ok "
                  "runs only; click a column head to sort.</p>", table]
    if not n_ok:
        parts.append("<p><strong>No run finished ok: there is nothing to plot.</strong></p>")
    names = [os.path.basename(p) for p in plots]
    for title, prefixes, caption in SECTIONS:
        mine = [n for n in names if any(n == f"{p}.png" or (p.endswith("_") and
                                        n.startswith(p)) for p in prefixes)]
        if not mine:
            continue
        parts += [f"<h2>{_esc(title)}</h2>", f"<p>{_esc(caption)}</p>"]
        for n in mine:
            pdf = n[:-4] + ".pdf"
            link = f" (<a href='{_esc(pdf)}'>PDF</a>)" if os.path.exists(
                os.path.join(out, pdf)) else ""
            w = png_width(os.path.join(out, n)) * 96 // paper.DPI
            parts.append(f"<figure><img src='{_esc(n)}' alt='{_esc(n)}' width='{w}'>"
                         f"<figcaption>{_esc(n[:-4])}{link}</figcaption></figure>")
    if len(runs) and n_ok < len(runs):
        parts += ["<h2>Runs that are not ok</h2>", failures_table(runs)]
    parts += ["<h2>Sweep file</h2>", f"<pre>{_esc(meta.get('sweep_yaml', ''))}</pre>",
              "<h2>Libraries</h2>",
              "<ul>" + "".join(f"<li>{_esc(v.strip())}</li>"
                               for v in str(meta.get("library_versions", "")).split(";")
                               if v.strip()) + "</ul>",
              f"<p>Also: <a href='summary.md'>summary.md</a>, "
              f"<a href='summary.csv'>summary.csv</a>.</p>",
              f"<script>{SCRIPT}</script>", "</body></html>"]
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
    tradeoff.write_summary(path, runs, out, [], plots)
    return write_index(path, out, plots, runs), plots


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
