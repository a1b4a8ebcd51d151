#!/usr/bin/python3
"""rows.py RESULTS.h5: one line per valid /runs row, "index attempt status error",
sorted by index and attempt, for the integration scripts to grep."""
import sys

import h5py

with h5py.File(sys.argv[1], "r") as f:
    runs = f["runs"][()]
rows = []
for r in runs:
    status = r["status"].decode()
    if status:
        rows.append((int(r["index"]), int(r["attempt"]), status, r["error"].decode()))
for i, a, s, e in sorted(rows):
    print(i, a, s, e)
