"""The report's index.html in a real browser: headless Chromium (Debian's
chromium) loads it, runs its script and takes a screenshot. The page marks
its <body> once every image has loaded (data-ready, data-broken-images,
data-errors: see untangle/report.py); the test fails on a missing mark, a
broken image, a script error, a console error or a blank screenshot.

Skipped with a message when chromium is not installed (`make deps` installs
it). Uses the results files in analysis/examples, so it needs no build.
"""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from untangle import report

ROOT = Path(__file__).resolve().parents[2]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0"]

pytestmark = pytest.mark.skipif(BROWSER is None, reason="chromium is not installed "
                                "(apt-get install chromium, or `make deps`): index.html "
                                "not checked in a browser")


def browse(index, shot):
    """(body tag after the scripts ran, console errors) of index; writes the
    screenshot to shot."""
    url = index.resolve().as_uri()
    dom = subprocess.run([BROWSER] + FLAGS + ["--dump-dom", url], capture_output=True,
                         text=True, timeout=120)
    subprocess.run([BROWSER] + FLAGS + ["--window-size=1300,1600", f"--screenshot={shot}",
                                        url], capture_output=True, text=True, timeout=120,
                   cwd=shot.parent)
    body = re.search(r"<body[^>]*>", dom.stdout)
    console = [ln for ln in dom.stderr.splitlines()
               if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    return (body.group(0) if body else ""), console


def problems(index, shot):
    """What is wrong with the page as the browser shows it (empty: nothing)."""
    body, console = browse(index, shot)
    out = []
    marks = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    if marks.get("ready") != "1":
        out.append(f"the page's script did not finish: {body!r}")
    if marks.get("broken-images", "0") != "0":
        out.append(f"{marks['broken-images']} images did not load")
    if marks.get("errors", "0") != "0":
        out.append(f"{marks['errors']} script errors")
    out += [f"console: {c}" for c in console]
    if not shot.exists():
        out.append("no screenshot")
    else:
        import matplotlib.image as mpimg
        img = mpimg.imread(str(shot))
        if float(np.std(img[..., :3])) < 0.02:
            out.append("the screenshot is blank")
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The report of the richest example (two methods, three values, three seeds)."""
    out = tmp_path_factory.mktemp("report")
    results = ROOT / "analysis" / "examples" / "chen2018" / "results.h5"
    index, plots = report.make_report(str(results), str(out), log=lambda m: None)
    assert plots, "no figure drawn"
    return Path(index)


def test_index_renders(page, tmp_path):
    html = page.read_text()
    assert "<table>" in html and "<pre>" in html and "Libraries" in html
    assert problems(page, tmp_path / "shot.png") == []


def test_a_broken_page_is_caught(page, tmp_path):
    """The checks can fail: a missing figure and a script error are found."""
    broken = page.parent / "broken.html"
    text = page.read_text().replace("src='recon_vs.png'", "src='missing.png'")
    broken.write_text(text.replace("</body>", "<script>undefinedCall();</script></body>"))
    found = problems(broken, tmp_path / "shot.png")
    assert any("images did not load" in p for p in found), found
    assert any("script errors" in p or "console" in p for p in found), found
