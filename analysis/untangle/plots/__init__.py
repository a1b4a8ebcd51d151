"""The plots of a results file: tradeoff (the trade-offs, metrics against the
swept keys, curves, summary tables) and traversals (latent traversal grids).
matplotlib draws into files only: the Agg backend, no display needed."""
import matplotlib
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

matplotlib.use("Agg")  # with pyplot already imported, this switches its backend

__all__ = ["plt", "Line2D"]
