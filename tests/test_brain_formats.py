"""Tests of the brain dataset formats: iSeg-2017, MRBrainS18, BraTS 2021 and MSD.

Each format is read from a fixture made here directly with nibabel (mimicking the real files:
data types, 4-D iSeg volumes, BraTS's LPS-style affine, MSD's 4-D Task01 images and AppleDouble
files), then written by the module's writer and read back, then fed corrupt and hostile input.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from cmrlab.data import brats, iseg, mrbrains, msd
from cmrlab.errors import ArgumentError, FileFormatError

SHAPE = (12, 14, 10)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def all_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


def save(array: np.ndarray, path: Path, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


# ==============================================================================================
# iSeg-2017
# ==============================================================================================
def analyze(array: np.ndarray, path: Path, zooms=(1.0, 1.0, 1.0), endianness: str = ">") -> Path:
    """An Analyze 7.5 pair as the real files: X×Y×Z×1, big-endian header."""
    header = nib.AnalyzeHeader(endianness=endianness)
    header.set_data_dtype(array.dtype)
    img = nib.AnalyzeImage(array[..., np.newaxis], None, header)
    img.header.set_zooms(tuple(zooms) + (1.0,))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.to_filename(path)
    return path


def iseg_labels() -> np.ndarray:
    """0 outside, then bands of 10 (CSF), 150 (GM), 250 (WM) along x: known voxel counts."""
    lab = np.zeros(SHAPE, dtype=np.uint8)
    lab[2:4] = 10     # 2 × 14 × 10 = 280 voxels
    lab[4:7] = 150    # 420
    lab[7:11] = 250   # 560
    return lab


@pytest.fixture
def iseg_fixture(tmp_path) -> Path:
    root = tmp_path / "iSeg-2017"
    train = root / "iSeg-2017-Training"
    r = rng(1)
    for n in (1, 2):
        analyze(r.integers(0, 900, SHAPE).astype(np.int16), train / f"subject-{n}-T1.hdr")
        analyze(r.integers(0, 700, SHAPE).astype(np.int16), train / f"subject-{n}-T2.hdr")
        analyze(iseg_labels(), train / f"subject-{n}-label.hdr")
    test = root / "iSeg-2017-Testing"
    analyze(r.integers(0, 900, SHAPE).astype(np.int16), test / "subject-11-T1.hdr")
    analyze(r.integers(0, 700, SHAPE).astype(np.int16), test / "subject-11-T2.hdr")
    (train / "._subject-1-T1.hdr").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    return root


def test_iseg_reads_hand_made_fixture(iseg_fixture):
    cases = iseg.list_cases(iseg_fixture)
    assert [c.name for c in cases] == ["subject-1", "subject-2", "subject-11"]
    subject = iseg.read_subject(cases[0])
    raw_t1 = np.asarray(nib.load(cases[0].parent / "subject-1-T1.img").dataobj)[..., 0]
    assert subject.t1.dtype == np.float32 and subject.t1.shape == SHAPE
    np.testing.assert_array_equal(subject.t1, raw_t1)
    assert subject.split == "training" and subject.number == 1 and subject.id == "subject-1"
    assert subject.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(subject.labels, iseg_labels())
    counts = np.bincount(subject.tissue_labels.ravel(), minlength=4)
    assert counts.tolist() == [12 * 14 * 10 - 1260, 280, 420, 560]
    test_subject = iseg.read_subject(cases[2].parent / "subject-11-T2.img")  # any file works
    assert test_subject.split == "testing" and test_subject.labels is None
    assert test_subject.tissue_labels is None
    report = iseg.check_dataset(iseg_fixture, deep=True)
    assert (report.n_cases, report.per_split, report.ok) == (3, {"training": 2, "testing": 1}, True)
    # a split folder given directly is accepted too
    assert iseg.check_dataset(iseg_fixture / "iSeg-2017-Training").per_split == {"training": 2}


def test_iseg_label_mapping():
    values = np.array([0, 10, 150, 250, 250], dtype=np.uint8)
    np.testing.assert_array_equal(iseg.to_tissue_labels(values), [0, 1, 2, 3, 3])
    np.testing.assert_array_equal(iseg.from_tissue_labels(np.array([3, 2, 1, 0])), [250, 150, 10, 0])
    with pytest.raises(ArgumentError, match=r"\[100\]"):
        iseg.to_tissue_labels(np.array([0, 100]))


def test_iseg_writer_round_trip_and_identical_bytes(tmp_path):
    r = rng(2)
    t1 = (r.random(SHAPE) * 1000).astype(np.float32)
    t2 = (r.random(SHAPE) * 600).astype(np.float32)
    tissue = r.integers(0, 4, SHAPE).astype(np.uint8)
    for name in ("a", "b"):
        iseg.write_subject(tmp_path / name, 3, t1, t2, tissue, spacing=(1.0, 1.2, 0.9))
        iseg.write_subject(tmp_path / name, 12, t1, t2, split="testing", spacing=(1.0, 1.2, 0.9))
    assert all_bytes(tmp_path / "a") == all_bytes(tmp_path / "b")
    assert hidden_leftovers(tmp_path) == []
    folder = tmp_path / "a" / "iSeg-2017-Training"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"subject-3-{k}.{e}" for k in ("T1", "T2", "label") for e in ("hdr", "img")]
    # the real data types and the X×Y×Z×1 shape
    t1_img = nib.load(folder / "subject-3-T1.hdr")
    assert t1_img.shape == (*SHAPE, 1) and t1_img.get_data_dtype() == np.int16
    assert nib.load(folder / "subject-3-label.hdr").get_data_dtype() == np.uint8
    assert (folder / "subject-3-label.img").stat().st_size == np.prod(SHAPE)
    subject = iseg.read_subject(folder / "subject-3")
    np.testing.assert_array_equal(subject.tissue_labels, tissue)
    np.testing.assert_array_equal(subject.t1, np.rint(t1))
    assert np.allclose(subject.spacing, (1.0, 1.2, 0.9))
    with_sitk = sitk.ReadImage(str(folder / "subject-3-T2.hdr"))
    assert np.allclose(with_sitk.GetSpacing()[:3], (1.0, 1.2, 0.9))
    assert set(np.unique(np.asarray(nib.load(folder / "subject-3-label.hdr").dataobj))) <= {
        0, 10, 150, 250}
    assert iseg.check_dataset(tmp_path / "a").per_split == {"training": 1, "testing": 1}


def test_iseg_writer_argument_errors(tmp_path):
    t = np.full(SHAPE, 500.0)
    t[0] = 0
    tissue = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ArgumentError, match="training subject needs"):
        iseg.write_subject(tmp_path, 1, t, t)
    with pytest.raises(ArgumentError, match="testing subjects have no label"):
        iseg.write_subject(tmp_path, 11, t, t, tissue, split="testing")
    with pytest.raises(ArgumentError, match="scale them up"):
        iseg.write_subject(tmp_path, 1, t / 1000, t, tissue)
    with pytest.raises(ArgumentError, match="16-bit"):
        iseg.write_subject(tmp_path, 1, t * 1000, t, tissue)
    with pytest.raises(ArgumentError, match=r"tissue_labels holds label value\(s\) \[4\]"):
        iseg.write_subject(tmp_path, 1, t, t, tissue + 4)
    with pytest.raises(ArgumentError, match="t2 has shape"):
        iseg.write_subject(tmp_path, 1, t, t[:-1], tissue)
    with pytest.raises(ArgumentError, match="subject must be an integer"):
        iseg.write_subject(tmp_path, 0, t, t, tissue)
    assert not any(tmp_path.rglob("*.hdr"))


def test_iseg_failed_write_leaves_nothing(tmp_path, monkeypatch):
    t = np.linspace(0, 900, np.prod(SHAPE)).reshape(SHAPE)
    tissue = np.zeros(SHAPE, np.uint8)

    def broken(self, filename):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nib.AnalyzeImage, "to_filename", broken)
    with pytest.raises(FileFormatError, match=r"subject-1-T1\.hdr: could not be written .*disk full"):
        iseg.write_subject(tmp_path, 1, t, t, tissue)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    (tmp_path / "iSeg-2017-Training" / "subject-1-T2.hdr").mkdir()
    with pytest.raises(FileFormatError, match=r"subject-1-T2\.hdr: is a folder"):
        iseg.write_subject(tmp_path, 1, t, t, tissue)
    assert hidden_leftovers(tmp_path) == []


def test_iseg_corrupt_inputs(iseg_fixture):
    train = iseg_fixture / "iSeg-2017-Training"
    # a label value iSeg does not use
    lab = iseg_labels()
    lab[0, 0, 0] = 100
    analyze(lab, train / "subject-2-label.hdr")
    with pytest.raises(FileFormatError, match=r"subject-2-label\.hdr: .*100 \(1 voxels\)"):
        iseg.read_subject(train / "subject-2")
    # T2 on another grid
    analyze(np.zeros((12, 14, 9), np.int16), train / "subject-2-T2.hdr")
    with pytest.raises(FileFormatError, match=r"subject-2-T2\.hdr: has shape \(12, 14, 9\)"):
        iseg.read_subject(train / "subject-2")
    # a truncated voxel file
    img = train / "subject-1-T1.img"
    img.write_bytes(img.read_bytes()[:100])
    with pytest.raises(FileFormatError, match=r"subject-1-T1\.img: is truncated"):
        iseg.read_subject(train / "subject-1")
    # the label map of a training subject removed
    (train / "subject-1-label.img").unlink()
    with pytest.raises(FileFormatError, match=r"subject-1-label\.img: .*is missing"):
        iseg.check_dataset(iseg_fixture)
    for p in train.glob("subject-1-label.*"):
        p.unlink()
    with pytest.raises(FileFormatError, match=r"subject-1-label\.hdr: .*is missing"):
        iseg.read_subject(train / "subject-1")
    with pytest.raises(ArgumentError, match="must name an iSeg subject"):
        iseg.read_subject(train / "patient-1")


def test_iseg_empty_or_missing_root(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        iseg.check_dataset(tmp_path / "nowhere")
    with pytest.raises(FileFormatError, match="holds neither iSeg-2017-Training"):
        iseg.check_dataset(tmp_path)
    (tmp_path / "iSeg-2017-Training").mkdir()
    with pytest.raises(FileFormatError, match="holds no iSeg subject"):
        iseg.check_dataset(tmp_path)


# ==============================================================================================
# MRBrainS18
# ==============================================================================================
MRB_SPACING = (0.958, 0.958, 3.0)


def mrb_affine() -> np.ndarray:
    affine = np.diag([*MRB_SPACING, 1.0])
    affine[:3, 3] = [-110.0, -95.0, -70.0]
    return affine


def mrb_segm() -> np.ndarray:
    """Every MRBrainS18 label 1..10 on one x-plane each (14 × 10 = 140 voxels per label)."""
    segm = np.zeros(SHAPE, dtype=np.uint8)
    for value in range(1, 11):
        segm[value] = value
    return segm


@pytest.fixture
def mrbrains_fixture(tmp_path) -> Path:
    root = tmp_path / "MRBrainS18"
    r = rng(3)
    for sid in ("1", "148", "070", "14"):
        folder = root / "training" / sid
        for key in ("FLAIR", "reg_IR", "reg_T1", "T1", "IR"):
            shape = (16, 16, 12) if key in ("T1", "IR") else SHAPE  # native-space scans differ
            save(r.integers(0, 3000, shape).astype(np.int16), folder / "pre" / f"{key}.nii.gz",
                 mrb_affine())
        save(mrb_segm(), folder / "segm.nii.gz", mrb_affine())
    return root


def test_mrbrains_reads_hand_made_fixture(mrbrains_fixture):
    cases = mrbrains.list_cases(mrbrains_fixture)
    assert [c.name for c in cases] == ["1", "14", "070", "148"]
    subject = mrbrains.read_subject(cases[0])
    assert set(subject.images) == {"FLAIR", "reg_IR", "reg_T1"}
    assert {"T1", "IR"} <= set(subject.files)
    assert np.allclose(subject.spacing, MRB_SPACING, atol=1e-6)
    np.testing.assert_allclose(subject.affine, mrb_affine(), atol=1e-5)
    np.testing.assert_array_equal(subject.segm, mrb_segm())
    counts = np.bincount(subject.tissue_labels.ravel(), minlength=4)
    # GM = 1+2, WM = 3+4, CSF = 5+6 (2 planes each); 7, 8, 9, 10 and the rest → background
    assert counts.tolist() == [np.prod(SHAPE) - 6 * 140, 280, 280, 280]
    report = mrbrains.check_dataset(mrbrains_fixture, deep=True)
    assert (report.n_cases, report.per_split, report.problems) == (4, {"training": 4}, ())


def test_mrbrains_label_merges():
    segm = np.arange(11, dtype=np.uint8)
    np.testing.assert_array_equal(mrbrains.to_tissue_labels(segm),
                                  [0, 2, 2, 3, 3, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(mrbrains.to_tissue_labels(segm, excluded=255),
                                  [0, 2, 2, 3, 3, 1, 1, 0, 0, 255, 255])
    np.testing.assert_array_equal(mrbrains.to_nine_classes(segm), [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0])
    np.testing.assert_array_equal(mrbrains.to_nine_classes(segm, excluded=255)[9:], [255, 255])
    assert len(mrbrains.NINE_CLASSES) == 9
    with pytest.raises(ArgumentError, match=r"\[11\]"):
        mrbrains.to_tissue_labels(np.array([11]))
    with pytest.raises(ArgumentError, match="excluded"):
        mrbrains.to_tissue_labels(segm, excluded=300)


def test_mrbrains_writer_round_trip_and_identical_bytes(tmp_path):
    r = rng(4)
    images = {k: r.random(SHAPE).astype(np.float32) for k in mrbrains.ALIGNED_MODALITIES}
    tissue = r.integers(0, 4, SHAPE).astype(np.uint8)
    ventricles = np.zeros(SHAPE, bool)
    ventricles[5:7, 5:8, 4:6] = True
    for name in ("a", "b"):
        mrbrains.write_subject(tmp_path / name, "070", images, tissue, affine=mrb_affine(),
                               spacing=MRB_SPACING, structures={6: ventricles})
    assert all_bytes(tmp_path / "a") == all_bytes(tmp_path / "b")
    assert hidden_leftovers(tmp_path) == []
    folder = tmp_path / "a" / "training" / "070"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.nii.gz")) == [
        "pre/FLAIR.nii.gz", "pre/T1.nii.gz", "pre/reg_IR.nii.gz", "pre/reg_T1.nii.gz",
        "segm.nii.gz"]
    subject = mrbrains.read_subject(folder)
    for key, image in images.items():
        np.testing.assert_array_equal(subject.images[key], image)
    expected = np.array([0, 5, 1, 3], np.uint8)[tissue]
    expected[ventricles] = 6
    np.testing.assert_array_equal(subject.segm, expected)
    np.testing.assert_array_equal(subject.tissue_labels[~ventricles], tissue[~ventricles])
    assert np.all(subject.tissue_labels[ventricles] == 1)  # ventricles are CSF
    with_sitk = sitk.ReadImage(str(folder / "segm.nii.gz"))
    assert np.allclose(with_sitk.GetSpacing(), MRB_SPACING, atol=1e-6)
    assert nib.load(folder / "segm.nii.gz").get_data_dtype() == np.uint8
    np.testing.assert_array_equal(
        np.asarray(nib.load(folder / "pre" / "T1.nii.gz").dataobj), images["reg_T1"])


def test_mrbrains_writer_argument_errors(tmp_path):
    images = {k: np.zeros(SHAPE) for k in mrbrains.ALIGNED_MODALITIES}
    tissue = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ArgumentError, match=r"missing \['reg_IR'\]"):
        mrbrains.write_subject(tmp_path, "1", {k: v for k, v in images.items() if k != "reg_IR"},
                               tissue)
    with pytest.raises(ArgumentError, match="structures"):
        mrbrains.write_subject(tmp_path, "1", images, tissue, structures={11: tissue == 0})
    with pytest.raises(ArgumentError, match="subject_id"):
        mrbrains.write_subject(tmp_path, "../evil", images, tissue)
    with pytest.raises(ArgumentError, match="voxel sizes"):
        mrbrains.write_subject(tmp_path, "1", images, tissue, affine=np.eye(4))
    assert not any(tmp_path.rglob("*.nii.gz"))


def test_mrbrains_corrupt_inputs(mrbrains_fixture):
    folder = mrbrains_fixture / "training" / "14"
    save(np.zeros((12, 14, 9), np.int16), folder / "pre" / "reg_IR.nii.gz", mrb_affine())
    with pytest.raises(FileFormatError, match=r"14/pre/reg_IR\.nii\.gz: has shape \(12, 14, 9\)"):
        mrbrains.read_subject(folder)
    save(np.zeros(SHAPE, np.int16), folder / "pre" / "reg_IR.nii.gz", mrb_affine())
    mrbrains.read_subject(folder)
    bad = mrb_segm()
    bad[0, 0, 0] = 12
    save(bad, folder / "segm.nii.gz", mrb_affine())
    with pytest.raises(FileFormatError, match=r"segm\.nii\.gz: holds label value\(s\) 12"):
        mrbrains.read_subject(folder)
    (folder / "pre" / "FLAIR.nii.gz").unlink()
    with pytest.raises(FileFormatError, match=r"14/pre/FLAIR\.nii\.gz: .*is missing"):
        mrbrains.check_dataset(mrbrains_fixture)
    (folder / "segm.nii.gz").write_text("not an image")
    with pytest.raises(FileFormatError, match=r"segm\.nii\.gz: is not gzip-compressed"):
        mrbrains.read_subject(folder)


# ==============================================================================================
# BraTS 2021
# ==============================================================================================
def brats_affine() -> np.ndarray:
    """The real BraTS 2021 files' affine: x and y flipped (from ITK's LPS), 1 mm voxels."""
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [0.0, -239.0, 0.0]
    return affine


def brats_seg() -> np.ndarray:
    """Nested tumour: ET shell around NCR, inside oedema; known voxel counts."""
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:10, 2:10, 2:8] = 2     # 8·8·6 = 384 voxels in all
    seg[4:8, 4:8, 3:7] = 4       # 4·4·4 = 64
    seg[5:7, 5:7, 4:6] = 1       # 2·2·2 = 8
    return seg


@pytest.fixture
def brats_fixture(tmp_path) -> Path:
    root = tmp_path / "BraTS2021"
    r = rng(5)
    for name, labelled in (("BraTS2021_00000", True), ("BraTS2021_01666", False)):
        for key in brats.MODALITIES:
            save(r.integers(0, 2000, SHAPE).astype(np.int16), root / name / f"{name}_{key}.nii.gz",
                 brats_affine())
        if labelled:
            save(brats_seg(), root / name / f"{name}_seg.nii.gz", brats_affine())
    return root


def test_brats_reads_hand_made_fixture(brats_fixture):
    cases = brats.list_cases(brats_fixture)
    assert [c.name for c in cases] == ["BraTS2021_00000", "BraTS2021_01666"]
    case = brats.read_case(cases[0])
    assert set(case.images) == set(brats.MODALITIES)
    assert case.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(case.affine, brats_affine())
    np.testing.assert_array_equal(case.seg, brats_seg())
    assert {k: int(v.sum()) for k, v in case.regions.items()} == {"WT": 384, "TC": 64, "ET": 56}
    assert int(brats.whole_tumour(case.seg).sum()) == 384
    assert int(brats.tumour_core(case.seg).sum()) == 64
    assert int(brats.enhancing_tumour(case.seg).sum()) == 56
    with pytest.raises(FileFormatError, match=r"BraTS2021_01666_seg\.nii\.gz: .*is missing"):
        brats.read_case(cases[1])
    assert brats.read_case(cases[1], require_seg=False).seg is None
    report = brats.check_dataset(brats_fixture, deep=True)
    assert (report.n_cases, report.per_split) == (2, {"training": 1, "validation": 1})
    # the official archive's extra folder level is searched once
    nested = brats_fixture.parent / "nested"
    (nested / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021").mkdir(parents=True)
    os.rename(brats_fixture, nested / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021" / "x")
    assert brats.list_cases(nested) == []
    assert len(brats.list_cases(nested / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021")) == 2


def test_brats_writer_round_trip_and_identical_bytes(tmp_path):
    r = rng(6)
    images = {k: r.random(SHAPE).astype(np.float32) for k in brats.MODALITIES}
    for name in ("a", "b"):
        brats.write_case(tmp_path / name, 7, images, brats_seg(), affine=brats_affine())
        brats.write_case(tmp_path / name, "BraTS2021_00008", images)
    assert all_bytes(tmp_path / "a") == all_bytes(tmp_path / "b")
    assert hidden_leftovers(tmp_path) == []
    folder = tmp_path / "a" / "BraTS2021_00007"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"BraTS2021_00007_{k}.nii.gz" for k in ("flair", "seg", "t1", "t1ce", "t2")]
    case = brats.read_case(folder)
    for key, image in images.items():
        np.testing.assert_array_equal(case.images[key], image)
    np.testing.assert_array_equal(case.seg, brats_seg())
    np.testing.assert_array_equal(case.affine, brats_affine())
    assert brats.check_dataset(tmp_path / "a").per_split == {"training": 1, "validation": 1}
    with pytest.raises(ArgumentError, match=r"seg holds label value\(s\) \[3\]"):
        brats.write_case(tmp_path, 9, images, brats_seg().clip(0, 3))
    with pytest.raises(ArgumentError, match="images must map exactly"):
        brats.write_case(tmp_path, 9, {"t1": images["t1"]})
    with pytest.raises(ArgumentError, match="case_id"):
        brats.write_case(tmp_path, "BraTS2021_1", images)
    assert brats.case_name(42) == "BraTS2021_00042"
    with pytest.raises(ArgumentError, match=r"\[3\]"):
        brats.region_masks(np.array([3]))


def test_brats_corrupt_inputs(brats_fixture):
    folder = brats_fixture / "BraTS2021_00000"
    name = folder.name
    # an affine within the tolerance passes, a 0.5 mm shift does not
    shifted = brats_affine()
    shifted[0, 3] += 5e-4
    save(np.zeros(SHAPE, np.int16), folder / f"{name}_t2.nii.gz", shifted)
    brats.read_case(folder)
    shifted[0, 3] += 0.5
    save(np.zeros(SHAPE, np.int16), folder / f"{name}_t2.nii.gz", shifted)
    with pytest.raises(FileFormatError, match=r"_t2\.nii\.gz: its affine .* differs .* 0\.5"):
        brats.read_case(folder)
    save(np.zeros((12, 14, 11), np.int16), folder / f"{name}_t2.nii.gz", brats_affine())
    with pytest.raises(FileFormatError, match=r"_t2\.nii\.gz: has shape \(12, 14, 11\)"):
        brats.read_case(folder)
    save(np.zeros(SHAPE, np.int16), folder / f"{name}_t2.nii.gz", brats_affine())
    bad = brats_seg().astype(np.float32)
    bad[0, 0, 0] = 3
    save(bad, folder / f"{name}_seg.nii.gz", brats_affine())
    with pytest.raises(FileFormatError, match=r"_seg\.nii\.gz: holds label value\(s\) 3 \(1 voxels\)"):
        brats.read_case(folder)
    bad[0, 0, 0] = 0.5
    save(bad, folder / f"{name}_seg.nii.gz", brats_affine())
    with pytest.raises(FileFormatError, match="non-integer"):
        brats.read_case(folder)
    (folder / f"{name}_seg.nii.gz").unlink()
    nan = np.zeros(SHAPE, np.float32)
    nan[1, 1, 1] = np.nan
    save(nan, folder / f"{name}_t1ce.nii.gz", brats_affine())
    with pytest.raises(FileFormatError, match=r"_t1ce\.nii\.gz: holds NaN"):
        brats.read_case(folder, require_seg=False)
    (folder / f"{name}_flair.nii.gz").unlink()
    with pytest.raises(FileFormatError, match=r"_flair\.nii\.gz: the flair scan.*is missing"):
        brats.check_dataset(brats_fixture)
    with pytest.raises(FileFormatError, match="holds no BraTS2021_XXXXX"):
        brats.check_dataset(folder)


# ==============================================================================================
# MSD
# ==============================================================================================
def task01_json(training: list[str], test: list[str], **changes) -> dict:
    document = {
        "name": "BRATS",
        "description": "Gliomas segmentation tumour and oedema in on brain images",
        "reference": "https://www.med.upenn.edu/sbia/brats2017.html",
        "licence": "CC-BY-SA 4.0",
        "release": "2.0 04/05/2018",
        "tensorImageSize": "4D",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor",
                   "3": "enhancing tumour"},
        "numTraining": len(training),
        "numTest": len(test),
        "training": [{"image": f"./imagesTr/{n}.nii.gz", "label": f"./labelsTr/{n}.nii.gz"}
                     for n in training],
        "test": [f"./imagesTs/{n}.nii.gz" for n in test],
    }
    document.update(changes)
    return document


def write_json(root: Path, document: object) -> None:
    (root / "dataset.json").write_text(json.dumps(document), encoding="utf-8")


@pytest.fixture
def msd_fixture(tmp_path) -> Path:
    root = tmp_path / "Task01_BrainTumour"
    r = rng(7)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    for n in ("BRATS_001", "BRATS_002"):
        save(r.random((*SHAPE, 4)).astype(np.float32), root / "imagesTr" / f"{n}.nii.gz", affine)
        save(msd.brats_to_msd_labels(brats_seg()), root / "labelsTr" / f"{n}.nii.gz", affine)
    save(r.random((*SHAPE, 4)).astype(np.float32), root / "imagesTs" / "BRATS_485.nii.gz", affine)
    for folder in ("imagesTr", "labelsTr", "imagesTs"):  # macOS junk shipped in the real tar
        (root / folder / "._BRATS_001.nii.gz").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    write_json(root, task01_json(["BRATS_001", "BRATS_002"], ["BRATS_485"]))
    return root


def test_msd_reads_hand_made_fixture(msd_fixture):
    task = msd.read_dataset_json(msd_fixture)
    assert task.name == "BRATS" and task.n_channels == 4
    assert task.labels == msd.LABELS and task.metadata["licence"] == "CC-BY-SA 4.0"
    cases = msd.list_cases(msd_fixture)
    assert [c.name for c in cases] == ["BRATS_001.nii.gz", "BRATS_002.nii.gz"]
    assert [c.name for c in msd.list_cases(msd_fixture, "test")] == ["BRATS_485.nii.gz"]
    assert len(msd.list_cases(msd_fixture, "all")) == 3
    case = msd.read_case(cases[0])
    assert case.image.shape == (*SHAPE, 4) and case.channels == ("FLAIR", "T1w", "t1gd", "T2w")
    assert case.id == "BRATS_001" and case.split == "training"
    np.testing.assert_array_equal(msd.msd_to_brats_labels(case.labels), brats_seg())
    test_case = msd.read_case(msd_fixture / "imagesTs" / "BRATS_485.nii.gz")
    assert test_case.split == "test" and test_case.labels is None
    report = msd.check_dataset(msd_fixture, deep=True)
    assert (report.n_cases, report.per_split, report.problems) == (3, {"training": 2, "test": 1}, ())


def test_brats_msd_label_and_channel_mapping():
    seg = np.array([0, 1, 2, 4], np.uint8)
    np.testing.assert_array_equal(msd.brats_to_msd_labels(seg), [0, 2, 1, 3])
    np.testing.assert_array_equal(msd.msd_to_brats_labels(np.array([0, 1, 2, 3])), [0, 2, 1, 4])
    with pytest.raises(ArgumentError, match=r"\[3\]"):
        msd.brats_to_msd_labels(np.array([3]))
    images = {k: np.full((2, 2, 2), i, np.float32) for i, k in enumerate(brats.MODALITIES)}
    stacked = msd.brats_to_msd_image(images)  # t1=0, t1ce=1, t2=2, flair=3
    assert stacked.shape == (2, 2, 2, 4)
    assert stacked[0, 0, 0].tolist() == [3.0, 0.0, 1.0, 2.0]  # FLAIR, T1w, t1gd, T2w


def test_msd_writer_round_trip_and_identical_bytes(tmp_path):
    r = rng(8)
    image = r.random((*SHAPE, 4)).astype(np.float32)
    labels = msd.brats_to_msd_labels(brats_seg())
    metadata = dict(msd.TASKS["Task01_BrainTumour"], description="synthetic (cmrlab test)")
    for name in ("a", "b"):
        root = tmp_path / name / "Task01_BrainTumour"
        for n in ("BRATS_002", "BRATS_001"):
            msd.write_case(root, n, image, labels, spacing=(1.0, 1.0, 1.0))
        msd.write_case(root, "BRATS_485", image, spacing=(1.0, 1.0, 1.0), split="test")
        msd.write_dataset_json(root, metadata)
    assert all_bytes(tmp_path / "a") == all_bytes(tmp_path / "b")
    assert hidden_leftovers(tmp_path) == []
    root = tmp_path / "a" / "Task01_BrainTumour"
    document = json.loads((root / "dataset.json").read_text())
    assert list(document)[:8] == ["name", "description", "reference", "licence", "release",
                                  "tensorImageSize", "modality", "labels"]
    assert (document["numTraining"], document["numTest"]) == (2, 1)
    assert document["training"][0] == {"image": "./imagesTr/BRATS_001.nii.gz",
                                       "label": "./labelsTr/BRATS_001.nii.gz"}
    assert document["test"] == ["./imagesTs/BRATS_485.nii.gz"]
    case = msd.read_case(root / "imagesTr" / "BRATS_002.nii.gz")
    np.testing.assert_array_equal(case.image, image)
    np.testing.assert_array_equal(case.labels, labels)
    report = msd.check_dataset(root, deep=True)
    assert report.ok and report.per_split == {"training": 2, "test": 1}
    # a one-channel task (Task02-like) with its own labels
    heart = tmp_path / "Task02_Heart"
    msd.write_case(heart, "la_003", image[..., 0], (labels > 0).astype(np.uint8),
                   spacing=(1.25, 1.25, 1.37), label_values=(0, 1))
    msd.write_dataset_json(heart, msd.TASKS["Task02_Heart"])
    heart_case = msd.read_case(msd.list_cases(heart)[0])
    assert heart_case.image.shape == SHAPE and heart_case.channels == ("MRI",)
    assert np.allclose(heart_case.spacing, (1.25, 1.25, 1.37))


@pytest.mark.slow  # importing MONAI takes seconds
def test_msd_dataset_json_reads_in_monai(tmp_path):
    """MONAI's DecathlonDataset lists files with load_decathlon_datalist: it must read ours."""
    from monai.data import load_decathlon_datalist

    image = np.zeros((*SHAPE, 4), np.float32)
    for n in ("BRATS_002", "BRATS_001"):
        msd.write_case(tmp_path, n, image, np.zeros(SHAPE, np.uint8), spacing=(1, 1, 1))
    msd.write_dataset_json(tmp_path, msd.TASKS["Task01_BrainTumour"])
    listed = load_decathlon_datalist(tmp_path / "dataset.json", data_list_key="training")
    assert [(Path(d["image"]), Path(d["label"])) for d in listed] == [
        (tmp_path / "imagesTr" / f"{n}.nii.gz", tmp_path / "labelsTr" / f"{n}.nii.gz")
        for n in ("BRATS_001", "BRATS_002")]


def test_msd_writer_argument_errors(tmp_path):
    image = np.zeros(SHAPE, np.float32)
    with pytest.raises(ArgumentError, match="training case needs"):
        msd.write_case(tmp_path, "x_1", image, spacing=(1, 1, 1))
    with pytest.raises(ArgumentError, match="test cases have no labels"):
        msd.write_case(tmp_path, "x_1", image, np.zeros(SHAPE, np.uint8), spacing=(1, 1, 1),
                       split="test")
    with pytest.raises(ArgumentError, match="case_id"):
        msd.write_case(tmp_path, "../x", image, np.zeros(SHAPE, np.uint8), spacing=(1, 1, 1))
    with pytest.raises(ArgumentError, match=r"labels holds label value\(s\) \[4\]"):
        msd.write_case(tmp_path, "x_1", image, np.full(SHAPE, 4, np.uint8), spacing=(1, 1, 1))
    msd.write_case(tmp_path, "x_1", image, np.zeros(SHAPE, np.uint8), spacing=(1, 1, 1))
    with pytest.raises(ArgumentError, match="computed from the files"):
        msd.write_dataset_json(tmp_path, dict(msd.TASKS["Task02_Heart"], numTraining=3))
    with pytest.raises(ArgumentError, match='"modality" indices must be 0..1'):
        msd.write_dataset_json(tmp_path, dict(msd.TASKS["Task02_Heart"],
                                              modality={"0": "MRI", "2": "CT"}))
    assert not (tmp_path / "dataset.json").exists()
    (tmp_path / "labelsTr" / "x_1.nii.gz").unlink()
    with pytest.raises(FileFormatError, match=r"labelsTr/x_1\.nii\.gz: .*is missing"):
        msd.write_dataset_json(tmp_path, msd.TASKS["Task02_Heart"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: "{not json", r"is not valid JSON.* line 1"),
        (lambda d: ["a list"], "must hold a JSON object"),
        (lambda d: {k: v for k, v in d.items() if k != "labels"}, r"lacks the key\(s\) \['labels'\]"),
        (lambda d: dict(d, numTraining=484), r'"numTraining" is 484 but the list holds 2'),
        (lambda d: dict(d, modality={"0": "FLAIR", "2": "T1w"}), r'"modality" indices must be 0..1'),
        (lambda d: dict(d, labels={"1": "edema"}), '"labels" must include 0'),
        (lambda d: dict(d, training=[{"image": "./imagesTr/BRATS_001.nii.gz"}]),
         r'training\[0\] must be an object with "image" and "label"'),
        (lambda d: dict(d, training=[d["training"][0], {
            "image": "./imagesTr/../../../etc/passwd.nii.gz", "label": "./labelsTr/x.nii.gz"}]),
         r"training\[1\]\.image = .* contains '\.\.' .* refused"),
        (lambda d: dict(d, test=["/etc/BRATS_485.nii.gz"]), r"test\[0\] = .* is an absolute path"),
        (lambda d: dict(d, test=["./labelsTr/BRATS_001.nii.gz"]),
         r"test\[0\] = .* should be \./imagesTs/<case>\.nii\.gz"),
        (lambda d: dict(d, training=[d["training"][0], d["training"][0]]), "more than once"),
    ],
)
def test_msd_bad_dataset_json(msd_fixture, change, message):
    document = change(task01_json(["BRATS_001", "BRATS_002"], ["BRATS_485"]))
    if isinstance(document, str):
        (msd_fixture / "dataset.json").write_text(document)
    else:
        write_json(msd_fixture, document)
    with pytest.raises(FileFormatError, match=r"dataset\.json: (.*)?" + message):
        msd.check_dataset(msd_fixture)


def test_msd_files_disagree_with_dataset_json(msd_fixture):
    # an unlisted case is reported, not fatal
    (msd_fixture / "imagesTs" / "BRATS_486.nii.gz").write_bytes(
        (msd_fixture / "imagesTs" / "BRATS_485.nii.gz").read_bytes())
    assert msd.check_dataset(msd_fixture).problems == (
        "imagesTs/BRATS_486.nii.gz is not listed in dataset.json",)
    with pytest.raises(FileFormatError, match="is not listed in"):
        msd.read_case(msd_fixture / "imagesTs" / "BRATS_486.nii.gz")
    # a listed file missing
    (msd_fixture / "labelsTr" / "BRATS_002.nii.gz").unlink()
    with pytest.raises(FileFormatError, match=r"labelsTr/BRATS_002\.nii\.gz: .*listed"):
        msd.check_dataset(msd_fixture)
    # an image with 3 channels where dataset.json names 4
    save(np.zeros((*SHAPE, 3), np.float32), msd_fixture / "imagesTr" / "BRATS_001.nii.gz", np.eye(4))
    with pytest.raises(FileFormatError, match=r"BRATS_001\.nii\.gz: has shape .* X×Y×Z×4"):
        msd.read_case(msd_fixture / "imagesTr" / "BRATS_001.nii.gz")
    # a label map on another grid
    save(np.zeros((*SHAPE, 4), np.float32), msd_fixture / "imagesTr" / "BRATS_001.nii.gz",
         np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(FileFormatError, match=r"labelsTr/BRATS_001\.nii\.gz: its affine"):
        msd.read_case(msd_fixture / "imagesTr" / "BRATS_001.nii.gz")
    (msd_fixture / "dataset.json").unlink()
    with pytest.raises(FileFormatError, match=r"dataset\.json: .*is missing"):
        msd.list_cases(msd_fixture)
