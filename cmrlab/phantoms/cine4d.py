"""A 4D short-axis cardiac cine (X, Y, Z, T) with labels on every frame, imaged through the physics.

:func:`cine_case` simulates one ACDC-like patient; :func:`cine_cases` streams many, one at a
time, cycling the five ACDC groups (:data:`ACDC_GROUPS`, defined in :data:`GROUP_DEFINITIONS`).

How a case is made
------------------
1. **Patient** (seeded): group, height and weight (body surface area, thesis Eq 2.4), LV
   end-diastolic volume index, ejection fraction, wall thickness, RV volume index and EF, heart
   rate, the heart's position, size and rotation in the field of view, the long-axis tilt.
2. **Anatomy along the long axis** (z in mm from the mitral plane, towards the apex; slice 0 is
   the most basal): the LV cavity is half an ellipsoid of revolution, area
   A(z) = π R₀² (1 − (z/L)²) for 0 ≤ z < L (constant above the mitral plane), with
   (2/3)π R₀² L = the sampled EDV; a myocardial cap closes it beyond L. The wall is
   ``wall_thickness`` at the base and 35 % thinner at the apex. The RV cavity is a crescent that
   wraps the septum: about the LV centre, at angle φ from the RV's direction, it fills
   r_epi < ρ ≤ r_epi + t·w(φ) with w(φ) = (1 − (φ/α)²)^0.6 (:func:`_rv_profile`), α = ``rv_extent``
   (65–95°, so the crescent spans 130–190° of the LV), t solved so that the crescent has the RV's
   area; its free wall (``rv_wall``, 3–5 mm of myocardium) covers it and thins to nothing over
   20° beyond the tips, the insertion points, where the interventricular grooves are. The RV
   stops before the apex (at 0.8 L). Slices
   above the mitral plane (z < 0) keep only part of the myocardial ring (a fraction 1 + z/8 mm of
   it, the rest is atrioventricular-groove fat); their blood pool is labelled LV only while at least
   half of the ring is there: the ambiguous basal slice of real data.
3. **Wall shape** per slice: the epicardium is a circle of radius R; the ED endocardium is
   r_ed(θ) = R − h·p(θ), with the local thickness pattern p(θ) = 1 − τ·w_terr(θ) + σ·w_sept(θ)
   (τ: infarct thinning in a coronary territory, MINF; σ: asymmetric septal hypertrophy, HCM;
   w: smooth cos² windows). R is solved so that ½∮r_ed² dθ = A(z).
4. **Motion**: with g(t) = (EDV − V(t))/(EDV − ESV) from the model curve
   :func:`cmrlab.physics.cardiac.lv_volume_curve` (g = 0 at ED, 1 at ES), the endocardium moves as
   r(θ,t)² = r_ed(θ)²·(1 − κ·(1 − a·w_terr(θ))·g(t)), where ``a`` is the akinesia of the
   territory (MINF) and κ is set per slice so that every slice's cavity area is
   A(z)·(1 − EF·g(t)); hence LV volume(t) = EDV·(1 − EF·g(t)) exactly. The myocardial area of
   every slice is conserved (muscle is incompressible): the epicardial radius is
   √((A(z,t) + M(z))/π). The RV crescent area follows the same curve with the RV's own EF.
   **Muscle inside the LV cavity** (:func:`_cavity_muscle`), all labelled cavity (3) as in ACDC,
   whose contours include the papillary muscles in the cavity: the anterolateral and the
   posteromedial papillary muscle, ellipses of 3–6 mm semi-axes attached to the endocardium
   (a quarter of each lies in the wall) from 0.2 L to 0.8 L, largest at mid-cavity, thickening as
   the cavity empties; 20 trabecular bundles (discs of 0.7–1.5 mm radius, 0–2 mm inside the
   endocardium, denser towards the apex, twisting along z); and the endocardium's own fine
   trabeculation (the blood pool is the disc of radius r(θ,t)·(1 − d·q(θ)), q a spiky random
   pattern). All of it moves with the endocardium.
   **Surroundings** that look like myocardium touch the heart, as in real scans: the anterior chest
   wall (skeletal muscle) comes to within ``chest_gap`` (1–10 mm) of the heart's most anterior
   point, and from a tenth of the way to the apex the diaphragm and liver dome rise to within
   ``diaphragm_gap`` (0–2 mm, plus 8 mm fading out by 0.25 L) of the inferior wall, the heart’s
   diaphragmatic surface. **Epicardial fat** is patchy
   (:func:`_fat_lv`, :func:`_fat_rv`): 0–1 mm over most of the heart, 2–8 mm in the
   interventricular grooves (the RV insertions), up to 6 mm over the RV free wall, 3–9 mm in the
   AV groove at the base, up to 6 mm at the apex, plus three random patches per case.
5. **Images** through :mod:`cmrlab.physics`: every region's bSSFP signal
   (:func:`cmrlab.physics.signals.bssfp_signal`, tissues of :mod:`cmrlab.physics.tissues`, per-case
   field strength, TR and flip angle → blood/myocardium signal ratio 2.0–3.2 per case, median
   2.7 over 300 draws; flip 45–80° at 1.5 T, 30–55° at 3 T). Every region has its tissue's signal and nothing else (no
   flow darkening: the signal equation has none, and the course's chapters compute the contrast
   from it), so the blood/myocardium ratio inside the true masks is the signal equations' ratio,
   less what partial volume and the muscle inside the cavity take from it (the tests hold it
   within 12 %). The object is drawn on
   a grid ``oversample`` times finer than the image with soft edges: a boundary of radius r(z)
   that moves by Δr across the slice thickness is a linear ramp of width |Δr|, which is exactly
   the through-slice average (slice profile a box) for a boundary that is locally a cone.
   k-space sampling at the matrix/FOV: the fine grid's centred FFT is truncated to the matrix and
   transformed back (:func:`cmrlab.physics.kspace.fft2c` / ``ifft2c``; the same result as
   :func:`cmrlab.physics.kspace.sample_object`), which gives partial volume and Gibbs ringing. The
   static anatomy is sampled once per slice over the whole FOV; the beating heart is sampled on a
   window around it (the difference from the static picture vanishes at the window's border, so
   only the far tails of its ringing are wrapped into the window). The temporal footprint of a
   segmented acquisition blurs the moving heart: each frame is (1 − 2w)·itself + w·(its two
   neighbours), w = ``motion_blur`` (0.05–0.25), while the labels stay at the frame's instant.
6. **Coils and noise**: the receive array's shading √(Σ_c w_c|S_c|²) (unnormalised maps of
   :func:`cmrlab.physics.coils.coil_sensitivities`, so the image is brighter near the coils;
   anterior coils weigh 1, posterior ones ``coil_posterior`` (0.2–0.8), maximum scaled to 1) and
   complex Gaussian noise of SD σ after the scanner's sensitivity-weighted (adaptive) coil
   combination, whose magnitude is Rician: √((A + σn₁)² + (σn₂)²), A the noise-free signal. (A
   root-sum-of-squares of C coils would add σ²·χ²₂꜀₋₁ instead, a bias that lifts the dark
   myocardium far more than the bright blood and flattens the contrast.) σ is set by the SNR
   (12–30) of the ED LV blood pool, as in :func:`cmrlab.physics.noise.snr_to_sigma`.
7. **Breath-holds**: each slice is acquired in its own breath-hold, so the heart of every slice is
   shifted in-plane by up to ``breath_hold`` (1–4 mm, per case) from the tilted long axis, in a
   random direction (``slice_shifts``); the neighbours that touch it follow it.

Labels are the region at each voxel centre (slice centre), at image resolution: 0 background,
1 RV cavity, 2 LV myocardium, 3 LV cavity (ACDC). Volumes: :attr:`CineCase.volumes` are the
analytic volumes of what the labels sample, by the method of disks (slice spacing × Σ areas at
the slice centres, :func:`cmrlab.physics.cardiac.stack_volume`); :meth:`CineCase.label_volumes`
counts voxels. They differ only by the pixelation of the boundaries: typically < 1.5 % for the
LV and the myocardium and < 3 % for the thin RV crescent at 1.5 mm pixels, more at coarse
matrices (see the tests).
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.phantoms.lge2d import TERRITORIES
from cmrlab.physics import coils, signals, tissues
from cmrlab.physics.cardiac import body_surface_area, lv_volume_curve

__all__ = [
    "ACDC_GROUPS",
    "ANATOMY_NAMES",
    "GROUP_DEFINITIONS",
    "CineCase",
    "GroupDefinition",
    "cine_case",
    "cine_cases",
]

#: The five ACDC diagnostic groups (100 training patients, 20 per group).
ACDC_GROUPS: tuple[str, ...] = ("NOR", "MINF", "DCM", "HCM", "RV")


@dataclass(frozen=True)
class GroupDefinition:
    """One ACDC group: its clinical meaning, the ACDC criterion, and the phantom's parameter ranges.

    ``ranges`` maps a parameter to the (low, high) interval it is drawn from uniformly:
    ``lv_ef`` (%), ``lv_edvi`` (LV EDV / BSA, ml/m²), ``wall`` (ED wall thickness at the base, mm),
    ``rv_edvi`` (ml/m²), ``rv_ef`` (%), ``thinning`` (fraction of the wall lost in the infarct
    territory), ``akinesia`` (fraction of the territory's motion lost), ``septal`` (extra septal
    thickness, fraction).
    """

    name: str
    meaning: str
    criterion: str
    ranges: Mapping[str, tuple[float, float]]


def _groups() -> dict[str, GroupDefinition]:
    normal = {"thinning": (0.0, 0.0), "akinesia": (0.0, 0.0), "septal": (0.0, 0.0)}
    rows = (
        GroupDefinition("NOR", "normal subject", "EF > 50 %, normal wall thickness and volumes",
                        {"lv_ef": (52.0, 70.0), "lv_edvi": (60.0, 95.0), "wall": (7.0, 10.0),
                         "rv_edvi": (60.0, 95.0), "rv_ef": (45.0, 62.0), **normal}),
        GroupDefinition("MINF", "previous myocardial infarction",
                        "EF < 40 %, several segments with abnormal contraction (one coronary territory)",
                        {"lv_ef": (20.0, 38.0), "lv_edvi": (85.0, 130.0), "wall": (7.5, 10.0),
                         "rv_edvi": (60.0, 100.0), "rv_ef": (40.0, 60.0), "thinning": (0.35, 0.55),
                         "akinesia": (0.75, 1.0), "septal": (0.0, 0.0)}),
        GroupDefinition("DCM", "dilated cardiomyopathy", "LV EDV > 100 ml/m² and EF < 40 %",
                        {"lv_ef": (12.0, 38.0), "lv_edvi": (110.0, 170.0), "wall": (6.0, 9.0),
                         "rv_edvi": (65.0, 110.0), "rv_ef": (30.0, 55.0), **normal}),
        GroupDefinition("HCM", "hypertrophic cardiomyopathy",
                        "LV mass > 110 g/m², segments thicker than 15 mm at ED, normal EF",
                        {"lv_ef": (58.0, 78.0), "lv_edvi": (50.0, 80.0), "wall": (15.0, 21.0),
                         "rv_edvi": (55.0, 90.0), "rv_ef": (50.0, 68.0), "thinning": (0.0, 0.0),
                         "akinesia": (0.0, 0.0), "septal": (0.0, 0.35)}),
        GroupDefinition("RV", "abnormal right ventricle (e.g. ARVC)", "RV EDV > 110 ml/m² or RV EF < 40 %",
                        {"lv_ef": (50.0, 65.0), "lv_edvi": (60.0, 90.0), "wall": (7.0, 10.0),
                         "rv_edvi": (115.0, 170.0), "rv_ef": (20.0, 40.0), **normal}),
    )
    return {g.name: GroupDefinition(g.name, g.meaning, g.criterion, MappingProxyType(dict(g.ranges)))
            for g in rows}


#: The definition and parameter ranges of each ACDC group (Bernard et al. 2018), by name.
GROUP_DEFINITIONS: Mapping[str, GroupDefinition] = MappingProxyType(_groups())

# Regions of the anatomy map, back to front: name, tissue (None: no signal).
_REGIONS: tuple[tuple[str, str | None], ...] = (
    ("air", None),
    ("subcutaneous fat", "fat"),
    ("chest wall", "skeletal_muscle"),
    ("lung", "lung"),
    ("liver", "liver"),
    ("vertebra", "fat"),            # fatty marrow inside a dark cortex
    ("cortical bone", None),
    ("aorta", "blood"),
    ("atrium and outflow", "blood"),
    ("epicardial fat", "fat"),
    ("RV wall", "myocardium"),
    ("RV cavity", "blood"),
    ("LV myocardium", "myocardium"),
    ("LV cavity", "blood"),
)
_R = {name: i for i, (name, _) in enumerate(_REGIONS)}
#: Values of :attr:`CineCase.anatomy` (the whole ED scene at the voxel centres).
ANATOMY_NAMES: Mapping[int, str] = MappingProxyType({i: name for i, (name, _) in enumerate(_REGIONS)})

_N_BUNDLES = 20         # trabecular bundles per case
_MAX_BREATH_HOLD = 4.0  # mm, the largest in-plane shift of a slice from a separate breath-hold
_RV_TAPER = math.radians(20.0)   # the RV free wall thins to nothing this far beyond the crescent's tips
_RING_ZONE = 8.0        # mm above the mitral plane over which the myocardial ring disappears
_N_THETA = 720          # quadrature points over the circle


@dataclass(frozen=True)
class CineCase:
    """One simulated cine study (see :func:`cine_case`). Arrays are (X, Y, Z, T), time last.

    ``image`` float32 ≥ 0, the coil-combined magnitude; ``labels`` uint8 (0 background, 1 RV,
    2 MYO, 3 LV) on every frame; ``anatomy`` uint8 (X, Y, Z): every region of the scene at ED
    (:data:`ANATOMY_NAMES`); ``spacing`` (dx, dy, dz) mm, dz the centre-to-centre slice distance;
    ``slice_thickness`` mm (≤ dz; the rest is the gap); ``affine`` 4×4 voxel → mm (x, y, z);
    ``ed``, ``es`` 0-based frames; ``group``, ``height`` (cm), ``weight`` (kg);
    ``volumes`` {"LV", "RV", "MYO"} → (T,) ml, the analytic volumes of what the labels sample;
    ``temporal_resolution`` ms per frame; ``params`` the sampled parameters (plain Python values).
    """

    image: np.ndarray
    labels: np.ndarray
    anatomy: np.ndarray
    spacing: tuple[float, float, float]
    slice_thickness: float
    affine: np.ndarray
    ed: int
    es: int
    group: str
    height: float
    weight: float
    volumes: Mapping[str, np.ndarray]
    temporal_resolution: float
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bsa(self) -> float:
        """Body surface area, m² (Mosteller, thesis Eq 2.4)."""
        return float(body_surface_area(self.height, self.weight))

    def label_volumes(self) -> dict[str, np.ndarray]:
        """Volumes measured from the labels: voxel count × voxel volume, ml per frame, by name."""
        voxel = self.spacing[0] * self.spacing[1] * self.spacing[2] / 1000.0
        return {name: (self.labels == value).sum(axis=(0, 1, 2)).astype(np.float64) * voxel
                for value, name in ((1, "RV"), (2, "MYO"), (3, "LV"))}

    def ejection_fraction(self, structure: str = "LV") -> float:
        """EF (%) of the analytic volumes: 100·(V_ED − V_ES)/V_ED for ``"LV"`` or ``"RV"``."""
        if structure not in ("LV", "RV"):
            raise ArgumentError(f"structure must be 'LV' or 'RV', got {structure!r}")
        v = self.volumes[structure]
        return float(100.0 * (v[self.ed] - v[self.es]) / v[self.ed])


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
def _window(delta: np.ndarray | torch.Tensor, half: float) -> Any:
    """Smooth angular window cos²(π/2 · δ/half) for |δ| < half, else 0 (δ in radians, wrapped)."""
    lib = torch if isinstance(delta, torch.Tensor) else np
    d = lib.remainder(delta + math.pi, 2 * math.pi) - math.pi
    return lib.where(lib.abs(d) < half, lib.cos(0.5 * math.pi * d / half) ** 2, 0.0 * d)


def _sample_params(group: str, seed: int, n_slices: int | None, n_frames: int | None,
                   matrix: int | None, spacing: float | None, slice_spacing: float | None,
                   slice_thickness: float | None) -> dict[str, Any]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, ACDC_GROUPS.index(group)]))
    rg = GROUP_DEFINITIONS[group].ranges

    def u(key: str) -> float:
        lo, hi = rg[key]
        return float(rng.uniform(lo, hi))

    height = float(np.clip(rng.normal(171.0, 9.0), 150.0, 198.0))
    bmi = float(rng.uniform(19.0, 31.0))
    weight = round(bmi * (height / 100.0) ** 2, 1)
    height = round(height, 1)
    bsa = float(body_surface_area(height, weight))
    p: dict[str, Any] = {"group": group, "seed": seed, "height": height, "weight": weight, "bsa": bsa}
    p["lv_ef"], p["lv_edvi"], p["wall"] = u("lv_ef"), u("lv_edvi"), u("wall")
    p["rv_ef"], p["rv_edvi"] = u("rv_ef"), u("rv_edvi")
    p["thinning"], p["akinesia"], p["septal"] = u("thinning"), u("akinesia"), u("septal")
    p["territory"] = str(rng.choice(sorted(TERRITORIES))) if p["thinning"] > 0 else None
    p["edv_target"] = p["lv_edvi"] * bsa
    p["rv_edv_target"] = p["rv_edvi"] * bsa
    p["lv_length"] = float(np.clip(rng.uniform(68.0, 86.0) * (p["edv_target"] / 130.0) ** (1 / 3), 55.0, 125.0))
    p["rv_extent"] = float(rng.uniform(65.0, 95.0))     # half the angle the RV crescent wraps, degrees
    p["heart_rate"] = float(rng.uniform(55.0, 90.0))
    p["es_fraction"] = float(np.clip(0.42 - 0.0012 * (p["heart_rate"] - 60.0) + rng.normal(0, 0.02), 0.3, 0.45))
    # imaging
    p["field_strength"] = float(rng.choice([1.5, 3.0]))
    # flip angle: 45-80° at 1.5 T, lower at 3 T (SAR limits); with TR it sets the blood-myocardium contrast
    p["flip"] = float(rng.uniform(45.0, 80.0) if p["field_strength"] == 1.5 else rng.uniform(30.0, 55.0))
    p["TR"] = float(rng.uniform(2.6, 3.8))
    p["snr"] = float(rng.uniform(12.0, 30.0))
    p["n_coils"] = int(rng.integers(4, 17))
    p["coil_radius"] = float(rng.uniform(1.45, 2.0))
    p["coil_angle"] = float(rng.uniform(0.0, 2 * math.pi))
    p["spacing"] = float(spacing) if spacing is not None else float(rng.uniform(1.37, 1.68))
    fov = float(rng.uniform(300.0, 400.0))
    if matrix is None:
        matrix = int(2 * round(fov / p["spacing"] / 2))
        if spacing is None:
            matrix = int(np.clip(matrix, 160, 256))
    elif spacing is None:
        p["spacing"] = fov / matrix
    p["matrix"] = int(matrix)
    p["fov"] = p["matrix"] * p["spacing"]
    p["slice_spacing"] = float(slice_spacing) if slice_spacing is not None else float(rng.choice(
        [5.0, 6.5, 8.0, 10.0, 10.0, 10.0]))
    if slice_thickness is None:
        slice_thickness = min(p["slice_spacing"], float(rng.choice([5.0, 6.0, 7.0, 8.0])))
    p["slice_thickness"] = float(slice_thickness)
    heart_length = p["lv_length"] + 0.6 * p["wall"]
    p["first_slice_z"] = float(rng.uniform(-min(6.0, 0.5 * p["slice_spacing"]), 0.3 * p["slice_spacing"]))
    if n_slices is None:
        n_slices = int(np.clip(math.ceil((heart_length - p["first_slice_z"]) / p["slice_spacing"]
                                         + rng.uniform(-0.8, 0.8)), 8, 14))
    p["n_slices"] = int(n_slices)
    p["n_frames"] = int(n_frames) if n_frames is not None else int(rng.integers(12, 36))
    # pose: LV centre in the body (mm; x patient's left, y anterior), rotation, long-axis tilt
    p["lv_centre"] = (float(15.0 + rng.uniform(-15, 15)), float(5.0 + rng.uniform(-12, 12)))
    p["rotation"] = float(rng.uniform(-25.0, 25.0))
    p["tilt"] = (float(rng.uniform(-0.12, 0.12)), float(rng.uniform(-0.12, 0.12)))   # mm per mm of z
    p["rv_direction"] = float(150.0 + rng.uniform(-10.0, 10.0))
    p["fov_centre"] = (float(rng.uniform(-0.06, 0.06) * p["fov"]), float(rng.uniform(-0.06, 0.06) * p["fov"]))
    p["body_scale"] = float(np.clip((bmi / 24.0) ** 0.5 * (height / 171.0), 0.85, 1.25))
    # texture of the cavity
    p["papillary"] = (float(45.0 + rng.uniform(-20, 20)), float(255.0 + rng.uniform(-20, 20)))
    p["trabeculation"] = float(rng.uniform(0.08, 0.22))
    p["trabecular_harmonics"] = [(int(k), float(a), float(ph)) for k, a, ph in zip(
        rng.integers(5, 16, 6), rng.uniform(0.4, 1.0, 6), rng.uniform(0, 2 * math.pi, 6))]
    p["noise_seed"] = int(rng.integers(2 ** 31))
    # epicardial fat (mm): thin or absent over most of the heart, thick in the interventricular
    # grooves (the RV insertions), along the RV free wall, in the AV groove (base) and at the apex
    p["fat_base"] = float(rng.uniform(0.0, 1.0))
    p["fat_grooves"] = float(rng.uniform(2.0, 8.0))
    p["fat_rv"] = float(rng.uniform(0.5, 6.0))
    p["fat_av"] = float(rng.uniform(3.0, 9.0))
    p["fat_apex"] = float(rng.uniform(1.0, 6.0))
    p["fat_patches"] = [(float(a), float(w), float(h)) for a, w, h in zip(
        rng.uniform(0.0, 360.0, 3), rng.uniform(20.0, 50.0, 3), rng.uniform(0.0, 4.0, 3))]
    # neighbours of myocardium-like signal: chest wall over the RV, liver under the apical inferior wall
    p["chest_gap"] = float(rng.uniform(1.0, 10.0))
    p["diaphragm_gap"] = float(rng.uniform(0.0, 2.0))
    # receive array: anterior coils at full weight, posterior (table) coils at this weight
    p["coil_posterior"] = float(rng.uniform(0.2, 0.8))
    # temporal footprint of a segmented acquisition: weight of each neighbouring frame
    p["motion_blur"] = float(rng.uniform(0.05, 0.25))
    # RV free wall (mm); papillary muscles (tangential, radial semi-axes in mm: anterolateral, then
    # posteromedial); trabecular bundles (angle, radius mm, depth into the cavity mm, phase)
    p["rv_wall"] = float(rng.uniform(3.0, 5.0))
    p["papillary_size"] = [(float(rng.uniform(4.0, 6.0)), float(rng.uniform(3.5, 5.5))),
                           (float(rng.uniform(3.0, 5.0)), float(rng.uniform(3.0, 4.5)))]
    p["trabecular_bundles"] = [(float(a), float(r), float(d), float(ph)) for a, r, d, ph in zip(
        rng.uniform(0.0, 2 * math.pi, _N_BUNDLES), rng.uniform(0.7, 1.5, _N_BUNDLES),
        rng.uniform(0.0, 2.0, _N_BUNDLES), rng.uniform(0.0, 2 * math.pi, _N_BUNDLES))]
    # separate breath-holds: every slice's heart is shifted in-plane by up to breath_hold mm
    p["breath_hold"] = float(rng.uniform(1.0, _MAX_BREATH_HOLD))
    radius = p["breath_hold"] * np.sqrt(rng.uniform(0.0, 1.0, p["n_slices"]))
    angle = rng.uniform(0.0, 2 * math.pi, p["n_slices"])
    p["slice_shifts"] = [(float(r * math.cos(a)), float(r * math.sin(a))) for r, a in zip(radius, angle)]
    return p


# --------------------------------------------------------------------------------------------
# geometry (NumPy, per slice and frame)
# --------------------------------------------------------------------------------------------
def _fat_max(p: Mapping[str, Any], z: np.ndarray) -> float:
    """The largest epicardial fat thickness (mm) over all angles (0.5° steps, plus 0.5 mm) and
    the slice positions ``z``: sizes the window the heart is drawn in."""
    theta = torch.linspace(-math.pi, math.pi, _N_THETA + 1, dtype=torch.float64)
    return 0.5 + max(max(float(_fat_lv(theta, p, float(zs)).max()), float(_fat_rv(theta, p, float(zs)).max()))
                     for zs in z)


def _fat_lv(theta: torch.Tensor, p: Mapping[str, Any], z: float) -> torch.Tensor:
    """Epicardial fat thickness (mm) around the LV at angle θ (heart frame) and depth z (mm).

    f(θ, z) = f₀ + g·[w(θ − θ_RV − α) + w(θ − θ_RV + α)] + Σ hₖ·w(θ − θₖ) + a·b(z)·w(θ, 90°)
    + c·(z/L)², with w the cos² windows (25° for the grooves, at the RV insertions ±α =
    ``rv_extent``), b(z) = clip(1 − z/12 mm, 0, 1) the
    AV groove at the base (around the lateral wall) and c the apical fat.
    """
    rv, tip = math.radians(p["rv_direction"]), math.radians(p["rv_extent"])
    f = p["fat_base"] + p["fat_grooves"] * (_window(theta - rv - tip, math.radians(25.0))
                                           + _window(theta - rv + tip, math.radians(25.0)))
    for ang, half, h in p["fat_patches"]:
        f = f + h * _window(theta - math.radians(ang), math.radians(half))
    basal = min(max(1.0 - z / 12.0, 0.0), 1.0)
    if basal > 0:
        f = f + p["fat_av"] * basal * _window(theta, math.radians(90.0))
    frac = min(max(z / p["lv_length"], 0.0), 1.0)
    return f + p["fat_apex"] * frac ** 2


def _fat_rv(phi: Any, p: Mapping[str, Any], z: float) -> Any:
    """Fat thickness (mm) over the RV free wall at angle φ from the RV's direction (about the LV centre)."""
    basal = min(max(1.0 - z / 12.0, 0.0), 1.0)
    return p["fat_base"] + (p["fat_rv"] + p["fat_av"] * basal) * _window(phi, 0.8 * math.radians(p["rv_extent"]))


def _rv_profile(phi: Any, p: Mapping[str, Any]) -> Any:
    """w(φ) = (1 − (φ/α)²)^0.6 for |φ| < α, else 0: the RV crescent's depth at angle φ from its
    direction (about the LV centre), as a fraction of the deepest point; α = ``rv_extent``."""
    lib = torch if isinstance(phi, torch.Tensor) else np
    x = phi / math.radians(p["rv_extent"])
    return lib.clip(1.0 - x * x, 0.0, None) ** 0.6


def _rv_taper(phi: Any, p: Mapping[str, Any]) -> Any:
    """1 over the crescent, falling to 0 over :data:`_RV_TAPER` beyond its tips (the insertion
    points, where the RV free wall joins the LV): the share of the RV wall drawn at angle φ."""
    lib = torch if isinstance(phi, torch.Tensor) else np
    return lib.clip((math.radians(p["rv_extent"]) + _RV_TAPER - lib.abs(phi)) / _RV_TAPER, 0.0, 1.0)


def _rv_depth(area: np.ndarray, r_epi: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Deepest point t (mm) of the crescent r_epi < ρ ≤ r_epi + t·w(φ) whose area is ``area``.

    The area ∫ ½((r + t·w)² − r²) dφ = r·t·W₁ + ½·t²·W₂ (W₁ = ∫w dφ, W₂ = ∫w² dφ) is a quadratic
    in t, solved exactly; 0 where there is no RV.
    """
    phi = np.linspace(-math.pi, math.pi, _N_THETA, endpoint=False)
    w = _rv_profile(phi, p)
    w1, w2 = w.mean() * 2 * math.pi, (w * w).mean() * 2 * math.pi
    a = np.maximum(area, 0.0)
    return (np.sqrt((r_epi * w1) ** 2 + 2.0 * w2 * a) - r_epi * w1) / w2


def _thickness_pattern(theta: Any, p: Mapping[str, Any]) -> Any:
    """Multiplier p(θ) of the ED wall thickness at angle θ (heart frame, radians)."""
    pat = 1.0 + 0.0 * theta
    if p["territory"] is not None:
        pat = pat - p["thinning"] * _window(theta - math.radians(TERRITORIES[p["territory"]]), math.radians(60))
    if p["septal"] > 0:
        pat = pat + p["septal"] * _window(theta - math.radians(p["rv_direction"]), math.radians(70))
    return pat


def _motion_weight(theta: Any, p: Mapping[str, Any]) -> Any:
    """1 − a·w_terr(θ): the share of normal endocardial motion kept at angle θ."""
    if p["territory"] is None:
        return 1.0 + 0.0 * theta
    return 1.0 - p["akinesia"] * _window(theta - math.radians(TERRITORIES[p["territory"]]), math.radians(60))


def _trabecular(theta: Any, p: Mapping[str, Any]) -> Any:
    """q(θ) ∈ [0, 1]: a spiky random pattern of trabeculae along the endocardium."""
    lib = torch if isinstance(theta, torch.Tensor) else np
    s = 0.0 * theta
    for k, a, ph in p["trabecular_harmonics"]:
        s = s + a * lib.cos(k * theta + ph)
    norm = 0.6 * sum(a for _, a, _ in p["trabecular_harmonics"])
    return lib.clip(s / norm, 0.0, 1.0) ** 2


def _slice_geometry(p: Mapping[str, Any], z: np.ndarray) -> dict[str, np.ndarray]:
    """ED geometry of the LV at positions ``z`` (any shape): R (epicardial radius), area A, myo M,
    κ, RV target area, the ring fraction and whether the blood pool is labelled LV."""
    L, h0 = p["lv_length"], p["wall"]
    r0 = math.sqrt(3.0 * p["edv_target"] * 1000.0 / (2.0 * math.pi * L))
    zc = np.clip(z, 0.0, L)
    area = np.where(z < L, math.pi * r0 ** 2 * (1.0 - (zc / L) ** 2), 0.0)
    h = h0 * (1.0 - 0.35 * (zc / L) ** 2)
    basal = z < 0
    theta = np.linspace(0, 2 * math.pi, _N_THETA, endpoint=False)
    pat = _thickness_pattern(theta, p)                                  # (Θ,)
    th = h[..., None] * np.where(basal[..., None], 1.0, pat)                   # (..., Θ)
    # R such that ½∮ max(R − th, 0)² dθ = A (bisection; the left side grows with R)
    lo = np.zeros(z.shape)
    hi = np.sqrt(area / math.pi) + th.max(-1) + 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        small = (np.clip(mid[..., None] - th, 0, None) ** 2).mean(-1) * math.pi < area
        lo, hi = np.where(small, mid, lo), np.where(small, hi, mid)
    R = 0.5 * (lo + hi)
    # apical cap beyond the cavity: a disc of myocardium closing over 0.8·h(L)
    cap_len = 0.8 * h0 * 0.65
    cap = h0 * 0.65 * np.sqrt(np.clip(1.0 - ((z - L) / cap_len) ** 2, 0.0, None))
    R = np.where(z < L, R, cap)
    r_ed2 = np.clip(R[..., None] - th, 0, None) ** 2 * (z < L)[..., None]
    motion = _motion_weight(theta, p)
    moving = 0.5 * (r_ed2 * motion).mean(-1) * 2 * math.pi
    kappa = np.where(moving > 0, p["lv_ef"] / 100.0 * area / np.where(moving > 0, moving, 1.0), 0.0)
    myo = math.pi * R ** 2 - area
    ring = np.clip(1.0 + z / _RING_ZONE, 0.0, 1.0)
    # RV: crescent area profile, stopping at 0.8 L
    l_rv = 0.8 * L
    rv_shape = np.where(z < l_rv, 1.0 - (np.clip(z, 0, l_rv) / l_rv) ** 2, 0.0)
    rv_a0 = 3.0 * p["rv_edv_target"] * 1000.0 / (2.0 * l_rv)               # (2/3)·a0·l_rv = RV EDV
    return {"R": R, "area": area, "myo": myo, "kappa": kappa, "ring": ring, "lv_labelled": ring >= 0.5,
            "rv_area": rv_a0 * rv_shape, "basal": basal}


def _frames(p: Mapping[str, Any]) -> dict[str, Any]:
    """Per-slice, per-frame scalars of the whole case (NumPy), with slab ends for partial volume."""
    S, T = p["n_slices"], p["n_frames"]
    z_c = p["first_slice_z"] + p["slice_spacing"] * np.arange(S)
    half = 0.5 * p["slice_thickness"]
    z3 = np.stack([z_c, z_c - half, z_c + half], axis=0)                      # (3, S)
    geo = _slice_geometry(p, z3)
    lv = lv_volume_curve(T, 1.0, 1.0 - p["lv_ef"] / 100.0, p["es_fraction"])
    g = (1.0 - lv.volumes) / (p["lv_ef"] / 100.0)                              # 0 at ED, 1 at ES
    rv_g = g  # the RV follows the same timing
    area_t = geo["area"][..., None] * (1.0 - p["lv_ef"] / 100.0 * g)           # (3, S, T)
    r_epi = np.sqrt((area_t + geo["myo"][..., None]) / math.pi)
    r_mean = np.sqrt(area_t / math.pi)
    # RV crescent against the LV epicardium: its area follows the RV's own EF
    rv_target = geo["rv_area"][..., None] * (1.0 - p["rv_ef"] / 100.0 * rv_g)
    rv_target = np.where(rv_target > 1.0, rv_target, 0.0)
    rv_t = _rv_depth(rv_target, r_epi, p)

    def ends(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(δ_lo, δ_hi): how far the boundary moves inwards/outwards across the slab."""
        return np.minimum(x.min(0) - x[0], 0.0), np.maximum(x.max(0) - x[0], 0.0)

    out = {
        "z": z_c, "g": g, "ed": lv.ed_frame, "es": lv.es_frame,
        "R_ed": geo["R"][0], "kappa": geo["kappa"][0], "basal": geo["basal"][0], "ring": geo["ring"][0],
        "lv_labelled": geo["lv_labelled"][0],
        "r_epi": r_epi[0], "r_mean": r_mean[0], "rv_t": rv_t[0], "has_cavity": geo["area"][0] > 0,
        "areas": {"LV": np.where(geo["lv_labelled"][0][:, None], area_t[0], 0.0),
                  "MYO": np.broadcast_to((geo["myo"][0] * geo["ring"][0])[:, None], (S, T)).copy(),
                  "RV": rv_target[0]},
    }
    out["endo_lo"], out["endo_hi"] = ends(r_mean)
    out["epi_lo"], out["epi_hi"] = ends(r_epi)
    out["rv_lo"], out["rv_hi"] = ends(r_epi + rv_t)
    # the wall of a slab without cavity at its centre but with one at an end: shown by endo_hi
    return out


# --------------------------------------------------------------------------------------------
# drawing (torch)
# --------------------------------------------------------------------------------------------
def _static_regions(x: torch.Tensor, y: torch.Tensor, p: Mapping[str, Any], z: float,
                    near: Mapping[str, Any]) -> torch.Tensor:
    """Region index (``_REGIONS``) of the parts that do not beat, at body-frame points (x, y).

    ``near`` describes the heart of this slice at ED (see :func:`_setup`): its LV centre and
    epicardial radius, its most anterior point (``top``, ``x_top``) and most inferior point
    (``bottom``), to bring the chest wall and the liver against it.
    """
    s = p["body_scale"]
    heart, r_heart = near["centre"], near["r"]

    def ellipse(cx: float, cy: float, a: float, b: float, ang: float = 0.0) -> torch.Tensor:
        c, sn = math.cos(ang), math.sin(ang)
        u, v = x - cx, y - cy
        return ((u * c + v * sn) / a) ** 2 + ((-u * sn + v * c) / b) ** 2 <= 1.0

    reg = torch.zeros(x.shape, dtype=torch.uint8, device=x.device)
    reg[ellipse(0.0, -10.0, 150.0 * s, 105.0 * s)] = _R["subcutaneous fat"]
    reg[ellipse(0.0, -10.0, 150.0 * s - 8.0, 105.0 * s - 8.0)] = _R["chest wall"]
    thorax = ellipse(0.0, -8.0, 150.0 * s - 22.0, 105.0 * s - 21.0)
    reg[thorax] = _R["lung"]
    # the anterior chest wall (sternum, intercostal muscle) comes to within chest_gap of the heart
    reg[thorax & (y > near["top"] + p["chest_gap"] + (x - near["x_top"]) ** 2 / 160.0)] = _R["chest wall"]
    frac = float(np.clip(z / max(p["lv_length"], 1.0), 0.0, 1.2))             # liver grows towards the apex
    grow = 0.55 + 0.6 * frac
    reg[thorax & ellipse(-55.0 + 25.0 * frac, -62.0 + 18.0 * frac, 78.0 * grow, 40.0 * grow,
                         math.radians(15.0))] = _R["liver"]
    if frac > 0.1:    # the diaphragm and liver dome rise against the inferior (diaphragmatic) wall
        gap = p["diaphragm_gap"] + 8.0 * max(0.0, 1.0 - (frac - 0.1) / 0.15)
        reg[thorax & (y < near["bottom"] - gap - (x - heart[0]) ** 2 / 200.0)] = _R["liver"]
    spine_y = -10.0 - (105.0 * s - 21.0) + 4.0
    reg[ellipse(0.0, spine_y, 17.0, 15.0)] = _R["cortical bone"]
    reg[ellipse(0.0, spine_y, 14.5, 12.5)] = _R["vertebra"]
    reg[(x - 22.0) ** 2 + (y - (spine_y + 26.0)) ** 2 <= 11.0 ** 2] = _R["aorta"]
    # basal slices: the left atrium behind the LV and the aortic root beside the septum
    if z < 12.0:
        rot = math.radians(p["rotation"])
        for ang, dist, rad in ((-100.0, 1.05, 0.8), (125.0, 1.0, 0.45)):
            a = rot + math.radians(ang)
            cx, cy = heart[0] + dist * r_heart * math.cos(a), heart[1] + dist * r_heart * math.sin(a)
            reg[(x - cx) ** 2 + (y - cy) ** 2 <= (rad * r_heart * (1.0 - max(z, 0.0) / 14.0)) ** 2] = \
                _R["atrium and outflow"]
    return reg


def _grid(n: int, step: float, origin: float, start: int = 0, count: int | None = None) -> torch.Tensor:
    """Positions origin + (i − n//2)·step of pixels i = start … start+count−1 (kspace convention)."""
    count = n if count is None else count
    return (origin + (torch.arange(start, start + count, dtype=torch.float64) - n // 2) * step).to(torch.float32)


def _heart_frame(x: torch.Tensor, y: torch.Tensor, centre: tuple[float, float], rot: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates (u, v) in the heart frame: centred on the LV, turned back by ``rot`` radians."""
    dx, dy = x - centre[0], y - centre[1]
    c, s = math.cos(rot), math.sin(rot)
    return dx * c + dy * s, -dx * s + dy * c


class _Slice:
    """Per-pixel maps of one slice (heart frame) on a grid, shared by all frames."""

    def __init__(self, u: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any], fr: Mapping[str, Any],
                 s: int) -> None:
        self.rho = torch.sqrt(u * u + v * v)
        theta = torch.atan2(v, u)
        basal = bool(fr["basal"][s])
        pat = torch.ones_like(theta) if basal else _thickness_pattern(theta, p)
        zc = float(np.clip(fr["z"][s], 0.0, p["lv_length"]))
        h = p["wall"] * (1.0 - 0.35 * (zc / p["lv_length"]) ** 2)
        r_ed2 = (fr["R_ed"][s] - h * pat).clamp(min=0.0) ** 2 * float(fr["has_cavity"][s])
        self.A = r_ed2
        self.B = r_ed2 * (float(fr["kappa"][s]) * _motion_weight(theta, p))
        depth = 0.0 if basal else p["trabeculation"] * (0.6 + 0.6 * zc / p["lv_length"])
        self.trab = 1.0 - depth * _trabecular(theta, p)
        # the RV crescent: angle φ from the RV's direction, its depth profile and its wall's extent
        phi = torch.remainder(theta - math.radians(p["rv_direction"]) + math.pi, 2 * math.pi) - math.pi
        self.rv_w = _rv_profile(phi, p)
        self.rv_wall = _rv_taper(phi, p) * p["rv_wall"]
        z = float(fr["z"][s])
        self.fat_lv = _fat_lv(theta, p, z)
        self.fat_rv = _fat_rv(phi, p, z) * _rv_taper(phi, p)
        ring = float(fr["ring"][s])
        if ring < 1.0:   # the ring is kept around the lateral wall (θ = 0)
            self.arc = (_window_abs(theta) <= ring * math.pi).to(u.dtype)
        else:
            self.arc = None
        self.u, self.v = u, v

    def rv_outer(self, fr: Mapping[str, Any], s: int, frames: Any = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame radius of the RV cavity's outer border and of its free wall's outer border."""
        r_epi, rv_t = fr["r_epi"][s][frames], fr["rv_t"][s][frames]
        cavity = _col(np.atleast_1d(r_epi)) + _col(np.atleast_1d(rv_t)) * self.rv_w
        on = _col(np.clip(np.atleast_1d(rv_t) / 2.0, 0.0, 1.0))       # no RV wall where there is no RV
        return cavity, cavity + on * self.rv_wall


def _endo_radius(p: Mapping[str, Any], fr: Mapping[str, Any], s: int, angles: np.ndarray) -> np.ndarray:
    """The endocardial radius r(θ, t) (mm, before trabeculation) at ``angles`` (K,): (K, T)."""
    zc = float(np.clip(fr["z"][s], 0.0, p["lv_length"]))
    h = p["wall"] * (1.0 - 0.35 * (zc / p["lv_length"]) ** 2)
    pat = np.ones_like(angles) if fr["basal"][s] else _thickness_pattern(angles, p)
    r_ed2 = np.clip(fr["R_ed"][s] - h * pat, 0.0, None) ** 2 * float(fr["has_cavity"][s])
    keep = 1.0 - float(fr["kappa"][s]) * _motion_weight(angles, p)[:, None] * np.asarray(fr["g"])[None]
    return np.sqrt(np.clip(r_ed2[:, None] * keep, 0.0, None))


def _cavity_muscle(m: _Slice, p: Mapping[str, Any], fr: Mapping[str, Any], s: int, step: float) -> torch.Tensor | None:
    """Covered fraction (T, H, W) of the muscle inside the LV cavity: the two papillary muscles and the
    trabecular bundles, all attached to the endocardium and moving with it; ``None`` if none.

    Papillary muscles (anterolateral, posteromedial at the angles ``papillary``) are ellipses with
    tangential and radial semi-axes ``papillary_size``, from 0.2 L to 0.8 L (largest at mid-cavity),
    their centres 0.75 radial semi-axes inside the local endocardium (a quarter is in the wall); as the
    cavity empties their area grows as r_ED/r(t) (they shorten and thicken). Trabecular bundles are
    discs of 0.7–1.5 mm radius 0–2 mm inside the endocardium, denser towards the apex.
    """
    L, z = p["lv_length"], float(fr["z"][s])
    frac = z / L
    if not fr["has_cavity"][s] or frac <= 0.05:
        return None
    T = len(fr["g"])
    cover = torch.zeros((T,) + tuple(m.u.shape), dtype=m.u.dtype)

    def blob(angle: float, centre: np.ndarray, a_t: np.ndarray, a_r: np.ndarray) -> None:
        """Max-combine the soft ellipse (tangential a_t, radial a_r) centred at ``centre`` along ``angle``.

        Computed only on the grid rows and columns its path over the frames can reach."""
        c, sn = math.cos(angle), math.sin(angle)
        mid = 0.5 * (float(centre.max()) + float(centre.min()))
        reach = 0.5 * float(centre.max() - centre.min()) + float(max(a_t.max(), a_r.max())) + 2 * step
        near = (m.u - mid * c) ** 2 + (m.v - mid * sn) ** 2 <= reach * reach          # (H, W), cheap
        rows, cols = torch.nonzero(near.any(1)).flatten(), torch.nonzero(near.any(0)).flatten()
        if len(rows) == 0 or len(cols) == 0:
            return
        box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        du, dv = m.u[box] - _col(centre * c), m.v[box] - _col(centre * sn)
        rr, tt = du * c + dv * sn, dv * c - du * sn
        d = torch.sqrt((rr * _col(1.0 / a_r)) ** 2 + (tt * _col(1.0 / a_t)) ** 2)
        edge = _col(np.minimum(a_t, a_r) / step)
        part = cover[:, box[0], box[1]]
        torch.maximum(part, ((1.0 - d) * edge + 0.5).clamp_(0.0, 1.0), out=part)

    size = math.sqrt(max(1.0 - ((frac - 0.5) / 0.3) ** 2, 0.0))
    if size > 0.15:
        angles = np.radians(np.asarray(p["papillary"], dtype=float))
        r_loc = _endo_radius(p, fr, s, angles)                                   # (2, T)
        for k, (a_t, a_r) in enumerate(p["papillary_size"]):
            grow = np.sqrt(np.clip(r_loc[k, 0] / np.maximum(r_loc[k], 1e-3), 1.0, 2.0))
            at, ar = a_t * size * grow, a_r * size * grow
            blob(float(angles[k]), np.maximum(r_loc[k] - 0.75 * ar, 0.0), at, ar)
    dense = min(max((frac - 0.05) / 0.5, 0.0), 1.0)
    if dense > 0:
        bundles = np.asarray(p["trabecular_bundles"], dtype=float)              # (K, 4)
        angles = bundles[:, 0] + 0.25 * np.sin(z / 12.0 + bundles[:, 3])        # bundles twist along z
        r_loc = _endo_radius(p, fr, s, angles)
        for k in range(len(bundles)):
            rad = np.full(T, bundles[k, 1] * (0.5 + 0.5 * dense))
            blob(float(angles[k]), np.maximum(r_loc[k] - bundles[k, 2] * dense, 0.0), rad, rad)
    return cover


def _window_abs(theta: torch.Tensor) -> torch.Tensor:
    return torch.abs(torch.remainder(theta + math.pi, 2 * math.pi) - math.pi)


def _col(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))[:, None, None]


def _draw_heart(m: _Slice, base: torch.Tensor, p: Mapping[str, Any], fr: Mapping[str, Any], s: int,
                sig: Mapping[str, float], step: float) -> torch.Tensor:
    """Signal of the beating heart painted over ``base`` (H, W) for every frame: (T, H, W).

    Every boundary is a ramp between its innermost and outermost radius across the slab
    (through-slice partial volume), at least one grid step wide (in-plane partial volume). Every
    region has its tissue's signal ``sig`` (blood, myocardium, fat), nothing else.
    """
    g = _col(fr["g"])

    def occ(rho: torch.Tensor, r: Any, lo: np.ndarray, hi: np.ndarray) -> torch.Tensor:
        """clamp((r + δ_hi + step/2 − ρ)/(δ_hi − δ_lo + step), 0, 1): the covered fraction."""
        inv_w = 1.0 / (hi[s] - lo[s] + step)
        if isinstance(r, torch.Tensor) and r.shape[-1] > 1:     # a per-pixel radius
            return ((r + _col(hi[s] + 0.5 * step) - rho) * _col(inv_w)).clamp_(0.0, 1.0)
        c = _col((np.asarray(r) + hi[s] + 0.5 * step) * inv_w)
        return torch.addcmul(c, rho, _col(-inv_w)).clamp_(0.0, 1.0)

    def occ_sum(b: np.ndarray, terms: list, lo: np.ndarray, hi: np.ndarray) -> torch.Tensor:
        """:func:`occ` of the radius b(t) + Σₖ aₖ(t)·fₖ (per-frame aₖ, per-pixel maps fₖ), built in
        place: one (T, H, W) array, not one per term."""
        inv_w = 1.0 / (hi[s] - lo[s] + step)
        out = torch.addcmul(_col((b + hi[s] + 0.5 * step) * inv_w), m.rho, _col(-inv_w))
        for a, f in terms:
            out.addcmul_(_col(a * inv_w), f)
        return out.clamp_(0.0, 1.0)

    r_epi, rv_t = fr["r_epi"][s], fr["rv_t"][s]
    ones = np.ones_like(r_epi)
    # the RV's borders about the LV centre (see _Slice.rv_outer): cavity r_epi + t·w(φ), free wall
    # outside it (none where there is no RV), epicardial fat outside that
    cavity = [(rv_t, m.rv_w)]
    wall_terms = cavity + [(np.clip(rv_t / 2.0, 0.0, 1.0), m.rv_wall)]
    v = base.expand(g.shape[0], *base.shape).clone()
    fat = occ_sum(r_epi, [(ones, m.fat_lv)], fr["epi_lo"], fr["epi_hi"])
    torch.maximum(fat, occ_sum(r_epi, wall_terms + [(ones, m.fat_rv)], fr["rv_lo"], fr["rv_hi"]), out=fat)
    v.lerp_(torch.tensor(sig["fat"]), fat)
    v.lerp_(torch.tensor(sig["myocardium"]), occ_sum(r_epi, wall_terms, fr["rv_lo"], fr["rv_hi"]))
    v.lerp_(torch.tensor(sig["blood"]), occ_sum(r_epi, cavity, fr["rv_lo"], fr["rv_hi"]))
    wall = occ(m.rho, r_epi, fr["epi_lo"], fr["epi_hi"])
    if m.arc is None:
        v.lerp_(torch.tensor(sig["myocardium"]), wall)
    else:   # above the mitral plane: the ring is partial, the rest is atrioventricular-groove fat
        v.lerp_(torch.tensor(sig["myocardium"]), wall * m.arc)
        v.lerp_(torch.tensor(sig["fat"]), wall * (1.0 - m.arc))
    r_endo = (m.A - m.B * g).clamp_(min=0.0).sqrt_() * m.trab
    v.lerp_(torch.tensor(sig["blood"]), occ(m.rho, r_endo, fr["endo_lo"], fr["endo_hi"]))
    muscle = _cavity_muscle(m, p, fr, s, step)
    if muscle is not None:
        v.lerp_(torch.tensor(sig["myocardium"]), muscle)
    return v


def _labels(m: _Slice, fr: Mapping[str, Any], s: int) -> torch.Tensor:
    """ACDC labels at the grid points for every frame: (T, H, W) uint8 (region at the slice centre).

    Papillary muscles and trabeculae inside the endocardial contour are LV cavity (3), the clinical
    convention; above the mitral plane, a blood pool inside less than half a ring is not labelled.
    """
    g = _col(fr["g"])
    r_epi = _col(fr["r_epi"][s])
    inside_epi = m.rho <= r_epi
    lab = torch.zeros(inside_epi.shape, dtype=torch.uint8)
    lab[(m.rho <= m.rv_outer(fr, s)[0]) & ~inside_epi] = 1
    cavity = m.rho * m.rho <= m.A - m.B * g
    lab[(inside_epi if m.arc is None else inside_epi & (m.arc > 0)) & ~cavity] = 2
    if fr["lv_labelled"][s]:
        lab[cavity] = 3
    return lab


def _bandlimit(fine: torch.Tensor, n: int) -> torch.Tensor:
    """k-space sampling of a real fine grid (..., P, P) at n × n (P a multiple of n, n even).

    The grid's DFT is truncated to the n × n lowest spatial frequencies |k| < n/(2·FOV) — what a
    scanner measures at that matrix — and transformed back, scaled by n/P so that intensities keep
    their units. This is :func:`cmrlab.physics.kspace.sample_object` for a grid object (the test
    checks it); done with real FFTs (the object is real), so the image is the real part of the
    scanner's (the Nyquist column's imaginary part, a few per mille of an edge, is dropped).
    Returns a real (..., n, n) image whose pixel i sits where fine pixel i·P/n does.
    """
    P = fine.shape[-1]
    k = torch.fft.rfft2(fine)
    h = n // 2
    crop = torch.cat([k[..., :h, :h + 1], k[..., P - h:, :h + 1]], dim=-2)
    return torch.fft.irfft2(crop, s=(n, n)) * ((n / P) ** 2)


# --------------------------------------------------------------------------------------------
# the phantom
# --------------------------------------------------------------------------------------------
def _check(group: Any, seed: Any, n_slices: Any, n_frames: Any, matrix: Any, spacing: Any,
           slice_spacing: Any, slice_thickness: Any, oversample: Any) -> tuple:
    if not isinstance(group, str) or group.strip().upper() not in ACDC_GROUPS:
        raise ArgumentError(f"group must be one of {', '.join(ACDC_GROUPS)}, got {group!r}")
    seed = check_int("seed", seed, 0)
    n_slices = None if n_slices is None else check_int("n_slices", n_slices, 2)
    if n_slices is not None and n_slices > 40:
        raise ArgumentError(f"n_slices must be at most 40, got {n_slices}")
    n_frames = None if n_frames is None else check_int("n_frames", n_frames, 4)
    if n_frames is not None and n_frames > 60:
        raise ArgumentError(f"n_frames must be at most 60, got {n_frames}")
    matrix = None if matrix is None else check_int("matrix", matrix, 32)
    if matrix is not None and (matrix > 512 or matrix % 2):
        raise ArgumentError(f"matrix must be an even integer from 32 to 512, got {matrix}")
    spacing = None if spacing is None else check_number("spacing", spacing, 0.0, 10.0, low_open=True)
    slice_spacing = None if slice_spacing is None else check_number("slice_spacing", slice_spacing, 0.0, 20.0, low_open=True)
    if slice_thickness is not None:
        slice_thickness = check_number("slice_thickness", slice_thickness, 0.0, 20.0, low_open=True)
        if slice_spacing is not None and slice_thickness > slice_spacing:
            raise ArgumentError(f"slice_thickness ({slice_thickness:g} mm) must not exceed slice_spacing "
                                f"({slice_spacing:g} mm): slices would overlap")
    oversample = check_int("oversample", oversample, 1)
    return group.strip().upper(), seed, n_slices, n_frames, matrix, spacing, slice_spacing, slice_thickness, oversample


def _setup(p: dict[str, Any]) -> dict[str, Any]:
    """Frames geometry, window and signals shared by the image and the label paths."""
    fr = _frames(p)
    if p["slice_thickness"] > p["slice_spacing"] + 1e-9:
        raise ArgumentError(f"slice_thickness ({p['slice_thickness']:g} mm) must not exceed slice_spacing "
                            f"({p['slice_spacing']:g} mm)")
    N, dx = p["matrix"], p["spacing"]
    # heart window (low-res pixels, even): holds the LV, RV and fat at every frame
    fat = _fat_max(p, fr["z"])
    reach = max(float(np.max(fr["r_epi"] + fr["epi_hi"])) + fat,
                float(np.max(fr["r_epi"] + fr["rv_t"] + fr["rv_hi"])) + p["rv_wall"] + fat) + 8.0
    pw = min(N, 2 * int(math.ceil(reach / dx)))
    # the long axis (tilted), plus each slice's own breath-hold shift
    centres = [(p["lv_centre"][0] + p["tilt"][0] * z + sx, p["lv_centre"][1] + p["tilt"][1] * z + sy)
               for z, (sx, sy) in zip(fr["z"], p["slice_shifts"])]
    starts = []
    for cx, cy in centres:
        ix = int(round((cx - p["fov_centre"][0]) / dx)) + N // 2 - pw // 2
        iy = int(round((cy - p["fov_centre"][1]) / dx)) + N // 2 - pw // 2
        starts.append((min(max(ix, 0), N - pw), min(max(iy, 0), N - pw)))
    # the heart's extent at ED per slice, for the neighbours that touch it (chest wall, liver)
    near = []
    rot, e = math.radians(p["rotation"]), fr["ed"]
    phi = np.linspace(-math.pi, math.pi, _N_THETA, endpoint=False)
    ang = rot + math.radians(p["rv_direction"]) + phi
    for s, (cx, cy) in enumerate(centres):
        r_lv = float(fr["r_epi"][s, e]) + p["fat_base"]
        top, x_top = cy + r_lv, cx
        if fr["rv_t"][s, e] > 0:     # the RV's outline (free wall included), the most anterior point
            r_rv = (fr["r_epi"][s, e] + fr["rv_t"][s, e] * _rv_profile(phi, p)
                    + p["rv_wall"] * _rv_taper(phi, p) + p["fat_base"])
            k = int(np.argmax(cy + r_rv * np.sin(ang)))
            if cy + r_rv[k] * math.sin(ang[k]) > top:
                top, x_top = cy + r_rv[k] * math.sin(ang[k]), cx + r_rv[k] * math.cos(ang[k])
        near.append({"centre": (cx, cy), "r": float(fr["R_ed"][s]), "top": top, "x_top": x_top,
                     "bottom": cy - r_lv})
    sig = {}
    for _, tname in _REGIONS:
        if tname is not None and tname not in sig:
            t = tissues.get_tissue(tname, p["field_strength"])
            sig[tname] = float(signals.bssfp_signal(t.PD, t.T1, t.T2, TR=p["TR"], flip=p["flip"]))
    return {"fr": fr, "pw": pw, "centres": centres, "starts": starts, "signal": sig, "near": near}


def _label_volume(p: Mapping[str, Any], st: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (S, T, N, N) as (z, t, y, x) and the ED anatomy map (S, N, N)."""
    fr, N, dx, pw = st["fr"], p["matrix"], p["spacing"], st["pw"]
    S, T = p["n_slices"], p["n_frames"]
    labels = torch.zeros((S, T, N, N), dtype=torch.uint8)
    anatomy = torch.zeros((S, N, N), dtype=torch.uint8)
    rot = math.radians(p["rotation"])
    gy, gx = _grid(N, dx, p["fov_centre"][1]), _grid(N, dx, p["fov_centre"][0])
    Y, X = torch.meshgrid(gy, gx, indexing="ij")
    for s in range(S):
        ix, iy = st["starts"][s]
        win = (slice(iy, iy + pw), slice(ix, ix + pw))
        u, v = _heart_frame(X[win], Y[win], st["centres"][s], rot)
        m = _Slice(u, v, p, fr, s)
        labels[s, :, win[0], win[1]] = _labels(m, fr, s)
        anatomy[s] = _static_regions(X, Y, p, float(fr["z"][s]), st["near"][s])
        anatomy[s][win] = _anatomy_heart(m, fr, s, anatomy[s][win])
    return labels.numpy(), anatomy.numpy()


def _anatomy_heart(m: _Slice, fr: Mapping[str, Any], s: int, base: torch.Tensor) -> torch.Tensor:
    """The heart's regions at ED painted over the static ``base`` (hard edges, slice centre)."""
    e = fr["ed"]
    reg = base.clone()
    r_epi = float(fr["r_epi"][s, e])
    rv_cavity, rv_wall = (x[0] for x in m.rv_outer(fr, s, slice(e, e + 1)))
    reg[(m.rho <= r_epi + m.fat_lv) | (m.rho <= rv_wall + m.fat_rv)] = _R["epicardial fat"]
    reg[m.rho <= rv_wall] = _R["RV wall"]
    reg[m.rho <= rv_cavity] = _R["RV cavity"]
    wall = m.rho <= r_epi
    reg[wall if m.arc is None else wall & (m.arc > 0)] = _R["LV myocardium"]
    if m.arc is not None:
        reg[wall & (m.arc == 0)] = _R["epicardial fat"]
    inside = m.rho * m.rho <= m.A - m.B * float(fr["g"][e])
    reg[inside] = _R["LV cavity"] if fr["lv_labelled"][s] else _R["atrium and outflow"]
    return reg


def _image_volume(p: Mapping[str, Any], st: Mapping[str, Any], labels: np.ndarray) -> tuple[np.ndarray, float]:
    """The magnitude images through k-space, coils and noise, and the noise SD σ.

    The images are built as (S, T, N, N) = (z, t, y, x) and returned in the case's (x, y, z, t)
    order: the transposition is folded into the first noise step (the noise is drawn in that order).
    """
    fr, N, dx, pw, over = st["fr"], p["matrix"], p["spacing"], st["pw"], p["oversample"]
    S, T = p["n_slices"], p["n_frames"]
    sig = st["signal"]
    table = torch.tensor([0.0 if t is None else sig[t] for _, t in _REGIONS], dtype=torch.float32)
    nf, step = N * over, dx / over
    rot = math.radians(p["rotation"])
    gy, gx = _grid(nf, step, p["fov_centre"][1]), _grid(nf, step, p["fov_centre"][0])
    Y, X = torch.meshgrid(gy, gx, indexing="ij")
    clean = torch.empty((S, T, N, N), dtype=torch.float32)
    for s in range(S):
        ix, iy = st["starts"][s]
        static = table[_static_regions(X, Y, p, float(fr["z"][s]), st["near"][s]).long()]
        low = _bandlimit(static, N)                                                   # (N, N)
        win = (slice(iy * over, (iy + pw) * over), slice(ix * over, (ix + pw) * over))
        u, v = _heart_frame(X[win], Y[win], st["centres"][s], rot)
        m = _Slice(u, v, p, fr, s)
        base = static[win]
        heart = _draw_heart(m, base, p, fr, s, sig, step) - base                       # (T, P, P)
        clean[s] = low
        moving = _bandlimit(heart, pw)
        w = p["motion_blur"]      # temporal footprint: each frame mixes in its neighbours (cyclic)
        moving = moving * (1.0 - 2.0 * w) + (moving.roll(1, 0) + moving.roll(-1, 0)) * w
        clean[s, :, iy:iy + pw, ix:ix + pw] += moving
    clean.abs_()
    # coil shading (raw Biot-Savart profile, maximum 1) and complex noise after the scanner's
    # sensitivity-weighted (adaptive) coil combination: a Rician magnitude
    maps = coils.coil_sensitivities((N, N), p["n_coils"], coil_radius=p["coil_radius"],
                                    start_angle=p["coil_angle"], normalize=False)
    angles = p["coil_angle"] + 2 * math.pi * torch.arange(p["n_coils"], dtype=torch.float64) / p["n_coils"]
    weight = torch.where(torch.sin(angles) > 0, 1.0, p["coil_posterior"]).to(torch.float32)
    shade = (maps.abs().square() * weight[:, None, None]).sum(0).sqrt()
    shade /= shade.max()
    clean *= shade
    mid = min(max(int(np.argmax(fr["areas"]["LV"][:, fr["ed"]])), 0), S - 1)
    blood = torch.from_numpy(labels[mid, fr["ed"]] == 3)
    if not bool(blood.any()):
        blood = torch.ones((N, N), dtype=torch.bool)
    sigma = float(clean[mid, fr["ed"]][blood].mean()) / p["snr"]
    gen = torch.Generator().manual_seed(p["noise_seed"])
    shape = (N, N, S, T)                            # (x, y, z, t)
    image = torch.randn(shape, generator=gen).mul_(sigma).add_(clean.permute(3, 2, 0, 1))
    del clean
    quadrature = torch.randn(shape, generator=gen).mul_(sigma)     # the imaginary part: Rician magnitude
    image.square_().addcmul_(quadrature, quadrature).sqrt_()
    return image.numpy(), sigma


def cine_case(
    group: str = "NOR",
    *,
    seed: int = 0,
    n_slices: int | None = None,
    n_frames: int | None = None,
    matrix: int | None = None,
    spacing: float | None = None,
    slice_spacing: float | None = None,
    slice_thickness: float | None = None,
    oversample: int = 2,
) -> CineCase:
    """Simulate one ACDC-like cine study of a patient of ``group`` (see the module notes).

    Parameters
    ----------
    group
        One of :data:`ACDC_GROUPS`: ``"NOR"``, ``"MINF"``, ``"DCM"``, ``"HCM"``, ``"RV"``.
    seed
        Everything random (patient, anatomy, pose, contrast, coils, noise) follows from it and the
        group; the same arguments give identical arrays.
    n_slices, n_frames
        Short-axis slices (base first) and frames over one R–R interval (ED = frame 0). ``None``:
        drawn per case, 8–14 slices covering the ventricle and 12–35 frames.
    matrix, spacing
        In-plane matrix (square, even) and pixel size (mm). ``None``: drawn per case, 1.37–1.68 mm
        pixels (as in ACDC) over a 300–400 mm FOV (matrix 178–256). Give a small ``matrix`` alone
        for fast use: the FOV is still 300–400 mm, with coarser pixels.
    slice_spacing, slice_thickness
        Centre-to-centre slice distance and slice thickness (mm, thickness ≤ spacing; the difference
        is the gap). ``None``: spacing drawn from 5–10 mm (10 mm most often), thickness 5–8 mm.
    oversample
        The object is drawn on a grid this many times finer than the image before k-space sampling.

    Returns
    -------
    CineCase
        Images, labels on every frame, the ED anatomy map, geometry and the analytic volumes.
    """
    (group, seed, n_slices, n_frames, matrix, spacing, slice_spacing, slice_thickness,
     oversample) = _check(group, seed, n_slices, n_frames, matrix, spacing, slice_spacing,
                          slice_thickness, oversample)
    p = _sample_params(group, seed, n_slices, n_frames, matrix, spacing, slice_spacing, slice_thickness)
    p["oversample"] = oversample
    st = _setup(p)
    labels, anatomy = _label_volume(p, st)
    image, sigma = _image_volume(p, st, labels)
    return _assemble(p, st, image, labels, anatomy, sigma)


def _assemble(p: dict[str, Any], st: Mapping[str, Any], image: np.ndarray | None, labels: np.ndarray,
              anatomy: np.ndarray, sigma: float) -> CineCase:
    fr = st["fr"]
    dx, dz, N = p["spacing"], p["slice_spacing"], p["matrix"]
    # (z, t, y, x) → (x, y, z, t)
    lab = np.ascontiguousarray(labels.transpose(3, 2, 0, 1))
    img = image if image is not None else np.zeros(lab.shape, dtype=np.float32)   # already (x, y, z, t)
    affine = np.diag([dx, dx, dz, 1.0])
    affine[:3, 3] = [p["fov_centre"][0] - (N // 2) * dx, p["fov_centre"][1] - (N // 2) * dx, float(fr["z"][0])]
    vols = {k: np.asarray(v.sum(0) * dz / 1000.0, dtype=np.float64) for k, v in fr["areas"].items()}
    params = dict(p)
    params["sigma"] = sigma
    params["signal"] = dict(st["signal"])
    params["slice_z"] = [float(z) for z in fr["z"]]
    return CineCase(
        image=img, labels=lab, anatomy=np.ascontiguousarray(anatomy.transpose(2, 1, 0)),
        spacing=(dx, dx, dz), slice_thickness=p["slice_thickness"], affine=affine,
        ed=int(fr["ed"]), es=int(fr["es"]), group=p["group"], height=p["height"], weight=p["weight"],
        volumes=MappingProxyType({k: vols[k] for k in ("LV", "RV", "MYO")}),
        temporal_resolution=60000.0 / p["heart_rate"] / p["n_frames"], params=MappingProxyType(params),
    )


def cine_cases(n: int, *, seed: int = 0, groups: Sequence[str] | None = None, **kwargs: Any) -> Iterator[CineCase]:
    """``n`` cases, one at a time (memory independent of ``n``), cycling ``groups`` evenly.

    Case ``i`` is ``cine_case(groups[i % len(groups)], seed=s_i, **kwargs)`` with ``s_i`` derived
    from ``(seed, i)``, so a case does not depend on how many are generated. ``groups`` defaults
    to :data:`ACDC_GROUPS`.
    """
    n = check_int("n", n, 0)
    seed = check_int("seed", seed, 0)
    if groups is None:
        groups = ACDC_GROUPS
    if isinstance(groups, str) or not isinstance(groups, Sequence) or len(groups) == 0:
        raise ArgumentError(f"groups must be a non-empty sequence of group names, got {groups!r}")
    for g in groups:
        if not isinstance(g, str) or g.strip().upper() not in ACDC_GROUPS:
            raise ArgumentError(f"groups must hold names from {', '.join(ACDC_GROUPS)}, got {g!r}")
    groups = tuple(groups)

    def gen() -> Iterator[CineCase]:
        for i in range(n):
            case_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0] >> 1)
            yield cine_case(groups[i % len(groups)], seed=case_seed, **kwargs)

    return gen()
