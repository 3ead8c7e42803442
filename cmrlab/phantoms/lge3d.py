"""A 3D late gadolinium enhancement (LGE) short-axis stack with a myocardial scar.

:func:`lge_volume` stacks slices of :func:`cmrlab.phantoms.lge2d.lge_slice` from the base of the
left ventricle (slice 0) towards the apex, so every slice goes through the same physics
(inversion recovery whose TI nulls healthy post-contrast myocardium, k-space sampling, coils,
noise; see :mod:`cmrlab.phantoms.lge2d`). What the stack adds:

* **base → apex taper**: the LV cavity is half an ellipsoid, ``r_endo(z) = R·√(1 − (z/L)²)``,
  with the stack ending at 82-90 % of ``L`` (short of the apical cap, where a short-axis slice
  would cut the wall tangentially); the wall thins towards the apex,
  ``w(z) = w_base·(1 − 0.3·z/z_last)``; the LV centre drifts by up to ±3 mm per axis over the
  stack (the long axis is not exactly normal to the slices).
* **one infarct**: in one coronary territory (:data:`~cmrlab.phantoms.lge2d.TERRITORIES`:
  LAD anterior/anteroseptal, RCA inferoseptal/inferior, LCx lateral), with the same
  transmurality (fraction of the wall from the endocardium outwards), angular width, grey zone and
  patchiness in every slice it reaches. It spans a contiguous run of 40-80 % of the slices; an
  LAD infarct reaches the apical slice (the LAD supplies the apex), RCA and LCx infarcts lie
  anywhere along the stack. Slices outside the run have no scar: :func:`lge_slice` is called
  with the scar's gadolinium concentration equal to the myocardium's (so the sector is imaged as
  healthy myocardium, exactly) and its label set to 1.
* **contrast per subject**: gadolinium 0.22-0.38 mM in myocardium, 0.45-0.65 mM in blood and 1.1-1.5
  times the blood's in the scar (scar brightest, blood a little darker); the TI is chosen for a
  myocardial concentration within ±8 % of the true one (a TI scout is never exact, so healthy
  myocardium is nearly, not perfectly, nulled):
  ``TI = ir_null_time(T1 of myocardium at that concentration, TR)``.

Labels (uint8): 0 background, 1 healthy myocardium, 2 scar. Volumes are indexed (X, Y, Z):
x towards the patient's left, y anterior, z from base to apex. The affine maps voxels to RAS mm
treating the short-axis planes as axial (real short-axis planes are double oblique; no scanner
geometry is simulated): ``X = −x``, ``Y = y``, ``Z = −z`` (the apex points down).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from cmrlab.checks import check_int, check_spacing
from cmrlab.errors import ArgumentError
from cmrlab.phantoms.lge2d import LGE_LABEL_NAMES, TERRITORIES, lge_slice

__all__ = ["LGE_LABEL_NAMES", "LGEVolume", "lge_volume"]


@dataclass(frozen=True)
class LGEVolume:
    """A simulated LGE short-axis stack (see :func:`lge_volume`).

    ``image`` (X, Y, Z) float32: coil-combined magnitude, noise included, in units of water's
    equilibrium magnetisation; ``labels`` (X, Y, Z) uint8: 0 background, 1 healthy myocardium,
    2 scar; ``spacing`` (Δx, Δy, Δz) mm; ``affine`` 4×4 voxel → RAS mm; ``territory``
    ``"LAD"``/``"RCA"``/``"LCx"``; ``transmurality`` fraction of the wall; ``scar_fraction`` = scar
    volume / myocardial volume (scar included), exact for the model (the analytic slice areas ×
    slice spacing); ``scar_slices`` the indices of the slices with scar; ``TI`` ms; ``params``:
    the drawn geometry and contrast, per slice where it varies (``endo_radius``,
    ``wall_thickness``, ``centre``, ``scar_area`` and ``myocardium_area`` (scar included) in mm²,
    ``signal`` of each region), ``scar_volume`` and ``myocardium_volume`` (scar included) in mm³.
    """

    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    territory: str
    transmurality: float
    scar_fraction: float
    scar_slices: tuple[int, ...]
    TI: float
    params: Mapping[str, Any]


def _spacing(spacing: Any) -> tuple[float, float, float]:
    dx, dy, dz = check_spacing("spacing", spacing, 3)
    if abs(dx - dy) > 1e-9:
        raise ArgumentError(f"the in-plane pixels must be square (dx == dy), got {spacing!r}")
    return dx, dy, dz


def lge_volume(
    *,
    seed: int = 0,
    n_slices: int = 10,
    matrix: int = 96,
    spacing: tuple[float, float, float] = (1.5, 1.5, 8.0),
    territory: str | None = None,
    transmurality: float | None = None,
    field_strength: float = 1.5,
    snr: float | None = None,
    oversample: int = 2,
) -> LGEVolume:
    """Simulate a 3D LGE short-axis stack (myocardium nulled) with a scar in one coronary territory.

    Parameters
    ----------
    seed
        Everything random (geometry, scar, contrast, coils, noise) follows from it.
    n_slices
        Number of short-axis slices, base to apex (≥ 3).
    matrix
        In-plane matrix (square, ≥ 32); the field of view is ``matrix·dx``.
    spacing
        (dx, dy, dz) mm, square pixels (dx == dy); dz is the slice spacing (slices are contiguous).
        The heart must fit: ``matrix·dx`` of at least about 100 mm.
    territory
        ``"LAD"``, ``"RCA"`` or ``"LCx"``; ``None``: drawn.
    transmurality
        Fraction of the wall the scar spans from the endocardium, in (0, 1] (1: transmural);
        ``None``: drawn in [0.25, 1].
    field_strength
        1.5 or 3 T.
    snr
        Mean LV blood-pool signal / per-channel noise SD in each slice; ``None``: drawn in [10, 25].
    oversample
        The slices are drawn this many times finer before k-space sampling (see
        :func:`~cmrlab.phantoms.lge2d.lge_slice`).

    Returns
    -------
    LGEVolume
        Deterministic for given arguments.
    """
    seed = check_int("seed", seed, 0)
    n_slices = check_int("n_slices", n_slices, 3)
    matrix = check_int("matrix", matrix, 32)
    oversample = check_int("oversample", oversample, 1)
    dx, dy, dz = _spacing(spacing)
    if territory is not None and territory not in TERRITORIES:
        raise ArgumentError(f"territory must be one of {', '.join(TERRITORIES)} or None, got {territory!r}")
    if transmurality is not None:
        try:
            transmurality = float(transmurality)
        except (TypeError, ValueError):
            raise ArgumentError(f"transmurality must be a number in (0, 1], got {transmurality!r}") from None
        if not (math.isfinite(transmurality) and 0 < transmurality <= 1):
            raise ArgumentError(f"transmurality must be a number in (0, 1], got {transmurality!r}")
    if snr is not None:
        try:
            snr = float(snr)
        except (TypeError, ValueError):
            raise ArgumentError(f"snr must be a positive number or None, got {snr!r}") from None
        if not (math.isfinite(snr) and snr > 0):
            raise ArgumentError(f"snr must be a positive number or None, got {snr!r}")
    fov = matrix * dx

    rng = np.random.default_rng([seed, 3003])
    names = list(TERRITORIES)
    terr = names[int(rng.integers(len(names)))] if territory is None else territory
    trans = float(rng.uniform(0.25, 1.0)) if transmurality is None else transmurality
    # geometry
    r_base = rng.uniform(20.0, 26.0)
    w_base = rng.uniform(8.0, 12.0)
    z = np.arange(n_slices) * dz
    z_last = z[-1]
    length = z_last / rng.uniform(0.82, 0.9)
    endo = r_base * np.sqrt(1.0 - (z / length) ** 2)
    wall = w_base * (1.0 - 0.3 * z / z_last)
    drift = rng.uniform(-3.0, 3.0, size=2)
    centre0 = rng.uniform(-5.0, 5.0, size=2)
    centres = centre0[None, :] + drift[None, :] * (z / z_last)[:, None]
    rotation = rng.uniform(-15.0, 15.0)
    # scar: width, offset in the territory, heterogeneity, slices it reaches
    extent = rng.uniform(60.0, 120.0)
    offset = rng.uniform(-15.0, 15.0)
    grey_zone = rng.uniform(1.5, 3.0)
    patchiness = rng.uniform(0.3, 0.7)
    n_scar = max(1, int(round(rng.uniform(0.4, 0.8) * n_slices)))
    first = n_slices - n_scar if terr == "LAD" else int(rng.integers(0, n_slices - n_scar + 1))
    scar_slices = tuple(range(first, first + n_scar))
    # contrast and imaging
    gd_myo = rng.uniform(0.22, 0.38)
    gd_blood = rng.uniform(0.45, 0.65)
    gd_scar = gd_blood * rng.uniform(1.1, 1.5)
    ti_conc = gd_myo * rng.uniform(0.92, 1.08)
    snr_value = float(rng.uniform(10.0, 25.0)) if snr is None else snr
    n_coils = int(rng.integers(4, 13))
    noise_seeds = rng.integers(0, 2**31, size=n_slices)

    needed = 2 * (float(endo[0] + wall[0]) + 2.5 + float(np.abs(centres).max()))
    if fov < needed:
        raise ArgumentError(f"the field of view matrix*dx = {fov:g} mm is too small for this heart "
                            f"(needs > {needed:.0f} mm): raise matrix or spacing")

    images, labels, scar_area, myo_area, signal_by_slice = [], [], [], [], []
    for k in range(n_slices):
        has_scar = k in scar_slices
        s = lge_slice(
            matrix, fov, territory=terr, scar_extent=extent, transmurality=trans, scar_offset=offset,
            endo_radius=float(endo[k]), wall_thickness=float(wall[k]),
            centre=(float(centres[k, 0]), float(centres[k, 1])), rotation=rotation,
            field_strength=field_strength, gd_myocardium=gd_myo,
            gd_scar=gd_scar if has_scar else gd_myo, gd_blood=gd_blood,
            grey_zone=grey_zone if has_scar else 0.0, patchiness=patchiness if has_scar else 0.0,
            ti_concentration=ti_conc, n_coils=n_coils, snr=snr_value, oversample=oversample,
            seed=int(noise_seeds[k]),
        )
        lab = s.labels.astype(np.uint8)
        if not has_scar:
            lab[lab == 2] = 1
        images.append(s.image.T)           # (y, x) → (x, y)
        labels.append(lab.T)
        scar_area.append(s.scar_area if has_scar else 0.0)
        myo_area.append(s.myocardium_area + s.scar_area)
        signal_by_slice.append(dict(s.signal))
        TI = s.TI

    scar_volume = float(np.sum(scar_area)) * dz
    myo_volume = float(np.sum(myo_area)) * dz
    affine = np.array([
        [-dx, 0.0, 0.0, (matrix // 2) * dx],
        [0.0, dy, 0.0, -(matrix // 2) * dy],
        [0.0, 0.0, -dz, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ])
    params = MappingProxyType(dict(
        seed=seed, field_strength=field_strength, matrix=matrix, fov=fov,
        scar_extent=float(extent), scar_offset=float(offset),
        scar_centre=float(TERRITORIES[terr] + offset + rotation), rotation=float(rotation),
        grey_zone=float(grey_zone), patchiness=float(patchiness),
        gd_myocardium=float(gd_myo), gd_scar=float(gd_scar), gd_blood=float(gd_blood),
        ti_concentration=float(ti_conc), snr=snr_value, n_coils=n_coils,
        endo_radius=tuple(float(v) for v in endo), wall_thickness=tuple(float(v) for v in wall),
        centre=tuple((float(a), float(b)) for a, b in centres),
        scar_area=tuple(float(v) for v in scar_area), myocardium_area=tuple(float(v) for v in myo_area),
        scar_volume=scar_volume, myocardium_volume=myo_volume,
        signal=tuple(MappingProxyType(d) for d in signal_by_slice),
    ))
    return LGEVolume(
        image=np.ascontiguousarray(np.stack(images, axis=-1), dtype=np.float32),
        labels=np.ascontiguousarray(np.stack(labels, axis=-1)),
        spacing=(dx, dy, dz),
        affine=affine,
        territory=terr,
        transmurality=trans,
        scar_fraction=scar_volume / myo_volume,
        scar_slices=scar_slices,
        TI=float(TI),
        params=params,
    )
