"""The dataset scripts in data_scripts/, against a local HTTP server (never the real network).

One end-to-end run of ``python data_scripts/msd.py`` in a subprocess on a tiny synthetic MSD
archive; the other scripts run in this process (``runpy``) with a stand-in for the format
module's ``check_dataset``, so these tests do not depend on the format modules' details.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import runpy
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from test_download import RangeServer, leftovers, make_zip

from cmrlab.errors import FileFormatError

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "data_scripts"


@pytest.fixture
def server():
    with RangeServer() as srv:
        yield srv


def nifti_bytes(array: np.ndarray) -> bytes:
    """A .nii.gz file's bytes for ``array`` with 1.25 mm isotropic voxels."""
    image = nib.Nifti1Image(array, np.diag([1.25, 1.25, 1.25, 1.0]))
    return gzip.compress(image.to_bytes(), mtime=0)


def msd_heart_tar() -> tuple[bytes, list[str]]:
    """A tiny Task02_Heart archive in the MSD layout (plus an AppleDouble file to be skipped)."""
    rng = np.random.default_rng(0)
    image = rng.random((8, 8, 4), dtype=np.float32)
    label = np.zeros((8, 8, 4), np.uint8)
    label[2:5, 2:5, 1:3] = 1
    dataset = {
        "name": "LeftAtrium", "description": "Left atrium segmentation", "tensorImageSize": "3D",
        "reference": "King's College London", "licence": "CC-BY-SA 4.0", "release": "1.0",
        "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "left atrium"},
        "numTraining": 1, "numTest": 1,
        "training": [{"image": "./imagesTr/la_003.nii.gz", "label": "./labelsTr/la_003.nii.gz"}],
        "test": ["./imagesTs/la_001.nii.gz"],
    }
    members = {
        "Task02_Heart/dataset.json": json.dumps(dataset, indent=1).encode(),
        "Task02_Heart/imagesTr/la_003.nii.gz": nifti_bytes(image),
        "Task02_Heart/labelsTr/la_003.nii.gz": nifti_bytes(label),
        "Task02_Heart/imagesTs/la_001.nii.gz": nifti_bytes(image[::-1].copy()),
        "Task02_Heart/imagesTr/._la_003.nii.gz": b"AppleDouble",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 0
            tar.addfile(info, io.BytesIO(content))
    expected = sorted(n.removeprefix("Task02_Heart/") for n in members if "/._" not in n)
    return buffer.getvalue(), expected


def run_script(monkeypatch, capsys, name: str, *args: str, readers: dict | None = None):
    """Run ``data_scripts/<name>.py args`` in this process; return (exit code, stdout, stderr).

    ``readers`` maps a format module name (``"acdc"``) to a stand-in module, or to None to make
    its import fail as if this cmrlab version had no such module.
    """
    monkeypatch.syspath_prepend(str(SCRIPTS))
    for module, fake in (readers or {}).items():
        monkeypatch.setitem(sys.modules, f"cmrlab.data.{module}", fake)
    path = SCRIPTS / f"{name}.py"
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(path), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


def fake_reader(calls: list, error: Exception | None = None) -> types.ModuleType:
    """A stand-in format module whose check_dataset records its calls (or raises ``error``)."""
    module = types.ModuleType("fake_reader")

    def check_dataset(root, *, deep=False):
        calls.append((Path(root), deep))
        if error is not None:
            raise error
        return {"n_cases": 1}

    module.check_dataset = check_dataset
    return module


# ----------------------------------------------------------------------------------------------
# msd.py end to end, as a user runs it
# ----------------------------------------------------------------------------------------------
def test_msd_script_end_to_end(server, tmp_path):
    data, expected = msd_heart_tar()
    server.files["/Task02_Heart.tar"] = data
    root = tmp_path / "data"
    command = [sys.executable, str(SCRIPTS / "msd.py"), "--task", "Task02_Heart",
               "--url", server.url("/Task02_Heart.tar"),
               "--md5", hashlib.md5(data).hexdigest(), "--data-root", str(root), "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = root / "MSD" / "Task02_Heart"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == expected
    assert leftovers(root) == ["MSD", "MSD/Task02_Heart"] + [
        f"MSD/Task02_Heart/{p}" for p in ["dataset.json", "imagesTr", "imagesTr/la_003.nii.gz",
                                           "imagesTs", "imagesTs/la_001.nii.gz", "labelsTr",
                                           "labelsTr/la_003.nii.gz"]]  # no archive, no .part
    assert nib.load(folder / "labelsTr/la_003.nii.gz").get_fdata().sum() == 18
    if importlib.util.find_spec("cmrlab.data.msd") is None:  # the format module is not there yet
        assert "cannot be checked" in done.stderr and "checksum was verified" in done.stderr
    else:
        assert "looks right" in done.stdout

    # --verify-only on the result runs the layout check only (no request)
    requests = len(server.log)
    again = subprocess.run(command + ["--verify-only"], capture_output=True, text=True,
                           timeout=120, env=env)
    assert len(server.log) == requests
    assert again.returncode == (0 if importlib.util.find_spec("cmrlab.data.msd") else 1)


def test_msd_script_refuses_a_corrupt_download(server, tmp_path, monkeypatch, capsys):
    data, _ = msd_heart_tar()
    server.files["/Task02_Heart.tar"] = data[:-1] + b"!"
    root = tmp_path / "data"
    code, out, err = run_script(
        monkeypatch, capsys, "msd", "--url", server.url("/Task02_Heart.tar"),
        "--md5", hashlib.md5(data).hexdigest(), "--data-root", str(root), "--no-progress")
    assert code == 1
    assert "md5 checksum mismatch" in err and hashlib.md5(data).hexdigest() in err
    assert "Traceback" not in err
    assert not root.exists() or leftovers(root) == []


def test_msd_script_calls_the_reader_on_the_task_folder(server, tmp_path, monkeypatch, capsys):
    data, _ = msd_heart_tar()
    server.files["/t.tar"] = data
    calls: list = []
    root = tmp_path / "data"
    code, out, err = run_script(
        monkeypatch, capsys, "msd", "--url", server.url("/t.tar"), "--sha256",
        hashlib.sha256(data).hexdigest(), "--data-root", str(root), "--no-progress", "--deep",
        readers={"msd": fake_reader(calls)})
    assert code == 0, err
    assert calls == [(root / "MSD" / "Task02_Heart", True)]
    assert "n_cases" in out


def test_msd_published_checksums_are_the_monai_ones():
    spec = runpy.run_path(str(SCRIPTS / "msd.py"), run_name="msd_under_test")
    tasks = spec["TASKS"]
    assert tasks["Task01_BrainTumour"]["md5"] == "240a19d752f0d9e9101544901065d872"
    assert tasks["Task01_BrainTumour"]["size"] == 7_608_266_240
    assert tasks["Task02_Heart"]["md5"] == "06ee59366e1e5124267b774dbd654057"
    from monai.apps import DecathlonDataset  # the installed MONAI agrees

    for task, entry in tasks.items():
        assert DecathlonDataset.resource[task] == entry["url"]
        assert DecathlonDataset.md5[task] == entry["md5"]


# ----------------------------------------------------------------------------------------------
# acdc.py: no published checksum
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["", "database/", "ACDC/database/"])
def test_acdc_script_downloads_and_prints_the_sha256(server, tmp_path, monkeypatch, capsys,
                                                     prefix):
    data = make_zip({f"{prefix}training/patient001/Info.cfg": b"ED: 1\nES: 12\n",
                     f"{prefix}testing/patient101/Info.cfg": b"ED: 1\nES: 10\n"})
    server.files["/acdc.zip"] = data
    calls: list = []
    root = tmp_path / "data"
    code, out, err = run_script(monkeypatch, capsys, "acdc", "--url", server.url("/acdc.zip"),
                                "--data-root", str(root), "--no-progress",
                                readers={"acdc": fake_reader(calls)})
    assert code == 0, err
    digest = hashlib.sha256(data).hexdigest()
    assert f"--sha256 {digest}" in out and "no checksum is published" in out
    assert (root / "ACDC/database/training/patient001/Info.cfg").read_bytes() == b"ED: 1\nES: 12\n"
    assert (root / "ACDC/database/testing/patient101/Info.cfg").is_file()
    assert calls == [(root / "ACDC", False)]


def test_acdc_script_with_a_local_archive_and_wrong_pin(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "acdc.zip"
    archive.write_bytes(make_zip({"database/training/patient001/Info.cfg": b"ED: 1\n"}))
    root = tmp_path / "data"
    code, out, err = run_script(monkeypatch, capsys, "acdc", "--archive", str(archive),
                                "--sha256", "0" * 64, "--data-root", str(root), "--no-progress",
                                readers={"acdc": fake_reader([])})
    assert code == 1 and "sha256 checksum mismatch" in err
    assert archive.is_file()  # the user's own file is never deleted
    code, out, err = run_script(monkeypatch, capsys, "acdc", "--archive", str(archive),
                                "--data-root", str(root), "--no-progress",
                                readers={"acdc": fake_reader([])})
    assert code == 0, err
    assert (root / "ACDC/database/training/patient001/Info.cfg").is_file() and archive.is_file()


# ----------------------------------------------------------------------------------------------
# Registration-only scripts
# ----------------------------------------------------------------------------------------------
REGISTRATION = {
    # script: (format module, folder under the data root, a line the instructions must contain)
    "mnms": ("mnms", "MnM", "https://www.ub.edu/mnms/"),
    "brats": ("brats", "BraTS2021", "https://www.synapse.org"),
    "iseg": ("iseg", "iSeg-2017", "http://iseg2017.web.unc.edu"),
    "mrbrains18": ("mrbrains", "MRBrainS18", "https://mrbrains18.isi.uu.nl"),
    "sunnybrook": ("sunnybrook", "Sunnybrook", "cardiacatlas.org"),
    "kaggle_dsb": (None, "KaggleDSB", "kaggle competitions download -c "
                                      "second-annual-data-science-bowl"),
}


@pytest.mark.parametrize("script", sorted(REGISTRATION))
def test_registration_script_without_data_prints_steps_and_fails(tmp_path, monkeypatch, capsys,
                                                                 script):
    _, folder, line = REGISTRATION[script]
    code, out, err = run_script(monkeypatch, capsys, script, "--data-root", str(tmp_path))
    assert code == 1
    assert line in out and str(tmp_path / folder) in out
    assert "not found" in err and str(tmp_path / folder) in err
    code, out, err = run_script(monkeypatch, capsys, script, "--data-root", str(tmp_path),
                                "--verify-only")
    assert code == 1 and out == "" and "--verify-only" in err


@pytest.mark.parametrize("script", sorted(s for s, v in REGISTRATION.items() if v[0]))
def test_registration_script_with_data_runs_the_reader(tmp_path, monkeypatch, capsys, script):
    module, folder, _ = REGISTRATION[script]
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "something").write_text("x")
    calls: list = []
    code, out, err = run_script(monkeypatch, capsys, script, "--data-root", str(tmp_path),
                                readers={module: fake_reader(calls)})
    assert code == 0 and calls == [(tmp_path / folder, False)] and "looks right" in out

    bad = FileFormatError(tmp_path / folder / "case1", "label value 7 is not allowed")
    code, out, err = run_script(monkeypatch, capsys, script, "--data-root", str(tmp_path),
                                readers={module: fake_reader([], bad)})
    assert code == 1 and "label value 7 is not allowed" in err and "case1" in err

    code, out, err = run_script(monkeypatch, capsys, script, "--data-root", str(tmp_path),
                                readers={module: None})
    assert code == 1 and f"no cmrlab.data.{module} module" in err


def make_dsb(root: Path, ids=(1, 2), csv_ids=(1, 2), header="Id,Systole,Diastole") -> Path:
    folder = root / "KaggleDSB"
    for study in ids:
        series = folder / "train" / str(study) / "study" / "sax_5"
        series.mkdir(parents=True)
        (series / "IM-4557-0001.dcm").write_bytes(b"\0" * 132 + b"DICM")
    rows = [header] + [f"{i},{50.0 + i},{150.0 + i}" for i in csv_ids]
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_kaggle_dsb_layout_check(tmp_path, monkeypatch, capsys):
    make_dsb(tmp_path / "ok")
    code, out, err = run_script(monkeypatch, capsys, "kaggle_dsb", "--data-root",
                                str(tmp_path / "ok"), "--verify-only", "--deep")
    assert code == 0, err
    assert "studies: {'train': 2}" in out and "csv_rows: {'train': 2}" in out

    make_dsb(tmp_path / "missing", csv_ids=(1,))
    code, out, err = run_script(monkeypatch, capsys, "kaggle_dsb", "--data-root",
                                str(tmp_path / "missing"))
    assert code == 1 and "train.csv: has no volumes for studies ['2']" in err

    make_dsb(tmp_path / "header", header="id,sys,dia")
    code, out, err = run_script(monkeypatch, capsys, "kaggle_dsb", "--data-root",
                                str(tmp_path / "header"))
    assert code == 1 and "the header must be Id,Systole,Diastole" in err

    folder = make_dsb(tmp_path / "nosax")
    (folder / "train/2/study/sax_5/IM-4557-0001.dcm").unlink()
    code, out, err = run_script(monkeypatch, capsys, "kaggle_dsb", "--data-root",
                                str(tmp_path / "nosax"))
    assert code == 1 and "sax_5: has no .dcm files" in err
