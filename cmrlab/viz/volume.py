"""A slice viewer for 2D/3D volumes and 4D cine stacks, with label overlays.

In JupyterLab the viewer is a small ipywidgets panel: slice slider, axis choice, window/level,
overlay opacity, a channel (modality) choice and a time slider with a play button for cine data.
Each slider move renders one slice in numpy (window/level → grey → colour map, label colours
blended by opacity) and sends it to the page as a PNG; no matplotlib figure is drawn.

When the course website is built (:func:`cmrlab.config.is_static_build`), there is no kernel
behind the page, so :func:`show_volume` shows a matplotlib animation instead
(:meth:`VolumeViewer.to_html`): the slices a reader would scroll through, or the time frames of a
cine loop, as frames of a little player that runs in the browser without Python.

Array conventions: a 2D image is (X, Y), 3D is (X, Y, Z) and 4D is (X, Y, Z, T) with **time last**
(as in NIfTI). The slice shown for axis ``a`` is the 2D array with that axis fixed, transposed and
drawn with the origin at the lower left, so that for ``axis=2`` x runs to the right and y upwards.
"""
from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from IPython.display import HTML, display

from cmrlab.checks import check_int, check_number
from cmrlab.config import is_static_build
from cmrlab.errors import ArgumentError
from cmrlab.viz import _render

__all__ = ["AXIS_NAMES", "VolumeViewer", "show_volume"]

#: Anatomical names of the three spatial axes, by index.
AXIS_NAMES: dict[int, str] = {0: "sagittal (x)", 1: "coronal (y)", 2: "axial (z)"}

_DEFAULT_FPS = {"time": 10.0, "slice": 5.0, "still": 1.0}


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _check_image_array(value: Any, name: str) -> np.ndarray:
    arr = _render.as_numpy(value)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "c":
        raise ArgumentError(
            f"{name} is complex ({arr.dtype}); show a real image such as np.abs({name})"
        )
    if arr.dtype.kind not in "iuf":
        raise ArgumentError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    if arr.ndim not in (2, 3, 4):
        hint = " (remove singleton axes with np.squeeze)" if 1 in arr.shape else ""
        raise ArgumentError(
            f"{name} must be 2D (X, Y), 3D (X, Y, Z) or 4D (X, Y, Z, T) with time last; "
            f"got shape {arr.shape}{hint}"
        )
    if arr.size == 0:
        raise ArgumentError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(arr).any():
        raise ArgumentError(f"{name} has no finite value (all NaN or infinite)")
    return arr


def _parse_channels(image: Any, channel_names: Sequence[str] | None
                    ) -> tuple[list[str], list[np.ndarray]]:
    """Split ``image`` into channel names and arrays (one array → one channel)."""
    if isinstance(image, Mapping):
        if channel_names is not None:
            raise ArgumentError(
                "channel_names is for a list of arrays; a dict already names its channels"
            )
        if not image:
            raise ArgumentError("image is an empty dict: give at least one channel")
        names = [str(k) for k in image]
        arrays = [_check_image_array(v, f"image[{k!r}]") for k, v in image.items()]
    elif isinstance(image, (list, tuple)):
        if not image:
            raise ArgumentError("image is an empty list: give at least one channel")
        arrays = [_check_image_array(v, f"image[{i}]") for i, v in enumerate(image)]
        names = _names_for(channel_names, len(arrays))
    else:
        arrays = [_check_image_array(image, "image")]
        names = _names_for(channel_names, 1) if channel_names is not None else ["image"]
    if len(set(names)) != len(names):
        raise ArgumentError(f"channel names must be distinct, got {names}")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        listing = ", ".join(f"{n}: {a.shape}" for n, a in zip(names, arrays))
        raise ArgumentError(f"all channels must have the same shape, got {listing}")
    return names, arrays


def _names_for(channel_names: Sequence[str] | None, count: int) -> list[str]:
    if channel_names is None:
        return [f"channel {i}" for i in range(count)]
    if isinstance(channel_names, str) or len(channel_names) != count:
        raise ArgumentError(
            f"channel_names must be a list of {count} name(s), one per channel, "
            f"got {channel_names!r}"
        )
    return [str(n) for n in channel_names]


def _check_labels(labels: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = _render.as_numpy(labels)
    if arr.shape != shape:
        raise ArgumentError(
            f"labels shape {arr.shape} does not match the image shape {shape}"
        )
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            example = arr[bad].reshape(-1)[0]
            raise ArgumentError(
                f"labels must be integer label values, got a non-integer value {example!r}"
            )
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise ArgumentError(f"labels must be integer label values, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.min() < 0:
        raise ArgumentError(
            f"labels must be >= 0 (0 is background), got the value {int(arr.min())}"
        )
    return arr


def _check_spacing(spacing: Any, ndim: int) -> tuple[float, float, float]:
    spatial = min(ndim, 3)
    if spacing is None:
        return (1.0, 1.0, 1.0)
    values = _render.as_numpy(spacing).astype(np.float64, copy=False).reshape(-1)
    if values.size not in (spatial, ndim):
        raise ArgumentError(
            f"spacing must give {spatial} voxel sizes (mm), one per spatial axis, got {spacing!r}"
        )
    values = values[:spatial]
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ArgumentError(f"spacing values must be positive and finite, got {spacing!r}")
    sizes = [float(v) for v in values] + [1.0] * (3 - spatial)
    return sizes[0], sizes[1], sizes[2]


def _finite_range(arr: np.ndarray) -> tuple[float, float]:
    if arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        return float(finite.min()), float(finite.max())
    return float(arr.min()), float(arr.max())


def _even_indices(count: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` indices spread evenly over ``range(count)``, first and last in."""
    k = min(count, max_frames)
    if k == 1:
        return [0]
    return [int(i) for i in np.round(np.linspace(0, count - 1, k)).astype(int)]


# --------------------------------------------------------------------------------------------
# the viewer
# --------------------------------------------------------------------------------------------
class VolumeViewer:
    """Interactive viewer of a 2D image, a 3D volume or a 4D cine stack, with optional labels.

    Parameters
    ----------
    image:
        A numpy array or torch tensor of shape (X, Y), (X, Y, Z) or (X, Y, Z, T) (time last), or
        several such arrays of one shape as channels: a dict ``{"T1": t1, "FLAIR": flair}`` or a
        list (named by ``channel_names``). Any integer or float dtype; NaN and ±inf are drawn black.
    labels:
        Integer label map of the same shape (0 = background), or ``None``. Float arrays holding
        whole numbers (as ``nibabel``'s ``get_fdata`` returns them) and boolean masks are accepted.
    spacing:
        Voxel size per spatial axis in mm (a fourth, temporal entry is ignored), used for the
        aspect ratio of the displayed slice. ``None``: isotropic.
    axis:
        The axis to slice along: 0 sagittal (x), 1 coronal (y), 2 axial (z). A 2D image has only 2.
    channel_names:
        Names of the arrays when ``image`` is a list.
    label_names, label_colors:
        ``{1: "RV", 2: "MYO", 3: "LV"}`` and ``{1: "red", ...}`` (any matplotlib colour). Values
        without a given colour take :data:`cmrlab.viz._render.LABEL_PALETTE` colour ``value - 1``.
    window, level:
        Intensity window width and centre: ``level - window/2`` is black, ``level + window/2``
        white. ``None``: from the 1st and 99th percentiles of each channel.
    opacity:
        Label overlay opacity in [0, 1].
    title:
        Shown above the viewer and the static animation.
    cmap:
        Matplotlib colour map for the intensities.
    display_size:
        Small slices are enlarged by pixel repetition, by the largest whole factor that keeps the
        longer side at most this many pixels.

    The state is readable and writable through properties kept in sync with the widgets
    (``slice_index``, ``axis``, ``time_index``, ``channel``, ``window``, ``level``, ``opacity``).
    ``viewer.widget`` is the ipywidgets panel; it is built on first use, so a viewer used only for
    :meth:`to_html` never creates a widget. Displaying the viewer shows the panel, or the static
    animation during a website build.
    """

    def __init__(self, image: Any, labels: Any = None, *, spacing: Sequence[float] | None = None,
                 axis: int = 2, channel_names: Sequence[str] | None = None,
                 label_names: Mapping[int, str] | None = None,
                 label_colors: Mapping[int, Any] | None = None, window: float | None = None,
                 level: float | None = None, opacity: float = 0.4, title: str | None = None,
                 cmap: Any = "gray", display_size: int = 400) -> None:
        self._names, arrays = _parse_channels(image, channel_names)
        self.shape: tuple[int, ...] = arrays[0].shape
        self.ndim: int = len(self.shape)
        # Store every channel as (X, Y, Z, T) views; a 2D image has Z = T = 1, a 3D one T = 1.
        self._volumes = [a.reshape(self.shape + (1,) * (4 - self.ndim)) for a in arrays]
        self._shape4: tuple[int, int, int, int] = self._volumes[0].shape  # type: ignore[assignment]

        self._labels: np.ndarray | None = None
        self._label_values = np.zeros(0, dtype=np.int64)
        self._label_rgb = np.zeros((0, 3), dtype=np.float32)
        self._label_names: dict[int, str] = {}
        if labels is not None:
            lab = _check_labels(labels, self.shape)
            self._labels = lab.reshape(self._shape4)
            values = np.unique(lab)
            self._label_values = values[values != 0].astype(np.int64)
            self._label_names = self._check_label_names(label_names)
            if label_colors is not None and not isinstance(label_colors, Mapping):
                raise ArgumentError(
                    f"label_colors must map label values to colours, got {label_colors!r}"
                )
            for value in (label_colors or {}):  # catch colour typos even for absent labels
                _render.label_color(check_int("label_colors key", value, None), label_colors)
            self._label_rgb = np.array(
                [_render.label_color(int(v), label_colors) for v in self._label_values],
                dtype=np.float32,
            ).reshape(-1, 3) * 255.0

        self.spacing: tuple[float, float, float] = _check_spacing(spacing, self.ndim)
        self._lut = _render.colormap_lut(cmap)
        self.title: str | None = None if title is None else str(title)
        self._display_size = check_int("display_size", display_size, None)
        if self._display_size < 1:
            raise ArgumentError(f"display_size must be at least 1 pixel, got {display_size}")

        # Intensity range and window/level per channel.
        self._ranges = [_finite_range(a) for a in arrays]
        given_w = None if window is None else check_number("window", window, 0.0, low_open=True)
        given_l = None if level is None else check_number("level", level)
        self._wl: list[list[float]] = []
        for a in arrays:
            w, l = (given_w, given_l)
            if w is None or l is None:
                rw, rl = _render.robust_window(a)
                w = rw if w is None else w
                l = rl if l is None else l
            self._wl.append([w, l])

        self._axis = self._valid_axis(axis)
        self._slice = self._shape4[self._axis] // 2
        self._time = 0
        self._channel = 0
        self._opacity = self._valid_opacity(opacity)

        self._widgets: dict[str, Any] | None = None
        self._box: Any = None
        self._quiet_depth = 0
        self._shown_in_cell: int | None = None

    # ---------------------------------------------------------------- validation helpers
    def _check_label_names(self, label_names: Mapping[int, str] | None) -> dict[int, str]:
        if label_names is None:
            return {}
        if not isinstance(label_names, Mapping):
            raise ArgumentError(f"label_names must map label values to names, got {label_names!r}")
        return {check_int("label_names key", k, None): str(v) for k, v in label_names.items()}

    def _valid_axis(self, axis: Any) -> int:
        axis = check_int("axis", axis, None)
        if self.ndim == 2:
            if axis != 2:
                raise ArgumentError(f"a 2D image is shown whole: axis must be 2, got {axis}")
        elif axis not in AXIS_NAMES:
            raise ArgumentError(f"axis must be 0 (sagittal), 1 (coronal) or 2 (axial), got {axis}")
        return axis

    @staticmethod
    def _valid_opacity(opacity: Any) -> float:
        value = check_number("opacity", opacity)
        if not 0.0 <= value <= 1.0:
            raise ArgumentError(f"opacity must be between 0 and 1, got {opacity!r}")
        return value

    # ---------------------------------------------------------------- public state
    @property
    def channel_names(self) -> list[str]:
        """Names of the channels, in order."""
        return list(self._names)

    @property
    def slice_count(self) -> int:
        """Number of slices along the current axis (1 for a 2D image)."""
        return self._shape4[self._axis]

    @property
    def time_count(self) -> int:
        """Number of time frames (1 unless the image is 4D)."""
        return self._shape4[3]

    @property
    def slice_index(self) -> int:
        """Index of the slice shown along :attr:`axis`."""
        return self._slice

    @slice_index.setter
    def slice_index(self, value: int) -> None:
        value = check_int("slice_index", value, None)
        if not 0 <= value < self.slice_count:
            raise ArgumentError(
                f"slice_index must be in 0..{self.slice_count - 1} along axis {self._axis}, "
                f"got {value}"
            )
        self._slice = value
        self._state_changed()

    @property
    def axis(self) -> int:
        """The axis sliced along: 0 sagittal (x), 1 coronal (y), 2 axial (z).

        Changing it moves to the middle slice of the new axis.
        """
        return self._axis

    @axis.setter
    def axis(self, value: int) -> None:
        value = self._valid_axis(value)
        if value != self._axis:
            self._axis = value
            self._slice = self._shape4[value] // 2
        self._state_changed()

    @property
    def time_index(self) -> int:
        """Index of the time frame shown (always 0 for 2D and 3D images)."""
        return self._time

    @time_index.setter
    def time_index(self, value: int) -> None:
        value = check_int("time_index", value, None)
        if not 0 <= value < self.time_count:
            raise ArgumentError(f"time_index must be in 0..{self.time_count - 1}, got {value}")
        self._time = value
        self._state_changed()

    @property
    def channel(self) -> str:
        """Name of the channel shown; set it by name or by position."""
        return self._names[self._channel]

    @channel.setter
    def channel(self, value: str | int) -> None:
        if isinstance(value, str):
            if value not in self._names:
                raise ArgumentError(f"channel must be one of {self._names}, got {value!r}")
            self._channel = self._names.index(value)
        else:
            index = check_int("channel", value, None)
            if not 0 <= index < len(self._names):
                raise ArgumentError(
                    f"channel must be a name in {self._names} or an index in "
                    f"0..{len(self._names) - 1}, got {value!r}"
                )
            self._channel = index
        self._state_changed()

    @property
    def window(self) -> float:
        """Window width of the current channel (intensity span from black to white)."""
        return self._wl[self._channel][0]

    @window.setter
    def window(self, value: float) -> None:
        self._wl[self._channel][0] = check_number("window", value, 0.0, low_open=True)
        self._state_changed()

    @property
    def level(self) -> float:
        """Window centre of the current channel (the intensity drawn mid-grey)."""
        return self._wl[self._channel][1]

    @level.setter
    def level(self, value: float) -> None:
        self._wl[self._channel][1] = check_number("level", value)
        self._state_changed()

    @property
    def opacity(self) -> float:
        """Opacity of the label overlay, 0 (hidden) to 1 (opaque)."""
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._opacity = self._valid_opacity(value)
        self._state_changed()

    @property
    def legend_entries(self) -> list[tuple[int, str, str]]:
        """``(value, name, "#rrggbb")`` for every non-zero label value present in ``labels``."""
        out = []
        for value, rgb in zip(self._label_values, self._label_rgb):
            r, g, b = (int(round(c)) for c in rgb)
            name = self._label_names.get(int(value), f"label {int(value)}")
            out.append((int(value), name, f"#{r:02x}{g:02x}{b:02x}"))
        return out

    # ---------------------------------------------------------------- slices and rendering
    def _plane(self, volume: np.ndarray, slice_index: int, time_index: int) -> np.ndarray:
        index: list[Any] = [slice(None)] * 3 + [time_index]
        index[self._axis] = slice_index
        return volume[tuple(index)].T  # rows: vertical axis (upwards), columns: horizontal axis

    def _display_axes(self) -> tuple[int, int]:
        """(horizontal, vertical) spatial axes of the shown plane."""
        h, v = [a for a in range(3) if a != self._axis]
        return h, v

    def current_slice(self) -> np.ndarray:
        """The 2D intensity array shown, before colour mapping.

        Row ``r``, column ``c`` is the voxel at vertical coordinate ``r`` and horizontal coordinate
        ``c`` (origin lower left): for ``axis=2`` this is ``image[:, :, slice_index(, t)].T``.
        """
        vol = self._volumes[self._channel]
        return np.array(self._plane(vol, self._slice, self._time))

    def current_labels(self) -> np.ndarray | None:
        """The 2D label array of the shown slice (same layout as :meth:`current_slice`), or None."""
        if self._labels is None:
            return None
        return np.array(self._plane(self._labels, self._slice, self._time))

    def _rgb(self, channel: int, slice_index: int, time_index: int) -> np.ndarray:
        """RGB uint8 plane in :meth:`current_slice` layout (row 0 at the bottom)."""
        window, level = self._wl[channel]
        plane = self._plane(self._volumes[channel], slice_index, time_index)
        rgb = _render.apply_lut(_render.window_to_index(plane, window, level), self._lut)
        if self._labels is not None:
            lab = self._plane(self._labels, slice_index, time_index)
            _render.overlay_labels(rgb, lab, self._label_values, self._label_rgb, self._opacity)
        return rgb

    def _voxel_sizes(self) -> tuple[float, float]:
        """(vertical, horizontal) voxel size in mm of the shown plane."""
        h, v = self._display_axes()
        return self.spacing[v], self.spacing[h]

    def render(self) -> np.ndarray:
        """The RGB uint8 image displayed, shape (rows, columns, 3).

        It is :meth:`current_slice` mapped through window/level and the colour map, with label
        colours blended as ``(1 - opacity) · grey + opacity · colour``, flipped so that row 0 is
        the top of the screen, and resized by pixel repetition for the voxel aspect ratio and
        ``display_size``. Without spacing and enlargement, ``render()[r, c]`` shows
        ``current_slice()[rows - 1 - r, c]``.
        """
        rgb = self._rgb(self._channel, self._slice, self._time)[::-1]
        rows, cols = rgb.shape[:2]
        sv, sh = self._voxel_sizes()
        out_r, out_c = _render.display_shape(rows, cols, sv, sh, self._display_size)
        return np.ascontiguousarray(_render.nearest_resize(rgb, out_r, out_c))

    # ---------------------------------------------------------------- widgets
    @property
    def widget(self) -> Any:
        """The ipywidgets panel (an ``ipywidgets.VBox``), built on first access."""
        if self._box is None:
            self._build_widgets()
        return self._box

    @property
    def controls(self) -> dict[str, Any]:
        """The widgets by name: ``"image"``, ``"window"``, ``"level"``, and where they apply
        ``"channel"``, ``"axis"``, ``"slice"``, ``"time"``, ``"play"``, ``"opacity"``, ``"legend"``.

        Built on first access, like :attr:`widget`.
        """
        if self._box is None:
            self._build_widgets()
        assert self._widgets is not None
        return {k: w for k, w in self._widgets.items() if k != "link"}

    def _build_widgets(self) -> None:
        import ipywidgets as W

        style = {"description_width": "70px"}
        wide = W.Layout(width="380px")
        ws: dict[str, Any] = {}
        ws["image"] = W.Image(value=_render.encode_png(self.render()), format="png")
        controls: list[Any] = []
        if len(self._names) > 1:
            ws["channel"] = W.Dropdown(options=self._names, value=self.channel,
                                       description="Channel", style=style, layout=wide)
            controls.append(ws["channel"])
        if self.ndim >= 3:
            ws["axis"] = W.Dropdown(options=[(f"{a} · {n}", a) for a, n in AXIS_NAMES.items()],
                                    value=self._axis, description="Axis", style=style,
                                    layout=wide)
            ws["slice"] = W.IntSlider(value=self._slice, min=0, max=self.slice_count - 1,
                                      description="Slice", style=style, layout=wide)
            controls += [ws["axis"], ws["slice"]]
        if self.ndim == 4:
            ws["time"] = W.IntSlider(value=self._time, min=0, max=self.time_count - 1,
                                     description="Time", style=style, layout=wide)
            ws["play"] = W.Play(value=self._time, min=0, max=self.time_count - 1, step=1,
                                interval=100, description="Play")
            ws["link"] = W.jslink((ws["play"], "value"), (ws["time"], "value"))
            controls.append(W.HBox([ws["play"], ws["time"]]))
        ws["window"] = W.FloatSlider(description="Window", style=style, layout=wide,
                                     readout_format=".4g")
        ws["level"] = W.FloatSlider(description="Level", style=style, layout=wide,
                                    readout_format=".4g")
        controls += [ws["window"], ws["level"]]
        side: list[Any] = []
        if self._labels is not None:
            ws["opacity"] = W.FloatSlider(value=self._opacity, min=0.0, max=1.0, step=0.05,
                                          description="Opacity", style=style, layout=wide)
            controls.append(ws["opacity"])
            ws["legend"] = W.HTML(self._legend_html())
            side.append(ws["legend"])
        self._widgets = ws
        self._push_state()
        for key in ("channel", "axis", "slice", "time", "window", "level", "opacity"):
            if key in ws:
                ws[key].observe(self._on_widget_change, names="value")
        parts: list[Any] = []
        if self.title:
            parts.append(W.HTML(f"<b>{html.escape(self.title)}</b>"))
        parts.append(W.HBox([ws["image"], *side]))
        parts.append(W.VBox(controls))
        self._box = W.VBox(parts)

    def _legend_html(self) -> str:
        rows = []
        for value, name, color in self.legend_entries:
            swatch = (f'<span style="display:inline-block;width:12px;height:12px;'
                      f'background:{color};border:1px solid #444;vertical-align:middle;'
                      f'margin-right:6px"></span>')
            rows.append(f"<div>{swatch}{value} {html.escape(name)}</div>")
        if not rows:
            rows.append("<div><i>no labels</i></div>")
        style = "font-size:12px;line-height:1.7;padding-left:8px"
        return f'<div style="{style}">' + "".join(rows) + "</div>"

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Set widget values without the change handlers reacting to them."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    @staticmethod
    def _set_bounded(slider: Any, low: float, high: float, value: float) -> None:
        """Set a slider's range and value in an order the slider's own checks accept."""
        slider.min = min(slider.min, low)
        slider.max = max(slider.max, high)
        slider.value = value
        slider.min = low
        slider.max = high

    def _slider_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(window range, level range) for the current channel, widened to hold the values."""
        lo, hi = self._ranges[self._channel]
        span = hi - lo if hi > lo else 1.0
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        window, level = self._wl[self._channel]
        w_range = (min(span / 1000.0, window), max(2.0 * span, window))
        l_range = (min(lo, level), max(hi, level))
        return w_range, l_range

    def _push_state(self) -> None:
        """Copy the viewer state into the widgets (no-op before the widgets exist)."""
        ws = self._widgets
        if ws is None:
            return
        with self._quiet():
            if "channel" in ws:
                ws["channel"].value = self.channel
            if "axis" in ws:
                ws["axis"].value = self._axis
                self._set_bounded(ws["slice"], 0, self.slice_count - 1, self._slice)
            if "time" in ws:
                ws["time"].value = self._time
            (w_lo, w_hi), (l_lo, l_hi) = self._slider_ranges()
            ws["window"].step = (w_hi - w_lo) / 500.0
            ws["level"].step = (l_hi - l_lo) / 500.0
            self._set_bounded(ws["window"], w_lo, w_hi, self.window)
            self._set_bounded(ws["level"], l_lo, l_hi, self.level)
            if "opacity" in ws:
                ws["opacity"].value = self._opacity

    def _refresh(self) -> None:
        if self._widgets is not None:
            self._widgets["image"].value = _render.encode_png(self.render())

    def _state_changed(self) -> None:
        self._push_state()
        self._refresh()

    def _on_widget_change(self, change: dict[str, Any]) -> None:
        if self._quiet_depth:
            return
        ws = self._widgets
        assert ws is not None
        owner, new = change["owner"], change["new"]
        if owner is ws.get("channel"):
            self._channel = self._names.index(new)
        elif owner is ws.get("axis"):
            if new != self._axis:
                self._axis = int(new)
                self._slice = self._shape4[self._axis] // 2
        elif owner is ws.get("slice"):
            self._slice = int(new)
        elif owner is ws.get("time"):
            self._time = int(new)
        elif owner is ws["window"]:
            self._wl[self._channel][0] = float(new)  # the slider's minimum is > 0
        elif owner is ws["level"]:
            self._wl[self._channel][1] = float(new)
        elif owner is ws.get("opacity"):
            self._opacity = float(new)
        self._state_changed()

    # ---------------------------------------------------------------- static fallback
    def _frame_kind(self) -> tuple[str, int]:
        if self.ndim == 4:
            return "time", self.time_count
        if self.ndim == 3:
            return "slice", self.slice_count
        return "still", 1

    def frame_indices(self, max_frames: int = 40) -> list[int]:
        """The frames :meth:`to_html` shows: time indices for a 4D image, slice indices along the
        current axis for a 3D one (``[0]`` for 2D); at most ``max_frames``, evenly spread, the
        first and last always included."""
        max_frames = check_int("max_frames", max_frames, None)
        if max_frames < 2:
            raise ArgumentError(f"max_frames must be at least 2 (first and last), got {max_frames}")
        return _even_indices(self._frame_kind()[1], max_frames)

    def to_html(self, max_frames: int = 40, dpi: float = 72, fps: float | None = None) -> str:
        """A self-contained HTML animation (matplotlib ``to_jshtml``) that needs no kernel.

        The frames are what a reader would otherwise scroll through: the slices along the current
        axis for a 3D image, the time frames of the current slice for a 4D one (a 2D image gives a
        single frame). At most ``max_frames`` frames, spread evenly, the first and last always
        included. Each frame has one panel per channel, side by side, with the current
        window/level, the label overlay at the current opacity and a legend of the labels present;
        the title is an HTML heading above the player. The frames are re-encoded as palette PNGs
        (:func:`cmrlab.viz._render.shrink_embedded_pngs`) to keep the page small. ``fps``: frames
        per second (default 10 for time, 5 for slices).
        """
        from matplotlib.animation import FuncAnimation
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        frames = self.frame_indices(max_frames)
        dpi = check_number("dpi", dpi, 0.0, low_open=True)
        kind, count = self._frame_kind()
        fps = _DEFAULT_FPS[kind] if fps is None else check_number("fps", fps, 0.0, low_open=True)

        def planes(frame: int) -> list[np.ndarray]:
            if kind == "time":
                slice_index, time_index = self._slice, frame
            else:  # "slice", or the single frame of a 2D image
                slice_index, time_index = frame, 0
            return [self._rgb(c, slice_index, time_index) for c in range(len(self._names))]

        def caption(frame: int) -> str:
            if kind == "time":
                return (f"time frame {frame} of 0–{count - 1}  ·  "
                        f"{AXIS_NAMES[self._axis]} slice {self._slice}")
            if kind == "slice":
                return f"{AXIS_NAMES[self._axis]} slice {frame} of 0–{count - 1}"
            return ""

        first = planes(frames[0])
        rows, cols = first[0].shape[:2]
        sv, sh = self._voxel_sizes()
        height_mm, width_mm = rows * sv, cols * sh
        n_panels = len(self._names)
        panel_h = 2.0
        panel_w = min(max(panel_h * width_mm / height_mm, 1.1), 4.4)
        legend = [Patch(facecolor=color, edgecolor="0.3", label=f"{value} {name}")
                  for value, name, color in self.legend_entries]
        fig_w = n_panels * panel_w + (1.2 if legend else 0.0) + 0.2
        fig_h = panel_h + 0.3 + (0.25 if n_panels > 1 else 0.0)
        fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, layout="constrained")
        axes = fig.subplots(1, n_panels, squeeze=False)[0]
        images = []
        for ax, name, rgb in zip(axes, self._names, first):
            images.append(ax.imshow(rgb, origin="lower", extent=(0, width_mm, 0, height_mm)))
            ax.set_axis_off()
            if n_panels > 1:
                ax.set_title(name, fontsize=9)
        if legend:
            fig.legend(handles=legend, loc="outside right upper", fontsize=8, frameon=False)
        label = fig.supxlabel(caption(frames[0]), fontsize=8)
        # Lay the figure out once; the frames only change pixels and the caption.
        fig.draw_without_rendering()
        fig.set_layout_engine(None)

        def draw(frame: int) -> list[Any]:
            for im, rgb in zip(images, planes(frame)):
                im.set_data(rgb)
            label.set_text(caption(frame))
            return [*images, label]

        anim = FuncAnimation(fig, draw, frames=frames, interval=1000.0 / fps, blit=False,
                             repeat=True)
        try:
            markup = anim.to_jshtml(fps=fps, default_mode="loop")
        finally:
            fig.clear()
        markup = _render.shrink_embedded_pngs(markup)
        heading = ""
        if self.title:
            heading = (f'<div style="font-weight:bold;margin-bottom:4px">'
                       f"{html.escape(self.title)}</div>")
        return f'<div class="cmrlab-volume-viewer">{heading}{markup}</div>'

    # ---------------------------------------------------------------- display
    def _ipython_display_(self) -> None:
        if _suppress_repeat(self):
            return
        if is_static_build():
            display(HTML(self.to_html()))
        else:
            display(self.widget)

    def __repr__(self) -> str:
        dims = {2: "(X, Y)", 3: "(X, Y, Z)", 4: "(X, Y, Z, T)"}[self.ndim]
        labels = "with labels" if self._labels is not None else "no labels"
        return (f"<VolumeViewer {self.ndim}D {dims}={self.shape}, channels={self._names}, "
                f"{labels}>")


def _execution_count() -> int | None:
    """The IPython cell being run (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    return None if shell is None else getattr(shell, "execution_count", None)


def _suppress_repeat(obj: Any) -> bool:
    """True once, when ``obj`` is displayed again in the cell where :func:`show_volume` showed it.

    ``show_volume(img)`` as the last line of a cell both displays the viewer and returns it, and
    Jupyter would display the returned value a second time; this swallows that repeat.
    """
    shown, obj._shown_in_cell = obj._shown_in_cell, None
    return shown is not None and shown == _execution_count()


class _ShownHTML(HTML):
    """The static animation returned by :func:`show_volume`: an ``IPython.display.HTML`` that is
    not displayed a second time when it is also the value of the cell that showed it."""

    _shown_in_cell: int | None = None

    def _ipython_display_(self) -> None:
        if not _suppress_repeat(self):
            display({"text/html": self.data}, raw=True)


def show_volume(image: Any, labels: Any = None, **kwargs: Any) -> Any:
    """Build a :class:`VolumeViewer` and display it.

    In JupyterLab this shows the live ipywidgets viewer and returns the :class:`VolumeViewer`. While
    the website is built (:func:`cmrlab.config.is_static_build`) it shows a kernel-free animation
    (:meth:`VolumeViewer.to_html`) and returns it as an ``IPython.display.HTML`` object; no widget
    is created. ``max_frames``, ``dpi`` and ``fps`` among ``kwargs`` go to ``to_html``, the rest
    to :class:`VolumeViewer`. A cell ending with ``show_volume(...)`` shows the viewer once, not
    twice (the returned value is not displayed again in that cell).
    """
    html_options = {k: kwargs.pop(k) for k in ("max_frames", "dpi", "fps") if k in kwargs}
    viewer = VolumeViewer(image, labels, **kwargs)
    shown: Any
    if is_static_build():
        shown = _ShownHTML(viewer.to_html(**html_options))
    else:
        shown = viewer
    display(shown)
    shown._shown_in_cell = _execution_count()
    return shown
