"""The runner's volume-regression (ch. 6) and frame-detection (ch. 7) tasks end to end, on tiny
synthetic data in a temporary data root: train, resume exactly, evaluate, predict; and the
config errors that name the task or the key. (Segmentation: tests/test_segmentation.py.)"""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from cmrlab.config import setup
from cmrlab.data.acdc import read_patient
from cmrlab.errors import ArgumentError, CmrlabError, ConfigError, FileFormatError
from cmrlab.train.checkpoint import load_checkpoint
from cmrlab.train.experiment import load_experiment
from cmrlab.train.frames import FrameDataset, event_frames, frame_targets, project_cine
from cmrlab.train.runner import RUN_KEY, evaluate_experiment, load_cases, predict_files, train_experiment
from cmrlab.train.volume import PairedBatchSampler

torch.set_num_threads(1)
CH6 = "cardiac-ch6-regression-unet"
WCE, WDL, FRAMES = (f"cardiac-ch7-framedetector-{n}" for n in ("wce", "wdl", "frames"))
TINY6 = {"epochs": 2, "dataset.n_cases": 6, "dataset.split": {"train": 3, "validation": 1, "test": 2},
         "augmentation.paired": True,                       # the thesis's paired augmented batches
         "dataset.preprocessing.size": [16, 16], "batch_size": 2,
         "model.kwargs": {"base_filters": 2, "depth": 2, "area_kernel": 5}}
TINY7 = {"epochs": 2, "dataset.n_cases": 6, "dataset.split": {"train": 3, "validation": 1, "test": 2},
         "dataset.preprocessing.size": [16, 16], "augmentation.copies": 1,
         "model.kwargs": {"base_filters": 2, "levels": 2, "image_size": 16, "temporal_padding": "circular"}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _weights(path):
    return load_checkpoint(path)["model"]


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("config, tiny", [(CH6, TINY6), (WCE, TINY7)], ids=["volume", "frames"])
def test_train_resume_evaluate_predict(root, tmp_path, config, tiny):
    run = setup(profile="fast", seed=0, data_root=root)
    exp = load_experiment(config, overrides=tiny)
    cases = load_cases(exp, run)
    common = dict(data_root=root, overrides=tiny, cases=cases, progress=False)
    straight = train_experiment(config, out=tmp_path / "a", **common)
    assert [int(r["epoch"]) for r in straight.history] == [1, 2]
    if exp.task == "volume_regression":                  # every raw batch has an augmented twin
        assert straight.n_augmented == straight.n_items == len(cases.train)
    assert (straight.run_dir / "run.json").is_file()
    info = json.loads((straight.run_dir / "run.json").read_text())
    assert info["task"] == exp.task and info["cases"]["test"] == [c.id for c in cases.test]
    first = train_experiment(config, out=tmp_path / "b", **{**common, "overrides": {**tiny, "epochs": 1}})
    assert len(first.history) == 1
    resumed = train_experiment(config, out=tmp_path / "b", resume=True, **common)
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    assert _same_weights(straight.last, resumed.last)                 # resume is exact
    assert load_checkpoint(resumed.last)[RUN_KEY]["task"] == exp.task

    report = evaluate_experiment(config, straight.last, data_root=root, overrides=tiny, cases=cases,
                                 out=tmp_path / "eval", keep_predictions=True)
    assert len(report.rows) == len(cases.test) and report.csv_path.is_file()
    assert report.csv_path.read_text().count("\n") == len(cases.test) + 1
    text = report.summary()
    assert exp.name in text and "thesis" in text

    folder = next(f for f in root.glob("synthetic/ACDC/*/database/*/*") if f.name == cases.test[0].id)
    patient = read_patient(folder)
    if exp.task == "volume_regression":
        row = report.rows[0]
        assert 0 <= row["cam_dice"] <= 1 and 0 <= row["cam_dice_dilated"] <= 1 and row["true_ml"] > 0
        assert np.isfinite(report.table()["abs_error_ml"][0])
        src = folder / f"{patient.id}_frame{patient.ed:02d}.nii.gz"
        written = predict_files(straight.last, [src], out=tmp_path / "pred", device="cpu")
        assert [p.name for p in written] == [f"{src.name[:-7]}_volume.json", f"{src.name[:-7]}_cam.nii.gz"]
        cam = nib.load(written[1])
        assert cam.shape == nib.load(src).shape and np.allclose(cam.affine, nib.load(src).affine)
        data = np.asarray(cam.dataobj)
        assert data.dtype == np.float32 and 0 <= data.min() and data.max() <= 1
        reading = json.loads(written[0].read_text())["frames"][0]
        assert reading["volume_ml"] >= 0 and np.isfinite(reading["pi"])
    else:
        row = report.rows[0]
        assert {"es_naive", "ed_central", "fd_es_naive", "fdc_ed_central", "rfd_es_central"} <= set(row)
        assert row["fdc_es_naive"] <= row["fd_es_naive"] <= row["n_frames"] - 1
        src = folder / f"{patient.id}_4d.nii.gz"
        written = predict_files(straight.last, [src], out=tmp_path / "pred", device="cpu")
        result = json.loads(written[0].read_text())
        assert result["n_frames"] == patient.n_frames
        assert set(result["naive"]) == {"ES", "ED", "fell_back_to_naive"}
        assert all(len(v) == patient.n_frames for v in result["probabilities"].values())
        ed_frame = folder / f"{patient.id}_frame{patient.ed:02d}.nii.gz"
        with pytest.raises(FileFormatError, match=r"holds a 3-D image; expected a 4-D image"):
            predict_files(straight.last, [ed_frame], out=tmp_path / "pred2", device="cpu")
        assert not (tmp_path / "pred2").exists()
    with pytest.raises(ConfigError, match="holds a model of the task"):          # another task's checkpoint
        evaluate_experiment("cardiac-ch5-pspunet", straight.last, data_root=root)


def test_a_wrong_task_or_key_fails_naming_it():
    with pytest.raises(ConfigError, match=r"task: 'volume_regresion' is not one of .*did you mean 'volume_regression'"):
        load_experiment(CH6, overrides={"task": "volume_regresion"})
    with pytest.raises(ConfigError, match=r"model.name: 'regression_unet' is not a model of the task 'segmentation'"):
        load_experiment(CH6, overrides={"task": "segmentation"})
    with pytest.raises(ConfigError, match=r"loss.name: 'weighted_dice' is not a loss of the task 'volume_regression'"):
        load_experiment(CH6, overrides={"loss": {"name": "weighted_dice", "kwargs": {}}})
    with pytest.raises(ConfigError, match=r"unknown key 'augmentation.paried'.*did you mean 'paired'"):
        load_experiment(CH6, overrides={"augmentation.paried": True})
    with pytest.raises(ConfigError, match=r"unknown key 'evaluation.options.cam_treshold'"):
        load_experiment(CH6, overrides={"evaluation.options.cam_treshold": 0.5})
    with pytest.raises(ConfigError, match=r"cam_threshold: must lie in \(0, 1\)"):
        load_experiment(CH6, overrides={"evaluation.options.cam_threshold": 1.5})
    with pytest.raises(ConfigError, match=r"dataset.frames\[1\]: the task 'volume_regression' uses the frames ED only"):
        load_experiment(CH6, overrides={"dataset.frames": ["ED", "ES"]})
    with pytest.raises(ConfigError, match=r"projection: the task 'frame_detection' takes median, got 'none'"):
        load_experiment(WCE, overrides={"dataset.preprocessing.projection": "none"})
    with pytest.raises(ConfigError, match=r"synthetic_variant: 'long-cine' is not one of long-cines"):
        load_experiment(WCE, overrides={"dataset.synthetic_variant": "long-cine"})
    with pytest.raises(ConfigError, match=r"temporal_shift: must be a fraction"):
        load_experiment(WCE, overrides={"augmentation.temporal_shift": 1.5})
    for name in (CH6, WCE, WDL, FRAMES):                     # every profile of every config loads
        for profile in ("fast", "full"):
            load_experiment(name, profile=profile)


def test_the_full_profiles_are_the_thesis_settings():
    six = load_experiment(CH6, profile="full")
    assert (six.optimizer.name, six.optimizer.lr, six.batch_size, six.epochs) == ("adam", 1e-3, 5, 50)
    assert six.loss.kwargs == {"pi_weight": 100.0, "activity_weight": 0.001}
    assert six.dataset.preprocessing.spacing == [2.0, 2.0] and six.dataset.preprocessing.size == [88, 88]
    a = six.augmentation
    assert (a.paired, a.rotation, a.shear, a.shift, a.noise_mean, a.noise_std) == (True, 30, 20, 15, 0.035, 0.01)
    for name, loss in ((WCE, {"event_weight": 100.0}), (WDL, {"class_weights": [0.45, 0.45, 0.1]})):
        seven = load_experiment(name, profile="full")
        assert (seven.optimizer.lr, seven.batch_size, seven.epochs) == (1e-5, 2, 100)
        assert all(seven.loss.kwargs[k] == v for k, v in loss.items())
        assert seven.dataset.preprocessing.size == [176, 176] and seven.dataset.preprocessing.projection == "median"
        a = seven.augmentation
        assert (a.copies, a.rotation, a.shear, a.shift, a.temporal_shift) == (6, 20, 10, 44, 0.4)
        assert seven.build_model().__class__.__name__ == "FrameDetector"
        assert sum(p.numel() for p in seven.build_model().parameters()) == 4_692_642   # "4.7 M"


def test_event_frames_come_from_the_contours():
    big, small = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    big[2:6, 2:6] = 3
    small[3:5, 3:5] = 3
    big[1, 1:7] = small[1, 1:7] = 2
    assert event_frames({0: big, 11: small}) == (11, 0)       # (ES, ED): ED has the larger LV
    assert event_frames({4: small, 20: big}) == (4, 20)
    no_myo = small.copy()
    no_myo[no_myo == 2] = 0
    assert event_frames({3: no_myo, 9: big}) == (3, 9)        # the thesis's rule: ED has myocardium
    big_no_myo = big.copy()
    big_no_myo[big_no_myo == 2] = 0
    assert event_frames({3: big_no_myo, 9: small}) == (3, 9)  # ... even when its LV is smaller
    with pytest.raises(ArgumentError, match="exactly 2 contoured frames"):
        event_frames({0: big})
    with pytest.raises(ArgumentError, match="same LV cavity size"):
        event_frames({0: big, 5: big})
    y = frame_targets(5, es=2, ed=4)
    assert y.tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 0, 1, 0]]
    with pytest.raises(ArgumentError):
        frame_targets(5, es=2, ed=2)


def test_augmented_copies_shift_the_labels_with_the_frames():
    from cmrlab.data.augment import RandomAugment
    from cmrlab.train.frames import FrameCase

    frames = np.zeros((16, 16, 10), np.float32)
    frames[..., 3] = 1.0                                        # a bright ES frame to follow
    case = FrameCase("p", "NOR", frames, es=3, ed=7, spacing=np.ones(3))
    data = FrameDataset([case], copies=4, augment=RandomAugment(rotation=0.0, spatial_dims=3), temporal_shift=0.4, seed=1)
    assert len(data) == 5 and data.item_shapes == [(10, 16, 16)] * 5
    shifts = set()
    for item in range(5):
        x, y = data[item]
        assert int(x[0].mean(dim=(1, 2)).argmax()) == int(y[0].argmax())      # ES label moved with the frame
        assert int((y[1].argmax() - y[0].argmax()) % 10) == 4                # ED stays 4 frames after ES
        shifts.add(int(y[0].argmax()) - 3)
        assert torch.equal(data[item][0], x)                                  # the same copy every time
    assert len(shifts) > 1 and max(shifts) <= 4                               # 0 … 40 % of 10 frames


def test_paired_batches_have_one_slice_count_and_are_reproducible():
    shapes = [(8, 4, 4)] * 5 + [(10, 4, 4)] * 3
    sampler = PairedBatchSampler(shapes, 2, seed=3)
    sampler.set_epoch(1)
    batches = sampler.batches()
    assert len(batches) == len(sampler) == 2 * 5
    for raw, aug in zip(batches[::2], batches[1::2]):
        assert all(isinstance(i, int) for i in raw) and all(isinstance(k, tuple) for k in aug)
        assert len(raw) == len(aug) and len({shapes[i] for i in raw} | {shapes[i] for i, _ in aug}) == 1
    again = PairedBatchSampler(shapes, 2, seed=3)
    again.set_epoch(1)
    assert again.batches() == batches
    again.set_epoch(2)
    assert again.batches() != batches
    assert len(PairedBatchSampler(shapes, 2, paired=False)) == 5


def test_project_cine_refuses_what_it_cannot_read():
    pre = {"spacing": [2.0, 2.0], "size": [16, 16], "normalisation": "minmax_per_frame", "projection": "median"}
    cine = np.random.default_rng(0).random((20, 20, 5, 7)).astype(np.float32)
    out = project_cine(cine, (1.5, 1.5, 8.0), pre)
    assert out.shape == (16, 16, 7) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ArgumentError, match="4-D"):
        project_cine(cine[..., 0], (1.5, 1.5, 8.0), pre)
    bad = cine.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ArgumentError, match="finite"):
        project_cine(bad, (1.5, 1.5, 8.0), pre)
    with pytest.raises(CmrlabError, match="spacing"):
        project_cine(cine, (1.5, 0.0, 8.0), pre)


@pytest.mark.parametrize("config, tiny", [(CH6, TINY6), (FRAMES, TINY7)], ids=["volume", "frames-head"])
def test_the_cli_trains_evaluates_and_predicts_every_task(root, tmp_path, capsys, config, tiny):
    from cmrlab.cli import main

    sets = []
    for key, value in tiny.items():
        sets += ["--set", f"{key}={json.dumps(value)}"]
    common = ["--data-root", str(root), "--device", "cpu"]
    assert main(["train", config, "--out", str(tmp_path / "run"), *common, *sets]) == 0
    assert "task" in capsys.readouterr().out
    assert main(["evaluate", config, "--checkpoint", str(tmp_path / "run" / "last.pt"), *common, *sets]) == 0
    assert "thesis" in capsys.readouterr().out
    cine = next(root.glob("synthetic/ACDC/*/database/testing/*/*_4d.nii.gz"))
    assert main(["predict", str(cine), "--checkpoint", str(tmp_path / "run" / "last.pt"),
                 "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    assert "wrote" in capsys.readouterr().out and any((tmp_path / "pred").iterdir())
    assert main(["train", config, "--out", str(tmp_path / "bad"), *common, "--set", "task=frame_detections"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cmrlab: error:") and "did you mean 'frame_detection'" in err
    assert not (tmp_path / "bad").exists()
