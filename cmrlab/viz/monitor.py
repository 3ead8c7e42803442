"""Live training curves: losses on one axis, other metrics on another, redrawn in place.

::

    with TrainingMonitor(title="3D U-Net") as mon:
        for epoch in range(1, epochs + 1):
            ...
            mon.update(epoch, loss=train_loss, val_loss=val_loss, val_dice=dice)

In JupyterLab the figure is redrawn in the same output area while training runs. While the
website is built (:func:`cmrlab.config.is_static_build`) nothing is shown until
:meth:`TrainingMonitor.close`, which shows one ordinary figure of the whole run.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cmrlab.config import is_static_build
from cmrlab.errors import ArgumentError, CmrlabError
from cmrlab.files import atomic_write_text

__all__ = ["TrainingMonitor"]

#: Prefixes that mark the training or validation version of one quantity (``loss``/``val_loss``).
_TRAIN_PREFIX = "train_"
_VAL_PREFIXES = ("val_", "valid_", "validation_")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def _in_ipython() -> bool:
    """True inside an IPython shell or Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    return get_ipython() is not None


def split_metric_name(name: str) -> tuple[str, bool]:
    """``(quantity, is_validation)``: ``"val_dice"`` → ``("dice", True)``, ``"train_loss"`` and
    ``"loss"`` → ``("loss", False)``."""
    for prefix in _VAL_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):], True
    if name.startswith(_TRAIN_PREFIX) and len(name) > len(_TRAIN_PREFIX):
        return name[len(_TRAIN_PREFIX):], False
    return name, False


class TrainingMonitor:
    """Record per-epoch metrics and plot them as curves.

    Parameters
    ----------
    metrics:
        Names of the metrics to plot, in this order; ``None`` plots every metric given to
        :meth:`update`. Metrics not listed are still recorded (``history``, :meth:`to_csv`).
    title:
        Figure title.
    every:
        Redraw the live figure at most once every ``every`` calls of :meth:`update`.
    live:
        ``True``: draw during training, updating one output in place. ``False``: show nothing
        until :meth:`close`, which shows the final figure once. ``None``: live in a Jupyter kernel,
        not live during the website build or outside IPython (where ``close`` shows nothing,
        as there is nowhere to show it; :meth:`figure` still gives the figure).

    Curves: metrics whose name contains ``"loss"`` share the left axis, the others the right one;
    ``x`` and ``val_x`` (or ``train_x`` and ``val_x``) share a colour, training solid and
    validation dashed. Non-finite values are recorded but not plotted.
    """

    def __init__(self, metrics: Sequence[str] | None = None, *, title: str | None = None,
                 every: int = 1, live: bool | None = None) -> None:
        if metrics is not None:
            if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
                raise ArgumentError(f"metrics must be a list of metric names, got {metrics!r}")
            metrics = list(metrics)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ArgumentError(f"every must be a positive integer, got {every!r}")
        if live is not None and not isinstance(live, bool):
            raise ArgumentError(f"live must be True, False or None, got {live!r}")
        self.metrics: list[str] | None = metrics
        self.title = title
        self.every = every
        self.live: bool = (not is_static_build() and _in_ipython()) if live is None else live
        #: ``history[name]`` is the list of ``(epoch, value)`` pairs recorded for ``name``.
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._last_epoch: int | None = None
        self._updates = 0
        self._handle: Any = None
        self._fig: Any = None
        self._closed = False
        self._colors: dict[str, str] = {}

    # ---------------------------------------------------------------- recording
    def update(self, epoch: int | None = None, **values: float) -> None:
        """Record metric values for ``epoch`` (default: the previous epoch + 1, starting at 1).

        ``update(3, loss=0.4, val_loss=0.5, val_dice=0.8)``. Values may be Python or numpy
        numbers or one-element tensors; NaN and ±inf are recorded but not drawn. New metric
        names may appear at any update. The live figure is redrawn every ``every`` updates.
        """
        if self._closed:
            raise CmrlabError("this TrainingMonitor is closed; create a new one to record more")
        if epoch is None:
            epoch = 1 if self._last_epoch is None else self._last_epoch + 1
        elif isinstance(epoch, bool) or not hasattr(epoch, "__index__"):
            raise ArgumentError(f"epoch must be an integer, got {epoch!r}")
        epoch = int(epoch)
        if not values:
            raise ArgumentError("update needs at least one metric value, e.g. update(1, loss=0.5)")
        converted = {}
        for name, value in values.items():
            try:
                converted[name] = float(value)
            except (TypeError, ValueError) as exc:
                raise ArgumentError(f"metric {name!r} must be a number, got {value!r}") from exc
        for name, value in converted.items():
            self.history.setdefault(name, []).append((epoch, value))
        self._last_epoch = epoch
        self._updates += 1
        if self.live and self._updates % self.every == 0:
            self._show()

    # ---------------------------------------------------------------- drawing
    def _plotted(self) -> list[str]:
        names = list(self.history) if self.metrics is None else self.metrics
        return [n for n in names if n in self.history]

    def _color(self, quantity: str) -> str:
        if quantity not in self._colors:
            self._colors[quantity] = _COLORS[len(self._colors) % len(_COLORS)]
        return self._colors[quantity]

    def figure(self) -> Any:
        """The figure of the recorded history (a ``matplotlib.figure.Figure``, redrawn per call).

        One axis for the losses (metric names containing ``"loss"``) and one for the other
        metrics, with epochs on ``x``; each line is labelled with its metric name.
        """
        from matplotlib.figure import Figure

        names = self._plotted()
        losses = [n for n in names if "loss" in n.lower()]
        others = [n for n in names if "loss" not in n.lower()]
        groups = [(g, label) for g, label in ((losses, "loss"), (others, "metric")) if g]
        if self._fig is None:
            self._fig = Figure(figsize=(4.2 * max(len(groups), 1) + 0.4, 3.2), dpi=100,
                               layout="constrained")
        fig = self._fig
        fig.clear()
        if not groups:
            ax = fig.subplots()
            ax.text(0.5, 0.5, "no values recorded yet", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
        else:
            axes = fig.subplots(1, len(groups), squeeze=False)[0]
            for ax, (group, ylabel) in zip(axes, groups):
                for name in group:
                    points = [(e, v) for e, v in self.history[name] if math.isfinite(v)]
                    quantity, is_val = split_metric_name(name)
                    xs = [e for e, _ in points]
                    ys = [v for _, v in points]
                    ax.plot(xs, ys, label=name, color=self._color(quantity),
                            linestyle="--" if is_val else "-",
                            marker="o" if len(points) <= 30 else None, markersize=3)
                ax.set_xlabel("epoch")
                ax.set_ylabel(ylabel)
                ax.grid(True, alpha=0.3)
                ax.legend(fontsize=8)
                ax.xaxis.get_major_locator().set_params(integer=True)
        if self.title:
            fig.suptitle(self.title)
        return fig

    def _png(self) -> bytes:
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png")
        return buf.getvalue()

    def _show(self) -> None:
        from IPython.display import Image, display

        image = Image(data=self._png(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def close(self) -> None:
        """Finish: draw the final figure.

        Live: the figure shown during training is updated a last time. Not live: the final figure
        is shown now, once (inside IPython). Nothing is shown when nothing was recorded. Calling
        ``close`` again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        if not self.history:
            return
        if self.live or _in_ipython():
            self._show()

    def __enter__(self) -> TrainingMonitor:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- export
    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the history as CSV: an ``epoch`` column and one column per metric.

        Rows are the epochs in increasing order; a metric without a value at an epoch leaves its
        cell empty, and a metric given twice for one epoch keeps the last value. The file is
        written to a temporary file next to ``path`` and then renamed, so it is never half
        written. Returns the path.
        """
        path = Path(path)
        names = list(self.history)
        table: dict[int, dict[str, float]] = {}
        for name in names:
            for epoch, value in self.history[name]:
                table.setdefault(epoch, {})[name] = value
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["epoch", *names])
        for epoch in sorted(table):
            row = table[epoch]
            writer.writerow([epoch, *(repr(row[n]) if n in row else "" for n in names)])
        atomic_write_text(path, text.getvalue())
        return path

    def __repr__(self) -> str:
        return (f"<TrainingMonitor metrics={list(self.history)} "
                f"epochs={self._last_epoch if self._last_epoch is not None else 'none'}>")

