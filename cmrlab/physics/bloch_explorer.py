"""The Bloch explorer: flip angle, T1, T2, off-resonance and TR → the path of M and its curves.

One isochromat starts at equilibrium, M = (0, 0, M0), and receives a hard RF pulse of flip angle
α every TR (no spoiling) during a fixed time window. Between pulses it precesses at its
off-resonance Δf in the rotating frame while relaxing, exactly as the Bloch equations say::

    Mxy(t) = Mxy(0)·e^{−t/T2}·e^{−i·2π·Δf·t},    Mz(t) = M0 + (Mz(0) − M0)·e^{−t/T1}

The left panel draws the tip of M in 3D (rotating frame); the right panel draws Mz, |Mxy| and Mx
against time, with the points t = T1 (Mz recovered to 1 − e^{−1} ≈ 63.2 % after a 90° pulse) and
t = T2 (|Mxy| decayed *to* e^{−1} ≈ 36.8 %) marked. The simulation is
:func:`cmrlab.physics.bloch.simulate`, chained from pulse to pulse by :func:`pulse_train`.

Usage in a notebook::

    from cmrlab.physics.bloch_explorer import bloch_explorer
    bloch_explorer().show()     # live sliders in JupyterLab, an animation over the flip angle
                                # in the static website
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from cmrlab.checks import check_choice, check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics import bloch
from cmrlab.viz.explorer import Explorer, Slider

__all__ = ["bloch_explorer", "draw_bloch", "pulse_train"]

#: Slider ranges of the explorer: name → (low, high, step).
RANGES: dict[str, tuple[float, float, float]] = {
    "flip": (0, 180, 5),
    "T1": (100, 4000, 10),
    "T2": (10, 2000, 5),
    "df": (-50, 50, 1),
}
#: Shortest TR the explorer offers (ms); it bounds the number of pulses in the window.
MIN_TR = 50


def _relaxation_time(value: Any, name: str) -> float:
    """A relaxation time in ms: a number > 0, or ``math.inf`` (no relaxation)."""
    return check_number(name, value, 0.0, low_open=True, finite=False)


def pulse_train(
    T1: float,
    T2: float,
    flip: float,
    df: float = 0.0,
    TR: float | None = None,
    duration: float = 2000.0,
    M0: float = 1.0,
    samples_per_cycle: int = 12,
    n_samples: int = 600,
    max_samples: int = 4000,
) -> bloch.Trajectory:
    """Hard pulses of ``flip`` degrees (phase 0) at t = 0, TR, 2·TR, … < ``duration`` ms, with free
    precession at ``df`` Hz and relaxation in between; no spoiling.

    Returns a :class:`~cmrlab.physics.bloch.Trajectory` (NumPy) covering [0, duration]. Every
    pulse appears as two samples at the same time (before, after). ``TR=None`` gives a single
    pulse. The time step is duration/``n_samples``, made finer when needed so that one
    off-resonance cycle has at least ``samples_per_cycle`` samples (the 3D spiral stays smooth),
    but not finer than duration/``max_samples`` (each pulse adds at most one more step).
    TRs giving more than ``max_samples``/4 pulses are refused. Each segment between pulses is one call
    of :func:`cmrlab.physics.bloch.simulate` started from the state the previous one ended in.
    """
    duration = check_number("duration", duration, 0.0, low_open=True)
    TR = duration if TR is None else check_number("TR", TR, 0.0, low_open=True)
    T1, T2 = _relaxation_time(T1, "T1"), _relaxation_time(T2, "T2")
    flip, df, M0 = check_number("flip", flip), check_number("df", df), check_number("M0", M0)
    samples_per_cycle = check_int("samples_per_cycle", samples_per_cycle)
    n_samples = check_int("n_samples", n_samples)
    max_samples = check_int("max_samples", max_samples)
    n_pulses = math.ceil(duration / TR - 1e-9)
    if n_pulses > max_samples // 4:
        raise ArgumentError(f"TR={TR:g} ms gives {n_pulses} pulses in {duration:g} ms; use a longer TR")
    dt = duration / n_samples
    if df != 0:
        dt = min(dt, 1000.0 / (abs(df) * samples_per_cycle))
    dt = max(dt, duration / max_samples)

    times, states = [], []
    m_init = np.array([0.0, 0.0, M0])
    for k in range(n_pulses):
        start = k * TR
        length = min(TR, duration - start)
        steps = max(2, math.ceil(length / dt))
        seg = bloch.simulate(T1, T2, length, flip=flip, df=df, M0=M0, n_steps=steps, M_init=m_init)
        first = 0 if k == 0 else 1  # the state before this pulse is the last sample already kept
        times.append(seg.t[first:] + start)
        states.append(seg.M[first:])
        m_init = seg.M[-1]
    return bloch.Trajectory(np.concatenate(times), np.concatenate(states))


def draw_bloch(
    fig: Any,
    flip: float,
    T1: float,
    T2: float,
    df: float,
    TR: float,
    duration: float = 2000.0,
) -> bloch.Trajectory:
    """Draw the explorer's figure into ``fig`` (a fresh matplotlib Figure); return the trajectory.

    Left: the tip of M in 3D, in the rotating frame, with the x, y, z axes and each pulse drawn
    as a red arc (the rotation about x); arrows show M after the first pulse (red) and at the
    end (black). Right:
    Mz, |Mxy| and Mx against time; dashed lines at t = T1 and t = T2, dots at the values
    1 − (1 − cos α)·e^{−1} (Mz at T1 after the first pulse) and sin α·e^{−1} (|Mxy| at T2),
    which the curves pass through when TR exceeds T1.
    """
    traj = pulse_train(T1, T2, flip, df=df, TR=TR, duration=duration)
    t, M = traj.t, traj.M
    mxy = np.hypot(M[:, 0], M[:, 1])

    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    for k in range(0, len(t) - 1):
        if t[k + 1] == t[k]:  # an RF pulse: draw the rotation as an arc on the sphere
            arc = bloch.rotate_rf(np.broadcast_to(M[k], (9, 3)), np.linspace(0.0, flip, 9))
            ax3.plot(arc[:, 0], arc[:, 1], arc[:, 2], color="tab:red", linewidth=1.0)
    free = np.ones(len(t), dtype=bool)
    free[:-1] &= t[1:] != t[:-1]  # break the line at each pulse (the arc replaces the chord)
    ax3.plot(*np.where(free[:, None], M, np.nan).T, color="tab:purple", linewidth=1.0)
    ax3.quiver(0, 0, 0, *M[1], color="tab:red", linewidth=1.5, arrow_length_ratio=0.12)
    ax3.quiver(0, 0, 0, *M[-1], color="black", linewidth=1.5, arrow_length_ratio=0.12)
    for axis in np.eye(3):
        ax3.plot(*np.stack([-axis, axis]).T, color="grey", linewidth=0.6)
    ax3.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1), xticks=[-1, 0, 1], yticks=[-1, 0, 1],
            zticks=[-1, 0, 1])
    ax3.set_xlabel("Mx", fontsize=8, labelpad=-8)
    ax3.set_ylabel("My", fontsize=8, labelpad=-8)
    ax3.set_zlabel("Mz", fontsize=8, labelpad=-8)
    ax3.set_box_aspect((1, 1, 1))
    ax3.view_init(elev=20, azim=-60)
    ax3.set_title("tip of M, rotating frame (red: RF pulse\nand M after it, black: M at the end)",
                  fontsize=8)
    ax3.tick_params(labelsize=6, pad=-2)
    ax3.grid(False)  # the drawn axes suffice, and fewer artists keep the static animation fast

    ax = fig.add_subplot(1, 2, 2)
    ax.plot(t, M[:, 2], color="tab:blue", label="Mz")
    ax.plot(t, mxy, color="tab:orange", label="|Mxy|")
    ax.plot(t, M[:, 0], color="tab:green", linewidth=0.5, alpha=0.6, label="Mx")
    alpha = math.radians(flip)
    for x, y, colour, text in ((T1, 1 - (1 - math.cos(alpha)) * math.exp(-1), "tab:blue", "T1"),
                               (T2, math.sin(alpha) * math.exp(-1), "tab:orange", "T2")):
        if x <= duration:
            ax.axvline(x, color=colour, linestyle="--", linewidth=0.8)
            ax.text(x, 1.04, text, color=colour, fontsize=7, ha="center")
            if x <= TR:  # before the second pulse, the curve passes through this point
                ax.plot([x], [y], "o", color=colour, markersize=4)
    ax.set(xlim=(0, duration), ylim=(-1.05, 1.12), xlabel="t (ms)", ylabel="fraction of M0",
           yticks=[-1, -0.5, 0, 0.5, 1])
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.legend(fontsize=7, loc="lower right")
    ax.tick_params(labelsize=7)
    note = f"α = {flip:g}°, Δf = {df:g} Hz, TR = {TR:g} ms"
    if T2 > T1:
        note += "\nT2 > T1: no tissue does this"
    ax.set_title(note, fontsize=8)
    return traj


def bloch_explorer(
    flip: float = 90,
    T1: float = 1000,
    T2: float = 100,
    df: float = 10,
    TR: float | None = None,
    duration: float = 2000,
    animate: str = "flip",
    frames: int = 12,
) -> Explorer:
    """An :class:`~cmrlab.viz.explorer.Explorer` with sliders for the flip angle (°), T1 and T2
    (ms), the off-resonance Δf (Hz) and TR (ms), drawn by :func:`draw_bloch` over a window of
    ``duration`` ms.

    The arguments set where the sliders start. ``TR=None`` starts at TR = ``duration`` (a single
    pulse); shorter TRs repeat the pulse (no spoiling), so Mz saturates. In the static website the
    ``animate`` control (``"flip"``, ``"T1"``, ``"T2"``, ``"df"`` or ``"TR"``) is swept over
    ``frames`` values.
    """
    duration = check_number("duration (ms)", duration, MIN_TR)
    TR = duration if TR is None else check_number("TR (ms, at most duration)", TR, MIN_TR, duration)
    start = {"flip": flip, "T1": T1, "T2": T2, "df": df}
    controls: dict[str, Slider] = {}
    labels = {"flip": "flip angle (°)", "T1": "T1 (ms)", "T2": "T2 (ms)", "df": "off-resonance Δf (Hz)"}
    for name, value in start.items():
        low, high, step = RANGES[name]
        value = check_number(name, value, low, high)
        value = int(value) if value.is_integer() else value  # integer sliders where possible
        controls[name] = Slider(low, high, value, step=step, label=labels[name])
    if duration.is_integer() and TR.is_integer():
        controls["TR"] = Slider(MIN_TR, int(duration), int(TR), step=10, label="TR (ms)")
    else:
        controls["TR"] = Slider(float(MIN_TR), duration, TR, step=10.0, label="TR (ms)")
    animate = check_choice("animate", animate, list(controls))

    def draw(fig: Any, **params: Any) -> None:
        draw_bloch(fig, duration=duration, **params)

    return Explorer(draw, controls, animate=animate, frames=frames, figsize=(8.4, 3.8),
                    title="Bloch explorer", continuous_update=False)
