"""Shared test settings: a non-interactive matplotlib backend, repository paths.

The backend is chosen with ``matplotlib.use`` for this process only. Setting ``MPLBACKEND`` in the
environment instead would leak into the notebook kernels that nbval and the book build start, and
with the Agg backend ``plt.show()`` in a notebook shows nothing.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
