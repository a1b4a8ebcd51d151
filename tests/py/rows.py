#!/usr/bin/python3
"""rows.py RESULTS.h5: one line per valid /runs row, "index attempt status error",
sorted by index and attempt, for the integration scripts to grep. Reads
through untangle.io (analysis/ on PYTHONPATH, as tests/it/lib.sh sets)."""
import sys

from untangle import io

runs = io.load_attempts(sys.argv[1], raw=True)
rows = sorted(zip(runs["index"].astype(int), runs["attempt"].astype(int), runs["status"],
                  runs["error"]))
for i, a, s, e in rows:
    print(i, a, s, e)
