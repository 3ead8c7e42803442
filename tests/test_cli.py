"""The ``cmrlab`` command, called in-process through ``cmrlab.cli.main``: exit codes, files, messages.

The training commands use a tiny run (3 synthetic ACDC cases, 32×32 windows, width 2, 1 epoch).
"""
from __future__ import annotations

import pytest
import torch

from cmrlab.cli import main

TINY = ["--set", "epochs=1", "--set", "dataset.n_cases=3", "--set", "dataset.preprocessing.size=[32, 32]",
        "--set", "model.kwargs.base_filters=2"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_info_and_data_list(capsys, tmp_path):
    assert main(["info", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and f"data root: {tmp_path}" in out
    assert main(["data", "list", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "acdc" in out and "brats2021" in out


def test_data_synth(capsys, tmp_path):
    out = tmp_path / "acdc"
    assert main(["data", "synth", "acdc", "--cases", "2", "--out", str(out)]) == 0
    assert (out / "database" / "training" / "patient001" / "Info.cfg").is_file()
    assert "wrote 2 synthetic" in capsys.readouterr().out
    assert main(["data", "synth", "acdc", "--cases", "2", "--out", str(out)]) == 2      # not empty
    assert f"cmrlab: error: --out {out}: exists and is not an empty folder" in capsys.readouterr().err
    assert main(["data", "synth", "nosuchset", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "cmrlab: error:" in err and "unknown dataset 'nosuchset'" in err
    assert not (tmp_path / "x").exists()


def test_train_evaluate_predict(capsys, root, tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["train", "cardiac-ch5-pspunet", "--data-root", str(root), "--out", str(run), *TINY]) == 0
    out = capsys.readouterr().out
    assert "epoch   1" in out and (run / "best.pt").is_file() and (run / "history.csv").is_file()
    # a second train into the same folder without --resume is refused
    assert main(["train", "cardiac-ch5-pspunet", "--data-root", str(root), "--out", str(run), *TINY]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "cardiac-ch5-pspunet", "--data-root", str(root), "--out", str(run), "--resume",
                 *TINY[:-2], "--set", "model.kwargs.base_filters=2", "--set", "epochs=2"]) == 0
    assert "resumed after epoch 1" in capsys.readouterr().out

    assert main(["evaluate", "cardiac-ch5-pspunet", "--checkpoint", str(run / "best.pt"), "--data-root", str(root),
                 "--out", str(tmp_path / "metrics"), *TINY]) == 0
    out = capsys.readouterr().out
    assert "Table 5.1" in out and "PSPU-net (ED)" in out and "on 1 ED / 1 ES test volumes" in out
    assert (tmp_path / "metrics" / "test_metrics.csv").is_file()
    assert main(["evaluate", "cardiac-ch5-unet3d", "--checkpoint", str(run / "best.pt"), "--data-root", str(root),
                 *TINY]) == 2
    assert "holds a 'pspunet' model" in capsys.readouterr().err

    image = next(root.rglob("patient001_frame01.nii.gz"))
    assert main(["predict", "--checkpoint", str(run / "best.pt"), str(image), "--out", str(tmp_path / "seg"),
                 "--device", "cpu"]) == 0
    assert f"wrote {tmp_path / 'seg' / 'patient001_frame01_seg.nii.gz'}" in capsys.readouterr().out
    assert (tmp_path / "seg" / "patient001_frame01_seg.nii.gz").is_file()
    assert main(["predict", "--checkpoint", str(tmp_path / "none.pt"), str(image), "--out", str(tmp_path)]) == 2
    assert "none.pt: checkpoint not found" in capsys.readouterr().err


def test_config_and_data_root_errors(capsys, root, tmp_path):
    assert main(["train", "cardiac-ch5-pspunet", "--data-root", str(root), "--out", str(tmp_path / "r"),
                 "--set", "foo=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cmrlab: error:") and "unknown key 'foo'" in err
    missing = tmp_path / "no-data-here"
    assert main(["train", "cardiac-ch5-pspunet", "--profile", "full", "--device", "cpu",
                 "--data-root", str(missing), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"is not under the data root: {missing / 'ACDC'} does not exist" in err
    assert main(["train", "no-such-experiment", "--out", str(tmp_path / "r")]) == 2
    assert "unknown experiment 'no-such-experiment'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
