#!/usr/bin/python3
"""report.py: the whole report of a sweep (plots, summary, traversals, index.html).
The code is untangle.report; `analysis/report.py --help` says how to call it."""
import sys

from untangle.report import main

if __name__ == "__main__":
    sys.exit(main())
