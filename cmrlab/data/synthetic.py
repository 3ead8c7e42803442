"""Synthetic datasets in the real datasets' on-disk layouts: phantoms → format writers.

Each ``write_<dataset>(out, *, n_cases, seed, progress, size)`` streams ``n_cases`` phantom cases
(:mod:`cmrlab.phantoms`) one at a time into the folder ``out`` in the published layout, through
the same module of :mod:`cmrlab.data` that reads the real data (:mod:`cmrlab.data.acdc`,
:mod:`~cmrlab.data.mnms`, :mod:`~cmrlab.data.sunnybrook`, :mod:`~cmrlab.data.iseg`,
:mod:`~cmrlab.data.mrbrains`, :mod:`~cmrlab.data.brats`, :mod:`~cmrlab.data.msd`). Memory does not
grow with ``n_cases``. Case ``i`` depends only on ``(seed, i)`` and ``size``, so the first ten
cases of a 100-case dataset are the ten cases of a 10-case one.

``size="fast"`` makes laptop-sized cases (cardiac: 128² matrices at 1.8–2.4 mm, 12–20 frames;
brain: 2 mm voxels); ``size="full"`` the published sizes (cardiac: the ACDC ranges drawn by
:func:`cmrlab.phantoms.cine_case`; brain: 1 mm). Use :func:`cmrlab.data.datasets.get_dataset` to get
a cached copy; ``cmrlab data synth`` writes one into a folder of your choice.

What is synthetic about each is stated in a note the writers leave in the dataset (ACDC's
``SYNTHETIC.md``, the MSD ``description``, ...) and in ``cmrlab_synthetic.json`` at the root.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError
from cmrlab.viz.progress import progress as _progress

__all__ = [
    "GENERATOR_VERSION", "SUNNYBROOK_GROUPS", "VARIANTS", "write_acdc", "write_brats", "write_iseg", "write_mnms",
    "write_mrbrains18", "write_msd_task01", "write_sunnybrook",
]

#: Bumped whenever a generator's output changes, so cached copies are regenerated.
GENERATOR_VERSION = 3

#: Integer scale of the stored cardiac images: phantom magnitudes are fractions of the
#: equilibrium magnetisation (≈ 0–0.3); ×10 000 gives int16 values like a scanner's.
CARDIAC_SCALE = 10_000.0
#: Brain scans written as integers (iSeg's 16-bit Analyze files) are scaled so that their
#: 99.5th percentile inside the head is this value.
BRAIN_LEVEL = 1_000.0

#: Sunnybrook's four groups (heart failure with and without infarction, hypertrophy, normal) and
#: the ACDC phantom group that stands in for each.
SUNNYBROOK_GROUPS = {"HF-I": "MINF", "HF-NI": "DCM", "HYP": "HCM", "N": "NOR"}


#: Variants of a synthetic dataset, by dataset: variant name → what it changes. The standard
#: copy is ``None``. ``long-cines`` is the frame-detection set of the cardiac thesis's ch. 7:
#: cycles of 20–35 frames (35 in four cases of five, like the thesis's data, L6095-6097) and a
#: random trigger delay, so that ED falls on any frame, the last one included.
VARIANTS: dict[str, dict[str, str]] = {
    "acdc": {
        "long-cines": "20–35 frames per cycle (35 in four cases of five), a trigger delay that puts "
                      "ED on any frame (the cine is rolled in time; the cycle repeats); fast size: "
                      "96² matrix at 2.4–3.2 mm",
    },
}


def check_variant(dataset: str, variant: Any) -> str | None:
    """``variant`` if it is one of ``dataset``'s :data:`VARIANTS` (or ``None``), else an ArgumentError."""
    if variant is None:
        return None
    known = VARIANTS.get(dataset, {})
    if not isinstance(variant, str) or variant not in known:
        from cmrlab.checks import did_you_mean

        raise ArgumentError(f"variant: the synthetic {dataset} has "
                            f"{'the variants ' + ', '.join(sorted(known)) if known else 'no variants'}, "
                            f"got {str(variant)[:60]!r}{did_you_mean(str(variant), known) if known else ''}")
    return variant


def _case_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0] >> 1)


def _check(out: Any, n_cases: Any, seed: Any, size: Any) -> tuple[Path, int, int, str]:
    if size not in ("fast", "full"):
        raise ArgumentError(f"size must be 'fast' or 'full', got {size!r}")
    return (Path(os.fspath(out)), check_int("n_cases", n_cases, 1), check_int("seed", seed, 0), size)


def _bar(n: int, desc: str, show: bool) -> Any:
    return _progress(total=n, desc=desc, unit="case", disable=not show)


# --------------------------------------------------------------------------------------------
# cardiac
# --------------------------------------------------------------------------------------------
def _cine_kwargs(case_seed: int, size: str) -> dict[str, Any]:
    """Acquisition settings of one case: the phantom's own draws at full size, smaller when fast."""
    if size == "full":
        return {}
    rng = np.random.default_rng([case_seed, 1])
    return {"matrix": 128, "spacing": float(rng.uniform(1.8, 2.4)),
            "n_frames": int(rng.integers(12, 21))}


def _long_cine(group: str, case_seed: int, size: str) -> Any:
    """A case of the ``long-cines`` variant: 20–35 frames, rolled by a random trigger delay."""
    import dataclasses
    from types import MappingProxyType

    from cmrlab.phantoms import cine_case

    rng = np.random.default_rng([case_seed, 2])
    n_frames = 35 if rng.random() < 0.8 else int(rng.integers(20, 35))
    spacing = float(rng.uniform(2.4, 3.2))
    delay = int(rng.integers(0, n_frames))          # ED lands on frame `delay`: any frame, the last too
    kwargs = {"matrix": 96, "spacing": spacing} if size == "fast" else {}
    case = cine_case(group, seed=case_seed, n_frames=n_frames, **kwargs)
    params = dict(case.params)
    params["trigger_delay"] = delay
    return dataclasses.replace(
        case, image=np.roll(case.image, delay, axis=3), labels=np.roll(case.labels, delay, axis=3),
        ed=(case.ed + delay) % n_frames, es=(case.es + delay) % n_frames,
        volumes=MappingProxyType({k: np.roll(v, delay) for k, v in case.volumes.items()}),
        params=MappingProxyType(params))


def _cine_cases(n: int, seed: int, size: str, groups: tuple[str, ...],
                variant: str | None = None) -> Iterator[tuple[int, Any]]:
    from cmrlab.phantoms import cine_case

    for i in range(n):
        s = _case_seed(seed, i)
        if variant == "long-cines":
            yield i, _long_cine(groups[i % len(groups)], s, size)
        else:
            yield i, cine_case(groups[i % len(groups)], seed=s, **_cine_kwargs(s, size))


def _stored_image(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * CARDIAC_SCALE), 0, np.iinfo(np.int16).max).astype(np.int16)


def _truth(case: Any, seed: int, i: int, size: str, variant: str | None = None) -> dict[str, Any]:
    return {
        "generator": "cmrlab.phantoms.cine_case", "generator_version": GENERATOR_VERSION,
        "dataset_seed": seed, "case_index": i, "size": size, **({"variant": variant} if variant else {}),
        "image_scale": CARDIAC_SCALE,
        "volumes_ml": {k: [round(float(v), 4) for v in vals] for k, vals in case.volumes.items()},
        "label_volumes_ml": {k: [round(float(v), 4) for v in vals]
                             for k, vals in case.label_volumes().items()},
        "ed_index": case.ed, "es_index": case.es,
        "lv_ef_percent": round(case.ejection_fraction("LV"), 3),
        "rv_ef_percent": round(case.ejection_fraction("RV"), 3),
        "params": {k: v for k, v in case.params.items() if k != "signal"},
    }


def write_acdc(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
               size: str = "fast", variant: str | None = None) -> Path:
    """Write ``n_cases`` synthetic ACDC patients under ``out`` (the ``ACDC`` folder).

    As in ACDC: two thirds (rounded up) in ``database/training`` as patient001…, the rest in
    ``database/testing`` from patient101 on; the five groups in turn; labels at ED and ES in
    ``_gt`` files. The phantom's labels for *every* frame and its exact volumes go to the
    ``cmrlab_labels4d`` and ``cmrlab_truth.json`` files that real ACDC does not have.
    ``variant``: ``None`` or a name of :data:`VARIANTS` ``["acdc"]`` (``"long-cines"``).
    """
    from cmrlab.data import acdc
    from cmrlab.phantoms import ACDC_GROUPS

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    variant = check_variant("acdc", variant)
    n_train = math.ceil(n_cases * 2 / 3)
    with _bar(n_cases, "synthetic ACDC" + (f" ({variant})" if variant else ""), progress) as bar:
        for i, case in _cine_cases(n_cases, seed, size, ACDC_GROUPS, variant):
            split, number = ("training", i + 1) if i < n_train else ("testing", 101 + i - n_train)
            ed, es = case.ed + 1, case.es + 1
            acdc.write_patient(
                out, f"patient{number:03d}", _stored_image(case.image),
                {ed: case.labels[..., case.ed], es: case.labels[..., case.es]}, case.spacing,
                ed=ed, es=es, group=case.group, height=round(case.height, 1),
                weight=round(case.weight, 1), split=split, affine=case.affine,
                all_frame_labels=case.labels, truth=_truth(case, seed, i, size, variant),
                time_step=case.temporal_resolution,
            )
            bar.update(1)
    return out


#: Vendors (letter, name) and the centres that used them in M&Ms.
_MNMS_VENDORS = (("A", "Siemens", (1, 6)), ("B", "Philips", (2, 3)), ("C", "GE", (4,)),
                 ("D", "Canon", (5,)))


def write_mnms(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
               size: str = "fast") -> Path:
    """Write ``n_cases`` synthetic M&Ms subjects under ``out`` (the ``MnM`` folder).

    ``OpenDataset/Training/Labeled`` gets 60 % (rounded up), ``Validation`` and ``Testing`` share
    the rest; vendors A–D and their centres in turn. The vendor and centre are metadata only: the
    phantom does not imitate one vendor's look. Labels are stored in M&Ms values (1 LV, 2 MYO, 3 RV).
    """
    from cmrlab.data import mnms
    from cmrlab.phantoms import ACDC_GROUPS

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    root = out / "OpenDataset"
    n_train = math.ceil(n_cases * 0.6)
    n_val = (n_cases - n_train + 1) // 2
    pathology = {"NOR": "NOR", "MINF": "MINF", "DCM": "DCM", "HCM": "HCM", "RV": "ARV"}
    with _bar(n_cases, "synthetic M&Ms", progress) as bar:
        for i, case in _cine_cases(n_cases, seed, size, ACDC_GROUPS):
            split = ("Training/Labeled" if i < n_train else
                     "Validation" if i < n_train + n_val else "Testing")
            letter, name, centres = _MNMS_VENDORS[i % len(_MNMS_VENDORS)]
            mnms.write_case(
                root, f"S{i + 1:05d}", _stored_image(case.image),
                {case.ed: case.labels[..., case.ed], case.es: case.labels[..., case.es]},
                case.spacing, ed=case.ed, es=case.es, vendor=letter, vendor_name=name,
                centre=centres[(i // len(_MNMS_VENDORS)) % len(centres)], split=split,
                pathology=pathology[case.group], affine=case.affine,
                time_step=case.temporal_resolution,
            )
            bar.update(1)
    return out


def write_sunnybrook(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
                     size: str = "fast") -> Path:
    """Write ``n_cases`` synthetic Sunnybrook patients under ``out`` (the ``Sunnybrook`` folder).

    As the real data: 20 phases, DICOM files per slice and phase, endocardial and epicardial
    contours at ED and ES, the groups HF-I, HF-NI, HYP and N in turn (made from the MINF, DCM, HCM and
    NOR phantoms; :data:`SUNNYBROOK_GROUPS`). Full size: 256² pixels and 8 mm slices as in the
    challenge (SCD used 1.25–1.5 mm pixels); fast: 128² at about 2 mm.
    """
    from cmrlab.data import sunnybrook
    from cmrlab.phantoms import cine_case

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    names = list(SUNNYBROOK_GROUPS)
    with _bar(n_cases, "synthetic Sunnybrook", progress) as bar:
        for i in range(n_cases):
            s = _case_seed(seed, i)
            rng = np.random.default_rng([s, 2])
            group = names[i % len(names)]
            kwargs = ({"matrix": 256, "spacing": float(rng.uniform(1.25, 1.5))} if size == "full"
                      else {"matrix": 128, "spacing": float(rng.uniform(1.8, 2.4))})
            case = cine_case(SUNNYBROOK_GROUPS[group], seed=s, n_frames=20, slice_spacing=8.0,
                             slice_thickness=8.0, **kwargs)
            lv = np.where(case.labels == 1, 0, case.labels).astype(np.uint8)
            number = i // len(names) + 1
            sunnybrook.write_case(
                out, f"SCD{i + 1:07d}", _stored_image(case.image), lv, case.spacing,
                contour_frames=[case.ed, case.es], group=group,
                original_id=f"SC-{group}-{number}", affine=case.affine,
                time_step=case.temporal_resolution, slice_thickness=case.slice_thickness,
            )
            bar.update(1)
    return out


# --------------------------------------------------------------------------------------------
# brain
# --------------------------------------------------------------------------------------------
def _brain_cases(n: int, seed: int, size: str, **kwargs: Any) -> Iterator[tuple[int, Any]]:
    from cmrlab.phantoms import brain_case

    spacing = 2.0 if size == "fast" else 1.0
    for i in range(n):
        yield i, brain_case(seed=_case_seed(seed, i), spacing=spacing, **kwargs)


def _integer_scan(image: np.ndarray) -> np.ndarray:
    """``image`` scaled so that its 99.5th percentile over non-zero voxels is :data:`BRAIN_LEVEL`."""
    level = float(np.percentile(image[image > 0], 99.5)) if np.any(image > 0) else 1.0
    return np.round(image * (BRAIN_LEVEL / level)).astype(np.float32)


def write_iseg(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
               size: str = "fast") -> Path:
    """Write ``n_cases`` synthetic 6-month infant brains in the iSeg-2017 layout under ``out``.

    Half (rounded up) go to ``iSeg-2017-Training`` with labels (0/10/150/250), the rest to
    ``iSeg-2017-Testing`` without, as in the challenge. T1 and T2 are the phantom's infant
    ("isointense") contrast as 16-bit integers (99.5th percentile at 1000). The real scans are 144×192×256 at 1 mm with
    the skull; these are skull-stripped MNI-shaped brains (the phantom's grid).
    """
    from cmrlab.data import iseg

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    n_train = math.ceil(n_cases / 2)
    with _bar(n_cases, "synthetic iSeg-2017", progress) as bar:
        for i, case in _brain_cases(n_cases, seed, size, infant=True):
            train = i < n_train
            iseg.write_subject(
                out, i + 1 if train else i - n_train + 11,
                _integer_scan(case.images["t1"]), _integer_scan(case.images["t2"]),
                case.labels if train else None, spacing=case.spacing,
                split="training" if train else "testing",
            )
            bar.update(1)
    return out


def write_mrbrains18(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
                     size: str = "fast") -> Path:
    """Write ``n_cases`` synthetic adult brains in the MRBrainS18 layout under ``out``.

    ``training/<id>/pre/{FLAIR,reg_IR,reg_T1,T1}.nii.gz`` and ``segm.nii.gz`` with the tissue
    classes stored as MRBrainS labels (CSF 5, cortical GM 1, WM 3; the finer structures 2, 4, 6–10
    are not modelled). The real scans are 240×240×48 at 0.958×0.958×3 mm.
    """
    from cmrlab.data import mrbrains

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    with _bar(n_cases, "synthetic MRBrainS18", progress) as bar:
        for i, case in _brain_cases(n_cases, seed, size):
            images = {"FLAIR": case.images["flair"], "reg_IR": case.images["t1ir"],
                      "reg_T1": case.images["t1"]}
            mrbrains.write_subject(out, i + 1, images, case.labels, spacing=case.spacing,
                                   affine=case.affine)
            bar.update(1)
    return out


def write_brats(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
                size: str = "fast") -> Path:
    """Write ``n_cases`` synthetic glioma cases in the BraTS 2021 layout under ``out``.

    ``BraTS2021_XXXXX/BraTS2021_XXXXX_{t1,t1ce,t2,flair,seg}.nii.gz``, labels 1 NCR, 2 ED, 4 ET.
    The real scans are 240×240×155 at 1 mm; these are on the phantom's MNI grid.
    """
    from cmrlab.data import brats

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    with _bar(n_cases, "synthetic BraTS 2021", progress) as bar:
        for i, case in _brain_cases(n_cases, seed, size, tumour=True):
            images = {k: case.images[k] for k in ("t1", "t1ce", "t2", "flair")}
            brats.write_case(out, f"BraTS2021_{i:05d}", images, case.tumour_labels,
                             spacing=case.spacing, affine=case.affine)
            bar.update(1)
    return out


def write_msd_task01(out: str | os.PathLike, *, n_cases: int, seed: int = 0, progress: bool = True,
                     size: str = "fast") -> Path:
    """Write ``n_cases`` synthetic glioma cases as MSD Task01_BrainTumour under ``out``.

    4-D images with the channels FLAIR, T1w, T1gd, T2w and labels 1 oedema, 2 non-enhancing,
    3 enhancing (the BraTS labels relabelled, :func:`cmrlab.data.msd.brats_to_msd_labels`); all
    cases in ``imagesTr``/``labelsTr`` (the real ``imagesTs`` has no labels, so it is left empty).
    """
    from cmrlab.data import msd

    out, n_cases, seed, size = _check(out, n_cases, seed, size)
    out.mkdir(parents=True, exist_ok=True)
    with _bar(n_cases, "synthetic MSD Task01", progress) as bar:
        for i, case in _brain_cases(n_cases, seed, size, tumour=True):
            image = msd.brats_to_msd_image({k: case.images[k] for k in ("t1", "t1ce", "t2", "flair")})
            msd.write_case(out, f"BRATS_{i + 1:03d}", image, msd.brats_to_msd_labels(case.tumour_labels),
                           spacing=case.spacing, affine=case.affine)
            bar.update(1)
    meta = dict(msd.TASKS["Task01_BrainTumour"])
    meta["description"] = "SYNTHETIC gliomas made by cmrlab.phantoms.brain_case (not patient data)"
    msd.write_dataset_json(out, meta)
    return out
