"""cmrlab.viz.explorer: figure + controls, live widget state and the static animation."""
import re

import numpy as np
import pytest

from cmrlab.errors import ArgumentError
from cmrlab.viz.explorer import Choice, Explorer, Slider, Toggle


def make(calls):
    def draw(fig, freq, kind, grid):
        calls.append((freq, kind, grid))
        ax = fig.subplots()
        x = np.linspace(0, 1, 20)
        ax.plot(x, np.sin(freq * x) if kind == "sin" else np.cos(freq * x))
        ax.grid(grid)

    return Explorer(draw, {"freq": Slider(1, 10, 3, label="frequency"),
                           "kind": Choice([("sine", "sin"), ("cosine", "cos")]),
                           "grid": Toggle(True)}, frames=5, title="demo")


def test_widget_state_follows_controls_and_set():
    calls = []
    ex = make(calls)
    box = ex.widget
    assert calls[-1] == (3, "sin", True)
    ex._widgets["freq"].value = 7
    assert calls[-1] == (7, "sin", True) and ex.params["freq"] == 7
    n = len(calls)
    ex.set(kind="cos", grid=False)
    assert ex._widgets["kind"].value == "cos" and ex._widgets["grid"].value is False
    assert calls[-1] == (7, "cos", False) and len(calls) == n + 1  # one redraw, not one per widget
    assert ex._image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert box.children[1] is ex._image


def test_static_animation_sweeps_the_first_slider():
    calls = []
    ex = make(calls)
    assert ex.sweep_values() == [1, 3, 6, 8, 10]
    html = ex.to_html()
    frames = re.findall(r'frames\[\d+\] = "data:image/png;base64,', html)
    assert len(frames) == 5
    assert [c[0] for c in calls[-5:]] == [1, 3, 6, 8, 10]
    assert ex.params["freq"] == 3  # the sweep does not change the explorer's state


def test_show_in_static_build_embeds_html(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    monkeypatch.setenv("CMRLAB_STATIC", "1")
    ex = make([])
    ex.show()
    assert isinstance(shown[0], IPython.display.HTML) and "frames[0]" in shown[0].data
    assert ex._box is None  # no widget was built


def test_bad_controls():
    draw = lambda fig, a: None  # noqa: E731
    with pytest.raises(ArgumentError, match="outside"):
        Slider(0, 1, 2)
    with pytest.raises(ArgumentError, match="low < high"):
        Slider(1, 1, 1)
    with pytest.raises(ArgumentError, match="not one of"):
        Choice(["a"], value="b")
    with pytest.raises(ArgumentError, match="Slider, Choice or Toggle"):
        Explorer(draw, {"a": 3})
    with pytest.raises(ArgumentError, match="animate='b'"):
        Explorer(draw, {"a": Slider(0, 1, 0.5)}, animate="b")
    with pytest.raises(ArgumentError, match="unknown parameter"):
        Explorer(draw, {"a": Slider(0, 1, 0.5)}).set(b=1)


def test_float_slider_sweep_spans_the_range():
    assert Slider(0.0, 1.0, 0.5).sweep(3) == [0.0, 0.5, 1.0]
    assert not Slider(0.0, 1.0, 0.5).integer and Slider(0, 4, 2).integer
