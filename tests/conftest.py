"""Shared test settings: a non-interactive matplotlib backend, repository paths.

The backend is chosen with ``matplotlib.use`` for this process only. Setting ``MPLBACKEND`` in the
environment instead would leak into the notebook kernels that nbval and the book build start, and
with the Agg backend ``plt.show()`` in a notebook shows nothing.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]


import locale  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _keep_the_locale():
    """Put the C locale back after each test.

    Tests that call SimpleITK's GDCM reader or writer directly (not through cmrlab.data.io, which
    restores it itself) switch the process to the "C" locale; Python's default text encoding then
    becomes ASCII and later tests that read UTF-8 files without an explicit encoding fail.
    """
    saved = locale.setlocale(locale.LC_ALL)
    yield
    if locale.setlocale(locale.LC_ALL) != saved:
        locale.setlocale(locale.LC_ALL, saved)
