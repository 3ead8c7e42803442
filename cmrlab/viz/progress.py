"""Progress bars that suit where the code runs.

In JupyterLab :func:`progress` is ``tqdm.auto.tqdm`` (a widget bar in a notebook, text in a
terminal). While the website is built (:func:`cmrlab.config.is_static_build`) it is the plain-text
``tqdm.tqdm`` writing to standard output: the page then needs no widget JavaScript, and the
build, which treats text on standard error as a warning, stays clean.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from cmrlab.config import is_static_build

__all__ = ["progress"]


def progress(iterable: Iterable[Any] | None = None, **tqdm_kwargs: Any) -> Any:
    """A tqdm progress bar over ``iterable`` (keyword arguments go to ``tqdm``).

    ``for batch in progress(loader, desc="epoch 3"): ...`` or, without an iterable,
    ``bar = progress(total=n)`` and ``bar.update(1)``. In the static website build the bar is plain
    text on ``sys.stdout`` unless ``file`` is given.
    """
    if is_static_build():
        from tqdm import tqdm

        tqdm_kwargs.setdefault("file", sys.stdout)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **tqdm_kwargs)
