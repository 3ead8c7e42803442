"""A multi-modal 3D brain phantom built on the MNI152 tissue maps, imaged through the physics.

:func:`brain_case` draws one simulated subject and returns its T1w, T1ce, T2w, FLAIR and T1-IR
volumes with exact tissue labels (and, optionally, a glioma with BraTS labels):

1. **anatomy**: nilearn's MNI152 (ICBM 2009a) grey- and white-matter probability maps and brain
   mask, 1 mm isotropic (2 mm block averages when ``spacing >= 2``, which keeps the partial volume
   right); CSF = mask − GM − WM (clipped at 0). Loaded once per process.
2. **per-subject shape**: a small global scaling (±6 % overall, ±3 % per axis) and rotation (±4° about
   each axis) about the brain centre, plus a smooth random displacement field (a sum of six
   plane waves of 70-140 mm wavelength per axis, up to about 3 mm): the output voxel at ``x``
   shows the template at ``q = c + R·S·(x − c) + u(x)``, resampled trilinearly. An infant brain
   is also scaled by 0.87 (about 65 % of the adult brain volume at six months).
3. **tumour** (``tumour=True``): three nested, irregular blobs around a centre deep in white
   matter — necrotic core (NCR, BraTS 1) inside the enhancing rim (ET, 4) inside the oedema
   (ED, 2). Each blob's surface is ``|q − c| = R·(1 + g(u))`` with ``g`` a random cubic polynomial of
   the direction ``u`` (|g| ≤ 0.3): lobulated, egg-like shapes. Oedema spreads in white matter
   (its fraction is weighted by WM + ½·GM), the core and rim replace whatever was there, and the
   surrounding tissue is pushed outwards (mass effect: the template is sampled at
   ``c + (q − c)·(1 − 0.5·e^{−|q − c|²/(2L²)})``, ``L`` the rim radius, a fold-free compression).
4. **contrast**: every tissue's T1, T2, PD from :mod:`cmrlab.physics.tissues` at the field
   strength, each jittered by up to ±4 % per subject, gives one signal per modality through
   :mod:`cmrlab.physics.signals`; a voxel's signal is the partial-volume mix Σ_k p_k·S_k of
   its tissue fractions (magnetisation adds). The oedema and the tumour (rim before contrast)
   take the ``oedema`` and ``tumour`` entries of the table; the necrotic core's signal is an
   even mix of CSF and non-enhancing tumour (liquefied necrosis with debris: dark on T1w and
   T1ce, bright on T2w), a representative choice. Sequences (:data:`SEQUENCES`):

   * ``t1``   spoiled GRE (3D FLASH), TR 20 ms, TE 4 ms, 25°: WM > GM > CSF
   * ``t1ce`` the same sequence after gadolinium: the enhancing rim carries 0.3 mM Gd-DTPA
     (``gadolinium_enhanced`` of the tissue table), everything else is unchanged
   * ``t2``   spin echo, TR 4000 ms, TE 100 ms: CSF > GM > WM
   * ``flair`` IR spin echo, TR 8000 ms, TE 140 ms, TI nulling the table's CSF T1 (the subject's
     jittered CSF is then nearly, not exactly, nulled)
   * ``t1ir`` MRBrainS-style T1-weighted IR (TR 4416 ms, TE 15 ms, TI 400 ms), phase-sensitive
     (real) reconstruction: every brain tissue is still inverted at TI 400 ms, so the signed
     signal orders WM > GM > CSF; the image is stored as ``S + 1`` (so that fully inverted water
     maps to 0 and the background, S = 0, to 1), the convention of scanners that store real
     images with an offset.

5. **bias field and noise**: each modality is multiplied by its own smooth field
   (:func:`cmrlab.physics.artifacts.bias_field`, order 3, drawn on a coarse grid and
   interpolated; it varies by about ±10-20 % over the brain) and gets complex Gaussian noise at
   a per-subject SNR (mean brain signal / per-channel SD, 12-30); magnitude images are then
   Rician. The T1-IR keeps the real channel only (Gaussian noise), as a phase-sensitive
   reconstruction does.

**Infant** (``infant=True``, the six-month "isointense" phase of iSeg-2017): myelination is
incomplete, so white matter holds more water than in adults and its T1, T2 and PD approach
those of grey matter, which itself has longer relaxation times than in adults. This is a
representative choice (not one study's measurements) that reproduces the isointense appearance:
infant GM = adult GM × (T1 1.15, T2 1.20, PD 1.06); infant WM T1 = 0.97 × infant GM T1,
WM T2 = 1.02 × infant GM T2, WM PD = 0.99 × infant GM PD (adult WM/GM ratios: 0.63, 0.73, 0.83);
CSF unchanged. The WM-GM contrast on T1w and T2w then drops to a few per cent of the signal,
well inside the noise, as in the real data.

Tissue labels (:data:`TISSUE_LABELS`): 0 background, 1 CSF, 2 GM, 3 WM, the argmax of the
subject's (deformed, healthy) tissue probabilities with background = 1 − Σ p — inside a tumour
the label is the tissue it grew into; ``tumour_labels`` holds BraTS 0/1/2/4. Arrays are
indexed (X, Y, Z) in the MNI orientation (RAS); ``affine`` is the MNI affine with its voxel
size replaced by ``spacing`` (same origin).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from cmrlab.checks import check_choice, check_int
from cmrlab.errors import ArgumentError
from cmrlab.physics import artifacts, noise, signals, tissues

__all__ = [
    "BRATS_LABELS",
    "MODALITIES",
    "SEQUENCES",
    "TISSUE_LABELS",
    "BrainCase",
    "brain_case",
    "mni152_tissue_maps",
]

#: Tissue label values of :attr:`BrainCase.labels`.
TISSUE_LABELS: Mapping[int, str] = MappingProxyType({0: "background", 1: "CSF", 2: "GM", 3: "WM"})
#: Tumour label values of :attr:`BrainCase.tumour_labels` (BraTS up to 2021).
BRATS_LABELS: Mapping[int, str] = MappingProxyType(
    {0: "background", 1: "necrotic core (NCR)", 2: "oedema (ED)", 4: "enhancing tumour (ET)"})
#: The modalities, in the order of :attr:`BrainCase.images`.
MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair", "t1ir")
#: Sequence parameters of each modality (ms, degrees).
SEQUENCES: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "t1": MappingProxyType({"kind": "spoiled GRE", "TR": 20.0, "TE": 4.0, "flip": 25.0}),
    "t1ce": MappingProxyType({"kind": "spoiled GRE + gadolinium", "TR": 20.0, "TE": 4.0, "flip": 25.0}),
    "t2": MappingProxyType({"kind": "spin echo", "TR": 4000.0, "TE": 100.0}),
    "flair": MappingProxyType({"kind": "FLAIR (CSF nulled)", "TR": 8000.0, "TE": 140.0}),
    "t1ir": MappingProxyType({"kind": "IR, phase-sensitive, offset 1", "TR": 4416.0, "TE": 15.0, "TI": 400.0}),
})

# Tissue classes of the partial-volume mix: name in the tissue table (None: a mix, see _tissue_table).
_HEALTHY = ("csf", "grey_matter", "white_matter")
_INFANT_GM = {"T1": 1.15, "T2": 1.20, "PD": 1.06}          # infant GM / adult GM
_INFANT_WM = {"T1": 0.97, "T2": 1.02, "PD": 0.99}          # infant WM / infant GM
_INFANT_SCALE = 0.87
_JITTER = 0.04                                              # ± relative jitter of T1, T2, PD
_NECROSIS_FLUID = 0.5                                       # fluid (CSF-like) fraction of the necrotic core


@dataclass(frozen=True)
class BrainCase:
    """One simulated subject (see :func:`brain_case`).

    ``images``: modality → float32 (X, Y, Z) volume (keys :data:`MODALITIES`; intensities in units
    of the equilibrium magnetisation of water, bias and noise included); ``labels`` uint8 (X, Y, Z):
    0 background, 1 CSF, 2 GM, 3 WM; ``tumour_labels`` uint8 (X, Y, Z) with BraTS values 0/1/2/4, or
    None; ``spacing`` (mm, X, Y, Z); ``affine`` 4×4 voxel → RAS mm; ``params``: everything drawn for
    this subject (tissue values per class, deformation, tumour geometry, SNR, …).
    """

    images: Mapping[str, np.ndarray]
    labels: np.ndarray
    tumour_labels: np.ndarray | None
    spacing: tuple[float, float, float]
    affine: np.ndarray
    params: Mapping[str, Any]


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------
def mni152_tissue_maps(block: int = 2) -> tuple[torch.Tensor, np.ndarray]:
    """CSF, GM and WM probability maps (3, X, Y, Z) float32 of the MNI152 template, and its affine.

    ``block`` 1 gives the 1 mm maps; 2 gives 2×2×2 block averages (2 mm voxels, exact partial
    volume), the grid :func:`brain_case` starts from. The maps ship with nilearn (nothing is
    downloaded); they are loaded once per process and each call returns fresh copies.
    """
    block = check_choice("block", block, (1, 2))
    probs, affine = _templates(block)
    return probs.clone(), affine.copy()


@functools.lru_cache(maxsize=2)
def _templates(block: int) -> tuple[torch.Tensor, np.ndarray]:
    """CSF, GM, WM probabilities (3, X, Y, Z) float32 of the MNI152 template, and its affine.

    ``block`` 1: the 1 mm maps; 2: 2×2×2 block averages (2 mm voxels, exact partial volume).
    nilearn ships the maps, so nothing is downloaded; its import and the loading take a few
    seconds, hence the cache.
    """
    from nilearn import datasets

    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    g = np.asarray(gm.get_fdata(dtype=np.float32))
    w = np.asarray(wm.get_fdata(dtype=np.float32))
    m = np.asarray(mask.get_fdata(dtype=np.float32))
    g, w = g * m, w * m
    total = g + w
    over = np.maximum(total, 1.0)          # GM + WM may exceed 1 at a few voxels: renormalise
    g, w = g / over, w / over
    c = np.clip(m - g - w, 0.0, 1.0)
    probs = np.stack([c, g, w])
    affine = np.array(mask.affine, dtype=np.float64)
    if block > 1:
        pad = [(0, 0)] + [(0, (-n) % block) for n in probs.shape[1:]]
        probs = np.pad(probs, pad)
        s = probs.shape
        probs = probs.reshape(3, s[1] // block, block, s[2] // block, block, s[3] // block, block).mean(axis=(2, 4, 6))
        centre_shift = affine[:3, :3] @ np.full(3, (block - 1) / 2)
        affine[:3, :3] = affine[:3, :3] * block
        affine[:3, 3] += centre_shift
    return torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32)), affine


@functools.lru_cache(maxsize=2)
def _tumour_sites(block: int) -> np.ndarray:
    """Template-space positions (mm, (N, 3)) deep in white matter where a tumour may be centred:
    WM probability > 0.6 and at least 30 mm from the edge of the brain."""
    from scipy import ndimage

    probs, affine = _templates(block)
    p = probs.numpy()
    brain = p.sum(axis=0) > 0.5
    depth = ndimage.distance_transform_edt(brain, sampling=np.abs(np.diag(affine)[:3]))
    idx = np.argwhere((p[2] > 0.6) & (depth >= 30.0))
    return idx @ affine[:3, :3].T + affine[:3, 3]


def _output_grid(spacing: tuple[float, float, float]) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the output grid: the MNI field of view (origin −98, −134, −72 mm and
    196 × 232 × 188 mm between the first and last voxel centres) at ``spacing``."""
    _, aff1 = _templates(1)
    extent = np.array([196.0, 232.0, 188.0])
    shape = tuple(int(math.floor(e / s + 1e-9)) + 1 for e, s in zip(extent, spacing))
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = aff1[:3, 3]
    return shape, affine  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------
def _rotation(angles_deg: np.ndarray) -> np.ndarray:
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _source_coordinates(shape: tuple[int, int, int], affine: np.ndarray, geo: dict[str, Any]) -> torch.Tensor:
    """Template-space position q (mm), (X, Y, Z, 3) float32, of every output voxel:
    q = c + M·(x − c) + u(x), with u a sum of plane waves per axis."""
    axes = [torch.arange(n, dtype=torch.float32) * float(affine[i, i]) + float(affine[i, 3])
            for i, n in enumerate(shape)]
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)               # (X, Y, Z, 3) mm
    c = torch.tensor(geo["centre"], dtype=torch.float32)
    m = torch.tensor(geo["matrix"], dtype=torch.float32)
    q = (x - c) @ m.T + c
    # smooth displacement: u_a(x) = Σ_j A_j sin(k_j·x + φ_j); computed separably per axis
    for a in range(3):
        for amp, k, phase in zip(geo["wave_amp"][a], geo["wave_k"][a], geo["wave_phase"][a]):
            arg = (axes[0] * float(k[0]))[:, None, None] + (axes[1] * float(k[1]))[None, :, None] \
                + (axes[2] * float(k[2]))[None, None, :] + float(phase)
            q[..., a] += float(amp) * torch.sin(arg)
    return q


def _sample(probs: torch.Tensor, t_affine: np.ndarray, q: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of the template channels (C, I, J, K) at positions q (..., 3) mm;
    zero outside the template."""
    inv = np.linalg.inv(t_affine)
    idx = q @ torch.tensor(inv[:3, :3].T, dtype=torch.float32) + torch.tensor(inv[:3, 3], dtype=torch.float32)
    sizes = torch.tensor(probs.shape[1:], dtype=torch.float32)
    norm = 2.0 * idx / (sizes - 1) - 1.0                                        # (..., 3) in i, j, k order
    grid = norm.flip(-1).reshape(1, *q.shape[:3], 3)                            # grid_sample wants (k, j, i)
    out = torch.nn.functional.grid_sample(probs[None], grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=True)
    return out[0]                                                               # (C, X, Y, Z)


def _direction_poly(u: torch.Tensor, coef: np.ndarray) -> torch.Tensor:
    """g(u) = Σ coef_m · u^m over the monomials of degree 1-3 of the unit vector u (…, 3)."""
    out = torch.zeros(u.shape[:-1], dtype=u.dtype)
    for c, p in zip(coef, _MONOMIALS):
        t = torch.ones_like(out)
        for axis, e in enumerate(p):
            if e:
                t = t * u[..., axis] ** e
        out = out + float(c) * t
    return out


_MONOMIALS = [(i, j, k) for i in range(4) for j in range(4) for k in range(4) if 1 <= i + j + k <= 3]


def _blob_fraction(dist: torch.Tensor, u: torch.Tensor, radius: float, coef: np.ndarray,
                   voxel: float) -> torch.Tensor:
    """Partial-volume fraction of a lobulated blob |q − c| ≤ radius·(1 + g(u)): a linear ramp
    one voxel wide across the surface (fraction 0.5 on it)."""
    surface = radius * (1.0 + _direction_poly(u, coef))
    return (0.5 + (surface - dist) / voxel).clamp(0.0, 1.0)


def _random_poly(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Coefficients of a direction polynomial scaled so that max |g| over the sphere = amplitude."""
    coef = rng.standard_normal(len(_MONOMIALS))
    dirs = rng.standard_normal((2000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    g = _direction_poly(torch.from_numpy(dirs), coef).numpy()
    return coef * (amplitude / np.abs(g).max())


# --------------------------------------------------------------------------------------------
# Contrast
# --------------------------------------------------------------------------------------------
def _tissue_table(field_strength: float, infant: bool, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """T1, T2, T2* (ms) and PD of each tissue class for this subject, each jittered by up to ±4 %.

    The enhancing rim is the subject's (jittered) tumour with 0.3 mM Gd-DTPA
    (:func:`~cmrlab.physics.tissues.with_gadolinium`).
    """
    table: dict[str, dict[str, float]] = {}
    for name in ("csf", "grey_matter", "white_matter", "tumour", "oedema"):
        t = tissues.get_tissue(name, field_strength)
        table[name] = {"T1": t.T1, "T2": t.T2, "T2star": t.T2star, "PD": t.PD}
    if infant:
        gm, wm = table["grey_matter"], table["white_matter"]
        for key, f in _INFANT_GM.items():
            gm[key] *= f
        for key, f in _INFANT_WM.items():
            wm[key] = gm[key] * f
        # T2* from the new T2 with each tissue's adult reversible rate R2' = 1/T2* − 1/T2
        for row, adult in ((gm, tissues.get_tissue("grey_matter", field_strength)),
                           (wm, tissues.get_tissue("white_matter", field_strength))):
            r2p = 1.0 / adult.T2star - 1.0 / adult.T2
            row["T2star"] = 1.0 / (1.0 / row["T2"] + r2p)
    for row in table.values():
        f = rng.uniform(1 - _JITTER, 1 + _JITTER, size=3)
        row["T1"] *= f[0]
        row["T2"] *= f[1]
        row["T2star"] = min(row["T2star"] * f[1], row["T2"])
        row["PD"] *= f[2]
    tum = table["tumour"]
    enhanced = tissues.with_gadolinium(
        tissues.Tissue("tumour", field_strength, tum["T1"], tum["T2"], tum["T2star"], tum["PD"]),
        tissues.ENHANCED_CONCENTRATION)
    table["gadolinium_enhanced"] = {"T1": enhanced.T1, "T2": enhanced.T2, "T2star": enhanced.T2star,
                                    "PD": enhanced.PD}
    return table


def _signals(table: dict[str, dict[str, float]], csf_nominal_t1: float) -> dict[str, dict[str, float]]:
    """Noise-free signal of each tissue class in each modality (fractions of water's M0; T1-IR
    signed)."""
    out: dict[str, dict[str, float]] = {m: {} for m in MODALITIES}
    t1, t2, fl, ir = SEQUENCES["t1"], SEQUENCES["t2"], SEQUENCES["flair"], SEQUENCES["t1ir"]
    ti_flair = float(signals.ir_null_time(csf_nominal_t1, fl["TR"], fl["TE"]))
    for name, p in table.items():
        pd, T1, T2 = p["PD"], p["T1"], p["T2"]
        out["t1"][name] = float(signals.spoiled_gre_signal(pd, T1, p["T2star"], t1["TR"], t1["TE"], t1["flip"]))
        out["t2"][name] = float(signals.spin_echo_signal(pd, T1, T2, t2["TR"], t2["TE"]))
        out["flair"][name] = float(signals.flair_signal(pd, T1, T2, TI=ti_flair, TR=fl["TR"], TE=fl["TE"]))
        out["t1ir"][name] = float(signals.inversion_recovery_signal(pd, T1, T2, ir["TI"], ir["TR"], ir["TE"]))
    # the other sequences run before the injection (the usual protocol: T1ce last), so there the
    # enhancing rim is plain tumour
    out["t1ce"] = dict(out["t1"])
    out["t1ce"]["enhancing"] = out["t1"]["gadolinium_enhanced"]
    for m in ("t1", "t2", "flair", "t1ir"):
        out[m]["enhancing"] = out[m]["tumour"]
    for m in MODALITIES:
        out[m]["necrosis"] = _NECROSIS_FLUID * out[m]["csf"] + (1 - _NECROSIS_FLUID) * out[m]["tumour"]
    return out


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def _spacing(spacing: Any) -> tuple[float, float, float]:
    vals = spacing if isinstance(spacing, (tuple, list, np.ndarray)) else (spacing,) * 3
    try:
        out = tuple(float(v) for v in vals)
    except (TypeError, ValueError):
        raise ArgumentError(f"spacing must be a number or three numbers (mm), got {spacing!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) and 0.5 <= v <= 8.0 for v in out):
        raise ArgumentError(f"spacing must be one or three numbers in [0.5, 8] mm, got {spacing!r}")
    return out  # type: ignore[return-value]


def brain_case(
    *,
    seed: int = 0,
    spacing: float | tuple[float, float, float] = 2.0,
    tumour: bool = False,
    infant: bool = False,
    field_strength: float = 3.0,
    snr: float | None = None,
    bias_strength: float | None = None,
    deformation: float = 3.0,
) -> BrainCase:
    """Simulate one subject's multi-modal brain MRI (T1w, T1ce, T2w, FLAIR, T1-IR) with labels.

    Parameters
    ----------
    seed
        Everything random (shape, contrast, tumour, bias, noise) follows from it.
    spacing
        Voxel size in mm, one number or (x, y, z), each in [0.5, 8]. The field of view is the
        MNI152 template's (196 × 232 × 188 mm): 2 mm gives 99 × 117 × 95 voxels (the "fast"
        profile), 1 mm gives 197 × 233 × 189 (the "full" profile).
    tumour
        Add a glioma (necrotic core, enhancing rim, oedema; BraTS labels in ``tumour_labels``).
    infant
        The six-month "isointense" infant brain of iSeg-2017 (module notes): smaller, with
        almost no GM/WM contrast.
    field_strength
        1.5 or 3 T (tissue table).
    snr
        Mean noise-free brain signal / per-channel noise SD of every modality; ``None``: drawn
        per subject in [12, 30]. Must be finite and > 0: use a large value (1e6) for almost no
        noise.
    bias_strength
        Standard deviation of the log bias field (0.1-0.15 gives about ±10-20 % over the brain);
        ``None``: drawn in [0.1, 0.15]; ``0``: no bias field.
    deformation
        Largest amplitude of the smooth displacement field per axis, mm (0: none).

    Returns
    -------
    BrainCase
        Images, tissue labels, tumour labels (or None), spacing, RAS affine and the drawn
        parameters. Deterministic for given arguments.
    """
    seed = check_int("seed", seed, 0)
    sp = _spacing(spacing)
    for name, flag in (("tumour", tumour), ("infant", infant)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ArgumentError(f"{name} must be True or False, got {flag!r}")
    try:
        b0 = float(field_strength)
    except (TypeError, ValueError):
        raise ArgumentError(f"field_strength must be a number, got {field_strength!r}") from None
    if not any(abs(b0 - f) < 1e-9 for f in tissues.FIELD_STRENGTHS):
        raise ArgumentError(f"field_strength must be one of {tissues.FIELD_STRENGTHS} T, got {field_strength!r}")
    b0 = min(tissues.FIELD_STRENGTHS, key=lambda f: abs(f - b0))
    if snr is not None:
        snr = _positive_number(snr, "snr")
    if bias_strength is not None:
        bias_strength = _positive_number(bias_strength, "bias_strength", allow_zero=True, high=0.5)
    deformation = _positive_number(deformation, "deformation", allow_zero=True, high=10.0)

    rng = np.random.default_rng([seed, 4242])
    block = 2 if min(sp) >= 2.0 else 1
    probs_t, t_affine = _templates(block)
    shape, affine = _output_grid(sp)

    # -- per-subject geometry ------------------------------------------------------------------
    centre = np.array([0.0, -18.0, 18.0])                       # mm, about the middle of the MNI brain
    scale = rng.uniform(0.94, 1.06) * rng.uniform(0.97, 1.03, size=3)
    if infant:
        scale = scale * _INFANT_SCALE
    angles = rng.uniform(-4.0, 4.0, size=3)
    # output → template: undo the subject's scaling and rotation
    matrix = np.diag(1.0 / scale) @ _rotation(angles).T
    n_waves = 6
    wave_k = 2 * math.pi / rng.uniform(70.0, 140.0, size=(3, n_waves, 1)) \
        * _unit(rng.standard_normal((3, n_waves, 3)))
    wave_amp = rng.uniform(-1.0, 1.0, size=(3, n_waves)) * deformation / math.sqrt(n_waves)
    geo: dict[str, Any] = dict(centre=centre, matrix=matrix, wave_k=wave_k, wave_amp=wave_amp,
                               wave_phase=rng.uniform(0.0, 2 * math.pi, size=(3, n_waves)))
    q = _source_coordinates(shape, affine, geo)

    # -- tumour geometry (template space) and mass effect ------------------------------------
    tumour_params: dict[str, Any] | None = None
    if tumour:
        sites = _tumour_sites(block)
        c = sites[int(rng.integers(len(sites)))]
        r_ed = rng.uniform(18.0, 32.0)
        r_et = r_ed * rng.uniform(0.45, 0.65)
        r_ncr = r_et * rng.uniform(0.5, 0.8)
        polys = {k: _random_poly(rng, 0.3) for k in ("ED", "ET", "NCR")}
        tumour_params = dict(centre=tuple(float(v) for v in c), radius_ED=r_ed, radius_ET=r_et,
                             radius_NCR=r_ncr, mass_effect=0.5)
        ct = torch.tensor(c, dtype=torch.float32)
        d = q - ct
        dist = d.norm(dim=-1)
        u = d / dist.clamp_min(1e-6)[..., None]
        q_healthy = ct + d * (1.0 - 0.5 * torch.exp(-dist**2 / (2 * r_et**2)))[..., None]
    else:
        q_healthy = q

    probs = _sample(probs_t, t_affine, q_healthy)                                # (3, X, Y, Z)
    healthy_total = probs.sum(0)
    # argmax of (background, CSF, GM, WM); NumPy's is several times faster than torch's over dim 0
    labels = np.argmax(torch.cat([(1.0 - healthy_total)[None], probs]).numpy(), axis=0).astype(np.uint8)

    fractions: dict[str, torch.Tensor] = {"csf": probs[0], "grey_matter": probs[1], "white_matter": probs[2]}
    tumour_labels = None
    if tumour:
        voxel = float(np.mean(sp))
        near = dist < 1.6 * r_ed
        f = {k: torch.zeros(shape, dtype=torch.float32) for k in ("ED", "ET", "NCR")}
        for k, r in (("ED", r_ed), ("ET", r_et), ("NCR", r_ncr)):
            f[k][near] = _blob_fraction(dist[near], u[near], r, polys[k], voxel)
        # oedema infiltrates white matter (some grey), never CSF; within the brain only
        spread = (probs[2] + 0.5 * probs[1]) / healthy_total.clamp_min(1e-6)
        f["ED"] = torch.maximum(f["ET"], (f["ED"] * spread).clamp(max=1.0)) * (healthy_total > 0.5)
        f["ET"] = torch.minimum(f["ET"], f["ED"])
        f["NCR"] = torch.minimum(f["NCR"], f["ET"])
        keep = 1.0 - f["ED"]
        for k in ("csf", "grey_matter", "white_matter"):
            fractions[k] = fractions[k] * keep
        fractions["oedema"] = f["ED"] - f["ET"]
        fractions["enhancing"] = f["ET"] - f["NCR"]
        fractions["necrosis"] = f["NCR"]
        tl = torch.zeros(shape, dtype=torch.uint8)
        tl[f["ED"] >= 0.5] = 2
        tl[f["ET"] >= 0.5] = 4
        tl[f["NCR"] >= 0.5] = 1
        tumour_labels = tl.numpy()

    # -- contrast, bias field, noise ----------------------------------------------------------
    table = _tissue_table(b0, infant, rng)
    sig = _signals(table, tissues.get_tissue("csf", b0).T1)
    snr_value = float(rng.uniform(12.0, 30.0)) if snr is None else snr
    bias_value = float(rng.uniform(0.1, 0.15)) if bias_strength is None else bias_strength
    brain = healthy_total > 0.5
    coarse = tuple(max(2, math.ceil(n / 8)) for n in shape)
    images: dict[str, np.ndarray] = {}
    for i, m in enumerate(MODALITIES):
        clean = torch.zeros(shape, dtype=torch.float32)
        for k, frac in fractions.items():
            clean += float(sig[m][k]) * frac
        if bias_value > 0:
            b = artifacts.bias_field(coarse, order=3, strength=bias_value, seed=seed * 8 + i)
            b = torch.nn.functional.interpolate(b[None, None], size=shape, mode="trilinear", align_corners=True)[0, 0]
            clean = clean * b
        sigma = float(clean[brain].abs().mean()) / snr_value
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        if m == "t1ir":   # phase-sensitive: the real channel only, Gaussian noise, stored with offset 1
            img = clean + sigma * torch.randn(shape, generator=gen) + 1.0
        else:             # magnitude: Rician
            img = noise.add_noise(clean, sigma, generator=gen).abs()
        images[m] = img.to(torch.float32).numpy()

    params = MappingProxyType(dict(
        seed=seed, field_strength=b0, infant=bool(infant), tumour=tumour_params,
        scale=tuple(float(v) for v in scale), rotation_deg=tuple(float(v) for v in angles),
        deformation_mm=deformation, snr=snr_value, bias_strength=bias_value,
        tissues={k: dict(v) for k, v in table.items()}, signals={k: dict(v) for k, v in sig.items()},
        sequences={k: dict(v) for k, v in SEQUENCES.items()},
    ))
    return BrainCase(
        images=MappingProxyType(images),
        labels=labels,
        tumour_labels=tumour_labels,
        spacing=sp,
        affine=affine,
        params=params,
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _positive_number(value: Any, name: str, allow_zero: bool = False, high: float = math.inf) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero) or v > high:
        bound = ">= 0" if allow_zero else "> 0"
        bound += f" and <= {high:g}" if high < math.inf else ""
        raise ArgumentError(f"{name} must be a finite number {bound}, got {value!r}")
    return v
