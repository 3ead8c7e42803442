"""Explorers: a matplotlib figure driven by sliders and menus.

A domain widget (the Bloch explorer in :mod:`cmrlab.physics`, the explainability viewer later) is a
drawing function plus a set of controls::

    from cmrlab.viz.explorer import Explorer, Slider, Choice

    def draw(fig, flip, t1):
        ax = fig.subplots()
        ax.plot(...)

    Explorer(draw, {"flip": Slider(0, 180, 90, step=5, label="flip angle (°)"),
                    "t1": Slider(100, 2000, 900, label="T1 (ms)")}).show()

In JupyterLab the controls are ipywidgets and the figure is redrawn on every change. While the
website is built (:func:`cmrlab.config.is_static_build`) :meth:`Explorer.show` instead embeds a
kernel-free animation that sweeps one control (``animate=``) over its range with the others at
their values, so a reader still sees what the slider does.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from cmrlab.config import is_static_build
from cmrlab.errors import ArgumentError
from cmrlab.viz._render import shrink_embedded_pngs

__all__ = ["Choice", "Explorer", "Slider", "Toggle"]


@dataclass(frozen=True)
class Slider:
    """A number between ``low`` and ``high`` starting at ``value``.

    Integers everywhere (``low``, ``high``, ``value``, ``step``) give an integer slider.
    """

    low: float
    high: float
    value: float
    step: float | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if not np.isfinite([self.low, self.high, self.value]).all() or not self.low < self.high:
            raise ArgumentError(f"Slider needs finite low < high, got {self.low}..{self.high}")
        if not self.low <= self.value <= self.high:
            raise ArgumentError(f"Slider value {self.value} lies outside {self.low}..{self.high}")
        if self.step is not None and not self.step > 0:
            raise ArgumentError(f"Slider step must be positive, got {self.step}")

    @property
    def integer(self) -> bool:
        values = (self.low, self.high, self.value, 1 if self.step is None else self.step)
        return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)

    def sweep(self, n: int) -> list[float]:
        """``n`` values evenly spread over the range (rounded to integers for integer sliders)."""
        values = np.linspace(self.low, self.high, n)
        if self.integer:
            return sorted({int(round(v)) for v in values})
        return [float(v) for v in values]

    def widget(self, name: str, continuous: bool):
        import ipywidgets as w

        cls = w.IntSlider if self.integer else w.FloatSlider
        kwargs = {} if self.step is None else {"step": self.step}
        if self.step is None and not self.integer:
            kwargs["step"] = (self.high - self.low) / 100
        return cls(value=self.value, min=self.low, max=self.high, description=self.label or name,
                   continuous_update=continuous, style={"description_width": "initial"},
                   layout=w.Layout(width="340px"), **kwargs)


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (strings, or (label, value) pairs), starting at ``value``."""

    options: Sequence[Any]
    value: Any = None
    label: str | None = None

    def __post_init__(self) -> None:
        if len(self.options) == 0:
            raise ArgumentError("Choice needs at least one option")
        if self.value is not None and self.value not in self.values:
            raise ArgumentError(f"Choice value {self.value!r} is not one of {self.values}")

    @property
    def values(self) -> list[Any]:
        return [o[1] if isinstance(o, tuple) else o for o in self.options]

    @property
    def initial(self) -> Any:
        return self.values[0] if self.value is None else self.value

    def sweep(self, n: int) -> list[Any]:
        return self.values[:n]

    def widget(self, name: str, continuous: bool):
        import ipywidgets as w

        return w.Dropdown(options=list(self.options), value=self.initial,
                          description=self.label or name, style={"description_width": "initial"})


@dataclass(frozen=True)
class Toggle:
    """A yes/no switch starting at ``value``."""

    value: bool = False
    label: str | None = None

    @property
    def initial(self) -> bool:
        return bool(self.value)

    def sweep(self, n: int) -> list[bool]:
        return [False, True][:n]

    def widget(self, name: str, continuous: bool):
        import ipywidgets as w

        return w.Checkbox(value=self.initial, description=self.label or name, indent=False)


Control = Slider | Choice | Toggle


def _initial(control: Control) -> Any:
    return control.value if isinstance(control, Slider) else control.initial


class Explorer:
    """A figure redrawn from a set of controls; see the module docstring.

    ``draw(fig, **params)`` draws into a fresh, empty :class:`matplotlib.figure.Figure` (no pyplot,
    so nothing leaks into the notebook). ``controls`` maps parameter names to :class:`Slider`,
    :class:`Choice` or :class:`Toggle`. ``animate`` names the control the static website sweeps
    (default: the first slider), over ``frames`` values. ``continuous_update=False`` redraws only
    when a slider is released (use it when ``draw`` takes more than ~0.1 s).
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        controls: Mapping[str, Control],
        *,
        animate: str | None = None,
        frames: int = 12,
        figsize: tuple[float, float] = (8.0, 3.6),
        dpi: float = 80,
        title: str | None = None,
        continuous_update: bool = True,
    ) -> None:
        if not callable(draw):
            raise ArgumentError("draw must be a function draw(fig, **params)")
        if not controls:
            raise ArgumentError("controls must name at least one parameter")
        for name, control in controls.items():
            if not isinstance(control, (Slider, Choice, Toggle)):
                raise ArgumentError(
                    f"control {name!r} must be a Slider, Choice or Toggle, got {type(control).__name__}"
                )
        if animate is None:
            animate = next((n for n, c in controls.items() if isinstance(c, Slider)), next(iter(controls)))
        if animate not in controls:
            raise ArgumentError(f"animate={animate!r} is not one of the controls {list(controls)}")
        if int(frames) < 1:
            raise ArgumentError(f"frames must be at least 1, got {frames}")
        self.draw_function = draw
        self.controls = dict(controls)
        self.animate = animate
        self.frames = int(frames)
        self.figsize = figsize
        self.dpi = dpi
        self.title = title
        self.continuous_update = continuous_update
        self.params: dict[str, Any] = {n: _initial(c) for n, c in self.controls.items()}
        self._widgets: dict[str, Any] | None = None
        self._image = None
        self._box = None

    # -- drawing ---------------------------------------------------------------------------
    def figure(self, **overrides: Any):
        """A new figure drawn with the current parameters, updated by ``overrides``."""
        from matplotlib.figure import Figure

        unknown = set(overrides) - set(self.controls)
        if unknown:
            raise ArgumentError(f"unknown parameter(s) {sorted(unknown)}; known: {list(self.controls)}")
        fig = Figure(figsize=self.figsize, dpi=self.dpi, layout="constrained")
        params = {**self.params, **overrides}
        self.draw_function(fig, **params)
        if self.title:
            fig.suptitle(self.title, fontsize=10)
        return fig

    def png(self, **overrides: Any) -> bytes:
        """PNG bytes of :meth:`figure`."""
        buf = io.BytesIO()
        self.figure(**overrides).savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()

    def set(self, **params: Any) -> None:
        """Change parameters (and the widgets, if shown), then redraw."""
        unknown = set(params) - set(self.controls)
        if unknown:
            raise ArgumentError(f"unknown parameter(s) {sorted(unknown)}; known: {list(self.controls)}")
        self.params.update(params)
        if self._widgets is not None:
            for name, value in params.items():
                self._widgets[name].value = value  # triggers _on_change → redraw
        self._redraw()

    # -- live widget ----------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets box (controls above the figure), built on first use."""
        if self._box is None:
            import ipywidgets as w

            self._widgets = {n: c.widget(n, self.continuous_update) for n, c in self.controls.items()}
            for name, wid in self._widgets.items():
                wid.observe(lambda change, name=name: self._on_change(name, change["new"]), names="value")
            self._image = w.Image(format="png", value=self.png())
            controls = w.HBox(list(self._widgets.values()), layout=w.Layout(flex_flow="row wrap"))
            self._box = w.VBox([controls, self._image])
        return self._box

    def _on_change(self, name: str, value: Any) -> None:
        if self.params.get(name) != value:
            self.params[name] = value
            self._redraw()

    def _redraw(self) -> None:
        if self._image is not None:
            self._image.value = self.png()

    # -- static fallback -------------------------------------------------------------------
    def sweep_values(self) -> list[Any]:
        """The values of the animated control shown by :meth:`to_html`."""
        return self.controls[self.animate].sweep(self.frames)

    def to_html(self, fps: float = 3) -> str:
        """A kernel-free HTML animation sweeping ``animate`` over its range (``to_jshtml``)."""
        from matplotlib.animation import FuncAnimation

        values = self.sweep_values()
        fig = self.figure(**{self.animate: values[0]})
        label = self.controls[self.animate].label or self.animate

        def frame(i: int):
            fig.clear()
            self.draw_function(fig, **{**self.params, self.animate: values[i]})
            fig.suptitle(f"{self.title + ' · ' if self.title else ''}{label} = {_fmt(values[i])}",
                         fontsize=10)
            return []

        anim = FuncAnimation(fig, frame, frames=len(values), interval=1000 / fps, blit=False)
        html = anim.to_jshtml(fps=fps, default_mode="loop")
        return shrink_embedded_pngs(html)

    def show(self):
        """Display the live widget, or the animation while the website is built."""
        from IPython.display import HTML, display

        shown = HTML(self.to_html()) if is_static_build() else self.widget
        display(shown)
        return None

    def _repr_mimebundle_(self, **kwargs: Any):
        if is_static_build():
            return {"text/html": self.to_html()}
        return self.widget._repr_mimebundle_(**kwargs)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
