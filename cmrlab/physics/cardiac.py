"""Cardiac function: the biomarkers of a cine MRI study, their normal ranges, a model LV volume curve.

The formulas are those of the cardiac thesis (BibTeX key ``cardiacthesis``), chapter 2.2
(its lines L1377-1499), each with its equation number:

=========================  ==========================================  ==========
biomarker                  formula                                     thesis
=========================  ==========================================  ==========
stroke volume              SV = EDV − ESV  (ml)                        Eq 2.1
cardiac output             CO = SV × HR  (ml/min)                      Eq 2.2
ejection fraction          EF = 100 · SV / EDV  (%)                    Eq 2.3
body surface area          BSA = √(height[cm] · weight[kg] / 3600)     Eq 2.4
volume index               VI = volume / BSA  (ml/m²)                  Eq 2.5
wall thickening            WTh = WTh_ES − WTh_ED  (mm)                 Eq 2.6
myocardial (LV) mass       mass = myocardial volume × 1.055 g/ml       L1475-1481
=========================  ==========================================  ==========

:data:`NORMAL_RANGES` holds the normal values the thesis quotes, with their line numbers.

Two helpers turn images into these numbers and model a heartbeat: :func:`stack_volume` (the
method of disks: volume = slice spacing × Σ areas) and :func:`lv_volume` /
:func:`lv_volume_curve`, a smooth LV volume–time curve over one R–R interval used by the
phantoms. :func:`segmented_cine_timing` does the bookkeeping of an ECG-gated segmented cine.

The biomarker functions follow the array rule of :mod:`cmrlab.physics.constants`: numbers or
NumPy arrays in → NumPy out (a NumPy scalar for scalar input), torch tensors in → torch out on
the same device (differentiable, e.g. an EF computed from predicted volumes). Bad input (negative
volumes, ESV > EDV, a height given in metres …) raises :class:`~cmrlab.errors.ArgumentError`
naming the argument.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import ArrayLike, as_output, as_tensors
from cmrlab.physics.constants import check_finite, check_nonnegative, check_positive

__all__ = [
    "MYOCARDIAL_DENSITY",
    "NORMAL_RANGES",
    "CineTiming",
    "NormalRange",
    "VolumeCurve",
    "body_surface_area",
    "cardiac_output",
    "ejection_fraction",
    "lv_volume",
    "lv_volume_curve",
    "myocardial_mass",
    "segmented_cine_timing",
    "stack_volume",
    "stroke_volume",
    "volume_index",
    "wall_thickening",
]

#: Density of myocardium assumed in clinical analysis, g/ml (thesis L1475-1481, its refs [18-20]).
MYOCARDIAL_DENSITY: float = 1.055


# --------------------------------------------------------------------------------------------
# Normal ranges quoted by the thesis
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NormalRange:
    """A normal range (or a typical value) of one biomarker, as the cardiac thesis quotes it.

    ``women`` and ``men`` are ``(low, high)`` bounds (``math.inf`` for an open upper end), or
    ``None`` where the thesis gives no range; ``typical`` is a single quoted value (or ``None``).
    ``lines`` are the thesis's line numbers; ``source`` names the thesis's own
    reference (its bibliography is not part of the text, so the numbers stay as quoted).
    """

    name: str
    description: str
    unit: str
    women: tuple[float, float] | None
    men: tuple[float, float] | None
    typical: float | None
    lines: str
    source: str

    def bounds(self, sex: str) -> tuple[float, float]:
        """The ``(low, high)`` bounds for ``sex`` (``"women"``/``"female"``/``"F"`` or
        ``"men"``/``"male"``/``"M"``)."""
        key = str(sex).strip().lower()
        if key in ("w", "f", "female", "woman", "women"):
            rng = self.women
        elif key in ("m", "male", "man", "men"):
            rng = self.men
        else:
            raise ArgumentError(f"sex must be 'women' or 'men' (or 'F'/'M'), got {sex!r}")
        if rng is None:
            raise ArgumentError(f"the thesis quotes no normal range for {self.name}, only a typical value")
        return rng

    def classify(self, value: float, sex: str) -> str:
        """``"below"``, ``"within"`` or ``"above"`` the normal range for ``sex`` (bounds included)."""
        value = check_number("value", value)
        low, high = self.bounds(sex)
        if value < low:
            return "below"
        if value > high:
            return "above"
        return "within"


def _ranges() -> dict[str, NormalRange]:
    rows = (
        NormalRange("ESV", "LV end-systolic volume", "ml", (22.0, 66.0), (26.0, 86.0), None,
                    "L1386-1392", "[13]"),
        NormalRange("EDV", "LV end-diastolic volume", "ml", (86.0, 178.0), (106.0, 214.0), None,
                    "L1394-1402", "[13]"),
        NormalRange("SV", "stroke volume at rest", "ml", None, None, 70.0, "L1410-1416", "[12]"),
        NormalRange("CO", "cardiac output of an average adult at 75 beats/min", "ml/min", None, None,
                    5250.0, "L1420-1426", "[12]"),
        NormalRange("EF", "LV ejection fraction", "%", (57.0, 77.0), (57.0, 77.0), 60.0,
                    "L1430-1440", "[13, 14]"),
        NormalRange("WTh", "regional wall thickening; a segment below 2 mm counts as affected", "mm",
                    (2.0, math.inf), (2.0, math.inf), None, "L1465-1471", "[17]"),
        NormalRange("LV mass", "LV (myocardial) mass", "g", (56.0, 140.0), (92.0, 176.0), None,
                    "L1484-1487", "[13]"),
        NormalRange("LV mass index", "LV mass divided by the body surface area", "g/m²", (41.0, 85.0),
                    (49.0, 85.0), None, "L1487-1489", "[13]"),
    )
    return {r.name: r for r in rows}


#: The normal values quoted by the cardiac thesis (chapter 2.2), by biomarker name: ``"ESV"``,
#: ``"EDV"``, ``"SV"``, ``"CO"``, ``"EF"``, ``"WTh"``, ``"LV mass"``, ``"LV mass index"``.
NORMAL_RANGES: Mapping[str, NormalRange] = MappingProxyType(_ranges())


# --------------------------------------------------------------------------------------------
# Biomarkers (Eqs 2.1-2.6 and the LV mass)
# --------------------------------------------------------------------------------------------
def _volumes(edv: ArrayLike, esv: ArrayLike) -> tuple[torch.Tensor, torch.Tensor, bool]:
    (v_ed, v_es), numpy_out = as_tensors(edv, esv, names=("edv", "esv"))
    check_nonnegative(v_ed, "edv")
    check_nonnegative(v_es, "esv")
    if (v_es > v_ed).any():
        raise ArgumentError("esv must not exceed edv (end-systole is the smallest volume of the cycle); "
                            "were the two swapped?")
    return v_ed, v_es, numpy_out


def stroke_volume(edv: ArrayLike, esv: ArrayLike) -> Any:
    """Stroke volume (ml), the blood ejected in one beat — thesis Eq 2.1: SV = EDV − ESV.

    ``edv`` and ``esv`` in ml, ≥ 0, with ESV ≤ EDV. A normal resting value is about 70 ml.
    """
    v_ed, v_es, numpy_out = _volumes(edv, esv)
    return as_output(v_ed - v_es, numpy_out)


def cardiac_output(stroke_volume: ArrayLike, heart_rate: ArrayLike) -> Any:
    """Cardiac output (ml/min), the blood pumped in one minute — thesis Eq 2.2: CO = SV × HR.

    ``stroke_volume`` in ml (≥ 0), ``heart_rate`` in beats per minute (> 0). The thesis's
    example: 70 ml at 75 beats/min gives 5250 ml/min (divide by 1000 for l/min).
    """
    (sv, hr), numpy_out = as_tensors(stroke_volume, heart_rate, names=("stroke_volume", "heart_rate"))
    check_nonnegative(sv, "stroke_volume")
    check_positive(hr, "heart_rate")
    return as_output(sv * hr, numpy_out)


def ejection_fraction(edv: ArrayLike, esv: ArrayLike) -> Any:
    """Ejection fraction (%), the share of the filled ventricle ejected in one beat.

    Thesis Eq 2.3 with Eq 2.1: EF = 100 · SV / EDV = 100 · (EDV − ESV) / EDV.
    ``edv`` > 0 and 0 ≤ ``esv`` ≤ ``edv``, in ml (any common unit: EF is a ratio).
    Normal: about 60 % (57–77 %).
    """
    v_ed, v_es, numpy_out = _volumes(edv, esv)
    if (v_ed <= 0).any():
        raise ArgumentError("edv must be positive to compute an ejection fraction")
    return as_output(100.0 * (v_ed - v_es) / v_ed, numpy_out)


def body_surface_area(height: ArrayLike, weight: ArrayLike) -> Any:
    """Body surface area (m²) by the Mosteller formula — thesis Eq 2.4:

        BSA = √(height · weight / 3600),  height in cm, weight in kg.

    Example: 175 cm and 70 kg give √(12250/3600) ≈ 1.84 m². A height below 3 is taken as a
    height in metres by mistake and rejected.
    """
    (h, w), numpy_out = as_tensors(height, weight, names=("height", "weight"))
    check_positive(h, "height")
    check_positive(w, "weight")
    if (h < 3).any():
        raise ArgumentError(f"height is in centimetres, got {h.min().item():g}: was it given in metres?")
    return as_output(torch.sqrt(h * w / 3600.0), numpy_out)


def volume_index(volume: ArrayLike, bsa: ArrayLike) -> Any:
    """Volume (or mass) indexed to body size — thesis Eq 2.5: VI = volume / BSA.

    ``volume`` in ml (≥ 0; EDV, ESV or SV) and ``bsa`` in m² (> 0) give ml/m²; a mass in g
    gives the mass index in g/m².
    """
    (v, b), numpy_out = as_tensors(volume, bsa, names=("volume", "bsa"))
    check_nonnegative(v, "volume")
    check_positive(b, "bsa")
    return as_output(v / b, numpy_out)


def wall_thickening(thickness_es: ArrayLike, thickness_ed: ArrayLike) -> Any:
    """Wall thickening (mm) between end-diastole and end-systole — thesis Eq 2.6:

        WTh = WTh_ES − WTh_ED

    with the wall thicknesses ``thickness_es`` and ``thickness_ed`` in mm (≥ 0). Note the
    order: end-systole first, as in the equation. A negative result means the wall thins in
    systole (dyskinesia). In a regional analysis a segment thickening by less than 2 mm counts as
    affected. (The relative thickening 100·WTh/WTh_ED, in %, is also common.)
    """
    (es, ed), numpy_out = as_tensors(thickness_es, thickness_ed, names=("thickness_es", "thickness_ed"))
    check_nonnegative(es, "thickness_es")
    check_nonnegative(ed, "thickness_ed")
    return as_output(es - ed, numpy_out)


def myocardial_mass(myocardial_volume: ArrayLike, density: ArrayLike = MYOCARDIAL_DENSITY) -> Any:
    """Ventricular (myocardial) mass in g: mass = myocardial volume × density.

    ``myocardial_volume`` in ml (≥ 0, measured at end-diastole, usually of the LV) and
    ``density`` in g/ml (> 0), 1.055 g/ml by clinical convention (thesis L1475-1481).
    """
    (v, rho), numpy_out = as_tensors(myocardial_volume, density, names=("myocardial_volume", "density"))
    check_nonnegative(v, "myocardial_volume")
    check_positive(rho, "density")
    return as_output(v * rho, numpy_out)


def stack_volume(areas: ArrayLike, slice_spacing: ArrayLike) -> Any:
    """Volume (ml) of a structure from its areas on a stack of parallel slices (method of disks).

    Each slice stands for a slab as thick as the distance between slice centres, Δz::

        V = Δz · Σ_i A_i / 1000      (A_i in mm², Δz in mm, 1 ml = 1000 mm³)

    ``areas`` has the slices on its **last** axis (e.g. ``(n_frames, n_slices)`` gives one
    volume per frame); ``slice_spacing`` is the centre-to-centre distance, i.e. slice thickness
    plus gap (7 mm + 3 mm = 10 mm in the thesis's data). Using the thickness alone where there
    is a gap underestimates the volume by the ratio thickness/spacing.
    """
    (a, dz), numpy_out = as_tensors(areas, slice_spacing, names=("areas", "slice_spacing"))
    if a.ndim == 0:
        raise ArgumentError("areas must have a slice axis (last axis), got a single number")
    if a.shape[-1] == 0:
        raise ArgumentError("areas must hold at least one slice")
    check_nonnegative(a, "areas")
    check_positive(dz, "slice_spacing")
    return as_output(dz * a.sum(-1) / 1000.0, numpy_out)


# --------------------------------------------------------------------------------------------
# A model LV volume-time curve over one R-R interval
# --------------------------------------------------------------------------------------------
def _smoothstep(u: torch.Tensor) -> torch.Tensor:
    """(1 − cos πu)/2 on [0, 1]: rises from 0 to 1 with zero slope at both ends."""
    return 0.5 * (1.0 - torch.cos(math.pi * u.clamp(0.0, 1.0)))


#: Where the three diastolic phases end, as fractions of diastole (rapid filling, diastasis).
_RAPID_END, _DIASTASIS_END = 0.35, 0.75


def lv_volume(
    phase: ArrayLike,
    edv: ArrayLike,
    esv: ArrayLike,
    es_phase: float = 0.35,
    rapid_filling: float = 0.7,
    atrial_kick: float = 0.2,
) -> Any:
    """LV volume at a point ``phase`` of the cardiac cycle (0 = R wave = end-diastole, 1 = next R).

    A smooth, periodic model of the volume–time curve (units of ``edv``, ``esv``; ml or mm² alike),
    with SV = EDV − ESV and φ the phase taken modulo 1:

    * **ejection**, 0 ≤ φ ≤ φ_ES: V = EDV − SV · s((φ/φ_ES)^0.75), with s(u) = (1 − cos πu)/2.
      The exponent front-loads the ejection (rapid, then reduced ejection: about 2/3 of SV leaves
      in the first half of systole).
    * **diastole**, with w = (φ − φ_ES)/(1 − φ_ES) ∈ [0, 1], in three smooth steps:
      rapid (early) filling returns ``rapid_filling``·SV over w ∈ [0, 0.35]; diastasis, a slow
      rise, returns the rest but the atrial share over w ∈ [0.35, 0.75]; the **atrial kick**
      returns the last ``atrial_kick``·SV over w ∈ [0.75, 1].

    Every step has zero slope at its ends, so the curve and its slope are continuous, it is
    flat at ED and ES (standing in for the short isovolumic phases), the maximum EDV is at φ = 0
    and the minimum ESV at φ = φ_ES. The phase durations are fixed fractions of diastole, a
    simplification: at high heart rates real diastasis shrinks first.

    ``phase`` may be an array; the other arguments are numbers (``edv`` ≥ ``esv`` ≥ 0,
    0 < ``es_phase`` < 1, ``rapid_filling``, ``atrial_kick`` ≥ 0 with a sum ≤ 1). Follows the
    package array rule (torch ``phase`` → torch out).
    """
    (ph, v_ed, v_es), numpy_out = as_tensors(phase, edv, esv, names=("phase", "edv", "esv"))
    check_finite(ph, "phase")
    check_nonnegative(v_ed, "edv")
    check_nonnegative(v_es, "esv")
    if (v_es > v_ed).any():
        raise ArgumentError("esv must not exceed edv; were the two swapped?")
    es_phase = check_number("es_phase", es_phase, 0.0, 1.0, low_open=True, high_open=True)
    rapid = check_number("rapid_filling", rapid_filling, 0.0, 1.0)
    atrial = check_number("atrial_kick", atrial_kick, 0.0, 1.0)
    if rapid + atrial > 1.0 + 1e-12:
        raise ArgumentError(f"rapid_filling + atrial_kick must not exceed 1, got {rapid + atrial:g}")
    sv = v_ed - v_es
    phi = torch.remainder(ph, 1.0)
    ejected = _smoothstep((phi / es_phase).clamp(0.0, 1.0) ** 0.75)
    w = ((phi - es_phase) / (1.0 - es_phase)).clamp(0.0, 1.0)
    refilled = (rapid * _smoothstep(w / _RAPID_END)
                + (1.0 - rapid - atrial) * _smoothstep((w - _RAPID_END) / (_DIASTASIS_END - _RAPID_END))
                + atrial * _smoothstep((w - _DIASTASIS_END) / (1.0 - _DIASTASIS_END)))
    volume = torch.where(phi <= es_phase, v_ed - sv * ejected, v_es + sv * refilled)
    return as_output(volume, numpy_out)


@dataclass(frozen=True)
class VolumeCurve:
    """An LV volume curve sampled at the frames of one cardiac cycle (see :func:`lv_volume_curve`).

    ``volumes[k]`` is the volume at ``phase[k] = k / n_frames`` of the R–R interval;
    ``ed_frame`` (always 0: frames start at the R wave) holds the maximum, EDV, and ``es_frame``
    the minimum, ESV.
    """

    volumes: np.ndarray
    phase: np.ndarray
    ed_frame: int
    es_frame: int

    @property
    def n_frames(self) -> int:
        return int(self.volumes.shape[0])


def lv_volume_curve(
    n_frames: int,
    edv: float,
    esv: float,
    es_fraction: float = 0.35,
    rapid_filling: float = 0.7,
    atrial_kick: float = 0.2,
) -> VolumeCurve:
    """The model LV volume curve (:func:`lv_volume`) sampled at ``n_frames`` evenly spaced frames.

    Frame ``k`` is at phase ``k / n_frames`` of the R–R interval, as a cine covers one cycle
    from the R wave. End-systole is placed on the frame nearest ``es_fraction`` of the cycle,
    ``es_frame = round(es_fraction · n_frames)``, so that ``volumes[0] == edv`` is the maximum
    and ``volumes[es_frame] == esv`` the minimum exactly (with many frames the shift is tiny).
    ``edv`` and ``esv`` are numbers (ml, or an area in mm² for a single slice), ``edv`` ≥ ``esv``
    ≥ 0. Returns a :class:`VolumeCurve` of NumPy arrays.
    """
    n_frames = check_int("n_frames", n_frames, 2)
    for name, value in (("edv", edv), ("esv", esv)):
        if isinstance(value, torch.Tensor) or np.ndim(value) != 0:
            raise ArgumentError(f"{name} must be a single number, got an array")
    es_fraction = check_number("es_fraction", es_fraction, 0.0, 1.0, low_open=True, high_open=True)
    n = int(n_frames)
    es_frame = int(round(es_fraction * n))
    if not 1 <= es_frame <= n - 1:
        raise ArgumentError(f"es_fraction={es_fraction:g} puts end-systole on frame {es_frame} of {n}; "
                            "it must fall strictly inside the cycle (use more frames)")
    phase = np.arange(n) / n
    volumes = lv_volume(phase, float(edv), float(esv), es_frame / n, rapid_filling, atrial_kick)
    return VolumeCurve(volumes=np.asarray(volumes, dtype=np.float64), phase=phase, ed_frame=0,
                       es_frame=es_frame)


# --------------------------------------------------------------------------------------------
# ECG-gated segmented cine: the timing bookkeeping
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CineTiming:
    """Timing of an ECG-gated, segmented cine acquisition of one slice (see
    :func:`segmented_cine_timing`). Times in ms, except ``breath_hold`` in s."""

    temporal_resolution: float
    heartbeats: int
    n_phases: int
    rr_interval: float
    breath_hold: float


def segmented_cine_timing(
    TR: float,
    views_per_segment: int,
    n_phase_encodes: int,
    heart_rate: float,
    acquisition_window: float = 1.0,
) -> CineTiming:
    """How long a segmented cine takes and how finely it resolves the cycle.

    In every heartbeat the scanner acquires, for each cardiac phase in turn, a *segment* of
    ``views_per_segment`` (L) phase-encoding lines, one per ``TR``; the next heartbeat fills the
    next segment of every phase, until all ``n_phase_encodes`` (N_PE) lines are in::

        temporal resolution  Δt = L · TR
        heartbeats per slice N_HB = ⌈N_PE / L⌉          (= the breath-hold, in beats)
        phases per cycle     N_φ = ⌊w · RR / Δt⌋,      RR = 60 000 / HR  (ms)
        breath-hold          N_HB · RR / 1000  (s)

    ``acquisition_window`` w is the fraction of the R–R interval that is acquired: below 1 for
    prospective triggering (the last 10–20 % is left to catch the next R wave), 1 for
    retrospective gating. Example: TR 3 ms and 12 views give Δt = 36 ms; 192 lines take 16
    heartbeats; at 60 beats/min a 90 % window holds 25 phases. ``TR`` in ms and ``heart_rate``
    in beats/min.
    """
    TR = check_number("TR", TR, 0.0, low_open=True)
    heart_rate = check_number("heart_rate", heart_rate, 0.0, low_open=True)
    views_per_segment = check_int("views_per_segment", views_per_segment)
    n_phase_encodes = check_int("n_phase_encodes", n_phase_encodes)
    window = check_number("acquisition_window", acquisition_window, 0.0, 1.0, low_open=True)
    dt = int(views_per_segment) * TR
    rr = 60000.0 / heart_rate
    # the small tolerance keeps e.g. 0.9 · 1000 / 36 = 25 from rounding down to 24
    n_phases = int(math.floor(window * rr / dt + 1e-9))
    if n_phases < 1:
        raise ArgumentError(f"a segment lasts {dt:g} ms, longer than the acquired {window * rr:g} ms "
                            "of the R-R interval: use fewer views_per_segment")
    beats = -(-int(n_phase_encodes) // int(views_per_segment))
    return CineTiming(temporal_resolution=dt, heartbeats=beats, n_phases=n_phases, rr_interval=rr,
                      breath_hold=beats * rr / 1000.0)


