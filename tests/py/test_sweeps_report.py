"""The report of every sweep file in sweeps/ (and of a grid that gives one
method blocks with different keys) draws without error, and every ok run
is drawn: on a results file in the sweep's grid shape.

build/it/fake_rows (tests/it/fake_rows.c) loads the sweep file as `untangle
sweep` does and writes one row per run of its first two seeds through the
results writer, with the run's own configuration and plausible metric
values (NaN where the method computes none), one failed run, curves, detail
and traversals. analysis/report.py's main then runs on it in this process;
each figure is drawn once into a small PNG to keep the test quick (the code
paths are those of the full report up to the file format). A sweep file added to
sweeps/ is picked up by the glob; one that differs from an earlier one only
in its name and dSprites variant is drawn once. Run from the repository root; $BUILD names
the build folder (default build).
"""
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from untangle import io, report
from untangle.plots import paper, plt, traversals

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / os.environ.get("BUILD", "build") / "it" / "fake_rows"
ALL_SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
# The dSprites variants: the same factors, so the same figures.
DSPRITES_SETS = ("dsprites", "color_dsprites", "noisy_dsprites")


def _shape(path):
    """A sweep file as its report sees it: its lines without comments, its
    name, and with a dSprites variant's name as "dsprites"."""
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].rstrip()
        if not line or line.startswith("name:"):
            continue
        for d in DSPRITES_SETS[1:]:
            line = line.replace(f"name: {d},", "name: dsprites,")
        lines.append(line)
    return "\n".join(lines)


# A sweep file whose shape equals another's (locatello2019's colour and
# noise siblings) draws the same figures: the report of the plain dSprites
# one is drawn.
SWEEPS, SIBLINGS, _seen = [], {}, {}
for _p in sorted(ALL_SWEEPS, key=lambda p: (any(f"name: {d}," in p.read_text()
                                                for d in DSPRITES_SETS[1:]), p.name)):
    if _shape(_p) in _seen:
        SIBLINGS[_p.name] = _seen[_shape(_p)]
    else:
        _seen[_shape(_p)] = _p.name
        SWEEPS.append(_p)

# One method, two blocks that set different keys: neither block has a value
# for the other's axis (the class of locatello2019.yaml's betavae).
TWO_BLOCKS = """name: two-blocks
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 100, batch_size: 16, lr: 1.0e-3, log_every: 50}
eval:  {images: 200, samples: 100, pairs: 5}
grid:
  - model: betavae
    beta: [1, 4, 8]
  - model: betavae
    gamma: 100
    c_max: [5, 25]
  - model: betatcvae
    beta: [2, 6]
seeds: 3
"""


def test_the_glob_finds_the_sweeps():
    names = {p.name for p in SWEEPS}
    assert {"quick.yaml", "locatello2019.yaml"} <= names, names
    assert SIBLINGS == {"locatello2019-color.yaml": "locatello2019.yaml",
                        "locatello2019-noisy.yaml": "locatello2019.yaml"}, SIBLINGS


# The metrics whose hyper_ and box_ figures the report test draws: one code
# draws every metric, these cover its cases (a metric of every method, one
# NaN for deterministic codes, one of the full-set suite, the ones that need
# a method: swap_acc, disc_acc, and dsd's chunk_mig).
DRAWN_METRICS = {"mig", "recon", "kl", "beta_vae_score", "swap_acc", "disc_acc", "chunk_mig"}


@pytest.fixture
def fast_figures(monkeypatch):
    """Each figure drawn once, into a small PNG (paper.save draws it twice,
    at 200 dpi, as PNG and PDF): every artist is still laid out and drawn.
    The per-metric figures only for DRAWN_METRICS."""
    def save(fig, out, name, written):
        path = os.path.join(out, f"{name}.png")
        fig.savefig(path, dpi=30)
        written.append(path)
        plt.close(fig)
    monkeypatch.setattr(paper, "save", save)
    monkeypatch.setattr(traversals, "DPI", 30)
    for name in ("plot_hyper", "plot_box"):
        def some(st, metric, out, written, draw=getattr(paper, name)):
            if metric in DRAWN_METRICS:
                draw(st, metric, out, written)
        monkeypatch.setattr(paper, name, some)


@pytest.mark.parametrize("sweep", SWEEPS + ["two-blocks"], ids=lambda p: getattr(p, "stem", p))
def test_report_of_sweep(sweep, tmp_path, fast_figures, capsys):
    if not HELPER.exists():
        pytest.skip(f"{HELPER} is missing: build it with `make {HELPER.relative_to(ROOT)}`")
    if sweep == "two-blocks":
        sweep = tmp_path / "two-blocks.yaml"
        sweep.write_text(TWO_BLOCKS)
    path, out = tmp_path / "r.h5", tmp_path / "report"
    p = subprocess.run([str(HELPER), str(sweep), str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert report.main([str(path), "-o", str(out)]) == 0, capsys.readouterr().err
    assert (out / "index.html").exists() and (out / "summary.md").exists()

    runs = io.load_runs(path)
    assert (runs["status"] == "ok").sum() == len(runs) - 1  # the one failed run
    # one summary row per configuration: every block's runs are there
    summ = pd.read_csv(out / "summary.csv")
    n_configs = len(runs.drop_duplicates(["model"] + list(io.config_keys(runs.columns))))
    assert len(summ) == n_configs, (len(summ), n_configs)
    # every ok run is in exactly one family, and has a value on its family's axis
    st = paper.Study(path, runs)
    seen = pd.concat([st.rows(f) for f in st.methods])
    assert sorted(seen.index) == sorted(st.ok.index)
    for f in st.methods:
        x = st.xkey[f]
        assert x is None or st.rows(f)[x].notna().all(), (f, x)
    if "dipvae1" in st.methods:  # lambda_d follows from lambda_od: one series
        assert st.xkey["dipvae1"] == "lambda_od" and st.other["dipvae1"] == []
    assert any(f.startswith("hyper_") for f in os.listdir(out)) or not st.metrics
    if "eval_every:" in Path(sweep).read_text():  # learning curves
        assert (out / "learning.png").exists() and (out / "learning_factors.png").exists()


def test_two_blocks_are_two_families(tmp_path, fast_figures):
    if not HELPER.exists():
        pytest.skip(f"{HELPER} is missing")
    sweep = tmp_path / "two-blocks.yaml"
    sweep.write_text(TWO_BLOCKS)
    path = tmp_path / "r.h5"
    subprocess.run([str(HELPER), str(sweep), str(path), "3"], check=True, capture_output=True,
                   timeout=120)
    st = paper.Study(path, io.load_runs(path))
    # the capacity block of betavae (the older way to write AnnealedVAE) is
    # annealedvae: a family of its own, on its own axis and in its own colour
    assert st.methods == ["betavae", "annealedvae", "betatcvae"]
    assert st.xkey == {"betavae": "beta", "annealedvae": "c_max", "betatcvae": "beta"}
    assert st.colour["betavae"] != st.colour["annealedvae"]
    assert len(st.rows("annealedvae")) == 2 * 3
