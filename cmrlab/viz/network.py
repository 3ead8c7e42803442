"""Network diagrams drawn from numbers: a U-Net from its levels' channels, a pyramid-pooling module
from its paths.

The caller reads the numbers off a model (its layers' ``out_channels``, the shapes a forward pass
records) and passes them as plain lists, so a diagram shows the network that was built, not one
typed by hand. Nothing here knows torch: the functions take integers and strings and draw with
matplotlib.

- :func:`draw_unet`: the U shape of an encoder–decoder network, one bar per feature map (its
  height falls with the level, its width grows with the channel count, the channel count written
  on top), max pooling down, up-steps up, skip connections across (optionally labelled, e.g. with
  the module that transforms them) and the 1×1 head.
- :func:`draw_pyramid_module`: one pyramid-pooling module, one row per path (pool by a factor,
  convolutions, up-steps back to the input size), the concatenation and the convolutions after it.

Both check their numbers first and raise :class:`~cmrlab.errors.ArgumentError` naming the wrong
one (a path that does not come back to the input size, a decoder level missing, ...).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cmrlab.checks import check_bool, check_int, check_int_tuple
from cmrlab.errors import ArgumentError

__all__ = ["draw_pyramid_module", "draw_unet"]

CONV_COLOR = "#9ecae1"      # feature maps made by convolutions
SKIP_COLOR = "#fdd0a2"      # copies carried across by a skip connection
UP_COLOR = "#a1d99b"        # outputs of up-steps
POOL_COLOR = "#d62728"
UP_ARROW_COLOR = "#2ca02c"
SKIP_ARROW_COLOR = "#7f7f7f"
MODULE_COLOR = "#dadaeb"    # a labelled module on a skip (e.g. PSP)

DEFAULT_UNET_LABELS = {
    "conv": "convolution (+ activation, BN)", "pool": "max pooling", "up": "up-step",
    "skip": "skip connection (copy)", "head": "1×1 convolution (head)",
}


def _levels(name: str, values: object, length: int | None = None) -> list[tuple[int, ...]]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ArgumentError(f"{name} must be a non-empty list of channel lists, got {values!r}")
    if length is not None and len(values) != length:
        raise ArgumentError(f"{name} must have {length} levels, got {len(values)}")
    return [check_int_tuple(f"{name}[{i}]", v) for i, v in enumerate(values)]


def _texts(name: str, values: object, length: int) -> list[str | None]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != length:
        raise ArgumentError(f"{name} must be a list of {length} strings (or None), got {values!r}")
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, str):
            raise ArgumentError(f"{name}[{i}] must be a string or None, got {v!r}")
    return list(values)


def _bar_width(channels: int) -> float:
    return 0.12 + 0.07 * math.log2(channels)


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def draw_unet(
    encoder: Sequence[Sequence[int]],
    up: Sequence[int],
    decoder: Sequence[Sequence[int]],
    *,
    in_channels: int,
    out_channels: int,
    skips: Sequence[int] | None = None,
    skip_labels: Sequence[str | None] | None = None,
    sizes: Sequence[str | None] | None = None,
    labels: dict[str, str] | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Draw a U-Net from its channel counts; returns the matplotlib ``Axes``.

    Args:
        encoder: for each level ``0 … depth``, the channels of the maps its convolutions make
            (``[[64, 64], [128, 128], …]``).
        up: for each decoder level ``0 … depth − 1``, the channels of its up-step's output.
        decoder: for each decoder level ``0 … depth − 1``, the channels of the maps its
            convolutions make.
        in_channels, out_channels: the input's channels and the head's.
        skips: for each level ``0 … depth − 1``, the channels the skip delivers to the decoder
            (default: the level's last encoder map, a plain copy).
        skip_labels: for each level, a text drawn in a box on the skip (``None``: none).
        sizes: for each level ``0 … depth``, a text written beside it (e.g. ``"176×176×3"``).
        labels: names of the operations for the legend, keys ``conv``, ``pool``, ``up``,
            ``skip``, ``head`` (defaults in :data:`DEFAULT_UNET_LABELS`).

    One bar per feature map, left to right in the order they are computed: the input, the
    encoder's maps level by level going down, then per decoder level the skip's copy (orange),
    the up-step's output (green) and the convolutions' maps, and the output. A bar's height
    halves-ish with each level, its width grows with ``log2`` of its channels, and the channel
    count is written on top. The decoder's first convolution reads ``skip + up`` channels, which
    the two bars side by side show.
    """
    enc = _levels("encoder", encoder)
    depth = len(enc) - 1
    if depth < 1:
        raise ArgumentError("encoder must have at least two levels (one pooling)")
    dec = _levels("decoder", decoder, depth)
    ups = list(check_int_tuple("up", up))
    if len(ups) != depth:
        raise ArgumentError(f"up must have {depth} entries (one per decoder level), got {len(ups)}")
    in_channels = check_int("in_channels", in_channels)
    out_channels = check_int("out_channels", out_channels)
    skip_ch = [e[-1] for e in enc[:-1]] if skips is None else list(check_int_tuple("skips", skips))
    if len(skip_ch) != depth:
        raise ArgumentError(f"skips must have {depth} entries (one per level above the bottom), "
                            f"got {len(skip_ch)}")
    skip_text = [None] * depth if skip_labels is None else _texts("skip_labels", skip_labels, depth)
    size_text = [None] * (depth + 1) if sizes is None else _texts("sizes", sizes, depth + 1)
    names = dict(DEFAULT_UNET_LABELS)
    for key, value in (labels or {}).items():
        if key not in names or not isinstance(value, str):
            raise ArgumentError(f"labels must map {sorted(names)} to strings, got {key!r}: {value!r}")
        names[key] = value

    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    ax = _axes(ax, (12, 5.5))
    gap, dy = 0.16, 1.25
    height = [1.0 * 0.72**level for level in range(depth + 1)]
    y_of = [-dy * level for level in range(depth + 1)]
    x = 0.0
    ends: dict[str, Any] = {}

    def bar(level: int, channels: int, color: str) -> tuple[float, float]:
        nonlocal x
        w = _bar_width(channels)
        h = height[level]
        ax.add_patch(Rectangle((x, y_of[level] - h / 2), w, h, facecolor=color, edgecolor="0.25",
                               linewidth=0.7))
        ax.text(x + w / 2, y_of[level] + h / 2 + 0.04, str(channels), ha="center", va="bottom",
                fontsize=6.5, rotation=90 if channels >= 1000 else 0)
        left, right = x, x + w
        x = right + gap
        return left, right

    def arrow(p: tuple[float, float], q: tuple[float, float], color: str, style: str = "-|>",
              ls: str = "-") -> None:
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=8, color=color,
                                     linewidth=1.0, linestyle=ls, shrinkA=0, shrinkB=0))

    first_left, _ = bar(0, in_channels, "white")
    skip_right: list[float] = []
    for level, maps in enumerate(enc):
        if level:
            prev_x = x - gap
            x += 0.05
            arrow((prev_x - 0.05, y_of[level - 1] - height[level - 1] / 2),
                  (prev_x - 0.05, y_of[level] + height[level] / 2), POOL_COLOR)
            first_left = x
        if size_text[level]:
            ax.text(first_left - 0.08, y_of[level], size_text[level], ha="right", va="center",
                    fontsize=7, color="0.3")
        for c in maps:
            _, right = bar(level, c, CONV_COLOR)
        if level < depth:
            skip_right.append(right)
    for level in reversed(range(depth)):
        start = x - gap
        x += 0.15
        left, _ = bar(level, skip_ch[level], SKIP_COLOR)
        y = y_of[level]
        arrow((skip_right[level], y), (left, y), SKIP_ARROW_COLOR, ls="--")
        if skip_text[level]:
            mid = (skip_right[level] + left) / 2
            ax.text(mid, y, skip_text[level], ha="center", va="center", fontsize=6.5,
                    bbox=dict(boxstyle="round,pad=0.25", facecolor=MODULE_COLOR, edgecolor="0.4"))
        up_left, _ = bar(level, ups[level], UP_COLOR)
        arrow((start, y_of[level + 1] + height[level + 1] / 2),
              (up_left + _bar_width(ups[level]) / 2, y - height[level] / 2), UP_ARROW_COLOR)
        for c in dec[level]:
            _, right = bar(level, c, CONV_COLOR)
    x += 0.15
    arrow((x - gap - 0.15, y_of[0]), (x, y_of[0]), "black")
    bar(0, out_channels, "white")
    ends["right"] = x

    handles = [
        Patch(facecolor=CONV_COLOR, edgecolor="0.25", label=names["conv"]),
        Patch(facecolor=SKIP_COLOR, edgecolor="0.25", label=names["skip"]),
        Patch(facecolor=UP_COLOR, edgecolor="0.25", label=names["up"]),
        Line2D([], [], color=POOL_COLOR, label=names["pool"]),
        Line2D([], [], color=UP_ARROW_COLOR, label=names["up"] + " (from the level below)"),
        Line2D([], [], color="black", label=names["head"]),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
    ax.set_xlim(-1.6, ends["right"] + 0.2)
    ax.set_ylim(y_of[-1] - height[-1] / 2 - 0.3, 0.9)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_pyramid_module(
    in_channels: int,
    paths: Sequence[tuple[int, Sequence[int], Sequence[int]]],
    mix: Sequence[int],
    *,
    size: int | None = None,
    keep_input: bool = True,
    conv_label: str = "conv 3×3",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Draw one pyramid-pooling module from its paths; returns the matplotlib ``Axes``.

    Args:
        in_channels: channels of the module's input.
        paths: one ``(factor, convs, ups)`` per path: the pooling factor, the channels made by
            its convolutions (at the pooled size) and by each of its ×2 up-steps.
        mix: channels made by the convolutions after the concatenation.
        size: the input's side in pixels; each box then shows its grid (``88²`` …), and every
            path must come back to ``size`` (``size / factor · 2**len(ups) == size``).
        keep_input: whether the input itself is concatenated with the paths (PSPNet does).
        conv_label: the name written in each convolution's box.

    One row per path, top to bottom (the input's copy first when ``keep_input``). The
    concatenation box shows the sum of the channels it receives; a path's contribution is its
    last up-step's channels (its last convolution's if it has no up-steps).
    """
    in_channels = check_int("in_channels", in_channels)
    keep_input = check_bool("keep_input", keep_input)
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence) or not paths:
        raise ArgumentError(f"paths must be a non-empty list of (factor, convs, ups), got {paths!r}")
    rows = []
    for i, path in enumerate(paths):
        if not isinstance(path, Sequence) or isinstance(path, (str, bytes)) or len(path) != 3:
            raise ArgumentError(f"paths[{i}] must be (factor, convs, ups), got {path!r}")
        factor = check_int(f"paths[{i}] factor", path[0])
        convs = check_int_tuple(f"paths[{i}] convs", path[1])
        ups = path[2]
        if isinstance(ups, (str, bytes)) or not isinstance(ups, Sequence):
            raise ArgumentError(f"paths[{i}] ups must be a list of channel counts, got {ups!r}")
        ups = check_int_tuple(f"paths[{i}] ups", ups) if len(ups) else ()
        rows.append((factor, convs, ups))
    mix = check_int_tuple("mix", mix)
    if not isinstance(conv_label, str):
        raise ArgumentError(f"conv_label must be a string, got {conv_label!r}")
    if size is not None:
        size = check_int("size", size)
        for factor, _, ups in rows:
            if size % factor:
                raise ArgumentError(f"size {size} is not divisible by the pooling factor {factor}")
            back = size // factor * 2 ** len(ups)
            if back != size:
                raise ArgumentError(
                    f"the ×{factor} path comes back at {back}×{back}, not {size}×{size}: a path "
                    f"needs log2({factor}) ×2 up-steps to be concatenated with the others")
    concat = (in_channels if keep_input else 0) + sum((ups or convs)[-1] for _, convs, ups in rows)

    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    longest = max(1 + len(c) + len(u) for _, c, u in rows)
    n_rows = len(rows) + (1 if keep_input else 0)
    ax = _axes(ax, (1.6 * (longest + 3 + len(mix)), 0.75 * n_rows + 1.2))
    bw, bh, step = 1.15, 0.5, 1.45

    def box(col: float, row: float, text: str, color: str) -> tuple[float, float]:
        y = -row * 0.8
        ax.add_patch(FancyBboxPatch((col * step, y - bh / 2), bw, bh,
                                    boxstyle="round,pad=0.02", facecolor=color, edgecolor="0.3",
                                    linewidth=0.7))
        ax.text(col * step + bw / 2, y, text, ha="center", va="center", fontsize=6.5)
        return col * step, y

    def link(p: tuple[float, float], q: tuple[float, float], color: str = "0.3") -> None:
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=7, color=color,
                                     linewidth=0.8, shrinkA=0, shrinkB=0))

    grid = (lambda s: f"\n{s}²") if size is not None else (lambda s: "")
    mid_row = (n_rows - 1) / 2
    x_in, y_in = box(0, mid_row, f"input\n{in_channels} ch" + grid(size), "white")
    concat_col = longest + 1
    x_cat, y_cat = box(concat_col, mid_row, f"concat\n{concat} ch" + grid(size), SKIP_COLOR)
    row = 0
    if keep_input:
        ends = box(1, row, f"copy\n{in_channels} ch" + grid(size), SKIP_COLOR)
        link((x_in + bw, y_in), (ends[0], ends[1]))
        ax.plot([ends[0] + bw, x_cat + bw / 2], [ends[1], ends[1]], color="0.3", linewidth=0.8)
        link((x_cat + bw / 2, ends[1]), (x_cat + bw / 2, y_cat + bh / 2))
        row += 1
    for factor, convs, ups in rows:
        s = size // factor if size is not None else None
        xp, yp = box(1, row, f"max-pool ×{factor}" + grid(s), "#fcbba1")
        link((x_in + bw, y_in), (xp, yp))
        col, prev = 2, (xp + bw, yp)
        for c in convs:
            xb, yb = box(col, row, f"{conv_label}\n{c} ch" + grid(s), CONV_COLOR)
            link(prev, (xb, yb))
            prev, col = (xb + bw, yb), col + 1
        for c in ups:
            s = s * 2 if s is not None else None
            xb, yb = box(col, row, f"up ×2\n{c} ch" + grid(s), UP_COLOR)
            link(prev, (xb, yb))
            prev, col = (xb + bw, yb), col + 1
        link(prev, (x_cat, y_cat))
        row += 1
    prev = (x_cat + bw, y_cat)
    col = concat_col + 1
    for c in mix:
        xb, yb = box(col, mid_row, f"{conv_label}\n{c} ch" + grid(size), CONV_COLOR)
        link(prev, (xb, yb))
        prev, col = (xb + bw, yb), col + 1
    ax.set_xlim(-0.2, col * step + 0.1)
    ax.set_ylim(-(n_rows - 1) * 0.8 - 0.5, 0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax
