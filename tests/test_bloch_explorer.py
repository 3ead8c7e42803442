"""cmrlab.physics.bloch_explorer: the pulse train, the drawing's data and the explorer's controls."""
import math
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from cmrlab.errors import ArgumentError
from cmrlab.physics.bloch_explorer import bloch_explorer, draw_bloch, pulse_train


def _curves(fig):
    """{label: (t, y)} of the labelled lines of the time-curve panel (the 2D axes)."""
    ax = next(a for a in fig.axes if a.name != "3d")
    return {line.get_label(): (line.get_xdata(), line.get_ydata())
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_single_pulse_follows_the_closed_form_relaxation():
    traj = pulse_train(T1=1000.0, T2=100.0, flip=90.0, df=0.0, duration=2000.0)
    assert traj.t[0] == traj.t[1] == 0.0 and traj.t[-1] == pytest.approx(2000.0)
    assert np.allclose(traj.M[0], [0, 0, 1]) and np.allclose(traj.M[1], [0, 1, 0], atol=1e-15)
    t = traj.t[2:]
    assert np.allclose(traj.mz[2:], 1 - np.exp(-t / 1000.0), atol=1e-12)
    assert np.allclose(traj.mxy[2:], np.exp(-t / 100.0), atol=1e-12)
    assert traj.mz[traj.index(1000.0)] == pytest.approx(1 - math.exp(-1), abs=1e-12)  # 63.2 %


def test_off_resonance_is_sampled_finely_and_precesses_clockwise():
    traj = pulse_train(T1=math.inf, T2=math.inf, flip=90.0, df=50.0, duration=100.0)
    dt = np.diff(traj.t[1:])
    assert dt.max() <= 1000.0 / (50.0 * 12) + 1e-12  # at least 12 samples per 20 ms cycle
    k = traj.index(5.0)  # a quarter cycle after the pulse: +y has turned to +x
    assert np.allclose(traj.M[k], [1, 0, 0], atol=1e-3)


def test_pulse_train_repeats_every_tr_without_spoiling():
    T1, T2, TR, flip = 800.0, 40.0, 300.0, 90.0
    traj = pulse_train(T1, T2, flip, df=0.0, TR=TR, duration=1000.0)
    pulses = np.flatnonzero(traj.t[1:] == traj.t[:-1])
    assert traj.t[pulses].tolist() == [0.0, 300.0, 600.0, 900.0]
    # with no off-resonance the leftover My(TR) is rotated onto -z by the next 90° pulse
    before, after = traj.M[pulses[1]], traj.M[pulses[1] + 1]
    assert before[2] == pytest.approx(1 - math.exp(-TR / T1), rel=1e-12)
    assert before[1] == pytest.approx(math.exp(-TR / T2), rel=1e-12)
    assert after[1] == pytest.approx(before[2], rel=1e-12) and after[2] == pytest.approx(-before[1], rel=1e-12)


def test_drawing_data_follow_the_parameters():
    fig = Figure()
    draw_bloch(fig, flip=30, T1=500, T2=50, df=0, TR=2000)
    curves = _curves(fig)
    t, mz = curves["Mz"]
    assert mz[1] == pytest.approx(math.cos(math.radians(30)), abs=1e-12)  # just after the pulse
    _, mxy = curves["|Mxy|"]
    assert mxy[np.argmin(np.abs(t - 50))] == pytest.approx(0.5 * math.exp(-1), rel=1e-2)  # sin 30° · e^-1

    fig2 = Figure()
    draw_bloch(fig2, flip=150, T1=500, T2=50, df=0, TR=2000)
    assert _curves(fig2)["Mz"][1][1] == pytest.approx(math.cos(math.radians(150)), abs=1e-12)
    ax3 = next(a for a in fig.axes if a.name == "3d")
    assert ax3.get_lines()  # the 3D path is drawn


def test_explorer_state_changes_redraw_with_new_data():
    ex = bloch_explorer(frames=3)
    assert set(ex.controls) == {"flip", "T1", "T2", "df", "TR"}
    assert ex.params == {"flip": 90, "T1": 1000, "T2": 100, "df": 10, "TR": 2000}
    ex.widget  # build the live widget
    first = ex._image.value
    ex.set(flip=45, TR=500)
    assert ex.params["flip"] == 45 and ex._widgets["TR"].value == 500
    assert ex._image.value != first and ex._image.value[:8] == b"\x89PNG\r\n\x1a\n"
    mz = _curves(ex.figure())["Mz"][1]
    assert mz[1] == pytest.approx(math.cos(math.radians(45)), abs=1e-12)


def test_static_animation_sweeps_the_flip_angle():
    ex = bloch_explorer(frames=4)
    assert ex.animate == "flip" and ex.sweep_values() == [0, 60, 120, 180]
    html = ex.to_html()
    assert len(re.findall(r'frames\[\d+\] = "data:image/png;base64,', html)) == 4
    assert bloch_explorer(animate="df", frames=3).sweep_values() == [-50, 0, 50]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"flip": float("nan")}, "flip"),
        ({"flip": 200}, "flip"),
        ({"T1": 0}, "T1"),
        ({"T2": -5}, "T2"),
        ({"df": "fast"}, "df"),
        ({"TR": 10}, "TR"),
        ({"TR": 3000, "duration": 2000}, "TR"),
        ({"duration": 0}, "duration"),
        ({"animate": "B0"}, "animate"),
    ],
)
def test_bad_explorer_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ArgumentError, match=name):
        bloch_explorer(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"T1": 0.0}, "T1"),
        ({"T2": float("nan")}, "T2"),
        ({"TR": -1.0}, "TR"),
        ({"TR": 0.1, "duration": 2000.0}, "TR"),
        ({"n_samples": 0}, "n_samples"),
        ({"M0": float("inf")}, "M0"),
    ],
)
def test_bad_pulse_train_arguments_name_the_argument(kwargs, name):
    args = {"T1": 1000.0, "T2": 100.0, "flip": 90.0, **kwargs}
    with pytest.raises(ArgumentError, match=name):
        pulse_train(**args)
