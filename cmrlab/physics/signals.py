"""Closed-form MRI signal equations: relaxation, spin echo, spoiled gradient echo, inversion
recovery / FLAIR, balanced SSFP.

Every function states its formula. Units (see :mod:`cmrlab.physics.constants`): times in ms,
flip angles in degrees, off-resonance in Hz; ``PD`` is the relative proton density (water = 1),
so the signals are fractions of the equilibrium magnetisation of water. Inputs broadcast against
each other and follow the package rule: torch in → torch out (differentiable), else NumPy out.

Each equation is checked in the tests against the Bloch simulation of :mod:`cmrlab.physics.bloch`.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import ArrayLike, as_output, as_tensors
from cmrlab.physics.constants import check_finite, check_nonnegative, check_positive

__all__ = [
    "bssfp_signal",
    "ernst_angle",
    "flair_signal",
    "inversion_recovery_signal",
    "ir_null_time",
    "longitudinal_recovery",
    "spin_echo_signal",
    "spoiled_gre_signal",
    "transverse_decay",
]


def _check_times(T1: torch.Tensor | None = None, T2: torch.Tensor | None = None, **others) -> None:
    """Common validation: relaxation times > 0 (∞ allowed: no relaxation), sequence times ≥ 0."""
    if T1 is not None:
        check_positive(T1, "T1", allow_inf=True)
    if T2 is not None:
        check_positive(T2, "T2", allow_inf=True)
    for name, t in others.items():
        if t is not None:
            check_nonnegative(t, name)


# --------------------------------------------------------------------------------------------
# Relaxation
# --------------------------------------------------------------------------------------------
def longitudinal_recovery(t: ArrayLike, T1: ArrayLike, M0: ArrayLike = 1.0, Mz0: ArrayLike = 0.0) -> Any:
    """Longitudinal magnetisation recovering towards M0: Mz(t) = M0 − (M0 − Mz0)·e^{−t/T1}.

    After a 90° pulse (Mz0 = 0), Mz(T1) = (1 − e^{−1})·M0 ≈ 63.2 % of M0; after an inversion
    (Mz0 = −M0) Mz crosses zero at t = T1·ln 2.
    """
    (t_, t1, m0, mz0), numpy_out = as_tensors(t, T1, M0, Mz0, names=("t", "T1", "M0", "Mz0"))
    _check_times(T1=t1, t=t_)
    check_finite(m0, "M0")
    check_finite(mz0, "Mz0")
    return as_output(m0 - (m0 - mz0) * torch.exp(-t_ / t1), numpy_out)


def transverse_decay(t: ArrayLike, T2: ArrayLike, Mxy0: ArrayLike = 1.0) -> Any:
    """Transverse magnetisation decaying: Mxy(t) = Mxy0·e^{−t/T2}.

    At t = T2 the transverse magnetisation has decayed *to* e^{−1} ≈ 36.8 % of its initial value
    (it has lost 63.2 %): the correct definition of T2. Use T2* in place of T2 for the free
    induction decay in an inhomogeneous field.
    """
    (t_, t2, m), numpy_out = as_tensors(t, T2, Mxy0, names=("t", "T2", "Mxy0"))
    _check_times(T2=t2, t=t_)
    check_finite(m, "Mxy0")
    return as_output(m * torch.exp(-t_ / t2), numpy_out)


# --------------------------------------------------------------------------------------------
# Spin echo
# --------------------------------------------------------------------------------------------
def spin_echo_signal(
    PD: ArrayLike, T1: ArrayLike, T2: ArrayLike, TR: ArrayLike, TE: ArrayLike, exact: bool = False
) -> Any:
    """Spin-echo signal (90°–TE/2–180°–TE/2–echo, repeated every TR), in steady state.

    ``exact=False`` (the textbook form, valid for TE ≪ TR)::

        S = PD · (1 − e^{−TR/T1}) · e^{−TE/T2}

    ``exact=True`` also accounts for the 180° pulse inverting the Mz that regrew during TE/2::

        S = PD · (1 − 2·e^{−(TR − TE/2)/T1} + e^{−TR/T1}) · e^{−TE/T2}

    Both assume the transverse magnetisation has decayed (or been spoiled) before the next 90°.
    ``TR`` may be ``inf`` (full recovery).
    """
    (pd, t1, t2, tr, te), numpy_out = as_tensors(PD, T1, T2, TR, TE, names=("PD", "T1", "T2", "TR", "TE"))
    check_nonnegative(pd, "PD")
    _check_times(T1=t1, T2=t2, TE=te)
    check_positive(tr, "TR", allow_inf=True)
    if (te > tr).any():
        raise ArgumentError("TE must not exceed TR")
    if exact:
        long = 1 - 2 * torch.exp(-(tr - te / 2) / t1) + torch.exp(-tr / t1)
    else:
        long = 1 - torch.exp(-tr / t1)
    return as_output(pd * long * torch.exp(-te / t2), numpy_out)


# --------------------------------------------------------------------------------------------
# Spoiled gradient echo
# --------------------------------------------------------------------------------------------
def spoiled_gre_signal(
    PD: ArrayLike, T1: ArrayLike, T2star: ArrayLike, TR: ArrayLike, TE: ArrayLike, flip: ArrayLike
) -> Any:
    """Spoiled gradient-echo (FLASH / SPGR) steady-state signal::

        S = PD · sin α · (1 − E1) / (1 − cos α · E1) · e^{−TE/T2*},   E1 = e^{−TR/T1}

    Spoiling removes all transverse magnetisation before each pulse, so only Mz carries over
    from one TR to the next. The signal is largest at the Ernst angle (:func:`ernst_angle`).
    """
    (pd, t1, t2s, tr, te, fa), numpy_out = as_tensors(
        PD, T1, T2star, TR, TE, flip, names=("PD", "T1", "T2star", "TR", "TE", "flip")
    )
    check_nonnegative(pd, "PD")
    _check_times(T1=t1, TE=te)
    check_positive(t2s, "T2star", allow_inf=True)
    check_positive(tr, "TR")
    check_finite(fa, "flip")
    if (te > tr).any():
        raise ArgumentError("TE must not exceed TR")
    a = torch.deg2rad(fa)
    e1 = torch.exp(-tr / t1)
    s = pd * torch.sin(a) * (1 - e1) / (1 - torch.cos(a) * e1) * torch.exp(-te / t2s)
    return as_output(s, numpy_out)


def ernst_angle(TR: ArrayLike, T1: ArrayLike) -> Any:
    """Flip angle (degrees) that maximises the spoiled-GRE signal: α_E = arccos(e^{−TR/T1}).

    Found by setting dS/dα = 0 in :func:`spoiled_gre_signal`.
    """
    (tr, t1), numpy_out = as_tensors(TR, T1, names=("TR", "T1"))
    check_positive(tr, "TR")
    check_positive(t1, "T1", allow_inf=True)
    return as_output(torch.rad2deg(torch.arccos(torch.exp(-tr / t1))), numpy_out)


# --------------------------------------------------------------------------------------------
# Inversion recovery and FLAIR
# --------------------------------------------------------------------------------------------
def inversion_recovery_signal(
    PD: ArrayLike,
    T1: ArrayLike,
    T2: ArrayLike,
    TI: ArrayLike,
    TR: ArrayLike = math.inf,
    TE: ArrayLike = 0.0,
    magnitude: bool = False,
) -> Any:
    """Inversion-recovery spin-echo signal (180°–TI–90°–TE/2–180°–TE/2–echo, every TR).

    General steady-state form (transverse magnetisation gone before each inversion)::

        S = PD · (1 − 2·e^{−TI/T1} + 2·e^{−(TR − TE/2)/T1} − e^{−TR/T1}) · e^{−TE/T2}

    Derivation: let Mz⁻ be Mz just before the inversion. After the inversion and TI of recovery,
    Mz(TI) = M0 − (M0 + Mz⁻)·e^{−TI/T1}; the 90° pulse turns it into the (signed) transverse
    signal. Mz then regrows from 0 for TE/2, is inverted by the refocusing 180°, and regrows for
    TR − TI − TE/2, which gives Mz⁻ = M0·(1 − 2·e^{−(TR−TI−TE/2)/T1} + e^{−(TR−TI)/T1}).
    Substituting gives the formula. For TR → ∞ it becomes PD·(1 − 2·e^{−TI/T1})·e^{−TE/T2}.

    The signal is signed (phase-sensitive reconstruction); ``magnitude=True`` returns |S|, what a
    magnitude image shows. ``TR`` must be at least TI + TE.
    """
    (pd, t1, t2, ti, tr, te), numpy_out = as_tensors(
        PD, T1, T2, TI, TR, TE, names=("PD", "T1", "T2", "TI", "TR", "TE")
    )
    check_nonnegative(pd, "PD")
    _check_times(T1=t1, T2=t2, TI=ti, TE=te)
    check_positive(tr, "TR", allow_inf=True)
    if (tr < ti + te).any():
        raise ArgumentError("TR must be at least TI + TE")
    long = 1 - 2 * torch.exp(-ti / t1) + 2 * torch.exp(-(tr - te / 2) / t1) - torch.exp(-tr / t1)
    s = pd * long * torch.exp(-te / t2)
    return as_output(s.abs() if magnitude else s, numpy_out)


def ir_null_time(T1: ArrayLike, TR: ArrayLike | None = None, TE: ArrayLike = 0.0) -> Any:
    """Inversion time (ms) at which a tissue of the given T1 gives no signal.

    Setting the bracket of :func:`inversion_recovery_signal` to zero::

        TI_null = T1 · ln(2 / (1 + 2·e^{−(TR − TE/2)/T1} − e^{−TR/T1}))

    which for TE ≪ TR is ``T1·ln(2 / (1 + e^{−TR/T1}))`` and for TR ≫ T1 (``TR=None``) the
    familiar ``T1·ln 2``. With T1 ≈ 4 s for CSF and TR = 8 s the full form gives TI ≈ 2.3 s (the
    FLAIR range 2000–2500 ms) where T1·ln 2 would say 2.8 s: at a finite TR the fluid has not fully
    recovered before the inversion, so it crosses zero earlier.
    """
    (t1, tr, te), numpy_out = as_tensors(
        T1, math.inf if TR is None else TR, TE, names=("T1", "TR", "TE")
    )
    check_positive(t1, "T1")
    check_positive(tr, "TR", allow_inf=True)
    check_nonnegative(te, "TE")
    x = (1 + 2 * torch.exp(-(tr - te / 2) / t1) - torch.exp(-tr / t1)) / 2  # = e^{-TI/T1}
    if (x >= 1).any():
        raise ArgumentError("TR is too short compared with TE for the signal to cross zero")
    ti = -t1 * torch.log(x)
    if (tr < ti + te).any():
        raise ArgumentError("TR is too short: the null would fall after TR - TE")
    return as_output(ti, numpy_out)


def flair_signal(
    PD: ArrayLike,
    T1: ArrayLike,
    T2: ArrayLike,
    TI: ArrayLike | None = None,
    TR: ArrayLike = 8000.0,
    TE: ArrayLike = 140.0,
    T1_null: ArrayLike | None = None,
) -> Any:
    """FLAIR (fluid-attenuated inversion recovery) magnitude signal.

    ``|S|`` of :func:`inversion_recovery_signal`, with a long TI chosen to null the fluid.
    Defaults are the brain thesis's protocol (TR 8000 ms, TE 140 ms). Give either ``TI`` or
    ``T1_null``, the T1 of the fluid to suppress (e.g. CSF); then
    ``TI = ir_null_time(T1_null, TR, TE)``.
    """
    if (TI is None) == (T1_null is None):
        raise ArgumentError("give exactly one of TI and T1_null")
    if TI is None:
        TI = ir_null_time(T1_null, TR, TE)
    return inversion_recovery_signal(PD, T1, T2, TI, TR, TE, magnitude=True)


# --------------------------------------------------------------------------------------------
# Balanced SSFP
# --------------------------------------------------------------------------------------------
def bssfp_signal(
    PD: ArrayLike,
    T1: ArrayLike,
    T2: ArrayLike,
    *,
    TR: ArrayLike,
    TE: ArrayLike | None = None,
    flip: ArrayLike,
    df: ArrayLike = 0.0,
) -> Any:
    """Balanced SSFP (TrueFISP / balanced FFE / FIESTA) steady-state signal magnitude.

    The tissue (``PD``, ``T1``, ``T2``) comes first; the sequence parameters are named, in the
    order of the other sequences (TR, TE, flip): ``bssfp_signal(PD, T1, T2, TR=3.0, flip=60.0)``.
    :func:`cmrlab.physics.bloch.bssfp_steady_state` takes them the same way.

    Pulses alternate +α, −α (the usual phase cycling), all gradients are balanced, and the echo
    is read at ``TE`` (default TR/2). On resonance with TE = TR/2::

        S = PD · sin α · (1 − E1) · √E2 / (1 − (E1 − E2)·cos α − E1·E2),
        E1 = e^{−TR/T1}, E2 = e^{−TR/T2}

    For TR ≪ T1, T2 this tends to PD·sin α / (1 + cos α + (1 − cos α)·T1/T2): the contrast
    depends on T2/T1, which makes blood bright in cine imaging.

    General form (Freeman–Hill 1971), with θ = 2π·df·TR + π the precession angle per TR (the π
    comes from the alternating pulses), just after a pulse::

        D   = (1 − E1·cos α)(1 − E2·cos θ) − E2·(E1 − cos α)(E2 − cos θ)
        Mxy = PD · (1 − E1) · sin α · √((1 − E2·cos θ)² + (E2·sin θ)²) / D

    and S = Mxy · e^{−TE/T2}. The signal has its characteristic bands: it dips to near zero
    every 1/TR Hz, at df = ±1/(2TR).
    """
    (pd, t1, t2, tr, fa, te, df_), numpy_out = as_tensors(
        PD, T1, T2, TR, flip, TE, df, names=("PD", "T1", "T2", "TR", "flip", "TE", "df")
    )
    check_nonnegative(pd, "PD")
    _check_times(T1=t1, T2=t2)
    check_positive(tr, "TR")
    check_finite(fa, "flip")
    check_finite(df_, "df")
    if te is None:
        te = tr / 2
    check_nonnegative(te, "TE")
    if (te > tr).any():
        raise ArgumentError("TE must not exceed TR")
    a = torch.deg2rad(fa)
    e1 = torch.exp(-tr / t1)
    e2 = torch.exp(-tr / t2)
    theta = 2 * math.pi * df_ * tr / 1000.0 + math.pi
    ca, ct = torch.cos(a), torch.cos(theta)
    d = (1 - e1 * ca) * (1 - e2 * ct) - e2 * (e1 - ca) * (e2 - ct)
    amp = torch.sqrt((1 - e2 * ct) ** 2 + (e2 * torch.sin(theta)) ** 2)
    mxy = pd * (1 - e1) * torch.sin(a).abs() * amp / d
    return as_output(mxy * torch.exp(-te / t2), numpy_out)
