"""Tests of cmrlab.data.mnms: a hand-made M&Ms subject (nibabel + a CSV like the published one),
the writer's output, the LV/RV label swap, and clean errors for hostile input."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from cmrlab.data import mnms
from cmrlab.errors import ArgumentError, FileFormatError

SHAPE = (20, 18, 4, 10)
SPACING = (1.25, 1.25, 9.2)
ED, ES = 0, 6  # 0-based, as in the M&Ms CSV


def nifti(array, affine, zooms=None):
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    if zooms is not None:
        img.header.set_zooms(zooms)
    return img


def acdc_slab(shape3, shrink=0):
    """ACDC labels: RV (1) left, myocardium ring (2), LV cavity (3)."""
    x, y = np.meshgrid(np.arange(shape3[0]), np.arange(shape3[1]), indexing="ij")
    slab = np.zeros(shape3[:2], np.uint8)
    slab[np.hypot(x - 4, y - 9) < 3] = 1
    r = np.hypot(x - 12, y - 9)
    slab[r < 6] = 2
    slab[r < 4 - shrink] = 3
    return np.repeat(slab[:, :, None], shape3[2], axis=2)


@pytest.fixture
def real_like(tmp_path) -> Path:
    """One labelled subject written with nibabel, and the CSV with a leading unnamed index column."""
    root = tmp_path / "MnM" / "OpenDataset"
    folder = root / "Training" / "Labeled" / "A0S9V9"
    folder.mkdir(parents=True)
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = [-12.0, 30.0, 5.0]
    image = np.random.default_rng(2).integers(0, 600, SHAPE).astype(np.int16)
    gt = np.zeros(SHAPE, np.uint8)
    gt[..., ED] = mnms.from_acdc_labels(acdc_slab(SHAPE[:3]))
    gt[..., ES] = mnms.from_acdc_labels(acdc_slab(SHAPE[:3], 1))
    nib.save(nifti(image, affine, (*SPACING, 1.0)), folder / "A0S9V9_sa.nii.gz")
    nib.save(nifti(gt, affine, (*SPACING, 1.0)), folder / "A0S9V9_sa_gt.nii.gz")
    (root / mnms.INFO_CSV).write_text(
        ",External code,VendorName,Vendor,Centre,ED,ES,Age,Pathology,Sex,Height,Weight\n"
        f"0,A0S9V9,Siemens,A,1,{ED},{ES},67,HCM,M,172,80\n"
        "1,A1D0Q7,Philips,B,2,0,9,50,NOR,F,160,60\n"
    )
    return folder


def test_reads_hand_made_subject_with_0_based_frames(real_like):
    case = mnms.read_case(real_like)
    assert case.id == "A0S9V9" and case.split == "Training/Labeled"
    assert (case.ed_index, case.es_index, case.n_frames) == (0, 6, 10)
    assert (case.vendor, case.vendor_name, case.centre, case.pathology) == ("A", "Siemens", "1", "HCM")
    assert case.info["Age"] == "67"
    np.testing.assert_allclose(case.spacing, SPACING)
    assert case.image4d.dtype == np.float32 and case.labels4d.dtype == np.uint8
    np.testing.assert_array_equal(case.es_labels_acdc, acdc_slab(SHAPE[:3], 1))
    # LV cavity centre: value 1 in M&Ms, 3 in ACDC; RV blob: 3 in M&Ms, 1 in ACDC
    assert case.ed_labels[12, 9, 0] == 1 and case.ed_labels_acdc[12, 9, 0] == 3
    assert case.ed_labels[4, 9, 0] == 3 and case.ed_labels_acdc[4, 9, 0] == 1
    assert case.ed_labels[12, 4, 0] == 2 and case.ed_labels_acdc[12, 4, 0] == 2


def test_label_maps():
    values = np.array([0, 1, 2, 3], np.uint8)
    np.testing.assert_array_equal(mnms.to_acdc_labels(values), [0, 3, 2, 1])
    np.testing.assert_array_equal(mnms.from_acdc_labels(mnms.to_acdc_labels(values)), values)
    assert mnms.LABELS[1] == "LV cavity" and mnms.LABELS[3] == "RV cavity"
    with pytest.raises(ArgumentError):
        mnms.to_acdc_labels(np.array([4]))


def write(root, case_id="B2C3D4", split="Training/Labeled", labels="default", **overrides):
    rng = np.random.default_rng(5)
    image = rng.normal(200, 30, SHAPE).astype(np.float32)
    if labels == "default":
        labels = {ED: acdc_slab(SHAPE[:3]), ES: acdc_slab(SHAPE[:3], 1)}
    kwargs = dict(ed=ED, es=ES, vendor="B", vendor_name="Philips", centre=2, split=split,
                  pathology="DCM", time_step=40.0)
    kwargs.update(overrides)
    return image, mnms.write_case(root, case_id, image, labels, SPACING, **kwargs)


def test_writer_round_trip_stores_mnms_values(tmp_path):
    root = tmp_path / "OpenDataset"
    image, folder = write(root)
    assert folder == root / "Training" / "Labeled" / "B2C3D4"
    stored = np.asarray(nib.load(folder / "B2C3D4_sa_gt.nii.gz").dataobj)
    assert stored.shape == SHAPE and stored[12, 9, 0, ED] == 1 and stored[4, 9, 0, ED] == 3
    assert not stored[..., [t for t in range(SHAPE[3]) if t not in (ED, ES)]].any()
    case = mnms.read_case(folder)
    np.testing.assert_array_equal(case.image4d, image)
    np.testing.assert_array_equal(case.ed_labels_acdc, acdc_slab(SHAPE[:3]))
    assert (case.vendor, case.vendor_name, case.centre, case.pathology) == ("B", "Philips", "2", "DCM")
    assert case.time_step == 40.0
    assert np.allclose(sitk.ReadImage(str(folder / "B2C3D4_sa.nii.gz")).GetSpacing()[:3], SPACING)
    header = (root / mnms.INFO_CSV).read_text().splitlines()[0]
    assert header.startswith("External code,VendorName,Vendor,Centre,ED,ES")


def test_unlabeled_split_and_csv_update_and_counts(tmp_path):
    root = tmp_path / "OpenDataset"
    write(root, "AAA111")
    write(root, "BBB222", split="Training/Unlabeled", labels=None, vendor="C", vendor_name="Canon")
    write(root, "CCC333", split="Validation", vendor="A", vendor_name="Siemens", centre=1)
    write(root, "AAA111", vendor="D", vendor_name="GE")  # rewriting replaces the row
    unlabeled = mnms.read_case(root / "Training" / "Unlabeled" / "BBB222")
    assert unlabeled.labels4d is None and unlabeled.ed_labels is None
    assert [p.name for p in mnms.list_cases(root.parent)] == ["AAA111", "BBB222", "CCC333"]
    for deep in (False, True):
        report = mnms.check_dataset(root, deep=deep)
        assert report.n_cases == 3
        assert report.per_split == {"Training/Labeled": 1, "Training/Unlabeled": 1, "Validation": 1}
        assert report.counts["vendor"] == {"A": 1, "C": 1, "D": 1}
        assert any("Testing" in p for p in report.problems)


def test_identical_bytes(tmp_path):
    _, a = write(tmp_path / "a" / "OpenDataset")
    _, b = write(tmp_path / "b" / "OpenDataset")
    for name in ("B2C3D4_sa.nii.gz", "B2C3D4_sa_gt.nii.gz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    csv_a = (tmp_path / "a" / "OpenDataset" / mnms.INFO_CSV).read_bytes()
    assert csv_a == (tmp_path / "b" / "OpenDataset" / mnms.INFO_CSV).read_bytes()


def _csv(folder):
    return folder.parents[2] / mnms.INFO_CSV


def test_es_outside_the_cine(real_like):
    path = _csv(real_like)
    path.write_text(path.read_text().replace(f"A,1,{ED},{ES}", f"A,1,{ED},10"))
    with pytest.raises(FileFormatError, match="ES = 10 but A0S9V9_sa.nii.gz has 10 frames") as info:
        mnms.read_case(real_like)
    assert info.value.path == str(path)


def test_one_based_frames_are_caught(real_like):
    path = _csv(real_like)
    path.write_text(path.read_text().replace(f"A,1,{ED},{ES}", f"A,1,{ED + 1},{ES + 1}"))
    with pytest.raises(FileFormatError, match=r"frame 1 \(ED in the CSV, 0-based\) holds no labels"):
        mnms.read_case(real_like)


def test_labels_at_a_third_frame(real_like):
    gt_path = real_like / "A0S9V9_sa_gt.nii.gz"
    img = nib.load(gt_path)
    data = np.asarray(img.dataobj).copy()
    data[5, 5, 1, 3] = 2
    nib.save(nifti(data, img.affine), gt_path)
    with pytest.raises(FileFormatError, match=r"frames \[3\] hold labels") as info:
        mnms.read_case(real_like)
    assert info.value.path == str(gt_path)


def test_gt_affine_and_label_value(real_like):
    gt_path = real_like / "A0S9V9_sa_gt.nii.gz"
    img = nib.load(gt_path)
    data = np.asarray(img.dataobj).copy()
    shifted = img.affine.copy()
    shifted[1, 3] += 1.0
    nib.save(nifti(data, shifted), gt_path)
    with pytest.raises(FileFormatError, match="affine"):
        mnms.read_case(real_like)
    data[0, 0, 0, ED] = 7
    nib.save(nifti(data, img.affine), gt_path)
    with pytest.raises(FileFormatError, match=r"label value\(s\) 7 \(1 voxels\)"):
        mnms.read_case(real_like)


def test_csv_problems(real_like):
    path = _csv(real_like)
    text = path.read_text()
    path.write_text(text.replace(",VendorName", ",Scanner"))
    with pytest.raises(FileFormatError, match="VendorName"):
        mnms.read_case(real_like)
    path.write_text(text.replace("0,A0S9V9", "0,ZZZ999"))
    with pytest.raises(FileFormatError, match="no row for External code A0S9V9"):
        mnms.read_case(real_like)
    path.write_text(text.replace(f"A,1,{ED},", "A,1,first,"))
    with pytest.raises(FileFormatError, match=r"line 2 \(A0S9V9\): ED should be a 0-based frame"):
        mnms.read_case(real_like)
    path.unlink()
    with pytest.raises(FileFormatError, match="information CSV is missing"):
        mnms.check_dataset(real_like.parents[2])


def test_writer_refuses_bad_arguments(tmp_path):
    with pytest.raises(ArgumentError, match="0-based ED and ES"):
        write(tmp_path, labels={1: acdc_slab(SHAPE[:3]), ES: acdc_slab(SHAPE[:3])})
    with pytest.raises(ArgumentError, match="es must be a 0-based frame index"):
        write(tmp_path, es=10)
    with pytest.raises(ArgumentError, match="labels are required"):
        write(tmp_path, labels=None)
    with pytest.raises(ArgumentError, match="split"):
        write(tmp_path, split="Training")
    assert not any(tmp_path.rglob("*.nii.gz"))
