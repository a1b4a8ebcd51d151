"""untangle's analysis package: read a results file and report on it.

    io         the reader of the HDF5 layout (load_runs, load_curves,
               load_detail, load_meta, load_labels); the only code that
               knows the layout
    summary    swept keys, configurations, best runs, medians over seeds
    plots      tradeoff (trade-offs, metrics, curves, summary tables) and
               traversals (latent traversal grids)
    report     all of it into one directory with an index.html

Command lines: analysis/report.py, analysis/tradeoff.py and
analysis/traversals.py (or `python3 -m untangle.report` with analysis/ on
PYTHONPATH).
"""
