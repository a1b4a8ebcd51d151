"""The numbers an example's README quotes are those of its committed results
file: every analysis/examples/*/README.md quotes at least one block between
"<!-- from summary.md -->" and "<!-- end -->", and each of its lines must be
a line of the summary.md that analysis/report.py writes for the results.h5
beside it (regenerated here).
"""
import re
from pathlib import Path

import pytest

from untangle import io
from untangle.plots import tradeoff

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in (ROOT / "analysis" / "examples").glob("*/README.md"))
BLOCK = re.compile(r"<!-- from summary\.md -->\n(.*?)<!-- end -->", re.S)


def quoted(readme):
    return [line for block in BLOCK.findall(readme.read_text())
            for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_readme_numbers_are_the_files(example, tmp_path):
    lines = quoted(example / "README.md")
    assert lines, f"{example.name}/README.md quotes no summary.md block"
    path = example / "results.h5"
    summary = set(tradeoff.write_summary(path, io.load_runs(path), tmp_path, []))
    missing = [line for line in lines if line not in summary]
    assert not missing, (f"{example.name}/README.md quotes lines that the summary of "
                         f"results.h5 does not have:\n" + "\n".join(missing))
