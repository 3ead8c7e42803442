"""The chapter-5 segmentation runner end to end on a synthetic ACDC in a temporary data root.

One module-scoped fast-profile training of the PSPU-net (≈ 20 s single-threaded) serves the
Dice check of issue 7 (median ED LV Dice ≥ 0.90 on the synthetic test cases), the evaluation and
the prediction tests; the resume test trains a tiny model.
"""
from __future__ import annotations

import csv
import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from cmrlab.errors import CmrlabError, ConfigError, FileFormatError
from cmrlab.data.splits import stratified_order
from cmrlab.nn.metrics import dice
from cmrlab.train.checkpoint import load_checkpoint, save_checkpoint
from cmrlab.train.segmentation import (
    RUN_KEY,
    evaluate_experiment,
    parse_overrides,
    predict_files,
    train_experiment,
)

PSP = "cardiac-ch5-pspunet"
TINY = {"epochs": 2, "dataset.preprocessing.size": [32, 32], "model.kwargs.base_filters": 2}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def fast_run(root, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "psp-fast"
    trained = train_experiment(PSP, profile="fast", data_root=root, out=out, progress=False)
    report = evaluate_experiment(PSP, trained.checkpoint, data_root=root, cases=trained.cases,
                                 keep_predictions=True)
    return trained, report


def test_fast_profile_reaches_the_issue_lv_dice(fast_run):
    trained, report = fast_run
    assert len(trained.history) == 8 and trained.n_augmented == 0
    assert (len(trained.cases.train), len(trained.cases.validation), len(trained.cases.test)) == (9, 2, 4)
    # Σ (Z − 2) windows over the training volumes
    assert trained.n_windows == sum(c.ed_image.shape[2] - 2 for c in trained.cases.train)
    for name in ("best.pt", "last.pt", "config.yaml", "run.json", "history.csv"):
        assert (trained.run_dir / name).is_file(), name
    ed_lv = report.values("ED", "dice_lv")
    assert len(ed_lv) == 4 and len(report.rows) == 8
    assert np.median(ed_lv) >= 0.90, ed_lv                         # issue 7's check
    table = report.dice_table()
    assert set(table["ED"]) == {"whole", "LV cavity", "RV cavity", "LV myocardium"}
    assert set(table["ES"]) == {"whole", "LV cavity", "RV cavity"}   # no ES myocardium, as the thesis
    assert table["ED"]["LV cavity"][0] == pytest.approx(np.median(ed_lv))
    assert 0.0 <= report.volume_table()["ED"]["LV cavity"][0] < 0.2
    text = report.summary()
    assert "Table 5.1" in text and "Table 5.2" in text and "[0.955±0.021]" in text
    with open(report.csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["frame"] for r in rows} == {"ED", "ES"}
    # the Dice of the table is the Dice of the kept label maps, on the original grid
    case, frame = rows[0]["case"], rows[0]["frame"]
    image, pred, truth = report.predictions[(case, frame)]
    assert pred.shape == truth.shape == image.shape and pred.dtype == np.uint8
    assert float(rows[0]["dice_lv"]) == pytest.approx(dice(pred == 3, truth == 3))


def test_split_is_stratified_disjoint_and_seeded(fast_run):
    trained, _ = fast_run
    parts = trained.cases
    ids = [c.id for part in (parts.train, parts.validation, parts.test) for c in part]
    assert len(ids) == len(set(ids)) == 15
    assert len({c.group for c in parts.test}) == 4                  # 4 test cases, 4 different groups
    groups = ["A"] * 6 + ["B"] * 3
    order = stratified_order(groups, seed=1)
    assert sorted(order) == list(range(9)) and order == stratified_order(groups, seed=1)
    assert [groups[i] for i in order[:3]] == ["A", "B", "A"]        # dealt in turn
    assert sorted(stratified_order(groups, seed=1, stratify=False)) == list(range(9))


def test_resume_continues_exactly(fast_run, tmp_path):
    trained, _ = fast_run
    common = dict(profile="fast", progress=False, cases=trained.cases)
    straight = train_experiment(PSP, out=tmp_path / "a", overrides=TINY, **common)
    train_experiment(PSP, out=tmp_path / "b", overrides={**TINY, "epochs": 1}, **common)
    with pytest.raises(CmrlabError, match="already holds a run.*--resume"):
        train_experiment(PSP, out=tmp_path / "b", overrides=TINY, **common)
    with pytest.raises(ConfigError, match="another configuration.*optimizer"):
        train_experiment(PSP, out=tmp_path / "b", overrides={**TINY, "optimizer.lr": 0.01}, resume=True, **common)
    resumed = train_experiment(PSP, out=tmp_path / "b", overrides=TINY, resume=True, **common)
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    a, b = load_checkpoint(straight.last)["model"], load_checkpoint(resumed.last)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(resumed.last)[RUN_KEY]["model"]["kwargs"]["base_filters"] == 2


def _case_folder(root, case_id):
    return next(root.rglob(case_id))


def test_predict_keeps_the_input_geometry(fast_run, root, tmp_path):
    trained, report = fast_run
    case = trained.cases.test[0]
    folder = _case_folder(root, case.id)
    cine = folder / f"{case.id}_4d.nii.gz"
    ed = sorted(p for p in folder.glob(f"{case.id}_frame*.nii.gz") if "_gt" not in p.name)[0]
    # a plain .nii input with an unusual direction: the output must copy it, not normalise it
    img = nib.load(ed)
    tilted = np.diag([-1.0, 1.0, 1.0, 1.0]) @ img.affine
    plain = tmp_path / "tilted.nii"
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), tilted, img.header), plain)
    written = predict_files(trained.checkpoint, [cine, ed, plain], out=tmp_path / "seg", device="cpu")
    assert [p.name for p in written] == [f"{case.id}_4d_seg.nii.gz", ed.name.replace(".nii.gz", "_seg.nii.gz"),
                                         "tilted_seg.nii"]
    for source, result in zip([cine, ed, plain], written):
        a, b = sitk.ReadImage(str(source)), sitk.ReadImage(str(result))
        assert a.GetSize() == b.GetSize()
        assert np.allclose(a.GetSpacing(), b.GetSpacing())
        assert np.allclose(a.GetOrigin(), b.GetOrigin())
        assert np.allclose(a.GetDirection(), b.GetDirection())
        n_in, n_out = nib.load(source), nib.load(result)
        assert n_out.get_data_dtype() == np.uint8 and np.allclose(n_in.affine, n_out.affine)
        assert set(np.unique(np.asanyarray(n_out.dataobj))) <= {0, 1, 2, 3}
    cine_labels = np.asanyarray(nib.load(written[0]).dataobj)
    ed_labels = np.asanyarray(nib.load(written[1]).dataobj)
    frame = int(ed.name.split("frame")[1][:2]) - 1
    assert np.array_equal(cine_labels[..., frame], ed_labels)        # every frame of the cine is segmented
    assert np.array_equal(ed_labels, report.predictions[(case.id, "ED")][1])
    assert dice(ed_labels == 3, case.ed_labels == 3) > 0.8


def test_bad_inputs_name_the_problem(fast_run, root, tmp_path):
    trained, _ = fast_run
    with pytest.raises(FileFormatError, match="nowhere.pt: checkpoint not found"):
        predict_files(tmp_path / "nowhere.pt", [tmp_path / "x.nii.gz"], out=tmp_path)
    text = tmp_path / "scan.txt"
    text.write_text("not an image")
    with pytest.raises(FileFormatError, match=r"scan.txt: is not a NIfTI file"):
        predict_files(trained.checkpoint, [text], out=tmp_path / "o")
    with pytest.raises(FileFormatError, match=r"missing.nii.gz: not found"):
        predict_files(trained.checkpoint, [tmp_path / "missing.nii.gz"], out=tmp_path / "o")
    assert not (tmp_path / "o").exists()                                  # nothing written
    foreign = save_checkpoint(tmp_path / "foreign.pt", {"model": {}})
    with pytest.raises(FileFormatError, match="foreign.pt: is not a checkpoint of the cmrlab runner"):
        predict_files(foreign, [tmp_path / "x.nii.gz"], out=tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'foo'"):
        train_experiment(PSP, data_root=root, out=tmp_path / "r", overrides=["foo=1"])
    with pytest.raises(CmrlabError, match="--set: expected KEY=VALUE"):
        parse_overrides(["epochs"])
    assert parse_overrides(["epochs=2", "optimizer.lr=1e-4", "dataset.preprocessing.size=[32, 32]"]) == {
        "epochs": 2, "optimizer.lr": 1e-4, "dataset.preprocessing.size": [32, 32]}
    with pytest.raises(CmrlabError, match=r"is not under the data root: .*no-such-root.ACDC does not exist"):
        train_experiment(PSP, profile="full", data_root=tmp_path / "no-such-root", device="cpu",
                         out=tmp_path / "r")
    empty = tmp_path / "empty-root"
    empty.mkdir()
    with pytest.raises(CmrlabError, match=r"ACDC.*is not under the data root"):
        train_experiment(PSP, profile="full", data_root=empty, device="cpu", out=tmp_path / "r")
    with pytest.raises(FileFormatError, match="nothing.pt: checkpoint not found"):
        evaluate_experiment(PSP, tmp_path / "nothing.pt", data_root=root)
    shutil.rmtree(tmp_path / "r", ignore_errors=True)
