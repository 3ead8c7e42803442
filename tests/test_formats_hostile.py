"""Hostile input for the dataset formats: metadata values (inf, 1e400, NaN, empty, negative, not
UTF-8, a BOM, absurd nesting), paths and symbolic links leading out of a dataset, the one volume
type of cmrlab.data.volume, and the public synthesis API of cmrlab.data.datasets.

Every bad input must give a FileFormatError naming the file (and the field), never an
OverflowError, RecursionError, UnicodeDecodeError, csv.Error or a bare ValueError."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from cmrlab.data import _formats as fmt
from cmrlab.data import acdc, brats, datasets, iseg, mnms, mrbrains, msd, sunnybrook, synthetic
from cmrlab.data.volume import GRID_TOLERANCE_MM, Volume, check_same_grid, read_volume, write_analyze
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.files import is_partial

# ----------------------------------------------------------------------------------------------
# small cases written by the format writers
# ----------------------------------------------------------------------------------------------
SHAPE4 = (10, 8, 3, 6)
SPACING = (1.5, 1.5, 8.0)


def cardiac_labels(shape3):
    labels = np.zeros(shape3, np.uint8)
    labels[2:4, 2:6] = 1
    labels[5:9, 2:6] = 2
    labels[6:8, 3:5] = 3
    return labels


def write_acdc(root: Path, patient: str = "patient001") -> Path:
    image = np.random.default_rng(0).integers(0, 500, SHAPE4).astype(np.int16)
    lab = cardiac_labels(SHAPE4[:3])
    return acdc.write_patient(root, patient, image, {1: lab, 4: lab}, SPACING, ed=1, es=4,
                              group="NOR", height=170.0, weight=70.0,
                              all_frame_labels=np.repeat(lab[..., None], SHAPE4[3], axis=3),
                              truth={"seed": 1}, time_step=40.0)


def write_mnms(root: Path, case_id: str = "A0S9V9") -> Path:
    image = np.random.default_rng(1).integers(0, 500, SHAPE4).astype(np.int16)
    lab = cardiac_labels(SHAPE4[:3])
    return mnms.write_case(root, case_id, image, {0: lab, 3: lab}, SPACING, ed=0, es=3, vendor="A",
                           vendor_name="Siemens", centre=1)


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))
    return path


@pytest.fixture
def acdc_case(tmp_path) -> Path:
    return write_acdc(tmp_path / "ACDC")


@pytest.fixture
def mnms_case(tmp_path) -> Path:
    return write_mnms(tmp_path / "OpenDataset")


# ----------------------------------------------------------------------------------------------
# ACDC Info.cfg
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, field", [
    ("ED: 1", "ED: inf", "ED"),
    ("ED: 1", "ED: 1e400", "ED"),
    ("ED: 1", "ED: nan", "ED"),
    ("ED: 1", "ED: ", "ED"),
    ("ED: 1", "ED: -1", "ED"),
    ("ED: 1", "ED: 1.5", "ED"),
    ("ES: 4", "ES: -inf", "ES"),
    ("NbFrame: 6", "NbFrame: 1e400", "NbFrame"),
    ("NbFrame: 6", "NbFrame: 0", "NbFrame"),
    ("Height: 170.0", "Height: inf", "Height"),
    ("Height: 170.0", "Height: -170", "Height"),
    ("Weight: 70.0", "Weight: NaN", "Weight"),
    ("Weight: 70.0", "Weight: seventy", "Weight"),
    ("Group: NOR", "Group: NORM", "Group"),
    ("ED: 1\n", "ED: 1\nED: 2\n", "twice"),
])
def test_acdc_info_cfg_bad_values_name_the_file_and_the_field(acdc_case, old, new, field):
    info = edit(acdc_case / "Info.cfg", old, new)
    for call in (lambda: acdc.read_patient(acdc_case), lambda: acdc.check_dataset(acdc_case.parents[2])):
        with pytest.raises(FileFormatError) as caught:
            call()
        assert caught.value.path == str(info)
        assert field in caught.value.problem


def test_acdc_info_cfg_encoding(acdc_case):
    info = acdc_case / "Info.cfg"
    good = info.read_bytes()
    info.write_bytes(b"\xef\xbb\xbf" + good)  # a BOM is dropped: the first key is still ED
    assert acdc.read_patient(acdc_case).ed == 1
    info.write_bytes(good.replace(b"NOR", b"N\xd6R"))  # Latin-1, not UTF-8
    with pytest.raises(FileFormatError, match=r"Info\.cfg: is not UTF-8"):
        acdc.read_patient(acdc_case)
    info.write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"Info\.cfg: key\(s\) ED, ES, Group"):
        acdc.read_patient(acdc_case)
    info.write_bytes(b"x" * 100_000)  # one long line without a colon: quoted short
    with pytest.raises(FileFormatError, match="not of the form") as caught:
        acdc.read_patient(acdc_case)
    assert len(str(caught.value)) < 400


# ----------------------------------------------------------------------------------------------
# ACDC cmrlab_truth.json: strict JSON, and the file it names stays in the patient folder
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ('{"seed": NaN}', "NaN"),
    ('{"seed": 1e400}', "finite"),
    ('{"seed": -Infinity}', "Infinity"),
    ("[" * 100_000 + "]" * 100_000, "nested"),
    ('["a list"]', "JSON object"),
    ('{"all_frame_labels_file": 5}', "all_frame_labels_file"),
    ('{"all_frame_labels_file": ""}', "all_frame_labels_file"),
])
def test_acdc_truth_json_hostile(acdc_case, text, words):
    truth = acdc_case / acdc.TRUTH_FILE
    truth.write_text(text)
    for call in (lambda: acdc.read_patient(acdc_case), lambda: acdc.check_dataset(acdc_case.parents[2])):
        with pytest.raises(FileFormatError) as caught:
            call()
        assert caught.value.path == str(truth) and words in caught.value.problem


def test_acdc_truth_json_not_utf8_and_bom(acdc_case):
    truth = acdc_case / acdc.TRUTH_FILE
    good = truth.read_bytes()
    truth.write_bytes(b"\xef\xbb\xbf" + good)
    assert acdc.read_patient(acdc_case).all_frame_labels is not None
    truth.write_bytes(b'{"note": "\xff"}')
    with pytest.raises(FileFormatError, match="not UTF-8"):
        acdc.read_patient(acdc_case)


@pytest.mark.parametrize("name", ["../../../../../../etc/passwd", "/etc/passwd", "../patient002/x.nii.gz"])
def test_acdc_truth_json_paths_stay_in_the_patient_folder(acdc_case, name):
    truth = acdc_case / acdc.TRUTH_FILE
    truth.write_text(json.dumps({"all_frame_labels_file": name}))
    with pytest.raises(FileFormatError, match="all_frame_labels_file") as caught:
        acdc.read_patient(acdc_case)
    assert caught.value.path == str(truth)


def test_acdc_truth_json_link_out_of_the_folder_is_refused(acdc_case, tmp_path):
    outside = tmp_path / "elsewhere.nii.gz"
    (acdc_case / "patient001_cmrlab_labels4d.nii.gz").rename(outside)
    (acdc_case / "patient001_cmrlab_labels4d.nii.gz").symlink_to(outside)
    with pytest.raises(FileFormatError, match="leads outside"):
        acdc.read_patient(acdc_case)


# ----------------------------------------------------------------------------------------------
# links out of a dataset
# ----------------------------------------------------------------------------------------------
def test_acdc_patient_folder_linked_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "ACDC"
    write_acdc(root)
    other = write_acdc(tmp_path / "other-root", "patient002")
    link = root / "database" / "training" / "patient002"
    link.symlink_to(other, target_is_directory=True)
    for call in (lambda: acdc.list_cases(root), lambda: acdc.check_dataset(root),
                 lambda: acdc.read_patient(link)):
        with pytest.raises(FileFormatError, match="leads outside") as caught:
            call()
        assert caught.value.path == str(link)


def test_acdc_image_linked_to_etc_or_another_root_is_refused(acdc_case, tmp_path):
    other = write_acdc(tmp_path / "other-root")
    cine = acdc_case / "patient001_4d.nii.gz"
    cine.unlink()
    cine.symlink_to(other / "patient001_4d.nii.gz")
    for call in (lambda: acdc.read_patient(acdc_case), lambda: acdc.check_dataset(acdc_case.parents[2])):
        with pytest.raises(FileFormatError, match="leads outside") as caught:
            call()
        assert caught.value.path == str(cine)
    cine.unlink()
    cine.symlink_to("/etc/passwd")
    with pytest.raises(FileFormatError, match="leads outside"):
        acdc.read_patient(acdc_case)


def test_links_inside_the_dataset_and_a_linked_root_are_fine(acdc_case, tmp_path):
    root = acdc_case.parents[2]
    linked_root = tmp_path / "linked-ACDC"
    linked_root.symlink_to(root, target_is_directory=True)
    assert acdc.check_dataset(linked_root).n_cases == 1
    # a frame file linked to another file of the same dataset (a copy saved as a link)
    frame = acdc_case / "patient001_frame01.nii.gz"
    (acdc_case / "frame01-copy.nii.gz").write_bytes(frame.read_bytes())
    frame.unlink()
    frame.symlink_to("frame01-copy.nii.gz")
    assert acdc.read_patient(acdc_case).ed == 1


def test_mnms_subject_and_files_linked_outside_are_refused(tmp_path):
    root = tmp_path / "OpenDataset"
    write_mnms(root)
    other = write_mnms(tmp_path / "other" / "OpenDataset", "B1")
    link = root / "Training" / "Labeled" / "B1"
    link.symlink_to(other, target_is_directory=True)
    with pytest.raises(FileFormatError, match="leads outside"):
        mnms.list_cases(root)
    link.unlink()
    gt = root / "Training" / "Labeled" / "A0S9V9" / "A0S9V9_sa_gt.nii.gz"
    gt.unlink()
    gt.symlink_to(other / "B1_sa_gt.nii.gz")
    for call in (lambda: mnms.read_case(gt.parent), lambda: mnms.check_dataset(root)):
        with pytest.raises(FileFormatError, match="leads outside") as caught:
            call()
        assert caught.value.path == str(gt)


def tiny_brain(shape=(6, 5, 4)):
    rng = np.random.default_rng(4)
    images = {k: rng.random(shape).astype(np.float32) * 100 for k in brats.MODALITIES}
    seg = np.zeros(shape, np.uint8)
    seg[1:3, 1:3, 1:3] = 2
    seg[2, 2, 2] = 4
    return images, seg


def test_brats_case_folder_and_scan_linked_outside_are_refused(tmp_path):
    images, seg = tiny_brain()
    root = tmp_path / "BraTS2021"
    brats.write_case(root, 1, images, seg)
    other = brats.write_case(tmp_path / "other", 2, images, seg)
    link = root / "BraTS2021_00002"
    link.symlink_to(other, target_is_directory=True)
    with pytest.raises(FileFormatError, match="leads outside") as caught:
        brats.list_cases(root)
    assert caught.value.path == str(link)
    link.unlink()
    scan = root / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz"
    scan.unlink()
    scan.symlink_to(other / "BraTS2021_00002_t2.nii.gz")
    for call in (lambda: brats.read_case(scan.parent), lambda: brats.check_dataset(root)):
        with pytest.raises(FileFormatError, match="leads outside"):
            call()


def test_iseg_and_mrbrains_links_outside_are_refused(tmp_path):
    t = np.linspace(0, 900, 6 * 5 * 4).reshape(6, 5, 4)
    tissue = np.zeros((6, 5, 4), np.uint8)
    tissue[2:4, 2:4, 1:3] = 3
    root = tmp_path / "iSeg-2017"
    iseg.write_subject(root, 1, t, t, tissue)
    elsewhere = iseg.write_subject(tmp_path / "other", 2, t, t, tissue).parent
    (root / "iSeg-2017-Testing").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(FileFormatError, match="leads outside"):
        iseg.list_cases(root)
    (root / "iSeg-2017-Testing").unlink()
    t2 = root / "iSeg-2017-Training" / "subject-1-T2.img"
    t2.unlink()
    t2.symlink_to(elsewhere / "subject-2-T2.img")
    for call in (lambda: iseg.read_subject(root / "iSeg-2017-Training" / "subject-1"),
                 lambda: iseg.check_dataset(root)):
        with pytest.raises(FileFormatError, match="leads outside") as caught:
            call()
        assert caught.value.path == str(t2)

    images = {k: t.astype(np.float32) for k in mrbrains.ALIGNED_MODALITIES}
    mroot = tmp_path / "MRBrainS18"
    mrbrains.write_subject(mroot, 1, images, tissue, spacing=(1.0, 1.0, 3.0))
    other = mrbrains.write_subject(tmp_path / "other-mr", 2, images, tissue, spacing=(1.0, 1.0, 3.0))
    (mroot / "training" / "2").symlink_to(other, target_is_directory=True)
    with pytest.raises(FileFormatError, match="leads outside"):
        mrbrains.check_dataset(mroot)
    (mroot / "training" / "2").unlink()
    flair = mroot / "training" / "1" / "pre" / "FLAIR.nii.gz"
    flair.unlink()
    flair.symlink_to(other / "pre" / "FLAIR.nii.gz")
    with pytest.raises(FileFormatError, match="leads outside"):
        mrbrains.read_subject(mroot / "training" / "1")


# ----------------------------------------------------------------------------------------------
# M&Ms information CSV
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "", "-1", "2.5", "three", "-inf"])
def test_mnms_csv_bad_frame_numbers(mnms_case, value):
    csv_path = mnms_case.parents[2] / mnms.INFO_CSV
    edit(csv_path, "A,1,0,3", f"A,1,{value},3")
    for call in (lambda: mnms.read_case(mnms_case), lambda: mnms.check_dataset(mnms_case.parents[2])):
        with pytest.raises(FileFormatError, match=r"line 2 \(A0S9V9\): ED should be a 0-based frame") as caught:
            call()
        assert caught.value.path == str(csv_path)


def test_mnms_csv_encoding_bom_and_malformed(mnms_case):
    csv_path = mnms_case.parents[2] / mnms.INFO_CSV
    good = csv_path.read_bytes()
    csv_path.write_bytes(b"\xef\xbb\xbf" + good)  # the BOM must not become part of "External code"
    assert mnms.read_case(mnms_case).ed_index == 0
    csv_path.write_bytes(good.replace(b"Siemens", b"Sie\xe9mens"))
    with pytest.raises(FileFormatError, match="not UTF-8"):
        mnms.read_case(mnms_case)
    csv_path.write_bytes(good + b'X1,"' + b"a" * 200_000 + b'",A,1,0,3,\n')  # a field over csv's limit
    with pytest.raises(FileFormatError, match="not a valid CSV table") as caught:
        mnms.read_case(mnms_case)
    assert caught.value.path == str(csv_path)
    csv_path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="column"):
        mnms.read_case(mnms_case)


# ----------------------------------------------------------------------------------------------
# Sunnybrook: id table and DICOM tags
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def sunnybrook_case(tmp_path):
    labels = np.zeros((16, 14, 2, 4), np.uint8)
    labels[4:12, 3:11] = 2
    labels[6:10, 5:9] = 3
    image = (100 + 50 * labels).astype(np.float32)
    series = sunnybrook.write_case(tmp_path, "SCD0000101", image, labels, SPACING,
                                   contour_frames=(0, 2), group="N")
    return tmp_path, series


@pytest.mark.parametrize("keyword, value", [
    ("PixelSpacing", ["nan", "1.5"]), ("PixelSpacing", ["0", "1.5"]), ("RescaleSlope", "inf"),
    ("RescaleSlope", "1e400"), ("ImagePositionPatient", ["1", "nan", "2"]), ("TriggerTime", "-inf"),
    ("RescaleSlope", "1e38"),
])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sunnybrook_bad_dicom_numbers_name_the_file_and_the_tag(sunnybrook_case, keyword, value):
    root, series = sunnybrook_case
    path = sorted(series.glob("*.dcm"))[3]
    ds = pydicom.dcmread(path)
    setattr(ds, keyword, value)
    ds.save_as(path)
    with pytest.raises(FileFormatError) as caught:
        sunnybrook.read_case(root, "SCD0000101")
    assert caught.value.path == str(path)
    assert keyword in caught.value.problem


def test_sunnybrook_id_table_hostile(sunnybrook_case):
    root, _ = sunnybrook_case
    table = root / sunnybrook.PATIENT_CSV
    good = table.read_text()
    table.write_text(good + good.splitlines()[1] + "\n")
    with pytest.raises(FileFormatError, match="appears twice"):
        sunnybrook.check_dataset(root)
    table.write_bytes(good.encode().replace(b"normal", b"n\xf6rmal"))
    with pytest.raises(FileFormatError, match="not UTF-8"):
        sunnybrook.check_dataset(root)
    table.write_bytes(b"\xef\xbb\xbf" + good.encode())
    assert sunnybrook.check_dataset(root).n_cases == 1


# ----------------------------------------------------------------------------------------------
# MSD dataset.json
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def msd_task(tmp_path) -> Path:
    root = tmp_path / "Task01_BrainTumour"
    images, seg = tiny_brain()
    image = msd.brats_to_msd_image(images)
    for name in ("BRATS_001", "BRATS_002"):
        msd.write_case(root, name, image, msd.brats_to_msd_labels(seg), spacing=(1.0, 1.0, 1.0))
    msd.write_dataset_json(root, msd.TASKS["Task01_BrainTumour"])
    return root


@pytest.mark.parametrize("old, new, words", [
    ('"numTraining": 2', '"numTraining": NaN', "NaN"),
    ('"numTraining": 2', '"numTraining": 1e400', "finite"),
    ('"numTraining": 2', '"numTraining": 2.0', "numTraining"),
    ('"numTraining": 2', '"numTraining": ' + "[" * 5000 + "]" * 5000, "nested"),
    ('"0": "FLAIR"', '"\\u0663": "FLAIR"', "index strings"),   # an Arabic-Indic digit
    ('"0": "FLAIR"', '"' + "0" * 5000 + '": "FLAIR"', "index strings"),
    ('"1": "edema"', '"01": "edema", "1": "edema"', "twice"),
])
def test_msd_dataset_json_hostile_values(msd_task, old, new, words):
    path = edit(msd_task / "dataset.json", old, new)
    with pytest.raises(FileFormatError) as caught:
        msd.check_dataset(msd_task)
    assert caught.value.path == str(path) and words in caught.value.problem


def test_msd_dataset_json_encoding(msd_task):
    path = msd_task / "dataset.json"
    good = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + good)
    assert len(msd.list_cases(msd_task)) == 2
    path.write_bytes(good.replace(b"BRATS", b"BR\xc4TS", 1))
    with pytest.raises(FileFormatError, match="not UTF-8"):
        msd.list_cases(msd_task)


def test_msd_entries_linked_out_of_the_task_are_refused(msd_task, tmp_path):
    other = tmp_path / "other-task"
    (msd_task / "imagesTr").rename(other)
    (msd_task / "imagesTr").symlink_to(other, target_is_directory=True)
    with pytest.raises(FileFormatError, match=r"dataset\.json: training\[0\]\.image .*leads outside"):
        msd.list_cases(msd_task)
    (msd_task / "imagesTr").unlink()
    (msd_task / "imagesTr").mkdir()
    for name in ("BRATS_001.nii.gz", "BRATS_002.nii.gz"):
        (msd_task / "imagesTr" / name).write_bytes((other / name).read_bytes())
    label = msd_task / "labelsTr" / "BRATS_002.nii.gz"
    label.unlink()
    label.symlink_to("/etc/passwd")
    with pytest.raises(FileFormatError, match=r"training\[1\]\.label .*leads outside"):
        msd.read_case(msd_task / "imagesTr" / "BRATS_001.nii.gz")


# ----------------------------------------------------------------------------------------------
# the one volume type
# ----------------------------------------------------------------------------------------------
def test_volume_spacing_from_header_or_affine_and_checks():
    affine = np.diag([1.5, 2.0, 8.0, 1.0])
    v = Volume(np.zeros((4, 3, 2)), affine)
    assert v.spacing == (1.5, 2.0, 8.0) and v.time_step is None and v.spatial_shape == (4, 3, 2)
    rotated = np.eye(4)
    rotated[:3, :3] = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]]) @ np.diag([1.5, 2.0, 8.0])
    assert Volume(np.zeros((4, 3, 2)), rotated).spacing == pytest.approx((1.5, 2.0, 8.0))
    assert Volume(np.zeros((4, 3, 2, 5)), affine, zooms=(1.5, 2.0, 8.0, 40.0)).time_step == 40.0
    with pytest.raises(ArgumentError, match="at least 3 axes"):
        Volume(np.zeros((4, 3)), affine)
    bad = affine.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ArgumentError, match="finite 4×4"):
        Volume(np.zeros((4, 3, 2)), bad)


def test_volume_image_and_labels():
    affine = np.eye(4)
    huge = Volume(np.full((2, 2, 2), 1e300), affine, Path("x.nii.gz"))
    with pytest.raises(FileFormatError, match=r"x\.nii\.gz: holds NaN or infinite"):
        huge.image()  # finite as float64, infinite as float32
    labels = Volume(np.array([0, 1, 1, 7, 7, 7, 0, 0], float).reshape(2, 2, 2), affine, Path("l.nii.gz"))
    with pytest.raises(FileFormatError, match=r"label value\(s\) 7 \(3 voxels\) that T does not define"):
        labels.labels({0: "bg", 1: "a"}, "T")
    assert labels.labels({0: "bg", 1: "a", 7: "b"}, "T").dtype == np.uint8
    half = Volume(np.full((2, 2, 2), 0.5), affine, Path("h.nii.gz"))
    with pytest.raises(FileFormatError, match="non-integer"):
        half.labels((0, 1), "T")


def test_check_same_grid_tolerance_and_spatial_only():
    a = Volume(np.zeros((4, 3, 2)), np.eye(4), Path("a.nii.gz"))
    near = np.eye(4)
    near[0, 3] = GRID_TOLERANCE_MM / 2
    check_same_grid(a, Volume(np.zeros((4, 3, 2)), near, Path("b.nii.gz")))
    far = np.eye(4)
    far[0, 3] = GRID_TOLERANCE_MM * 3
    with pytest.raises(FileFormatError, match=r"b\.nii\.gz: its affine .* a\.nii\.gz"):
        check_same_grid(a, Volume(np.zeros((4, 3, 2)), far, Path("b.nii.gz")))
    four = Volume(np.zeros((4, 3, 2, 5)), np.eye(4), Path("c.nii.gz"))
    with pytest.raises(FileFormatError, match=r"c\.nii\.gz: has shape \(4, 3, 2, 5\)"):
        check_same_grid(a, four)
    check_same_grid(a, four, spatial_only=True)
    with pytest.raises(FileFormatError, match=r"d: has shape \(4, 3, 7\) but a\.nii\.gz has \(4, 3, 2\)"):
        check_same_grid(a, Volume(np.zeros((4, 3, 7)), np.eye(4), Path("d")), spatial_only=True)


def _nifti_with_pixdim(path: Path, index: int, value: float) -> Path:
    img = nib.Nifti1Image(np.zeros((4, 3, 2), np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    img.header["pixdim"][index] = value
    nib.save(img, path)
    return path


@pytest.mark.parametrize("value", [0.0, np.nan, np.inf])
def test_read_volume_refuses_unusable_voxel_sizes(tmp_path, value):
    path = _nifti_with_pixdim(tmp_path / "v.nii", 2, value)
    with pytest.raises(FileFormatError) as caught:
        read_volume(path)
    assert caught.value.path == str(path)


def test_read_volume_axes_and_nan(tmp_path):
    path = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2, 1), np.int16), np.eye(4)), path)
    assert read_volume(path).array.shape == (4, 3, 2)  # a trailing axis of 1 is dropped
    assert read_volume(path, (3, 4)).array.shape == (4, 3, 2, 1)
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2), np.int16), np.eye(4)), path)
    with pytest.raises(FileFormatError, match="holds a 3-D array .* expected 4 dimensions"):
        read_volume(path, 4)
    data = np.zeros((4, 3, 2), np.float32)
    data[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(FileFormatError, match="NaN or infinite"):
        read_volume(path)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_analyze_round_trip_and_identical_bytes(tmp_path):
    array = np.arange(60, dtype=np.int16).reshape(5, 4, 3)
    hdr = write_analyze(tmp_path / "a.hdr", array, (1.0, 2.0, 3.0))
    first = {p: p.read_bytes() for p in (hdr, hdr.with_suffix(".img"))}
    write_analyze(tmp_path / "a.hdr", array, (1.0, 2.0, 3.0))
    assert {p: p.read_bytes() for p in first} == first
    volume = read_volume(hdr)
    np.testing.assert_array_equal(volume.array, array)
    assert volume.spacing == (1.0, 2.0, 3.0)
    assert _listing(tmp_path) == ["a.hdr", "a.img"]
    with pytest.raises(ArgumentError, match="spacing"):
        write_analyze(tmp_path / "b.hdr", array, (1.0, 0.0, 3.0))
    with pytest.raises(ArgumentError, match=r"\.hdr"):
        write_analyze(tmp_path / "b.nii", array, (1.0, 1.0, 1.0))


def test_write_analyze_failing_header_rename_leaves_no_half_pair(tmp_path, monkeypatch):
    array = np.ones((3, 3, 3), np.uint8)
    real_replace = os.replace

    def failing(src, dst):
        if str(dst).endswith(".hdr"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(FileFormatError, match=r"a\.hdr: could not be written .*disk full"):
        write_analyze(tmp_path / "a.hdr", array, (1.0, 1.0, 1.0))
    assert _listing(tmp_path) == []  # the new .img was removed again; no partial files
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(os, "replace", lambda s, d: (_ for _ in ()).throw(KeyboardInterrupt()))
        write_analyze(tmp_path / "a.hdr", array, (1.0, 1.0, 1.0))
    assert _listing(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# arguments shared by the writers
# ----------------------------------------------------------------------------------------------
def test_writer_arguments_refuse_overflow_nan_and_bad_spacing(tmp_path):
    with pytest.raises(ArgumentError, match="image4d holds NaN or infinite"):
        fmt.as_image(np.full((2, 2, 2, 2), 1e300), "image4d", 4, keep_dtype=True)
    assert fmt.as_image(np.ones((2, 2, 2), np.int16), "x", keep_dtype=True).dtype == np.int16
    assert fmt.as_image(np.ones((2, 2, 2), np.int16), "x").dtype == np.float32
    for spacing in [(1.0, np.nan, 1.0), (1.0, 1.0), ("1", "1", "1"), (1.0, -1.0, 1.0), (True, 1.0, 1.0)]:
        with pytest.raises(ArgumentError, match="spacing"):
            fmt.geometry(spacing, None)
    with pytest.raises(ArgumentError, match="time_step"):
        acdc.write_patient(tmp_path, "patient001", np.zeros(SHAPE4), {1: np.zeros(SHAPE4[:3]),
                           2: np.zeros(SHAPE4[:3])}, SPACING, ed=1, es=2, group="NOR", height=1.0,
                           weight=1.0, time_step=float("inf"))
    with pytest.raises(ArgumentError, match="height"):
        acdc.write_patient(tmp_path, "patient001", np.zeros(SHAPE4), {}, SPACING, ed=1, es=2,
                           group="NOR", height=float("nan"), weight=1.0)
    assert not any(tmp_path.rglob("*"))
    with pytest.raises(ArgumentError, match=r"labels holds value\(s\) \[0\.5\]"):
        iseg.to_tissue_labels(np.array([0.0, 0.5]))
    with pytest.raises(ArgumentError, match="label numbers"):
        brats.region_masks(np.array(["a"]))


# ----------------------------------------------------------------------------------------------
# datasets: dataset_info, synthesize, the cache
# ----------------------------------------------------------------------------------------------
def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dataset_info_names_and_aliases():
    assert datasets.dataset_info("BraTS").name == "brats2021"
    assert datasets.dataset_info("msd_task01").name == "msd-task01"
    with pytest.raises(ArgumentError, match="did you mean 'mnms'"):
        datasets.dataset_info("mnm")
    with pytest.raises(ArgumentError, match="unknown dataset") as caught:
        datasets.dataset_info("x" * 10_000)
    assert len(str(caught.value)) < 400
    with pytest.raises(ArgumentError, match="size"):
        datasets.synthetic_folder("acdc", 1, 0, "/tmp", "huge")
    with pytest.raises(ArgumentError, match="n_cases"):
        datasets.synthetic_folder("acdc", 0)


def test_synthesize_writes_the_generators_bytes_atomically(tmp_path):
    out = datasets.synthesize("acdc", tmp_path / "ACDC", n_cases=1, seed=3, progress=False)
    assert out == tmp_path / "ACDC"
    marker = json.loads((out / datasets.MARKER).read_text())
    assert marker["n_cases"] == 1 and marker["seed"] == 3 and marker["dataset"] == "acdc"
    direct = synthetic.write_acdc(tmp_path / "direct", n_cases=1, seed=3, progress=False)
    made = _digests(out)
    made.pop(datasets.MARKER)
    assert made == _digests(direct)
    assert not [p for p in tmp_path.iterdir() if is_partial(p)]
    # an existing folder with content, or a file, is refused and left alone
    with pytest.raises(ArgumentError, match="not an empty folder"):
        datasets.synthesize("acdc", out, n_cases=1, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match="not an empty folder"):
        datasets.synthesize("acdc", tmp_path / "file", n_cases=1, progress=False)
    assert (tmp_path / "file").read_text() == "x"
    (tmp_path / "empty").mkdir()
    datasets.synthesize("acdc", tmp_path / "empty", n_cases=1, seed=3, progress=False)
    assert _digests(tmp_path / "empty") == _digests(out)


def test_synthesize_interrupted_leaves_nothing(tmp_path, monkeypatch):
    def broken(out, **kwargs):
        Path(out, "half.nii.gz").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_acdc", broken)
    with pytest.raises(KeyboardInterrupt):
        datasets.synthesize("acdc", tmp_path / "ACDC", n_cases=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cache_keeps_the_copy_another_process_finished_first(tmp_path, monkeypatch):
    folder = datasets.synthetic_folder("acdc", 1, 0, tmp_path, "fast")
    real = synthetic.write_acdc

    def racing(out, **kwargs):
        real(out, **kwargs)
        folder.mkdir(parents=True)  # meanwhile another process completed the same dataset
        (folder / datasets.MARKER).write_text('{"by": "the other process"}\n')

    monkeypatch.setattr(synthetic, "write_acdc", racing)
    location = datasets.get_dataset("acdc", data_root=tmp_path, synthetic=True, n_cases=1, progress=False)
    assert location.path == folder
    assert json.loads((folder / datasets.MARKER).read_text()) == {"by": "the other process"}
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # our copy was discarded
