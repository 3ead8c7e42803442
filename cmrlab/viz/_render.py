"""Numpy rendering shared by the viewers: window/level, colour maps, label overlays, PNG bytes.

Everything here works on plain numpy arrays and is fast enough to run on every slider move: a
256 × 256 slice goes from raw intensities to PNG bytes in a few milliseconds. No matplotlib figure
is created; matplotlib is used only for its colour maps and colour names.
"""
from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from cmrlab.errors import ArgumentError

__all__ = [
    "LABEL_PALETTE",
    "apply_lut",
    "as_numpy",
    "colormap_lut",
    "display_shape",
    "encode_png",
    "label_color",
    "nearest_resize",
    "overlay_labels",
    "robust_window",
    "shrink_embedded_pngs",
    "window_to_index",
]

#: Categorical colours for label values 1, 2, 3, ... (0 is background and is not drawn): the
#: matplotlib ``tab10`` colours without its grey, then the lighter ``tab20`` shades without grey.
#: Value ``v`` always gets ``LABEL_PALETTE[(v - 1) % len(LABEL_PALETTE)]``, whatever else is
#: present, so a structure keeps its colour from one image to the next.
LABEL_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
    "#9edae5",
)


def as_numpy(value: Any) -> np.ndarray:
    """Return ``value`` as a numpy array; a torch tensor is detached and copied to the CPU first."""
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def robust_window(values: np.ndarray, low: float = 1.0, high: float = 99.0,
                  max_samples: int = 1_000_000) -> tuple[float, float]:
    """Window width and level that map the ``low``–``high`` percentile range to black–white.

    ``window = p_high - p_low`` and ``level = (p_high + p_low) / 2``, computed over the finite
    values (large arrays are subsampled with a fixed stride to at most ``max_samples`` values).
    When the percentiles coincide (a mostly constant image) the full finite range is used, and a
    constant image gets ``window = 1`` centred on its value. Raises :class:`ArgumentError` when
    there is no finite value.
    """
    flat = np.asarray(values).reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: math.ceil(flat.size / max_samples)]
    flat = flat[np.isfinite(flat)].astype(np.float64, copy=False)
    if flat.size == 0:
        raise ArgumentError("the image has no finite value to choose a window from")
    p_lo, p_hi = np.percentile(flat, [low, high])
    if not p_hi > p_lo:
        p_lo, p_hi = float(flat.min()), float(flat.max())
    if not p_hi > p_lo:
        return 1.0, float(p_lo)
    return float(p_hi - p_lo), float((p_hi + p_lo) / 2)


def window_to_index(image: np.ndarray, window: float, level: float) -> np.ndarray:
    """Map intensities to grey levels 0–255 (uint8) with a window/level setting.

    ``g = clip((x - (level - window / 2)) / window, 0, 1)`` and the index is ``floor(255 g + 0.5)``;
    so ``level - window/2`` and below is 0, ``level + window/2`` and above is 255, ``level`` is 128.
    Non-finite values (NaN, ±inf) are drawn as 0.
    """
    x = np.asarray(image, dtype=np.float32)
    g = (x - np.float32(level - window / 2)) * np.float32(1.0 / window)
    np.clip(g, 0.0, 1.0, out=g)
    g *= 255.0
    g += 0.5
    g[~np.isfinite(g)] = 0.0
    return g.astype(np.uint8)


def colormap_lut(cmap: Any) -> np.ndarray:
    """A (256, 3) uint8 lookup table of a matplotlib colour map (name or ``Colormap``).

    Entry ``i`` is the colour the map gives to ``i / 255``; for ``"gray"`` it is ``(i, i, i)``.
    """
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
        rgba = np.asarray(cm(np.linspace(0.0, 1.0, 256)), dtype=np.float64)
    except (KeyError, ValueError, TypeError) as exc:
        raise ArgumentError(
            f"cmap must be a matplotlib colour map or its name, got {cmap!r}"
        ) from exc
    return np.floor(rgba[:, :3] * 255 + 0.5).astype(np.uint8)


def label_color(value: int, label_colors: Mapping[int, Any] | None = None
                ) -> tuple[float, float, float]:
    """The RGB colour (floats in 0–1) of label ``value``: ``label_colors[value]`` if given, else the
    palette colour ``LABEL_PALETTE[(value - 1) % len(LABEL_PALETTE)]``."""
    from matplotlib.colors import to_rgb

    spec: Any = LABEL_PALETTE[(int(value) - 1) % len(LABEL_PALETTE)]
    if label_colors is not None and value in label_colors:
        spec = label_colors[value]
    try:
        r, g, b = to_rgb(spec)
    except ValueError as exc:
        raise ArgumentError(
            f"label_colors[{value}] is not a colour matplotlib knows: {spec!r}"
        ) from exc
    return float(r), float(g), float(b)


def apply_lut(index: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Apply a (256, 3) lookup table to a uint8 index image: (H, W) → (H, W, 3) uint8."""
    return lut[index]


def overlay_labels(rgb: np.ndarray, labels: np.ndarray, values: np.ndarray, colors: np.ndarray,
                   opacity: float) -> np.ndarray:
    """Blend label colours over an RGB image, in place, and return it.

    ``values`` are the sorted non-zero label values that may occur and ``colors`` their (K, 3)
    colours (floats 0–255). Where ``labels`` is non-zero the pixel becomes
    ``(1 - opacity) · rgb + opacity · colour``, rounded to the nearest integer; label 0 leaves the
    pixel as it is.
    """
    if opacity <= 0 or values.size == 0:
        return rgb
    mask = labels != 0
    if not mask.any():
        return rgb
    lab = labels[mask]
    k = np.clip(np.searchsorted(values, lab), 0, values.size - 1)
    known = values[k] == lab  # a value without a colour (not in ``values``) stays unblended
    col = colors[k]
    base = rgb[mask].astype(np.float32)
    blended = np.where(known[:, None], (1.0 - opacity) * base + opacity * col, base)
    rgb[mask] = np.floor(blended + 0.5).astype(np.uint8)
    return rgb


def display_shape(rows: int, cols: int, row_spacing: float = 1.0, col_spacing: float = 1.0,
                  display_size: int = 0) -> tuple[int, int]:
    """Pixel size (rows, cols) at which to show a ``rows × cols`` slice with the given voxel sizes.

    The finer of the two voxel sizes keeps one screen pixel per voxel and the coarser axis is
    stretched so that a millimetre is as long in both directions. Then both sides are enlarged by
    the largest whole factor ``k >= 1`` that keeps the longer side at most ``display_size``
    pixels (a slice already larger than that is left as it is).
    """
    px_per_mm = 1.0 / min(row_spacing, col_spacing)
    out_r = max(1, round(rows * row_spacing * px_per_mm))
    out_c = max(1, round(cols * col_spacing * px_per_mm))
    k = max(1, display_size // max(out_r, out_c))
    return out_r * k, out_c * k


def nearest_resize(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Resize the first two axes by pixel repetition (nearest neighbour): output pixel ``(i, j)``
    is input pixel ``(floor((i + 0.5) · H / rows), floor((j + 0.5) · W / cols))``."""
    h, w = image.shape[:2]
    if (h, w) == (rows, cols):
        return image
    ri = ((np.arange(rows) + 0.5) * (h / rows)).astype(np.intp)
    ci = ((np.arange(cols) + 0.5) * (w / cols)).astype(np.intp)
    return image[ri[:, None], ci[None, :]]


def encode_png(rgb: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image (fast, light compression by default)."""
    from PIL import Image  # Pillow is a dependency of matplotlib

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(
        buf, format="PNG", compress_level=compress_level
    )
    return buf.getvalue()


#: A base64 PNG as ``to_jshtml`` embeds it (its line breaks escaped as backslash + newline).
_EMBEDDED_PNG = re.compile(r'data:image/png;base64,([A-Za-z0-9+/=\\\n]+)"')


def shrink_embedded_pngs(markup: str, colors: int = 256) -> str:
    """Re-encode the PNG frames embedded in HTML (``data:image/png;base64,...``) as palette PNGs.

    Each frame is reduced to at most ``colors`` colours (median cut, no dithering) and saved with
    maximal compression: a grey-scale slice with a few overlay colours loses nothing visible and
    the frames become about three times smaller than matplotlib's RGBA PNGs.
    """
    from PIL import Image

    def reencode(match: re.Match[str]) -> str:
        data = base64.b64decode(match.group(1))  # skips the backslashes and line breaks
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
        pal = rgb.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        pal.save(buf, format="PNG", optimize=True)
        return f'data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}"'

    return _EMBEDDED_PNG.sub(reencode, markup)
