"""A beating mid-ventricular short-axis slice, imaged through the physics of ``cmrlab.physics``.

:func:`beating_heart_slice` draws an analytic slice of the chest over one cardiac cycle and
images it the way a bSSFP cine does:

1. **anatomy** (mm, x to the patient's left, y anterior; drawn back to front): the body outline
   (subcutaneous fat), the chest wall (skeletal muscle), the lungs filling the thorax, the liver
   below, the descending aorta; around the heart a thin layer of epicardial fat, the RV free
   wall and the **RV** cavity (a disc cut by the LV: a crescent), the LV **myocardium** (a ring)
   and the **LV** blood pool (a disc).
2. **motion**: the LV cavity area follows the model volume curve
   :func:`cmrlab.physics.cardiac.lv_volume_curve` between ``lv_ed_area`` and ``lv_es_area``; the
   myocardial ring keeps its area ``myo_area`` (muscle is incompressible), so the wall thickens
   as the cavity empties; the RV cavity area follows the same curve shape between
   ``rv_ed_area`` and ``rv_es_area``. All three areas are known exactly (``HeartSlice.areas``).
3. **contrast**: each tissue's bSSFP steady-state signal
   (:func:`cmrlab.physics.signals.bssfp_signal`) from its T1, T2 and PD in
   :mod:`cmrlab.physics.tissues`: blood is bright, myocardium dark.
4. **k-space**: the signal map, drawn on a grid ``oversample`` times finer than the image, is
   sampled in k-space at the chosen FOV and matrix (:func:`cmrlab.physics.kspace.sample_object`),
   which gives the image its real resolution, partial volume and ringing.
5. **coils and noise**: receive-coil sensitivities (:func:`cmrlab.physics.coils.coil_sensitivities`,
   not normalised, so the RSS image is brighter near the coils), complex Gaussian noise in every
   coil (:func:`cmrlab.physics.noise.add_noise`; adding it in image space is the same as in
   k-space since the FFTs are orthonormal) and root-sum-of-squares combination.

Labels follow the ACDC convention: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity.
Arrays for viewing are (X, Y, T), time last, as :func:`cmrlab.viz.show_volume` expects (give it
``images[:, :, None, :]``: 2D + time must be (X, Y, 1, T)).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics import coils, kspace, noise, signals, tissues
from cmrlab.physics.cardiac import lv_volume_curve

__all__ = ["LABEL_NAMES", "HeartSlice", "SliceSet", "beating_heart_slice", "heart_slice_dataset"]

#: ACDC label values of the phantom.
LABEL_NAMES: Mapping[int, str] = MappingProxyType({1: "RV", 2: "MYO", 3: "LV"})

# Regions, drawn in this order (a later one covers an earlier one), their tissue and ACDC label.
_REGIONS: tuple[tuple[str, str | None, int], ...] = (
    ("air", None, 0),
    ("subcutaneous fat", "fat", 0),
    ("chest wall", "skeletal_muscle", 0),
    ("lung", "lung", 0),
    ("liver", "liver", 0),
    ("aorta", "blood", 0),
    ("epicardial fat", "fat", 0),
    ("RV wall", "myocardium", 0),
    ("RV", "blood", 1),
    ("MYO", "myocardium", 2),
    ("LV", "blood", 3),
)
_REGION = {name: i for i, (name, _, _) in enumerate(_REGIONS)}

# Fixed geometry (mm). x: patient's left, y: anterior. The image shows x to the right and y up,
# so the patient's right (the RV, the liver) is on the image's left, as radiologists view it.
_LV_CENTRE = (15.0, 5.0)
_RV_DIRECTION = math.radians(160.0)   # from the LV centre towards the RV centre
_RV_OFFSET = 0.6                      # RV-centre distance, in units of the LV epicardial radius
_RV_WALL = 3.0                        # RV free-wall thickness
_FAT_LAYER = 3.0                      # epicardial fat around the heart
_BODY = ((0.0, -10.0), (150.0, 105.0))           # centre, semi-axes of the body outline
_CHEST_WALL = ((0.0, -10.0), (142.0, 97.0))      # inside the subcutaneous fat
_THORAX = ((0.0, -10.0), (128.0, 84.0))          # inside the chest wall: the thoracic cavity
_LIVER = ((-55.0, -62.0), (78.0, 40.0), math.radians(15.0))
_AORTA = ((40.0, -55.0), 11.0)


@dataclass(frozen=True)
class HeartSlice:
    """A simulated cine of one short-axis slice (see :func:`beating_heart_slice`).

    ``images`` (X, Y, T) float32: the coil-combined magnitude images, noise included.
    ``labels`` (X, Y, T) uint8: 0 background, 1 RV, 2 MYO, 3 LV (the region at each pixel centre).
    ``areas``: ``{"RV", "MYO", "LV"}`` → (T,) exact areas of the analytic shapes, mm².
    ``kspace`` (T, ky, kx) complex64: the noise-free k-space of the object as a uniform (body)
    coil would see it, in the layout of :mod:`cmrlab.physics.kspace` (one row per phase-encoding
    line; ``ifft2c(kspace)`` gives (T, y, x) images: transpose to (X, Y, T) to compare).
    ``spacing`` (Δx, Δy) pixel size, mm; ``phase`` (T,) fraction of the R–R interval; ``time``
    (T,) ms after the R wave; ``ed_frame``, ``es_frame``; ``endo_radius``, ``epi_radius`` (T,)
    of the LV ring, mm (wall thickness = their difference); ``sigma`` the per-channel noise SD
    added to each coil image (0 without noise); ``signal`` the bSSFP signal of each tissue used.
    """

    images: np.ndarray
    labels: np.ndarray
    areas: Mapping[str, np.ndarray]
    kspace: np.ndarray
    spacing: tuple[float, float]
    phase: np.ndarray
    time: np.ndarray
    ed_frame: int
    es_frame: int
    endo_radius: np.ndarray
    epi_radius: np.ndarray
    sigma: float
    signal: Mapping[str, float]

    @property
    def wall_thickness(self) -> np.ndarray:
        """True LV wall thickness per frame, mm: epicardial minus endocardial radius."""
        return self.epi_radius - self.endo_radius


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------
def _lens_area(a: np.ndarray, b: float | np.ndarray, d: float | np.ndarray) -> np.ndarray:
    """Area of the intersection of two discs of radii ``a``, ``b`` whose centres are ``d`` apart."""
    a, b, d = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(d, float))
    out = np.zeros(a.shape)
    inside = d <= np.abs(a - b)
    out[inside] = np.pi * np.minimum(a, b)[inside] ** 2
    part = ~inside & (d < a + b)
    a_, b_, d_ = a[part], b[part], d[part]
    out[part] = (a_ ** 2 * np.arccos(np.clip((d_ ** 2 + a_ ** 2 - b_ ** 2) / (2 * d_ * a_), -1, 1))
                 + b_ ** 2 * np.arccos(np.clip((d_ ** 2 + b_ ** 2 - a_ ** 2) / (2 * d_ * b_), -1, 1))
                 - 0.5 * np.sqrt(np.clip((-d_ + a_ + b_) * (d_ + a_ - b_) * (d_ - a_ + b_) * (d_ + a_ + b_),
                                         0, None)))
    return out


def _rv_radius(target: np.ndarray, r_epi: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Radius R of the RV disc whose part outside the LV disc (the crescent) has area ``target``.

    The crescent area πR² − lens(R, r_epi, d) grows with R (its derivative is the length of
    the RV circle outside the LV disc), so bisection finds R to machine precision.
    """
    lo = np.zeros_like(target)
    hi = np.sqrt(target / np.pi) + d + r_epi    # a disc this large holds the LV disc and more
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        small = np.pi * mid ** 2 - _lens_area(mid, r_epi, d) < target
        lo = np.where(small, mid, lo)
        hi = np.where(small, hi, mid)
    return 0.5 * (lo + hi)


def _ellipse(x: torch.Tensor, y: torch.Tensor, centre: tuple[float, float], axes: tuple[float, float],
             angle: float = 0.0) -> torch.Tensor:
    u, v = x - centre[0], y - centre[1]
    c, s = math.cos(angle), math.sin(angle)
    return ((u * c + v * s) / axes[0]) ** 2 + ((-u * s + v * c) / axes[1]) ** 2 <= 1.0


def _static_regions(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Region index of the parts that do not beat (body, chest wall, lungs, liver, aorta): (H, W)."""
    static = torch.zeros(x.shape, dtype=torch.int64, device=x.device)
    static[_ellipse(x, y, *_BODY)] = _REGION["subcutaneous fat"]
    static[_ellipse(x, y, *_CHEST_WALL)] = _REGION["chest wall"]
    thorax = _ellipse(x, y, *_THORAX)
    static[thorax] = _REGION["lung"]
    static[thorax & _ellipse(x, y, *_LIVER)] = _REGION["liver"]
    (ax, ay), ar = _AORTA
    static[(x - ax) ** 2 + (y - ay) ** 2 <= ar ** 2] = _REGION["aorta"]
    return static


def _region_map(x: torch.Tensor, y: torch.Tensor, static: torch.Tensor,
                geo: dict[str, torch.Tensor]) -> torch.Tensor:
    """Region index (see ``_REGIONS``) at points ``(x, y)`` (each (H, W)) for every frame: (T, H, W).

    The heart is drawn over ``static`` (from :func:`_static_regions`), back to front.
    """
    region = static.expand(geo["r_endo"].shape[0], *x.shape).clone()

    def col(name: str) -> torch.Tensor:  # per-frame values broadcast over the image
        return geo[name][:, None, None]

    lv_r2 = ((x - _LV_CENTRE[0]) ** 2 + (y - _LV_CENTRE[1]) ** 2)[None]
    rv_r2 = (x[None] - col("rv_x")) ** 2 + (y[None] - col("rv_y")) ** 2
    r_outer = col("rv_radius") + _RV_WALL
    region[(lv_r2 <= (col("r_epi") + _FAT_LAYER) ** 2) | (rv_r2 <= (r_outer + _FAT_LAYER) ** 2)] = \
        _REGION["epicardial fat"]
    region[rv_r2 <= r_outer ** 2] = _REGION["RV wall"]
    region[rv_r2 <= col("rv_radius") ** 2] = _REGION["RV"]
    region[lv_r2 <= col("r_epi") ** 2] = _REGION["MYO"]
    region[lv_r2 <= col("r_endo") ** 2] = _REGION["LV"]
    return region


def _draw(n: int, step: float, geo: dict[str, torch.Tensor], table: torch.Tensor,
          chunk: int = 8) -> torch.Tensor:
    """``table[region]`` on the n × n grid of pixel centres, every frame: (T, y, x).

    Frames are drawn ``chunk`` at a time to bound the memory of the intermediate arrays.
    """
    dev = table.device
    y, x = torch.meshgrid(_grid(n, step, dev), _grid(n, step, dev), indexing="ij")
    static = _static_regions(x, y)
    n_frames = geo["r_endo"].shape[0]
    out = torch.empty((n_frames, n, n), dtype=table.dtype, device=dev)
    for start in range(0, n_frames, chunk):
        part = {k: v[start:start + chunk] for k, v in geo.items()}
        out[start:start + chunk] = table[_region_map(x, y, static, part)]
    return out


def _grid(n: int, step: float, device: torch.device) -> torch.Tensor:
    """Pixel-centre positions (n − N//2)·step (float32, mm), the convention of
    :mod:`cmrlab.physics.kspace`."""
    return ((torch.arange(n, dtype=torch.float64, device=device) - n // 2) * step).to(torch.float32)


# --------------------------------------------------------------------------------------------
# the phantom
# --------------------------------------------------------------------------------------------
def beating_heart_slice(
    n_frames: int = 20,
    matrix: int = 128,
    fov: float = 320.0,
    *,
    lv_ed_area: float = 1800.0,
    lv_es_area: float = 700.0,
    myo_area: float = 1600.0,
    rv_ed_area: float = 1400.0,
    rv_es_area: float = 650.0,
    es_fraction: float = 0.35,
    heart_rate: float = 60.0,
    field_strength: float = 1.5,
    TR: float = 3.0,
    flip: float = 60.0,
    n_coils: int | None = 8,
    snr: float | None = 30.0,
    oversample: int = 4,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> HeartSlice:
    """Simulate a bSSFP cine of a beating mid-ventricular short-axis slice over one R–R interval.

    Parameters
    ----------
    n_frames
        Time frames over the cycle; frame k is at phase k/n_frames (frame 0 = R wave = ED).
    matrix, fov
        Image matrix (square, pixels) and field of view (mm): pixels are fov/matrix mm. The body
        is 300 × 210 mm, so a FOV below 300 mm wraps it around (aliasing), as on a scanner.
    lv_ed_area, lv_es_area
        LV cavity area at end-diastole and end-systole, mm² (ED ≥ ES > 0). The defaults are a
        48 mm wide cavity shrinking to 30 mm, an area change of 61 %.
    myo_area
        LV myocardium area, mm², constant over the cycle (default: a 9 mm wall at ED).
    rv_ed_area, rv_es_area
        RV cavity (crescent) area at ED and ES, mm².
    es_fraction
        Time of end-systole as a fraction of the R–R interval (moved to the nearest frame).
    heart_rate
        Beats per minute; sets ``time`` (the R–R interval is 60 000/heart_rate ms).
    field_strength, TR, flip
        1.5 or 3 T (tissue table), bSSFP repetition time (ms; TE = TR/2) and flip angle (degrees).
    n_coils
        Receive coils around the chest (≥ 1); ``None`` or 0: a uniform body coil, no shading.
    snr
        Mean ED LV blood signal of the combined noise-free image divided by the per-channel noise SD;
        ``None``: no noise.
    oversample
        The object is drawn on a grid this many times finer than the image before k-space
        sampling (≥ 1). Edges then show partial volume; with 4 the image is within about 2 % of
        one drawn on a much finer grid, with 2 within about 7 % (faster, for many frames).
    seed
        Seed of the noise.
    device
        Torch device for the computation (default CPU); the results are NumPy arrays.

    Returns
    -------
    HeartSlice
        Images and labels (X, Y, T), exact areas, the noise-free k-space (T, ky, kx) and the
        timing and geometry of every frame.
    """
    matrix = check_int("matrix", matrix, 16)
    fov = check_number("fov", fov, 0.0, low_open=True)
    oversample = check_int("oversample", oversample, 1)
    seed = check_int("seed", seed, 0)
    lv_ed, lv_es = check_number("lv_ed_area", lv_ed_area, 0.0, low_open=True), check_number("lv_es_area", lv_es_area, 0.0, low_open=True)
    rv_ed, rv_es = check_number("rv_ed_area", rv_ed_area, 0.0, low_open=True), check_number("rv_es_area", rv_es_area, 0.0, low_open=True)
    myo = check_number("myo_area", myo_area, 0.0, low_open=True)
    if lv_es > lv_ed:
        raise ArgumentError(f"lv_es_area ({lv_es:g}) must not exceed lv_ed_area ({lv_ed:g})")
    if rv_es > rv_ed:
        raise ArgumentError(f"rv_es_area ({rv_es:g}) must not exceed rv_ed_area ({rv_ed:g})")
    heart_rate = check_number("heart_rate", heart_rate, 0.0, low_open=True)
    TR = check_number("TR", TR, 0.0, low_open=True)
    flip = check_number("flip", flip, 0.0, 180.0, low_open=True)
    if n_coils is None or (not isinstance(n_coils, bool) and n_coils == 0):
        n_coils = 0
    else:
        n_coils = check_int("n_coils", n_coils, 1)
    if snr is not None:
        snr = check_number("snr", snr, 0.0, low_open=True)
    dev = torch.device(device) if device is not None else torch.device("cpu")

    # 1-2. geometry of every frame
    curve = lv_volume_curve(n_frames, lv_ed, lv_es, es_fraction)   # checks n_frames, es_fraction
    lv_area = curve.volumes
    rv_area = lv_volume_curve(n_frames, rv_ed, rv_es, es_fraction).volumes
    r_endo = np.sqrt(lv_area / np.pi)
    r_epi = np.sqrt((lv_area + myo) / np.pi)
    rv_d = _RV_OFFSET * r_epi
    rv_radius = _rv_radius(rv_area, r_epi, rv_d)
    if np.any(rv_radius + _RV_WALL >= rv_d + r_epi):
        raise ArgumentError("rv_ed_area is too large for the LV: the RV would wrap all around it; "
                            f"use a smaller RV area than {rv_ed:g} mm²")
    geo = {
        "r_endo": r_endo, "r_epi": r_epi, "rv_radius": rv_radius,
        "rv_x": _LV_CENTRE[0] + rv_d * math.cos(_RV_DIRECTION),
        "rv_y": _LV_CENTRE[1] + rv_d * math.sin(_RV_DIRECTION),
    }
    geo_t = {k: torch.as_tensor(np.broadcast_to(np.asarray(v, dtype=np.float32), r_endo.shape).copy(), device=dev)
             for k, v in geo.items()}

    # 3. contrast: the bSSFP signal of every region's tissue
    signal = {}
    for _, tissue_name, _ in _REGIONS:
        if tissue_name is not None and tissue_name not in signal:
            t = tissues.get_tissue(tissue_name, field_strength)
            signal[tissue_name] = float(signals.bssfp_signal(t.PD, t.T1, t.T2, TR=TR, flip=flip))
    region_signal = torch.tensor([0.0 if tn is None else signal[tn] for _, tn, _ in _REGIONS],
                                 dtype=torch.float32, device=dev)
    region_label = torch.tensor([lab for _, _, lab in _REGIONS], dtype=torch.uint8, device=dev)

    # 4. k-space: draw on a fine grid, sample at the chosen FOV and matrix
    fine = matrix * oversample
    obj = _draw(fine, fov / fine, geo_t, region_signal)                        # (T, y, x)
    sampled = kspace.sample_object(obj, fov, matrix, object_fov=fov)
    image = sampled.image                                                      # (T, y, x) complex64
    labels = _draw(matrix, fov / matrix, geo_t, region_label)                  # region at pixel centres

    # 5. coils, noise, root-sum-of-squares
    if n_coils:
        maps = coils.coil_sensitivities((matrix, matrix), n_coils, normalize=False, device=dev)
        coil_images = image[:, None] * maps                                   # (T, C, y, x)
        clean = coils.coil_combine_rss(coil_images, coil_dim=1)
    else:
        coil_images = image[:, None]
        clean = image.abs()
    sigma = 0.0
    if snr is not None:
        sigma = noise.snr_to_sigma(clean[curve.ed_frame], snr, labels[curve.ed_frame] == 3)
        coil_images = noise.add_noise(coil_images, sigma, seed=seed)
    combined = coils.coil_combine_rss(coil_images, coil_dim=1)

    def xyt(t: torch.Tensor) -> np.ndarray:
        return t.permute(2, 1, 0).contiguous().cpu().numpy()

    return HeartSlice(
        images=xyt(combined.to(torch.float32)),
        labels=xyt(labels),
        areas=MappingProxyType({"RV": rv_area, "MYO": np.full(curve.n_frames, myo), "LV": lv_area}),
        kspace=sampled.kspace.cpu().numpy(),
        spacing=(fov / matrix, fov / matrix),
        phase=curve.phase,
        time=curve.phase * 60000.0 / heart_rate,
        ed_frame=curve.ed_frame,
        es_frame=curve.es_frame,
        endo_radius=r_endo,
        epi_radius=r_epi,
        sigma=float(sigma),
        signal=MappingProxyType(signal),
    )


# --------------------------------------------------------------------------------------------
# many varied slices for training
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SliceSet:
    """2D training samples drawn from varied beating-heart cines (see :func:`heart_slice_dataset`).

    ``images`` (N, H, W) float32, each scaled to [0, 1] (min-max, as the cardiac thesis
    preprocesses); ``labels`` (N, H, W) int64 in the ACDC convention (0 background, 1 RV, 2 MYO,
    3 LV); ``case`` (N,) which simulated subject each sample comes from (split by case, never by
    sample, or neighbouring frames leak between training and test); ``frame`` (N,) its frame.
    Arrays are (row, column) = (y, x) with y up the image, as ``imshow(origin="lower")`` shows them.
    """

    images: np.ndarray
    labels: np.ndarray
    case: np.ndarray
    frame: np.ndarray


def heart_slice_dataset(
    n_cases: int = 8,
    frames_per_case: int = 4,
    matrix: int = 64,
    crop: float = 160.0,
    *,
    seed: int = 0,
) -> SliceSet:
    """Short-axis slices from ``n_cases`` simulated subjects that differ the way scans differ.

    Per subject (seeded): LV, RV and myocardium sizes (EF from about 35 % to 70 %), flip angle
    (blood–myocardium contrast), SNR (12–40) and coil count; then every sample is rotated by a
    random angle (±30°, the heart's orientation in the field of view varies) and shifted by up to
    ±8 % of the field of view. ``frames_per_case`` frames are taken evenly over each cycle (ED
    and ES included when there are at least two). Rotation and shift are applied to the
    magnitude image (linear) and the labels (nearest), never mirroring, which would put the RV on
    the wrong side of the LV (an anatomy no patient has). Each cine is simulated over the whole 320 mm chest and then cropped to a ``crop`` mm
    square around the LV, sampled on ``matrix`` pixels (the thesis crops around the heart too).
    Deterministic for a given seed.
    """
    from scipy import ndimage

    n_cases = check_int("n_cases", n_cases, 1)
    frames_per_case = check_int("frames_per_case", frames_per_case, 1)
    matrix = check_int("matrix", matrix, 16)
    crop = check_number("crop", crop, 0.0, 320.0, low_open=True)
    seed = check_int("seed", seed, 0)
    fov = 320.0
    full = int(round(matrix * fov / crop))
    rng = np.random.default_rng(seed)
    images, labels, cases, frames = [], [], [], []
    for case in range(n_cases):
        lv_ed = rng.uniform(1300.0, 2600.0)
        ef = rng.uniform(0.35, 0.70)
        rv_ed = rng.uniform(1000.0, 1900.0)
        cine = beating_heart_slice(
            n_frames=max(frames_per_case, 12), matrix=full, fov=fov,
            lv_ed_area=lv_ed, lv_es_area=lv_ed * (1 - ef), myo_area=rng.uniform(1100.0, 2200.0),
            rv_ed_area=rv_ed, rv_es_area=rv_ed * rng.uniform(0.45, 0.65),
            flip=rng.uniform(35.0, 70.0), n_coils=int(rng.integers(4, 13)),
            snr=rng.uniform(12.0, 40.0), oversample=2, seed=int(rng.integers(2**31)),
        )
        n_t = cine.images.shape[2]
        picks = [cine.ed_frame, cine.es_frame][:frames_per_case]
        for t in np.linspace(0, n_t - 1, n_t).round().astype(int)[np.argsort(
                np.abs(np.linspace(0, 1, n_t) - 0.5))]:  # then frames from mid-cycle outwards
            if len(picks) >= frames_per_case:
                break
            if t not in picks:
                picks.append(int(t))
        lv = np.argwhere(cine.labels[:, :, cine.ed_frame] == 3).mean(axis=0)
        x0, y0 = (np.clip(lv.round().astype(int) - matrix // 2, 0, full - matrix))
        window = (slice(x0, x0 + matrix), slice(y0, y0 + matrix))
        for t in picks:
            angle = rng.uniform(-30.0, 30.0)
            shift = rng.uniform(-0.08, 0.08, size=2) * matrix
            # (X, Y) → (y, x) rows/columns for the sample
            img = np.ascontiguousarray(cine.images[window + (t,)].T)
            lab = np.ascontiguousarray(cine.labels[window + (t,)].T)
            img = ndimage.shift(ndimage.rotate(img, angle, reshape=False, order=1, mode="nearest"),
                                shift, order=1, mode="nearest")
            lab = ndimage.shift(ndimage.rotate(lab, angle, reshape=False, order=0, mode="constant"),
                                shift, order=0, mode="constant")
            lo, hi = float(img.min()), float(img.max())
            images.append(((img - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32))
            labels.append(lab.astype(np.int64))
            cases.append(case)
            frames.append(int(t))
    return SliceSet(np.stack(images), np.stack(labels), np.asarray(cases), np.asarray(frames))
