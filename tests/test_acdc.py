"""Tests of cmrlab.data.acdc: a hand-made ACDC patient (built with nibabel, like the real files),
the writer's output, identical bytes, and clean errors for hostile or corrupt input."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from cmrlab.data import acdc
from cmrlab.errors import ArgumentError, FileFormatError

SHAPE = (24, 20, 5, 12)  # X, Y, Z, T
SPACING = (1.5625, 1.5625, 10.0)
ED, ES = 1, 8  # 1-based, as in Info.cfg


def oblique_affine(spacing=SPACING) -> np.ndarray:
    """A realistic short-axis affine: rotated, anisotropic, translated."""
    a, b = np.deg2rad(25.0), np.deg2rad(-10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = [-120.5, 87.25, 33.0]
    return affine


def make_labels(shape3, shift=0) -> np.ndarray:
    """Concentric LV cavity (3) inside myocardium (2), an RV blob (1) beside them."""
    x, y = np.meshgrid(np.arange(shape3[0]), np.arange(shape3[1]), indexing="ij")
    r = np.hypot(x - 12, y - 10)
    slab = np.zeros(shape3[:2], np.uint8)
    slab[np.hypot(x - 4, y - 10) < 3 + shift] = 1
    slab[r < 6] = 2
    slab[r < 4 - shift] = 3
    return np.repeat(slab[:, :, None], shape3[2], axis=2)


def nifti(array, affine, zooms=None) -> nib.Nifti1Image:
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    if zooms is not None:
        img.header.set_zooms(zooms)
    return img


@pytest.fixture
def real_like(tmp_path) -> Path:
    """patient001 built directly with nibabel, mimicking the real files (int16 image, uint8 gt)."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "ACDC" / "database" / "training" / "patient001"
    folder.mkdir(parents=True)
    affine = oblique_affine()
    image = rng.integers(0, 900, SHAPE).astype(np.int16)
    nib.save(nifti(image, affine, (*SPACING, 1.0)), folder / "patient001_4d.nii.gz")
    for frame, shift in ((ED, 0), (ES, 1)):
        nib.save(nifti(image[..., frame - 1], affine), folder / f"patient001_frame{frame:02d}.nii.gz")
        gt = make_labels(SHAPE[:3], shift)
        nib.save(nifti(gt, affine), folder / f"patient001_frame{frame:02d}_gt.nii.gz")
    (folder / "Info.cfg").write_text(
        f"ED: {ED}\nES: {ES}\nGroup: DCM\nHeight: 184.0\nNbFrame: {SHAPE[3]}\nWeight: 95.0\n"
    )
    (folder / "MANDATORY_CITATION.md").write_text("Bernard et al., IEEE TMI 2018\n")
    return folder


def synthetic_inputs(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(100, 20, SHAPE).astype(np.float32)
    labels4d = np.stack([make_labels(SHAPE[:3], int(t > 5)) for t in range(SHAPE[3])], axis=-1)
    labels = {ED: labels4d[..., ED - 1], ES: labels4d[..., ES - 1]}
    return image, labels, labels4d


def write_synthetic(root, patient_id="patient001", **overrides):
    image, labels, labels4d = synthetic_inputs()
    kwargs = dict(
        ed=ED, es=ES, group="HCM", height=172.5, weight=70.0, affine=oblique_affine(),
        all_frame_labels=labels4d, truth={"seed": 7, "params": {"ef": 0.71}, "edv_ml": 151.2},
        time_step=35.0,
    )
    kwargs.update(overrides)
    return acdc.write_patient(root, patient_id, image, labels, SPACING, **kwargs)


# ----------------------------------------------------------------------------------------------
def test_reads_hand_made_real_like_patient(real_like):
    patient = acdc.read_patient(real_like)
    assert patient.id == "patient001" and patient.split == "training"
    assert (patient.ed, patient.es, patient.ed_index, patient.es_index) == (1, 8, 0, 7)
    assert patient.group == "DCM" and patient.height == 184.0 and patient.weight == 95.0
    assert patient.n_frames == 12 and patient.image4d.shape == SHAPE
    assert patient.image4d.dtype == np.float32 and patient.ed_labels.dtype == np.uint8
    np.testing.assert_allclose(patient.spacing, SPACING)
    np.testing.assert_allclose(patient.affine, oblique_affine(), atol=1e-5)
    np.testing.assert_array_equal(patient.es_image, patient.image4d[..., 7])
    np.testing.assert_array_equal(patient.es_labels, make_labels(SHAPE[:3], 1))
    assert set(np.unique(patient.ed_labels)) == {0, 1, 2, 3}
    assert patient.truth is None and patient.all_frame_labels is None and not patient.synthetic


def test_real_like_files_open_in_nibabel_and_simpleitk_with_the_right_spacing(real_like, tmp_path):
    report = acdc.check_dataset(tmp_path / "ACDC")
    assert report.n_cases == 1 and report.per_group == {"DCM": 1}
    for path in sorted(real_like.glob("*.nii.gz")):
        assert np.allclose(nib.load(path).header.get_zooms()[:3], SPACING)
        assert np.allclose(sitk.ReadImage(str(path)).GetSpacing()[:3], SPACING)


def test_writer_output_round_trips_and_opens_everywhere(tmp_path):
    folder = write_synthetic(tmp_path / "ACDC")
    assert folder == tmp_path / "ACDC" / "database" / "training" / "patient001"
    names = {p.name for p in folder.iterdir()}
    assert {"Info.cfg", "SYNTHETIC.md", "cmrlab_truth.json", "patient001_4d.nii.gz",
            "patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz",
            "patient001_frame08.nii.gz", "patient001_frame08_gt.nii.gz"} <= names
    assert "MANDATORY_CITATION.md" not in names
    assert "seed: 7" in (folder / "SYNTHETIC.md").read_text()
    assert (folder / "Info.cfg").read_text() == (
        "ED: 1\nES: 8\nGroup: HCM\nHeight: 172.5\nNbFrame: 12\nWeight: 70.0\n"
    )
    image, labels, labels4d = synthetic_inputs()
    patient = acdc.read_patient(folder)
    np.testing.assert_array_equal(patient.image4d, image)
    np.testing.assert_array_equal(patient.ed_labels, labels[ED])
    np.testing.assert_array_equal(patient.es_labels, labels[ES])
    np.testing.assert_array_equal(patient.all_frame_labels, labels4d)
    np.testing.assert_allclose(patient.affine, oblique_affine(), atol=1e-5)
    assert patient.truth["edv_ml"] == 151.2 and patient.truth["params"] == {"ef": 0.71}
    assert patient.time_step == 35.0 and patient.synthetic
    four_d = nib.load(folder / "patient001_4d.nii.gz")
    assert four_d.header.get_zooms() == pytest.approx((*SPACING, 35.0))
    assert nib.load(folder / "patient001_frame08_gt.nii.gz").get_data_dtype() == np.uint8
    assert int(four_d.header["qform_code"]) == 1 and int(four_d.header["sform_code"]) == 1
    sitk_gt = sitk.ReadImage(str(folder / "patient001_frame08_gt.nii.gz"))
    assert np.allclose(sitk_gt.GetSpacing(), SPACING)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk_gt).transpose(2, 1, 0), labels[ES])


def test_same_inputs_give_identical_bytes(tmp_path):
    a = write_synthetic(tmp_path / "a" / "ACDC")
    b = write_synthetic(tmp_path / "b" / "ACDC")
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "patient001_4d.nii.gz").read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0


def test_list_and_check_count_per_split_and_group(tmp_path):
    root = tmp_path / "ACDC"
    write_synthetic(root, "patient001", group="NOR", truth=None, all_frame_labels=None)
    write_synthetic(root, "patient002", group="DCM")
    write_synthetic(root, "patient101", group="DCM", split="testing")
    (root / "database" / "training" / "notes.txt").write_text("stray")
    assert [p.name for p in acdc.list_cases(root)] == ["patient001", "patient002", "patient101"]
    for deep in (False, True):
        report = acdc.check_dataset(root, deep=deep)
        assert report.n_cases == 3
        assert report.per_split == {"testing": 1, "training": 2}
        assert report.per_group == {"DCM": 2, "NOR": 1}
        assert any("notes.txt" in p for p in report.problems)
    assert acdc.check_dataset(root / "database").n_cases == 3
    patient = acdc.read_patient(root / "database" / "training" / "patient001")
    assert patient.truth is None and patient.all_frame_labels is None


# ----------------------------------------------------------------------------------------------
# hostile and corrupt input on the hand-made fixture
# ----------------------------------------------------------------------------------------------
def _edit_info(folder, old, new):
    info = folder / "Info.cfg"
    info.write_text(info.read_text().replace(old, new))
    return info


def _resave(path, array=None, affine=None):
    img = nib.load(path)
    data = np.asarray(img.dataobj) if array is None else array
    nib.save(nifti(data, img.affine if affine is None else affine), path)
    return path


def corrupt_missing_key(f):
    return _edit_info(f, "Weight: 95.0\n", ""), "Weight"


def corrupt_ed_after_last_frame(f):
    return _edit_info(f, "ED: 1", "ED: 13"), "outside 1..NbFrame"


def corrupt_non_integer_es(f):
    return _edit_info(f, "ES: 8", "ES: eight"), "line 2"


def corrupt_gt_shape(f):
    gt = f / "patient001_frame08_gt.nii.gz"
    return _resave(gt, np.zeros((24, 19, 5), np.uint8)), "voxels"


def corrupt_gt_affine(f):
    gt = f / "patient001_frame01_gt.nii.gz"
    shifted = oblique_affine()
    shifted[0, 3] += 0.5
    return _resave(gt, affine=shifted), "affine"


def corrupt_label_5(f):
    gt = f / "patient001_frame01_gt.nii.gz"
    data = np.asarray(nib.load(gt).dataobj).copy()
    data[3, 3, 2] = 5
    return _resave(gt, data), "label value(s) 5 (1 voxels)"


def corrupt_truncated(f):
    path = f / "patient001_frame08.nii.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path, "truncated"


def corrupt_not_nifti(f):
    path = f / "patient001_frame08_gt.nii.gz"
    path.write_bytes(gzip.compress(b"this is a text file, not an image\n" * 20))
    return path, "not a NIfTI"


def corrupt_frame_not_from_4d(f):
    path = f / "patient001_frame08.nii.gz"
    data = np.asarray(nib.load(path).dataobj).copy()
    data[0, 0, 0] += 1
    return _resave(path, data), "differs from frame 8"


def corrupt_missing_gt(f):
    path = f / "patient001_frame08_gt.nii.gz"
    path.unlink()
    return path, "missing"


def corrupt_nan(f):
    path = f / "patient001_4d.nii.gz"
    data = np.asarray(nib.load(path).dataobj).astype(np.float32)
    data[1, 1, 1, 3] = np.nan
    return _resave(path, data), "NaN"


CORRUPTIONS = [corrupt_missing_key, corrupt_ed_after_last_frame, corrupt_non_integer_es,
               corrupt_gt_shape, corrupt_gt_affine, corrupt_label_5, corrupt_truncated,
               corrupt_not_nifti, corrupt_frame_not_from_4d, corrupt_missing_gt, corrupt_nan]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda c: c.__name__)
def test_corrupt_input_raises_file_format_error_naming_the_file(real_like, corrupt):
    path, words = corrupt(real_like)
    with pytest.raises(FileFormatError) as info:
        acdc.read_patient(real_like)
    assert info.value.path == str(path)
    assert words in info.value.problem


def test_nbframe_that_disagrees_with_the_4d_file(real_like):
    _edit_info(real_like, "NbFrame: 12", "NbFrame: 14")
    with pytest.raises(FileFormatError, match=r"patient001_4d\.nii\.gz: holds 12 frames but .*NbFrame: 14"):
        acdc.read_patient(real_like)


def test_missing_info_cfg_and_bad_folders(real_like, tmp_path):
    (real_like / "Info.cfg").unlink()
    with pytest.raises(FileFormatError, match=r"Info\.cfg: is missing"):
        acdc.read_patient(real_like)
    with pytest.raises(FileFormatError, match="not found"):
        acdc.read_patient(tmp_path / "nowhere" / "patient009")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileFormatError, match="not an ACDC folder"):
        acdc.check_dataset(tmp_path / "empty")
    with pytest.raises(FileFormatError, match=r"Info\.cfg: is missing"):
        acdc.check_dataset(tmp_path / "ACDC")


def test_writer_refuses_bad_arguments(tmp_path):
    image, labels, _ = synthetic_inputs()
    ok = dict(ed=ED, es=ES, group="NOR", height=180.0, weight=80.0)
    with pytest.raises(ArgumentError, match="labels must have exactly"):
        acdc.write_patient(tmp_path, "patient001", image, {ED: labels[ED]}, SPACING, **ok)
    with pytest.raises(ArgumentError, match="group"):
        acdc.write_patient(tmp_path, "patient001", image, labels, SPACING, **{**ok, "group": "XYZ"})
    with pytest.raises(ArgumentError, match="es must be a 1-based frame"):
        acdc.write_patient(tmp_path, "patient001", image, labels, SPACING, **{**ok, "es": 13})
    with pytest.raises(ArgumentError, match="affine and spacing disagree"):
        acdc.write_patient(tmp_path, "patient001", image, labels, (1.0, 1.0, 10.0), **ok,
                           affine=oblique_affine())
    bad = {ED: labels[ED], ES: np.full(SHAPE[:3], 4, np.uint8)}
    with pytest.raises(ArgumentError, match=r"labels\[8\] holds label value\(s\) \[4\]"):
        acdc.write_patient(tmp_path, "patient001", image, bad, SPACING, **ok)
    with pytest.raises(ArgumentError, match="patient_id"):
        acdc.write_patient(tmp_path, "case1", image, labels, SPACING, **ok)
    with pytest.raises(ArgumentError, match="JSON"):
        acdc.write_patient(tmp_path, "patient001", image, labels, SPACING, **ok, truth={"x": object()})
    assert not any(tmp_path.rglob("*.nii.gz"))  # nothing written by a refused call


def test_truth_json_must_be_valid(tmp_path):
    folder = write_synthetic(tmp_path / "ACDC")
    (folder / "cmrlab_truth.json").write_text("{not json")
    with pytest.raises(FileFormatError, match=r"cmrlab_truth\.json: is not valid JSON"):
        acdc.read_patient(folder)
    (folder / "cmrlab_truth.json").write_text(json.dumps({"seed": 1}))
    assert acdc.read_patient(folder).all_frame_labels is None
