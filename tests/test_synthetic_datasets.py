"""Synthetic datasets in the real layouts, and the by-name registry that serves real or synthetic data."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from cmrlab.config import setup
from cmrlab.data import acdc, brats, iseg, mnms, mrbrains, msd, sunnybrook, synthetic
from cmrlab.data.datasets import DATASETS, MARKER, get_dataset, synthetic_folder
from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError
from cmrlab.phantoms import GROUP_DEFINITIONS


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def acdc3(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("acdc") / "ACDC"
    synthetic.write_acdc(out, n_cases=3, seed=5, progress=False)
    return out


def test_acdc_layout_split_and_groups(acdc3):
    report = acdc.check_dataset(acdc3, deep=True)
    assert report.n_cases == 3
    assert report.counts["split"] == {"training": 2, "testing": 1}
    assert report.counts["group"] == {"NOR": 1, "MINF": 1, "DCM": 1}
    names = sorted(p.name for p in (acdc3 / "database" / "testing").iterdir())
    assert names == ["patient101"]


def test_acdc_case_opens_everywhere_with_its_spacing(acdc3):
    folder = acdc3 / "database" / "training" / "patient001"
    patient = acdc.read_patient(folder)
    four_d = folder / "patient001_4d.nii.gz"
    zooms = nib.load(four_d).header.get_zooms()
    assert np.allclose(zooms[:3], patient.spacing)
    assert np.isclose(zooms[3], patient.time_step)
    image = sitk.ReadImage(str(folder / f"patient001_frame{patient.ed:02d}_gt.nii.gz"))
    assert np.allclose(image.GetSpacing(), patient.spacing)
    assert nib.load(four_d).get_data_dtype() == np.int16  # stored as a scanner would
    assert patient.image4d.shape[3] == patient.n_frames


def test_acdc_label_volumes_reproduce_the_stored_truth(acdc3):
    for folder in acdc.list_cases(acdc3):
        p = acdc.read_patient(folder)
        voxel = float(np.prod(p.spacing)) / 1000.0
        for frame, labels in ((p.ed_index, p.ed_labels), (p.es_index, p.es_labels)):
            for value, name in ((1, "RV"), (2, "MYO"), (3, "LV")):
                stored = p.truth["label_volumes_ml"][name][frame]
                assert np.isclose((labels == value).sum() * voxel, stored, rtol=1e-6, atol=1e-4)
        lv = np.asarray(p.truth["label_volumes_ml"]["LV"])
        assert lv.argmax() == p.ed_index and lv.argmin() == p.es_index
        ef = 100 * (lv[p.ed_index] - lv[p.es_index]) / lv[p.ed_index]
        lo, hi = GROUP_DEFINITIONS[p.group].ranges["lv_ef"]
        assert lo - 3 <= ef <= hi + 3, (p.group, ef)  # label EF ≈ analytic EF (discretisation)
        # blood brighter than myocardium in the stored images
        img = p.ed_image.astype(float)
        assert img[p.ed_labels == 3].mean() > 1.3 * img[p.ed_labels == 2].mean()  # slow flow, partial volume lower it


def test_same_seed_same_bytes_and_cases_independent_of_n(tmp_path, acdc3):
    again = tmp_path / "ACDC"
    synthetic.write_acdc(again, n_cases=3, seed=5, progress=False)
    assert _digests(again) == _digests(acdc3)
    one = tmp_path / "one"
    synthetic.write_acdc(one, n_cases=1, seed=5, progress=False)
    first = acdc3 / "database" / "training" / "patient001"
    assert _digests(one / "database" / "training" / "patient001") == _digests(first)
    other = tmp_path / "other"
    synthetic.write_acdc(other, n_cases=1, seed=6, progress=False)
    assert _digests(other) != _digests(one)


def test_mnms_and_sunnybrook_writers_read_back(tmp_path):
    synthetic.write_mnms(tmp_path / "MnM", n_cases=2, seed=1, progress=False)
    report = mnms.check_dataset(tmp_path / "MnM", deep=True)
    assert report.n_cases == 2 and report.counts["split"] == {"Training/Labeled": 2}
    case = mnms.read_case(mnms.list_cases(tmp_path / "MnM")[0])
    assert set(np.unique(case.ed_labels_acdc)) <= {0, 1, 2, 3}
    synthetic.write_sunnybrook(tmp_path / "Sunnybrook", n_cases=2, seed=1, progress=False)
    report = sunnybrook.check_dataset(tmp_path / "Sunnybrook", deep=True)
    assert report.n_cases == 2 and report.counts["group"] == {"HF-I": 1, "HF-NI": 1}
    sb = sunnybrook.read_case(sunnybrook.list_cases(tmp_path / "Sunnybrook")[0])
    assert sb.image4d.shape[3] == 20


@pytest.mark.slow
def test_brain_writers_read_back(tmp_path):
    synthetic.write_iseg(tmp_path / "iSeg", n_cases=2, seed=0, progress=False)
    assert iseg.check_dataset(tmp_path / "iSeg", deep=True).counts["split"] == {"training": 1, "testing": 1}
    subject = iseg.read_subject(iseg.list_cases(tmp_path / "iSeg")[0])
    assert set(np.unique(subject.labels)) <= set(iseg.LABELS)
    synthetic.write_mrbrains18(tmp_path / "MRBrainS18", n_cases=1, seed=0, progress=False)
    assert mrbrains.check_dataset(tmp_path / "MRBrainS18", deep=True).n_cases == 1
    synthetic.write_brats(tmp_path / "BraTS2021", n_cases=1, seed=0, progress=False)
    case = brats.read_case(brats.list_cases(tmp_path / "BraTS2021")[0])
    assert set(np.unique(case.seg)) == {0, 1, 2, 4}
    synthetic.write_msd_task01(tmp_path / "Task01", n_cases=1, seed=0, progress=False)
    task = msd.read_dataset_json(tmp_path / "Task01")
    assert len(task.training) == 1 and "SYNTHETIC" in task.metadata["description"]


def test_generators_check_their_arguments(tmp_path):
    with pytest.raises(ArgumentError, match="n_cases"):
        synthetic.write_acdc(tmp_path / "a", n_cases=0)
    with pytest.raises(ArgumentError, match="size"):
        synthetic.write_acdc(tmp_path / "a", n_cases=1, size="huge")


# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------
def test_every_dataset_has_a_reader_a_generator_and_a_script():
    root = Path(__file__).resolve().parents[1]
    for info in DATASETS.values():
        module = __import__(info.reader, fromlist=["check_dataset"])
        assert callable(module.check_dataset) and callable(module.list_cases)
        assert callable(getattr(synthetic, info.generator))
        assert (root / info.script).is_file(), info.script


def test_fast_profile_generates_once_then_uses_the_cache(tmp_path):
    run = setup(profile="fast", data_root=tmp_path)
    first = get_dataset("acdc", run=run, n_cases=2, progress=False)
    assert first.synthetic and first.path == synthetic_folder("acdc", 2, 0, tmp_path, "fast")
    marker = json.loads((first.path / MARKER).read_text())
    assert marker["n_cases"] == 2 and marker["size"] == "fast"
    stamp = (first.path / MARKER).stat().st_mtime_ns
    again = get_dataset("ACDC", run=run, n_cases=2, progress=False)
    assert again.path == first.path and (again.path / MARKER).stat().st_mtime_ns == stamp
    assert len(again.cases()) == 2
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")]


def test_real_data_wins_in_the_full_profile_only(tmp_path, acdc3):
    real = tmp_path / "ACDC"
    real.symlink_to(acdc3, target_is_directory=True)
    full = get_dataset("acdc", run=setup(profile="full", data_root=tmp_path, device="cpu"))
    assert not full.synthetic and full.path == real
    fast = get_dataset("acdc", run=setup(profile="fast", data_root=tmp_path), n_cases=1, progress=False)
    assert fast.synthetic


def test_full_profile_without_real_data_says_so_and_uses_synthetic(tmp_path, capsys):
    loc = get_dataset("acdc", run=setup(profile="full", data_root=tmp_path, device="cpu"), n_cases=1,
                      progress=False)
    assert loc.synthetic and "no real data" in capsys.readouterr().out
    assert loc.path.name.endswith("-full-v%d" % synthetic.GENERATOR_VERSION)


def test_asking_for_missing_real_data_names_the_folder_and_the_script(tmp_path):
    with pytest.raises(CmrlabError, match=r"ACDC.*data_scripts/acdc\.py"):
        get_dataset("acdc", data_root=tmp_path, synthetic=False)


def test_a_broken_real_dataset_is_reported_not_replaced(tmp_path):
    (tmp_path / "ACDC" / "database" / "training" / "patient001").mkdir(parents=True)
    with pytest.raises(FileFormatError):
        get_dataset("acdc", run=setup(profile="full", data_root=tmp_path, device="cpu"))


def test_unknown_name_suggests_the_closest(tmp_path):
    with pytest.raises(ArgumentError, match="did you mean 'acdc'"):
        get_dataset("acdcc", data_root=tmp_path)


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def broken(out, **kwargs):
        Path(out, "database").mkdir(parents=True)
        Path(out, "database", "half.nii.gz").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_acdc", broken)
    with pytest.raises(KeyboardInterrupt):
        get_dataset("acdc", data_root=tmp_path, synthetic=True, n_cases=1, progress=False)
    base = tmp_path / "synthetic" / "ACDC"
    assert not base.exists() or not any(base.iterdir())
