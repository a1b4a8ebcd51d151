#!/usr/bin/python3
"""tradeoff.py: the trade-off plots and summary tables of a sweep.
The code is untangle.plots.tradeoff; `analysis/tradeoff.py --help` says how to call it."""
import sys

from untangle.plots.tradeoff import main

if __name__ == "__main__":
    sys.exit(main())
