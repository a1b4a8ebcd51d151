#!/usr/bin/python3
"""traversals.py: the latent traversal grid of runs of a sweep.
The code is untangle.plots.traversals; `analysis/traversals.py --help` says how to call it."""
import sys

from untangle.plots.traversals import main

if __name__ == "__main__":
    sys.exit(main())
