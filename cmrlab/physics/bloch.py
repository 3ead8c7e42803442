"""Bloch simulation of many isochromats at once, in torch (runs on a GPU, differentiable).

The Bloch equation in the frame rotating at the Larmor frequency::

    dM/dt = γ M × B_eff  −  (Mx, My, 0)/T2  −  (0, 0, Mz − M0)/T1,
    B_eff = (B1x, B1y, ΔB0 + G·r)

Magnetisation is a tensor of shape ``(..., 3)`` holding (Mx, My, Mz) for every isochromat (a
group of spins that see the same field); all isochromats are updated together, with no Python
loop over spins. Each event is solved exactly:

* **Hard RF pulse** (:func:`rotate_rf`): an instantaneous rotation by the flip angle α about an
  axis in the transverse plane at angle ``phase`` from x.
* **Free precession** (:func:`free_precession`): for a time dt, a rotation about z by
  2π·df·dt (df: off-resonance in Hz, from B0 inhomogeneity, chemical shift or a gradient) and
  exact relaxation, together the affine map M ← A·M + B (:func:`precession_matrices`).
* **Shaped pulses** (:func:`simulate_pulse`): the pulse is cut into short samples, each a
  rotation about the effective field (B1 and gradient together).

Sign convention: protons have γ > 0, so M × B makes every rotation *left-handed* (clockwise seen
from the tip of the field). A 90° pulse of phase 0 (B1 along +x) tips M from +z to **+y**; a
spin with df > 0 precesses from +x towards −y. Magnitudes do not depend on this choice, phases do.

Units (see :mod:`cmrlab.physics.constants`): ms, Hz, degrees, mm, mT/m, µT. Array rule: torch in
→ torch out on the same device, else NumPy out; see :func:`cmrlab.physics.constants.as_tensors`.

T2* is modelled as T2 plus a static spread of off-resonance inside a voxel
(:func:`t2star_offsets`): a Lorentzian spread of half-width Γ = 1/(2π·T2') with
1/T2* = 1/T2 + 1/T2' makes the net FID decay exactly as e^{−t/T2*}, and a 180° pulse refocuses
that spread but not T2 (:func:`spin_echo`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from cmrlab.checks import check_choice, check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import GAMMA, GAMMA_BAR, ArrayLike, as_output, as_tensors
from cmrlab.physics.constants import check_finite, check_nonnegative, check_positive

__all__ = [
    "RFPulse",
    "Trajectory",
    "bssfp_steady_state",
    "equilibrium",
    "free_precession",
    "gradient_dephasing",
    "gradient_echo",
    "gradient_frequency",
    "inversion_recovery",
    "precession_matrices",
    "profile_fwhm",
    "rf_rotation_matrix",
    "rotate_rf",
    "simulate",
    "simulate_pulse",
    "sinc_pulse",
    "slice_thickness",
    "spin_echo",
    "spoil",
    "t2star_offsets",
]

Components = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------------------------
# Exact rotations and relaxation on the (Mx, My, Mz) components (private, tensors only)
# --------------------------------------------------------------------------------------------
def _rf(m: Components, alpha: torch.Tensor, phi: torch.Tensor) -> Components:
    """Rotate by ``alpha`` (rad) about n = (cos φ, sin φ, 0), left-handed (Rodrigues' formula)."""
    mx, my, mz = m
    nx, ny = torch.cos(phi), torch.sin(phi)
    c, s = torch.cos(alpha), torch.sin(alpha)
    dot = (nx * mx + ny * my) * (1 - c)
    return (
        mx * c - ny * mz * s + nx * dot,
        my * c + nx * mz * s + ny * dot,
        mz * c - (nx * my - ny * mx) * s,
    )


def _rotate_axis(m: Components, w: Components) -> Components:
    """Rotate about the vector ``w`` (rad) by −|w| (left-handed about w), for any direction of w."""
    mx, my, mz = m
    wx, wy, wz = w
    angle = torch.sqrt(wx * wx + wy * wy + wz * wz)
    safe = torch.where(angle > 0, angle, torch.ones_like(angle))
    nx, ny, nz = wx / safe, wy / safe, wz / safe
    c, s = torch.cos(angle), -torch.sin(angle)
    dot = (nx * mx + ny * my + nz * mz) * (1 - c)
    return (
        mx * c + (ny * mz - nz * my) * s + nx * dot,
        my * c + (nz * mx - nx * mz) * s + ny * dot,
        mz * c + (nx * my - ny * mx) * s + nz * dot,
    )


def _precession_coefficients(
    dt: torch.Tensor, T1: torch.Tensor, T2: torch.Tensor, df: torch.Tensor, M0: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """(cos φ, sin φ, E2, E1, M0·(1 − E1)) for a free precession of dt ms at df Hz."""
    phi = 2 * math.pi * df * dt / 1000.0
    e1 = torch.exp(-dt / T1)
    return torch.cos(phi), torch.sin(phi), torch.exp(-dt / T2), e1, M0 * (1 - e1)


def _coef(
    dt: torch.Tensor, T1: torch.Tensor, T2: torch.Tensor, df: torch.Tensor, M0: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Coefficients of one free-precession step for :func:`_precess`: (E2·cos φ, E2·sin φ, E1, M0·(1 − E1))."""
    c, s, e2, e1, rec = _precession_coefficients(dt, T1, T2, df, M0)
    return e2 * c, e2 * s, e1, rec


def _precess(m: Components, coef: tuple[torch.Tensor, ...]) -> Components:
    """Apply one free-precession step with coefficients from :func:`_coef` (clockwise rotation)."""
    mx, my, mz = m
    a, b, e1, rec = coef
    return mx * a + my * b, my * a - mx * b, mz * e1 + rec


def _split(M: torch.Tensor) -> Components:
    if M.shape[-1] != 3:
        raise ArgumentError(f"M must have a last axis of length 3 (Mx, My, Mz), got shape {tuple(M.shape)}")
    return M[..., 0], M[..., 1], M[..., 2]


def _join(m: Components) -> torch.Tensor:
    return torch.stack(torch.broadcast_tensors(*m), dim=-1)


# --------------------------------------------------------------------------------------------
# Elementary operations (public)
# --------------------------------------------------------------------------------------------
def equilibrium(
    shape: tuple[int, ...] = (),
    M0: ArrayLike = 1.0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Any:
    """Magnetisation at rest, M = (0, 0, M0), with shape ``shape + (3,)`` (M0 broadcasts)."""
    (m0,), numpy_out = as_tensors(M0, names=("M0",), device=device, dtype=dtype)
    check_finite(m0, "M0")
    m0 = torch.broadcast_to(m0, torch.broadcast_shapes(tuple(shape), m0.shape))
    zero = torch.zeros_like(m0)
    return as_output(_join((zero, zero, m0)), numpy_out)


def rf_rotation_matrix(flip: ArrayLike, phase: ArrayLike = 0.0) -> Any:
    """3×3 matrix (shape ``(..., 3, 3)``) of a hard pulse: flip α (deg) about (cos φ, sin φ, 0).

    ``R @ M`` equals :func:`rotate_rf` ``(M, flip, phase)``. Phase 0 rotates z → +y, phase 90°
    (B1 along y) rotates z → −x.
    """
    (fa, ph), numpy_out = as_tensors(flip, phase, names=("flip", "phase"))
    check_finite(fa, "flip")
    check_finite(ph, "phase")
    a, p = torch.deg2rad(fa), torch.deg2rad(ph)
    a, p = torch.broadcast_tensors(a, p)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    cols = [_rf((one, zero, zero), a, p), _rf((zero, one, zero), a, p), _rf((zero, zero, one), a, p)]
    R = torch.stack([_join(col) for col in cols], dim=-1)  # column j = image of basis vector j
    return as_output(R, numpy_out)


def rotate_rf(M: ArrayLike, flip: ArrayLike, phase: ArrayLike = 0.0) -> Any:
    """Apply a hard (instantaneous) RF pulse: rotate M by ``flip`` degrees about the transverse
    axis at ``phase`` degrees from x (left-handed, so phase 0 tips +z towards +y).

    ``M`` has shape ``(..., 3)``; ``flip`` and ``phase`` broadcast with ``M[..., 0]``.
    """
    (m, fa, ph), numpy_out = as_tensors(M, flip, phase, names=("M", "flip", "phase"))
    check_finite(m, "M")
    check_finite(fa, "flip")
    check_finite(ph, "phase")
    return as_output(_join(_rf(_split(m), torch.deg2rad(fa), torch.deg2rad(ph))), numpy_out)


def precession_matrices(
    dt: ArrayLike, T1: ArrayLike, T2: ArrayLike, df: ArrayLike = 0.0, M0: ArrayLike = 1.0
) -> tuple[Any, Any]:
    """The exact free-precession map over ``dt`` ms as ``M ← A·M + B``.

    With φ = 2π·df·dt, E1 = e^{−dt/T1}, E2 = e^{−dt/T2}::

        A = [[ E2·cos φ,  E2·sin φ, 0 ],        B = [0, 0, M0·(1 − E1)]
             [−E2·sin φ,  E2·cos φ, 0 ],
             [ 0,         0,        E1]]

    Returns ``(A, B)`` of shapes ``(..., 3, 3)`` and ``(..., 3)``.
    """
    (dt_, t1, t2, df_, m0), numpy_out = as_tensors(dt, T1, T2, df, M0, names=("dt", "T1", "T2", "df", "M0"))
    _check_relaxation(t1, t2)
    check_nonnegative(dt_, "dt")
    check_finite(df_, "df")
    check_finite(m0, "M0")
    c, s, e2, e1, rec = torch.broadcast_tensors(*_precession_coefficients(dt_, t1, t2, df_, m0))
    zero = torch.zeros_like(c)
    A = torch.stack(
        [
            torch.stack([e2 * c, e2 * s, zero], dim=-1),
            torch.stack([-e2 * s, e2 * c, zero], dim=-1),
            torch.stack([zero, zero, e1], dim=-1),
        ],
        dim=-2,
    )
    B = torch.stack([zero, zero, rec], dim=-1)
    return as_output(A, numpy_out), as_output(B, numpy_out)


def free_precession(
    M: ArrayLike, dt: ArrayLike, T1: ArrayLike, T2: ArrayLike, df: ArrayLike = 0.0, M0: ArrayLike = 1.0
) -> Any:
    """Let M precess freely for ``dt`` ms at off-resonance ``df`` Hz while relaxing (exact)::

        Mxy(dt) = Mxy(0)·e^{−dt/T2}·e^{−i·2π·df·dt},   Mz(dt) = Mz(0)·E1 + M0·(1 − E1)

    T1 and T2 may be ``inf`` (no relaxation). Everything broadcasts with ``M[..., 0]``.
    """
    (m, dt_, t1, t2, df_, m0), numpy_out = as_tensors(
        M, dt, T1, T2, df, M0, names=("M", "dt", "T1", "T2", "df", "M0")
    )
    check_finite(m, "M")
    _check_relaxation(t1, t2)
    check_nonnegative(dt_, "dt")
    check_finite(df_, "df")
    check_finite(m0, "M0")
    coef = _coef(dt_, t1, t2, df_, m0)
    return as_output(_join(_precess(_split(m), coef)), numpy_out)


def spoil(M: ArrayLike) -> Any:
    """Ideal spoiling: set the transverse magnetisation to zero, keep Mz."""
    (m,), numpy_out = as_tensors(M, names=("M",))
    mx, my, mz = _split(m)
    return as_output(_join((torch.zeros_like(mx), torch.zeros_like(my), mz)), numpy_out)


def gradient_frequency(position: ArrayLike, gradient: ArrayLike) -> Any:
    """Off-resonance (Hz) that a gradient gives a spin: f = (γ/2π)·(G·r).

    ``gradient`` in mT/m, ``position`` in mm. If ``gradient`` is a scalar, ``position`` holds
    coordinates along the gradient's axis (any shape); otherwise both end in an axis of length 3
    (x, y, z) and the dot product is taken. 10 mT/m at 1 mm gives 425.77 Hz.
    """
    (r, g), numpy_out = as_tensors(position, gradient, names=("position", "gradient"))
    check_finite(r, "position")
    check_finite(g, "gradient")
    scale = GAMMA_BAR * 1e-6  # Hz per (mT/m · mm)
    if g.ndim == 0:
        return as_output(scale * g * r, numpy_out)
    if g.shape[-1] != 3 or r.shape[-1] != 3:
        raise ArgumentError("a vector gradient and the positions need a last axis of length 3 (x, y, z)")
    return as_output(scale * (g * r).sum(-1), numpy_out)


def gradient_dephasing(M: ArrayLike, position: ArrayLike, gradient: ArrayLike, duration: ArrayLike) -> Any:
    """Rotate each spin about z by the phase a gradient gives it: φ = 2π·(γ/2π)·(G·r)·duration.

    Relaxation is ignored (use :func:`free_precession` with ``df=gradient_frequency(...)`` to
    include it). A gradient lobe and one of equal area and opposite sign cancel exactly.
    """
    (m, dur), numpy_out = as_tensors(M, duration, names=("M", "duration"))
    numpy_out = numpy_out and not any(isinstance(v, torch.Tensor) for v in (position, gradient))
    check_nonnegative(dur, "duration")
    f = gradient_frequency(position, gradient)
    (f,), _ = as_tensors(f, names=("gradient frequency",), device=m.device, dtype=m.dtype)
    inf = torch.tensor(math.inf, dtype=m.dtype, device=m.device)
    coef = _coef(dur, inf, inf, f, torch.zeros((), dtype=m.dtype, device=m.device))
    return as_output(_join(_precess(_split(m), coef)), numpy_out)


def _check_relaxation(t1: torch.Tensor, t2: torch.Tensor) -> None:
    check_positive(t1, "T1", allow_inf=True)
    check_positive(t2, "T2", allow_inf=True)


# --------------------------------------------------------------------------------------------
# T2*: a distribution of off-resonance inside a voxel
# --------------------------------------------------------------------------------------------
def t2star_offsets(
    T2: ArrayLike, T2star: ArrayLike, n: int = 500, distribution: str = "lorentzian"
) -> Any:
    """Off-resonance frequencies (Hz) of ``n`` isochromats whose spread turns T2 into T2*.

    The reversible rate is R2' = 1/T2* − 1/T2 (so T2* ≤ T2). ``distribution``:

    * ``"lorentzian"``: Cauchy distribution of half-width Γ = R2'/(2π); the mean of
      e^{−i2π·df·t} over it is exactly e^{−R2'·t}, so the net FID decays as e^{−t/T2*}.
      The isochromats sit at the quantiles df_k = Γ·tan(π(u_k − ½)), u_k = (k + ½)/n
      (deterministic, no random numbers). The heavy tails make this sampling approximate: the
      net FID follows e^{−t/T2*} to about 1 % of M0 with 500 isochromats, better with more.
    * ``"uniform"``: evenly spaced over [−Γ, Γ]; the FID then decays as a sinc,
      e^{−t/T2}·sin(2πΓt)/(2πΓt), not exponentially (shown for comparison).

    Output shape: ``broadcast(T2, T2star).shape + (n,)``.
    """
    n = check_int("n", n)
    (t2, t2s), numpy_out = as_tensors(T2, T2star, names=("T2", "T2star"))
    check_positive(t2, "T2", allow_inf=True)
    check_positive(t2s, "T2star")
    if (t2s > t2).any():
        raise ArgumentError("T2star must not exceed T2")
    gamma_hz = (1 / t2s - 1 / t2) * 1000.0 / (2 * math.pi)
    u = (torch.arange(n, dtype=t2.dtype, device=t2.device) + 0.5) / n
    if distribution == "lorentzian":
        q = torch.tan(math.pi * (u - 0.5))
    elif distribution == "uniform":
        q = 2 * u - 1
    else:
        raise ArgumentError(f"distribution must be 'lorentzian' or 'uniform', got {distribution!r}")
    return as_output(gamma_hz[..., None] * q, numpy_out)


# --------------------------------------------------------------------------------------------
# Trajectories: the Bloch explorer and the spin echo
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trajectory:
    """Magnetisation over time: ``t`` (n_t,) in ms and ``M`` (n_t, ..., 3).

    An instantaneous RF pulse appears as two samples with the same time (before, after).
    """

    t: Any
    M: Any

    @property
    def mx(self) -> Any:
        return self.M[..., 0]

    @property
    def my(self) -> Any:
        return self.M[..., 1]

    @property
    def mz(self) -> Any:
        return self.M[..., 2]

    @property
    def mxy(self) -> Any:
        """Transverse magnitude |Mx + i·My| (what the receiver coil detects)."""
        return (self.M[..., 0] ** 2 + self.M[..., 1] ** 2) ** 0.5

    def index(self, time: float) -> int:
        """Index of the sample nearest ``time`` (ms); on a tie the later sample (after a pulse)."""
        t = torch.as_tensor(self.t)
        d = (t - float(time)).abs()
        return int(len(t) - 1 - torch.argmin(d.flip(0)).item())

    def at(self, time: float) -> Any:
        """M (..., 3) at the sample nearest ``time`` (ms)."""
        return self.M[self.index(time)]


class _Recorder:
    """Collect (t, M) samples; average over isochromat axes (``mean_dims``) as it goes."""

    def __init__(self, mean_dims: tuple[int, ...]):
        self.mean_dims = mean_dims
        self.t: list[float] = []
        self.M: list[torch.Tensor] = []

    def __call__(self, t: float, m: Components) -> None:
        if self.mean_dims:
            m = tuple(c.mean(dim=self.mean_dims) for c in torch.broadcast_tensors(*m))  # type: ignore[assignment]
        self.t.append(t)
        self.M.append(_join(m))

    def result(self, numpy_out: bool) -> Trajectory:
        M = torch.stack(self.M)
        t = torch.tensor(self.t, dtype=M.dtype, device=M.device)
        return Trajectory(as_output(t, numpy_out), as_output(M, numpy_out))


def _free_segment(m: Components, coef, n: int, t0: float, dt: float, rec: _Recorder | None) -> Components:
    for k in range(1, n + 1):
        m = _precess(m, coef)
        if rec is not None:
            rec(t0 + k * dt, m)
    return m


def _spins(
    params: dict[str, torch.Tensor], T2star: torch.Tensor | None, n_iso: int, distribution: str
) -> tuple[dict[str, torch.Tensor], torch.Tensor, tuple[int, ...], tuple[int, ...]]:
    """Prepare tissue parameters; with T2* add a trailing isochromat axis of off-resonances.

    Returns (parameters, broadcastable to the spins; total off-resonance; the spin shape; the axes
    to average). Parameters are not expanded, so a scalar T1 stays a scalar in the inner loop.
    """
    shape = torch.broadcast_shapes(*(p.shape for p in params.values()), *(() if T2star is None else (T2star.shape,)))
    out = dict(params)
    df = out.pop("df")
    if T2star is None:
        return out, df, tuple(shape), ()
    offsets = t2star_offsets(torch.broadcast_to(out["T2"], shape), torch.broadcast_to(T2star, shape), n_iso,
                             distribution)
    out = {k: v[..., None] for k, v in out.items()}
    return out, df[..., None] + offsets, tuple(shape) + (n_iso,), (-1,)


def simulate(
    T1: ArrayLike,
    T2: ArrayLike,
    duration: float,
    flip: ArrayLike = 90.0,
    phase: ArrayLike = 0.0,
    df: ArrayLike = 0.0,
    M0: ArrayLike = 1.0,
    n_steps: int = 200,
    T2star: ArrayLike | None = None,
    n_isochromats: int = 500,
    distribution: str = "lorentzian",
    M_init: ArrayLike | None = None,
    net: bool = False,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Trajectory:
    """Bloch explorer: a hard pulse at t = 0, then free precession for ``duration`` ms.

    Returns a :class:`Trajectory` with ``n_steps + 2`` samples: the state before the pulse, just
    after it (both at t = 0), and after each of ``n_steps`` equal steps. Plot ``M`` in 3D, or
    ``mz`` and ``mxy`` against ``t``. All parameters broadcast together (one isochromat per
    element); ``M_init`` (default (0, 0, M0)) is the state before the pulse.

    * ``T2star``: each element becomes a voxel of ``n_isochromats`` isochromats spread in
      frequency (:func:`t2star_offsets`); ``M`` is then their mean, which decays with T2*.
    * ``net=True``: record only the mean over all isochromats, shape (n_t, 3). Use it for large
      simulations (10⁶ isochromats × 100 steps keeps 100 × 3 numbers instead of 3·10⁸).
    """
    n_steps = check_int("n_steps", n_steps)
    n_isochromats = check_int("n_isochromats", n_isochromats)
    (t1, t2, dur, fa, ph, df_, m0, t2s, minit), numpy_out = as_tensors(
        T1, T2, duration, flip, phase, df, M0, T2star, M_init,
        names=("T1", "T2", "duration", "flip", "phase", "df", "M0", "T2star", "M_init"),
        device=device, dtype=dtype,
    )
    _check_relaxation(t1, t2)
    check_positive(dur, "duration")
    if dur.ndim:
        raise ArgumentError("duration must be a single number")
    for t, name in ((fa, "flip"), (ph, "phase"), (df_, "df"), (m0, "M0")):
        check_finite(t, name)
    params = {"T1": t1, "T2": t2, "flip": fa, "phase": ph, "df": df_, "M0": m0}
    if minit is not None:
        check_finite(minit, "M_init")
        mx0, my0, mz0 = _split(minit)
        params.update(mx0=mx0, my0=my0, mz0=mz0)
    p, f, shape, iso_dims = _spins(params, t2s, n_isochromats, distribution)
    zero = torch.zeros(shape, dtype=t1.dtype, device=t1.device)
    if minit is None:
        m: Components = (zero, zero, zero + p["M0"])
    else:
        m = (zero + p["mx0"], zero + p["my0"], zero + p["mz0"])
    mean_dims = tuple(range(len(shape))) if net else iso_dims
    rec = _Recorder(mean_dims)
    rec(0.0, m)
    m = _rf(m, torch.deg2rad(p["flip"]), torch.deg2rad(p["phase"]))
    rec(0.0, m)
    dt = float(dur) / n_steps
    coef = _coef(torch.tensor(dt, dtype=t1.dtype, device=t1.device), p["T1"], p["T2"], f, p["M0"])
    _free_segment(m, coef, n_steps, 0.0, dt, rec)
    return rec.result(numpy_out)


def spin_echo(
    T1: ArrayLike,
    T2: ArrayLike,
    TE: float,
    T2star: ArrayLike | None = None,
    df: ArrayLike = 0.0,
    M0: ArrayLike = 1.0,
    duration: float | None = None,
    n_steps: int = 400,
    n_isochromats: int = 500,
    distribution: str = "lorentzian",
    refocus_phase: float = 90.0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Trajectory:
    """Spin echo from equilibrium: 90° (phase 0) at t = 0, 180° at TE/2, echo at TE.

    Returns the :class:`Trajectory` of the net magnetisation from 0 to ``duration`` (default
    2·TE) in about ``n_steps`` steps, with samples exactly at TE/2 (before and after the 180°)
    and at TE. With ``T2star`` the voxel's isochromats dephase
    after the 90° pulse (the FID decays with T2*); the 180° pulse (about y by default, so the echo
    forms along +y) reverses every isochromat's phase, and at TE they are back in phase: the echo
    amplitude is M0·e^{−TE/T2}. The T2 loss is not recovered: it is not a phase.
    """
    n_steps = check_int("n_steps", n_steps, 4)
    refocus_phase = check_number("refocus_phase", refocus_phase)
    (te,), _ = as_tensors(TE, names=("TE",))
    check_positive(te, "TE")
    te = float(te)
    duration = 2.0 * te if duration is None else float(duration)
    if not duration > te / 2:
        raise ArgumentError("duration must be longer than TE/2")
    (t1, t2, df_, m0, t2s), numpy_out = as_tensors(
        T1, T2, df, M0, T2star, names=("T1", "T2", "df", "M0", "T2star"), device=device, dtype=dtype
    )
    _check_relaxation(t1, t2)
    check_finite(df_, "df")
    check_finite(m0, "M0")
    p, f, shape, iso_dims = _spins({"T1": t1, "T2": t2, "df": df_, "M0": m0}, t2s, n_isochromats, distribution)
    zero = torch.zeros(shape, dtype=t1.dtype, device=t1.device)
    m: Components = (zero, zero, zero + p["M0"])
    rec = _Recorder(iso_dims)
    rec(0.0, m)
    m = _rf(m, torch.full_like(zero, math.pi / 2), zero)
    rec(0.0, m)
    # segments [0, TE/2], [TE/2, TE], [TE, duration], so that TE/2 and TE are sampled exactly
    edges = [0.0, te / 2, min(te, duration)] + ([duration] if duration > te else [])
    refocus = torch.full_like(zero, math.radians(refocus_phase))
    for start, stop in zip(edges[:-1], edges[1:]):
        n = max(1, round(n_steps * (stop - start) / duration))
        dt = (stop - start) / n
        dt_t = torch.tensor(dt, dtype=t1.dtype, device=t1.device)
        m = _free_segment(m, _coef(dt_t, p["T1"], p["T2"], f, p["M0"]), n, start, dt, rec)
        if stop == te / 2:
            m = _rf(m, torch.full_like(zero, math.pi), refocus)
            rec(te / 2, m)
    return rec.result(numpy_out)


# --------------------------------------------------------------------------------------------
# Repeated sequences driven to steady state
# --------------------------------------------------------------------------------------------
def _n_tr_for(rate: torch.Tensor, tol: float, lo: int, hi: int) -> int:
    """TRs needed for a transient that shrinks by ``exp(-rate)`` per TR to fall below ``tol``."""
    r = float(rate.detach().min()) if rate.numel() else 1.0
    if r <= 0:
        return hi
    return int(min(hi, max(lo, math.ceil(math.log(1 / tol) / r))))


def gradient_echo(
    T1: ArrayLike,
    T2: ArrayLike,
    TR: float,
    TE: float,
    flip: ArrayLike,
    T2star: ArrayLike | None = None,
    df: ArrayLike = 0.0,
    M0: ArrayLike = 1.0,
    n_TR: int | None = None,
    spoiling: str = "ideal",
    rf_increment: float = 117.0,
    n_isochromats: int = 200,
    distribution: str = "lorentzian",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Any:
    """Spoiled gradient echo by Bloch simulation: α every TR, echo magnitude at TE of each TR.

    Returns shape ``(n_TR, ...)``; ``[-1]`` is the steady state, to compare with
    :func:`cmrlab.physics.signals.spoiled_gre_signal`. Spoiling, before each pulse:

    * ``"ideal"``: the transverse magnetisation is set to zero at the end of each TR (what the
      closed form assumes).
    * ``"rf"``: what scanners do (Zur et al. 1991): a spoiler gradient winds 2π of phase across
      ``n_isochromats`` isochromats each TR, and the RF phase advances quadratically,
      φ_j = φ_{j−1} + j·``rf_increment`` (117° is the usual choice). The steady state is then
      close to, not exactly, the ideal one.

    ``T2star`` adds a Lorentzian off-resonance spread (the echo decays as e^{−TE/T2*}).
    ``n_TR=None`` runs until the longitudinal transient (factor E1·cos α per TR) is below 10⁻⁶.
    """
    spoiling = check_choice("spoiling", spoiling, ("ideal", "rf"))
    n_isochromats = check_int("n_isochromats", n_isochromats, 2)
    (t1, t2, fa, df_, m0, t2s, tr, te), numpy_out = as_tensors(
        T1, T2, flip, df, M0, T2star, TR, TE,
        names=("T1", "T2", "flip", "df", "M0", "T2star", "TR", "TE"), device=device, dtype=dtype,
    )
    _check_relaxation(t1, t2)
    check_positive(tr, "TR")
    check_nonnegative(te, "TE")
    check_finite(fa, "flip")
    check_finite(df_, "df")
    check_finite(m0, "M0")
    if tr.ndim or te.ndim:
        raise ArgumentError("TR and TE must be single numbers")
    if te > tr:
        raise ArgumentError("TE must not exceed TR")
    p, f, shape, iso_dims = _spins({"T1": t1, "T2": t2, "flip": fa, "df": df_, "M0": m0}, t2s, n_isochromats,
                                   distribution)
    if spoiling == "rf":  # one more trailing axis: the spoiler gradient's phase 0 … 2π
        k = torch.arange(n_isochromats, dtype=t1.dtype, device=t1.device)
        spoil_phase = 2 * math.pi * k / n_isochromats
        f = f[..., None]
        p = {key: v[..., None] for key, v in p.items()}
        shape = shape + (n_isochromats,)
        iso_dims = tuple(d - 1 for d in iso_dims) + (-1,)
        cs, ss = torch.cos(spoil_phase), torch.sin(spoil_phase)
    if n_TR is None:
        rate = -torch.log((torch.exp(-tr / t1) * torch.cos(torch.deg2rad(fa))).abs().clamp_min(1e-300))
        n_TR = _n_tr_for(rate, 1e-6, 2, 20000) + (300 if spoiling == "rf" else 0)
    n_TR = check_int("n_TR", n_TR)
    alpha = torch.deg2rad(p["flip"])
    c_te = _coef(te, p["T1"], p["T2"], f, p["M0"])
    c_rest = _coef(tr - te, p["T1"], p["T2"], f, p["M0"])
    zero = torch.zeros(shape, dtype=t1.dtype, device=t1.device)
    m: Components = (zero, zero, zero + p["M0"])
    echoes = []
    rf_phase = 0.0
    for j in range(n_TR):
        if spoiling == "rf":
            rf_phase = (rf_phase + j * rf_increment) % 360.0
        phi = torch.tensor(math.radians(rf_phase), dtype=t1.dtype, device=t1.device)
        m = _precess(_rf(m, alpha, phi), c_te)
        mx, my = m[0], m[1]
        if iso_dims:
            mx, my = mx.mean(dim=iso_dims), my.mean(dim=iso_dims)
        echoes.append(torch.sqrt(mx * mx + my * my))
        m = _precess(m, c_rest)
        if spoiling == "ideal":
            m = (torch.zeros_like(m[0]), torch.zeros_like(m[1]), m[2])
        else:  # spoiler gradient: rotate isochromat k by 2πk/n about z
            mx, my, mz = m
            m = (mx * cs + my * ss, my * cs - mx * ss, mz)
    return as_output(torch.stack(echoes), numpy_out)


def inversion_recovery(
    T1: ArrayLike,
    T2: ArrayLike,
    TI: ArrayLike,
    TR: ArrayLike,
    TE: ArrayLike,
    M0: ArrayLike = 1.0,
    n_TR: int = 3,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Any:
    """Inversion-recovery spin echo by Bloch simulation, from equilibrium, ``n_TR`` times.

    Each TR: 180° inversion, wait TI, 90° (phase 0), 180° refocusing (phase 90°) at TI + TE/2,
    echo at TI + TE, then Mz recovers until the next inversion and any transverse magnetisation
    left is spoiled. Returns the **signed** echo (its component along +y, the excitation
    direction) for each TR, shape ``(n_TR, ...)``: negative when Mz was still negative at the 90°.
    The 90° pulse resets Mz to 0 every TR, so the second TR is already the steady state of
    :func:`cmrlab.physics.signals.inversion_recovery_signal`; the first, from full
    magnetisation, follows the TR = ∞ form.
    """
    n_TR = check_int("n_TR", n_TR)
    (t1, t2, ti, tr, te, m0), numpy_out = as_tensors(
        T1, T2, TI, TR, TE, M0, names=("T1", "T2", "TI", "TR", "TE", "M0"), device=device, dtype=dtype
    )
    _check_relaxation(t1, t2)
    check_nonnegative(ti, "TI")
    check_nonnegative(te, "TE")
    check_positive(tr, "TR")
    check_finite(m0, "M0")
    if (tr < ti + te).any():
        raise ArgumentError("TR must be at least TI + TE")
    shape = torch.broadcast_shapes(t1.shape, t2.shape, ti.shape, tr.shape, te.shape, m0.shape)
    t1, t2, ti, tr, te, m0 = (torch.broadcast_to(v, shape) for v in (t1, t2, ti, tr, te, m0))
    zero = torch.zeros_like(t1)

    def wait(d):
        return _coef(d, t1, t2, zero, m0)

    c_ti, c_half, c_rest = wait(ti), wait(te / 2), wait(tr - ti - te)
    pi, half_pi = torch.full_like(zero, math.pi), torch.full_like(zero, math.pi / 2)
    m: Components = (zero, zero, m0)
    echoes = []
    for _ in range(n_TR):
        m = _precess(_rf(m, pi, zero), c_ti)
        m = _precess(_rf(m, half_pi, zero), c_half)
        m = _precess(_rf(m, pi, half_pi), c_half)
        echoes.append(m[1])
        m = _precess(m, c_rest)
        m = (zero, zero, m[2])
    return as_output(torch.stack(echoes), numpy_out)


def bssfp_steady_state(
    T1: ArrayLike,
    T2: ArrayLike,
    *,
    TR: float,
    TE: float | None = None,
    flip: ArrayLike,
    df: ArrayLike = 0.0,
    M0: ArrayLike = 1.0,
    n_TR: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Any:
    """Balanced SSFP by Bloch simulation: pulses +α, −α, +α … every TR from equilibrium, no
    spoiling, echo magnitude |Mxy| at ``TE`` (default TR/2) of each TR.

    Returns shape ``(n_TR, ...)``: the approach to steady state (with its oscillations), ``[-1]``
    the steady state, to compare with :func:`cmrlab.physics.signals.bssfp_signal`, which takes the
    sequence parameters by the same names (``TR``, ``TE``, ``flip``, ``df``). Each TR is the
    exact affine map M ← A·R·M + B built from :func:`rf_rotation_matrix` and
    :func:`precession_matrices`. ``n_TR=None`` picks enough TRs for the on-resonance transient,
    which shrinks per TR by about exp(−TR·(cos²(α/2)/T1 + sin²(α/2)/T2)), to fall below 10⁻⁵.
    """
    (t1, t2, fa, df_, m0, tr, te), numpy_out = as_tensors(
        T1, T2, flip, df, M0, TR, TE, names=("T1", "T2", "flip", "df", "M0", "TR", "TE"),
        device=device, dtype=dtype,
    )
    _check_relaxation(t1, t2)
    check_positive(tr, "TR")
    check_finite(fa, "flip")
    check_finite(df_, "df")
    check_finite(m0, "M0")
    if tr.ndim:
        raise ArgumentError("TR must be a single number")
    te = tr / 2 if te is None else te
    check_nonnegative(te, "TE")
    if te.ndim or te > tr:
        raise ArgumentError("TE must be a single number no larger than TR")
    if n_TR is None:
        half = torch.deg2rad(fa) / 2
        rate = tr * (torch.cos(half) ** 2 / t1 + torch.sin(half) ** 2 / t2)
        n_TR = _n_tr_for(rate, 1e-5, 50, 50000)
    n_TR = check_int("n_TR", n_TR)
    shape = torch.broadcast_shapes(t1.shape, t2.shape, fa.shape, df_.shape, m0.shape)
    t1, t2, fa, df_, m0 = (torch.broadcast_to(v, shape) for v in (t1, t2, fa, df_, m0))
    zero = torch.zeros_like(t1)
    a = torch.deg2rad(fa)
    R = [_rf_matrix(a, zero), _rf_matrix(a, torch.full_like(zero, math.pi))]
    A1, B1 = _affine(te, t1, t2, df_, m0)
    A2, B2 = _affine(tr - te, t1, t2, df_, m0)
    AR = [A1 @ r for r in R]  # pulse then precession to TE
    M = torch.stack([zero, zero, m0], dim=-1)
    echoes = []
    for j in range(n_TR):
        M = (AR[j % 2] @ M[..., None])[..., 0] + B1
        echoes.append(torch.sqrt(M[..., 0] ** 2 + M[..., 1] ** 2))
        M = (A2 @ M[..., None])[..., 0] + B2
    return as_output(torch.stack(echoes), numpy_out)


def _rf_matrix(alpha: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    one, zero = torch.ones_like(alpha), torch.zeros_like(alpha)
    cols = [_rf((one, zero, zero), alpha, phi), _rf((zero, one, zero), alpha, phi), _rf((zero, zero, one), alpha, phi)]
    return torch.stack([_join(c) for c in cols], dim=-1)


def _affine(dt, t1, t2, df, m0) -> tuple[torch.Tensor, torch.Tensor]:
    c, s, e2, e1, rec = torch.broadcast_tensors(*_precession_coefficients(dt, t1, t2, df, m0))
    zero = torch.zeros_like(c)
    A = torch.stack(
        [torch.stack([e2 * c, e2 * s, zero], -1), torch.stack([-e2 * s, e2 * c, zero], -1),
         torch.stack([zero, zero, e1], -1)], -2)
    return A, torch.stack([zero, zero, rec], -1)


# --------------------------------------------------------------------------------------------
# Slice selection with a shaped pulse
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RFPulse:
    """A shaped RF pulse sampled in time.

    ``t`` (ms) are the sample centres, with the pulse centred on t = 0; ``b1`` (µT) the signed
    amplitude of each sample, applied along the transverse axis at ``phase`` degrees.
    ``time_bandwidth`` is the product of duration and bandwidth (a sinc with n zero crossings on
    each side has time_bandwidth = 2n).
    """

    t: Any
    b1: Any
    duration: float
    time_bandwidth: float
    flip: float
    phase: float = 0.0

    @property
    def dt(self) -> float:
        """Sample spacing (ms)."""
        return self.duration / len(self.t)

    @property
    def bandwidth(self) -> float:
        """Excited frequency band (Hz): time_bandwidth / duration."""
        return self.time_bandwidth / (self.duration / 1000.0)


def sinc_pulse(
    flip: float = 90.0,
    duration: float = 2.0,
    time_bandwidth: float = 4.0,
    n_samples: int = 256,
    window: str | None = "hamming",
    phase: float = 0.0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> RFPulse:
    """A windowed sinc pulse for slice selection.

    Envelope sinc(TBW·t/T)·w(t), −T/2 ≤ t ≤ T/2 (sinc(x) = sin πx/(πx)), with the Hamming window
    w = 0.54 + 0.46·cos(2πt/T) (or ``"hann"``, or ``None``). Its spectrum is close to a rectangle
    of width bandwidth = TBW/T, so under a gradient G it excites a slice of thickness
    bandwidth/(γ̄·G) (:func:`slice_thickness`). Scaled so that Σ γ·B1·dt = flip.
    Samples are returned as NumPy unless ``device`` or ``dtype`` asks for torch.
    """
    n_samples = check_int("n_samples", n_samples, 2)
    duration = check_number("duration", duration, 0.0, low_open=True)
    time_bandwidth = check_number("time_bandwidth", time_bandwidth, 0.0, low_open=True)
    flip, phase = check_number("flip", flip), check_number("phase", phase)
    numpy_out = device is None and dtype is None
    dt_ms = duration / n_samples
    t = (torch.arange(n_samples, dtype=dtype or torch.float64, device=device) + 0.5) * dt_ms - duration / 2
    env = torch.sinc(time_bandwidth * t / duration)
    if window == "hamming":
        env = env * (0.54 + 0.46 * torch.cos(2 * math.pi * t / duration))
    elif window == "hann":
        env = env * (0.5 + 0.5 * torch.cos(2 * math.pi * t / duration))
    elif window is not None:
        raise ArgumentError(f"window must be 'hamming', 'hann' or None, got {window!r}")
    area = env.sum() * dt_ms * 1e-3  # s
    b1_tesla = math.radians(flip) * env / (GAMMA * area)
    return RFPulse(as_output(t, numpy_out), as_output(b1_tesla * 1e6, numpy_out), float(duration),
                   float(time_bandwidth), float(flip), float(phase))


def slice_thickness(bandwidth: ArrayLike, gradient: ArrayLike) -> Any:
    """Slice thickness (mm) excited by a pulse of ``bandwidth`` Hz under ``gradient`` mT/m:
    Δz = BW / (γ̄·G). A steeper gradient gives a thinner slice."""
    (bw, g), numpy_out = as_tensors(bandwidth, gradient, names=("bandwidth", "gradient"))
    check_positive(bw, "bandwidth")
    check_positive(g, "gradient")
    return as_output(bw / (GAMMA_BAR * 1e-6 * g), numpy_out)


def simulate_pulse(
    pulse: RFPulse,
    position: ArrayLike,
    gradient: ArrayLike,
    df: ArrayLike = 0.0,
    T1: ArrayLike = math.inf,
    T2: ArrayLike = math.inf,
    M0: ArrayLike = 1.0,
    M_init: ArrayLike | None = None,
    rephase: bool = True,
) -> Any:
    """Play a shaped pulse under a slice-select gradient; return M (..., 3) at each position.

    ``position`` (mm) are coordinates along the gradient axis; ``gradient`` in mT/m. Each pulse
    sample is an exact rotation about the effective field (B1, gradient and ``df`` together),
    followed by relaxation if T1/T2 are finite. With ``rephase=True`` a gradient lobe of opposite
    sign and half the area follows, which undoes the phase twist across the slice. The slice
    profile is ``|Mxy|`` against position; its FWHM is close to :func:`slice_thickness`.
    """
    (z, g, df_, t1, t2, m0, minit, b1), numpy_out = as_tensors(
        position, gradient, df, T1, T2, M0, M_init, pulse.b1,
        names=("position", "gradient", "df", "T1", "T2", "M0", "M_init", "pulse.b1"),
    )
    check_finite(z, "position")
    check_finite(g, "gradient")
    check_finite(df_, "df")
    check_finite(b1, "pulse.b1")
    _check_relaxation(t1, t2)
    if g.ndim:
        raise ArgumentError("gradient must be a single number (mT/m along the slice axis)")
    dt = pulse.dt
    f = df_ + GAMMA_BAR * 1e-6 * g * z  # Hz at each position
    shape = torch.broadcast_shapes(f.shape, t1.shape, t2.shape, m0.shape,
                                   () if minit is None else minit.shape[:-1])
    f, t1, t2, m0 = (torch.broadcast_to(v, shape) for v in (f, t1, t2, m0))
    if minit is None:
        zero = torch.zeros_like(m0)
        m: Components = (zero, zero, m0)
    else:
        check_finite(minit, "M_init")
        m = tuple(torch.broadcast_to(c, shape) for c in _split(minit))  # type: ignore[assignment]
    wz = 2 * math.pi * f * dt * 1e-3  # rad per sample from off-resonance
    relax = bool(torch.isfinite(t1).any() or torch.isfinite(t2).any())
    if relax:
        dt_t = torch.tensor(dt, dtype=f.dtype, device=f.device)
        coef = _coef(dt_t, t1, t2, torch.zeros_like(f), m0)
    ph = math.radians(pulse.phase)
    a = GAMMA * b1 * 1e-6 * dt * 1e-3  # rad per sample from B1
    for k in range(a.shape[0]):
        m = _rotate_axis(m, (a[k] * math.cos(ph), a[k] * math.sin(ph), wz))
        if relax:
            m = _precess(m, coef)
    if rephase:
        half = torch.tensor(pulse.duration / 2, dtype=f.dtype, device=f.device)
        coef = _coef(half, t1, t2, df_ - GAMMA_BAR * 1e-6 * g * z, m0)
        m = _precess(m, coef)
    return as_output(_join(m), numpy_out)


def profile_fwhm(position: ArrayLike, profile: ArrayLike) -> float:
    """Full width at half maximum of a single-peaked profile (same units as ``position``).

    The half-maximum crossings on either side of the peak are found by linear interpolation
    between samples. ``position`` must be increasing.
    """
    (x, y), _ = as_tensors(position, profile, names=("position", "profile"))
    if x.ndim != 1 or x.shape != y.shape or x.numel() < 3:
        raise ArgumentError("position and profile must be 1-D arrays of the same length (>= 3)")
    if not (x[1:] > x[:-1]).all():
        raise ArgumentError("position must be increasing")
    x, y = x.detach().cpu().double(), y.detach().cpu().double()
    i = int(torch.argmax(y))
    half = float(y[i]) / 2
    left = i
    while left > 0 and y[left - 1] >= half:
        left -= 1
    right = i
    while right < len(y) - 1 and y[right + 1] >= half:
        right += 1
    if left == 0 or right == len(y) - 1:
        raise ArgumentError("the profile does not fall below half its maximum on both sides")

    def cross(a: int, b: int) -> float:  # interpolate between sample a (below) and b (above)
        return float(x[a] + (half - y[a]) * (x[b] - x[a]) / (y[b] - y[a]))

    return cross(right + 1, right) - cross(left - 1, left)
