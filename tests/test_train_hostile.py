"""Hostile tests of the training stack (issue 12): bad ``--set`` values, damaged run folders and
checkpoints, interrupted saves, bad images for ``predict``, and the Trainer's promises
(validation leaves training alone, ReduceLROnPlateau follows the validation number, running sums
that suit every device).

The runner tests that need data share one tiny run (3 synthetic ACDC cases, 32×32 windows,
width 2, 1 epoch), as ``tests/test_cli.py`` does.
"""
from __future__ import annotations

import copy
import math
import os
import random
import struct

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, TensorDataset

from cmrlab.cli import main
from cmrlab.errors import ArgumentError, CmrlabError, ConfigError, FileFormatError
from cmrlab.files import parse_yaml_text, partial_name
from cmrlab.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    Trainer,
    load_checkpoint,
    resumable_loader,
    save_checkpoint,
)
from cmrlab.nn.metrics import foreground_dice
from cmrlab.train.experiment import experiment_from_dict, load_experiment
from cmrlab.train.runner import RUN_FORMAT, RUN_KEY, check_run_info, parse_overrides, predict_files, train_experiment
from cmrlab.train.segmentation import predict_volume

torch.set_num_threads(1)
PSP = "cardiac-ch5-pspunet"
TINY = {"epochs": 1, "dataset.n_cases": 3, "dataset.preprocessing.size": [32, 32], "model.kwargs.base_filters": 2}


def _data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, (x @ torch.tensor([1.0, -2.0, 0.5]) > 0).long()


def _trainer(model=None, *, lr=0.5, epochs=3, val=True, **kwargs):
    torch.manual_seed(0)
    model = nn.Linear(3, 2) if model is None else model
    kwargs.setdefault("progress", False)
    return Trainer(model, kwargs.pop("loss_fn", F.cross_entropy), torch.optim.SGD(model.parameters(), lr=lr),
                   train_loader=resumable_loader(TensorDataset(*_data()), 5),
                   val_loader=DataLoader(TensorDataset(*_data(10, 1)), batch_size=4) if val else None,
                   max_epochs=epochs, device="cpu", **kwargs)


def _snapshot(folder):
    """Every file below ``folder`` with its bytes (None when the folder does not exist)."""
    if not folder.exists():
        return None
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ the Trainer
def test_validation_does_not_change_training():
    """A model with dropout and a validation metric that draws from every global generator: the
    weights after training are bit-identical with and without the validation set."""

    def noisy_metric(out, y):
        random.random(), np.random.rand(), torch.rand(3)           # draws from all three generators
        return float((out.argmax(1) == y).float().mean())

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2))

    with_val = _trainer(net(), metrics={"acc": noisy_metric}, epochs=3)
    without = _trainer(net(), val=False, epochs=3)
    with_val.fit(), without.fit()
    for a, b in zip(with_val.model.state_dict().values(), without.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in with_val.history] == [r["loss"] for r in without.history]
    assert "val_acc" in with_val.history[0] and "val_loss" not in without.history[0]


def _scripted(values):
    box = {}

    def metric(out, y):
        return values[box["trainer"].epoch]

    return box, metric


def _plateau(t, **kwargs):
    t.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(t.optimizer, patience=0, factor=0.5, **kwargs)
    return t


def test_reduce_lr_on_plateau_follows_the_monitored_validation_number():
    # the training loss falls every epoch, the monitored validation score is flat: the lr drops
    box, flat = _scripted([0.5, 0.5, 0.5, 0.5])
    t = _plateau(_trainer(lr=0.1, epochs=4, metrics={"score": flat}, scheduler_monitor="val_score"), mode="max")
    box["trainer"] = t
    t.fit()
    losses = [r["loss"] for r in t.history]
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]   # training improves ...
    # epoch 1 sets the best score; every later flat epoch halves the lr (patience 0)
    assert [r["lr"] for r in t.history] == pytest.approx([0.1, 0.1, 0.05, 0.025])  # ... the lr still drops

    # the training and validation losses are flat (a constant loss), the monitored score improves: no drop
    constant = lambda out, y: 0.0 * out.sum() + 1.0                           # noqa: E731
    box, rising = _scripted([0.1, 0.2, 0.3, 0.4])
    u = _plateau(_trainer(lr=0.1, epochs=4, loss_fn=constant, metrics={"score": rising},
                          scheduler_monitor="val_score"), mode="max")
    box["trainer"] = u
    u.fit()
    assert {r["loss"] for r in u.history} == {1.0} and {r["val_loss"] for r in u.history} == {1.0}
    assert [r["lr"] for r in u.history] == pytest.approx([0.1] * 4)

    # by default the validation loss is followed: flat here, so the lr drops although the score rises
    box, rising = _scripted([0.1, 0.2, 0.3, 0.4])
    v = _plateau(_trainer(lr=0.1, epochs=3, loss_fn=constant, metrics={"score": rising}))
    box["trainer"] = v
    v.fit()
    assert v.scheduler_monitor == "val_loss"
    assert [r["lr"] for r in v.history] == pytest.approx([0.1, 0.1, 0.05])

    w = _plateau(_trainer(lr=0.1, epochs=1, scheduler_monitor="val_dice"))
    with pytest.raises(ArgumentError, match="scheduler_monitor='val_dice' is not among"):
        w.fit()
    assert _trainer(val=False).scheduler_monitor == "loss"


class _SyncSpy(TorchFunctionMode):
    """Records the tensor operations that copy a value to Python (a GPU→CPU wait on a GPU) and
    every float64 tensor made."""

    def __init__(self):
        super().__init__()
        self.syncs, self.float64 = 0, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("item", "__float__", "__int__", "__bool__", "tolist", "numpy", "cpu"):
            self.syncs += 1
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.dtype == torch.float64:
            self.float64.append(name)
        return out


def test_running_sums_are_float32_on_the_device_and_synced_once_per_epoch():
    """MPS has no float64, and a copy to the CPU after every batch makes a GPU wait: the running
    sums are float32 tensors on the trainer's device, and the number of copies does not grow with
    the number of batches."""
    x, y = _data(40)
    counts = {}
    for batch in (20, 5):                                             # 2 or 8 batches per epoch
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        t = Trainer(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1),
                    train_loader=resumable_loader(TensorDataset(x, y), batch),
                    val_loader=DataLoader(TensorDataset(x, y), batch_size=batch), metrics={"acc": lambda o, t: (o.argmax(1) == t).float().mean()},
                    device="cpu", max_epochs=2, progress=False)
        assert t.running_loss.dtype == torch.float32 and t.running_loss.device == t.device
        with _SyncSpy() as spy:
            t.fit()
        assert spy.float64 == [], spy.float64                             # no float64 tensor anywhere
        counts[batch] = spy.syncs
    assert counts[20] == counts[5], counts
    assert t.running_loss.item() == 0.0 and t.running_samples == 0       # reset after the epoch


def test_callback_arguments_use_the_shared_checks():
    with pytest.raises(ArgumentError, match="mode must be one of 'min', 'max', got 'mni'; did you mean 'min'"):
        EarlyStopping(mode="mni")
    with pytest.raises(ArgumentError, match="min_delta must be a finite number >= 0"):
        EarlyStopping(min_delta=float("nan"))
    with pytest.raises(ArgumentError, match="mode must be one of"):
        ModelCheckpoint("x", mode="best")
    with pytest.raises(ArgumentError, match="scheduler_interval must be one of 'epoch', 'step'.*did you mean 'epoch'"):
        _trainer(scheduler_interval="epochs")
    with pytest.raises(ArgumentError, match="deterministic must be True or False"):
        _trainer(deterministic=1)


# ------------------------------------------------------------------------------------ checkpoints
def _good_state(tmp_path):
    t = _trainer(checkpoint_dir=tmp_path / "ok", epochs=1)
    t.fit()
    return load_checkpoint(tmp_path / "ok" / "last.pt")


def _set(state, key, value):
    s = copy.deepcopy(state)
    node = s
    parts = key.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is _DELETE:
        del node[parts[-1]]
    elif isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return s


_DELETE = object()


@pytest.mark.parametrize("key, value, field", [
    ("epoch", "1", "field 'epoch' must be an integer >= 0, got '1'"),
    ("epoch", -1, "field 'epoch' must be an integer >= 0"),
    ("epoch", 1.5, "field 'epoch'"),
    ("epoch", True, "field 'epoch'"),
    ("epoch", torch.tensor(1), "field 'epoch'"),
    ("global_step", _DELETE, "field 'global_step' is missing"),
    ("epoch_loss_sum", float("nan"), "field 'epoch_loss_sum' must be a finite number"),
    ("epoch_samples", [1], "field 'epoch_samples'"),
    ("history", "rows", "field 'history' must be a list"),
    ("history", [{"epoch": 1, "loss": "low"}], r"field 'history\[0\]' must map names to numbers"),
    ("history", [torch.Size([1, 2])], r"field 'history\[0\]'"),
    ("callbacks", [{"class": 3}], r"field 'callbacks\[0\]'"),
    ("callbacks", [["ModelCheckpoint", {}]], r"field 'callbacks\[0\]'"),
    ("callbacks.0.state.best", "x", "ModelCheckpoint state 'best' must be a finite number"),
    ("model", {"weight": 3.0}, "field 'model' must map parameter names to tensors"),
    ("model", [1, 2], "field 'model' must be a dict"),
    ("optimizer", None, "field 'optimizer' must be a dict"),
    ("rng", {"python": {}}, "rng state is not one captured"),
    ("rng.torch", torch.zeros(3), "rng state is not one captured"),
    ("sampler", {"seed": -1, "epoch": 0}, "field 'sampler.seed'"),
    ("format", "cmrlab.train.Trainer/99", "not a Trainer checkpoint"),
    ("seed", "zero", "field 'seed'"),
])
def test_damaged_trainer_checkpoints_name_the_file_and_the_field(tmp_path, key, value, field):
    state = _good_state(tmp_path)
    bad = save_checkpoint(tmp_path / "bad.pt", _set(state, key, value))
    fresh = _trainer(epochs=2, checkpoint_dir=tmp_path / "fresh")
    before = {k: v.clone() for k, v in fresh.model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(FileFormatError, match=rf"bad.pt: cannot be resumed by this trainer \(.*{field}") as info:
        fresh.resume(bad)
    assert str(bad) in str(info.value)
    if key not in ("callbacks.0.state.best",):                 # checked before anything is restored
        assert all(torch.equal(before[k], v) for k, v in fresh.model.state_dict().items())
        assert torch.equal(torch.get_rng_state(), rng) and fresh.epoch == 0


def test_files_that_are_not_checkpoints(tmp_path):
    t = _trainer()
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    with pytest.raises(FileFormatError, match="tensor.pt: holds a Tensor, not a checkpoint dict"):
        t.resume(tmp_path / "tensor.pt")
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(FileFormatError, match="notes.pt: is truncated or not a torch checkpoint"):
        t.resume(tmp_path / "notes.pt")
    good = save_checkpoint(tmp_path / "good.pt", _good_state(tmp_path))
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="cut.pt: is truncated"):
        t.resume(tmp_path / "cut.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": "cmrlab.train.Trainer/1", "model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(FileFormatError, match="evil.pt: holds objects that torch.load\\(weights_only=True\\) refuses"):
        t.resume(tmp_path / "evil.pt")


def test_an_interrupted_save_leaves_no_partial_files_once_the_next_run_starts(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    planted = [partial_name(run / "last.pt"), partial_name(run / "best.pt"), partial_name(run / "log.csv")]
    for p in planted:
        p.write_bytes(b"half a checkpoint")
    keep = run / ".notes"                                             # a hidden file of the user's
    keep.write_text("mine")
    other = partial_name(run / "dataset.nii.gz")                      # another writer's, not ours
    other.write_bytes(b"x")
    t = _trainer(epochs=1, callbacks=[CSVLogger(run / "log.csv"), ModelCheckpoint(run)])
    seen = []

    class Look(Callback):
        def on_epoch_start(self, trainer, epoch):
            seen.append(sorted(p.name for p in run.iterdir()))

    t.callbacks.insert(0, Look())
    t.fit()
    assert not any(p.exists() for p in planted)
    assert all(".partial" not in name for name in seen[0] if name != other.name)   # gone before epoch 1
    assert keep.read_text() == "mine" and other.exists()


# ------------------------------------------------------------------------------------ --set values
@pytest.mark.parametrize("item, pattern", [
    ("epochs=nan", "--set epochs: the value 'nan' is not a finite number"),
    ("optimizer.lr=inf", "--set optimizer.lr: the value 'inf' is not a finite number"),
    ("optimizer.lr=-Infinity", "not a finite number"),
    ("optimizer.lr=.inf", "--set optimizer.lr: the value '.inf' is not a finite number"),
    ("optimizer.lr=1e400", "not a finite number"),
    ("dataset.preprocessing.size=[32, .nan]", r"field '\[1\]' is not a finite number"),
    ("dataset.preprocessing.size=[32, 32", "is not valid YAML.*quote text"),
    ("model.name={pspunet", "is not valid YAML"),
    ("model.name=@x", "is not valid YAML"),
    ("model.kwargs.base_filters=" + "[" * 200 + "]" * 200, "nested more than 64 levels"),
    ("epochs", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
])
def test_bad_set_values_name_the_key(item, pattern):
    with pytest.raises(ArgumentError, match=pattern):
        parse_overrides([item])


@pytest.mark.parametrize("item, pattern", [
    ("foo=1", "unknown key 'foo'"),
    ("epochs=two", "epochs: must be an integer, got str 'two'"),
    ("epochs=2.5", "epochs: must be an integer, got float"),
    ("optimizer.lr=[1, 2]", "optimizer.lr: must be a number, got list"),
    ("dataset.preprocessing.size=32", "dataset.preprocessing.size: must be a list"),
    ("model.kwargs.base_filters=[1, 2]", r"model.kwargs: .*base_filters must be .*got \[1, 2\]"),
    ("model.kwargs.depth=40", "model.kwargs: rejected by model 'pspunet'"),
    ("optimizer.kwargs.weight_decay=-1", "optimizer.kwargs: rejected by optimizer 'adam'.*weight_decay"),
    ("loss.kwargs.weights=abc", "loss.kwargs: .*weights must be one of"),
])
def test_bad_set_values_leave_no_run_folder(tmp_path, item, pattern):
    out = tmp_path / "run"
    with pytest.raises(CmrlabError, match=pattern) as info:
        train_experiment(PSP, data_root=tmp_path / "data", out=out, overrides=[item], progress=False)
    assert "cardiac-ch5-pspunet.yaml" in str(info.value)
    assert not out.exists() and not (tmp_path / "data").exists()       # nothing written, not even data


def test_cli_set_errors_are_one_line(capsys, tmp_path):
    for item in ("epochs=nan", "dataset.preprocessing.size=[1,", "optimizer.kwargs.betas=x"):
        assert main(["train", PSP, "--data-root", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--set", item]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cmrlab: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_parse_yaml_text_is_strict():
    assert parse_yaml_text("[1, 2]", "--set x") == [1, 2]
    with pytest.raises(FileFormatError, match=r"--set x: is not valid YAML"):
        parse_yaml_text("[1, 2", "--set x")
    with pytest.raises(FileFormatError, match="not a finite number"):
        parse_yaml_text("{a: .nan}", "--set x")
    assert math.isinf(parse_yaml_text(".inf", "--set x", allow_non_finite=True))
    with pytest.raises(FileFormatError, match="nested"):
        parse_yaml_text("[" * 100 + "]" * 100, "--set x")


# ------------------------------------------------------------------------------------ run folders
def _resolved(name=PSP, **overrides):
    return load_experiment(name, "fast", {**TINY, **overrides}).to_dict()


@pytest.mark.parametrize("content, pattern", [
    (b"", "must hold a mapping of keys at the top level, got NoneType"),
    (b"- a\n- b\n", "must hold a mapping of keys at the top level, got list"),
    (b"\x00\x01\x02\xff\xfe", "is not UTF-8 text"),
    (b"name: caf\xe9\n", "is not UTF-8 text"),
    (b"a: " + b"[" * 100 + b"]" * 100 + b"\n", "nested"),
    (b"name: [unclosed\n", "is not valid YAML"),
    ("inf", "field 'optimizer.lr' is not a finite number"),
    ("missing", "batch_size: missing"),
    ("wrong type", "epochs: must be an integer"),
    ("other task", "another configuration .*differs in: .*model.*name"),
    ("profile", "profile: 'medium' is not one of fast, full"),
    ("extra", "unknown key 'optimiser'"),
])
def test_a_damaged_run_config_is_refused_and_the_folder_left_alone(tmp_path, content, pattern):
    run = tmp_path / "run"
    run.mkdir()
    config = _resolved()
    if content == "inf":
        content = yaml.safe_dump(config).replace("lr: 0.003", "lr: .inf").encode()
    elif content == "missing":
        config.pop("batch_size")
    elif content == "wrong type":
        config["epochs"] = "three"
    elif content == "other task":
        config = _resolved("cardiac-ch5-unet3d")
    elif content == "profile":
        config["profile"] = "medium"
    elif content == "extra":
        config["optimiser"] = {}
    if isinstance(content, str):
        content = yaml.safe_dump(config, sort_keys=False).encode()
    (run / "config.yaml").write_bytes(content)
    partial = partial_name(run / "last.pt")
    partial.write_bytes(b"x")
    before = _snapshot(run)
    with pytest.raises(CmrlabError, match=pattern) as info:
        train_experiment(PSP, data_root=tmp_path / "data", out=run, overrides=TINY, resume=True, progress=False)
    assert "config.yaml" in str(info.value) or "another configuration" in str(info.value)
    assert _snapshot(run) == before                                    # not even the partial was touched
    assert not (tmp_path / "data").exists()


def test_experiment_from_dict_round_trip_and_errors():
    exp = load_experiment(PSP, "full")
    assert experiment_from_dict(exp.to_dict(), "x.yaml") == exp
    with pytest.raises(ConfigError, match=r"x.yaml: dataset.split: must be a mapping"):
        experiment_from_dict({**exp.to_dict(), "dataset": {**exp.to_dict()["dataset"], "split": 3}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: model.name: 'unet9' is not one of"):
        experiment_from_dict({**exp.to_dict(), "model": {"name": "unet9", "kwargs": {}}}, "x.yaml")


# ------------------------------------------------------------------------------------ run metadata
def _run_info(**changes):
    info = {"format": RUN_FORMAT, "task": "segmentation", "experiment": PSP, "profile": "fast",
            "model": {"name": "pspunet", "kwargs": {"base_filters": 2, "depth": 2}},
            "preprocessing": {"spacing": [2.75, 2.75], "size": [32, 32], "normalisation": "minmax",
                              "window": 3, "stride": 1},
            "labels": {"0": "background"}, "num_classes": 4, "seed": 0}
    for key, value in changes.items():
        node = info
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        if value is _DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return info


@pytest.mark.parametrize("key, value, pattern", [
    ("format", "other/1", "is not a checkpoint of the cmrlab runner"),
    ("model", "pspunet", "field 'cmrlab_run.model' must be a mapping"),
    ("model.name", 3, "field 'cmrlab_run.model.name' must be text"),
    ("model.name", "pspnet", "names the model 'pspnet', which this cmrlab does not know; did you mean 'pspunet'"),
    ("model.kwargs", _DELETE, "field 'cmrlab_run.model.kwargs' must be a mapping"),
    ("preprocessing.spacing", [1.0], "field 'cmrlab_run.preprocessing.spacing' must be a list of 2"),
    ("preprocessing.spacing", [1.0, float("nan")], r"preprocessing.spacing\[1\]' must be a finite number"),
    ("preprocessing.spacing", [1.0, 0.0], "must hold numbers > 0"),
    ("preprocessing.spacing", [1.0, "2"], "must be a number, got the text '2'"),
    ("preprocessing.size", [32, 32.5], "must be a whole number"),
    ("preprocessing.size", [32, 10**9], "must lie in"),
    ("preprocessing.normalisation", "zscore", "must be one of minmax, minmax_per_frame, none"),
    ("preprocessing.projection", "mean", "must be one of none, median"),
    ("task", "segmentaton", "field 'cmrlab_run.task' must be one of segmentation, volume_regression"),
    ("preprocessing.window", _DELETE, "preprocessing.window' must be a number"),
    ("preprocessing.stride", True, "preprocessing.stride' must be a number"),
    ("seed", -3, "field 'cmrlab_run.seed' must lie in"),
    ("profile", "slow", "must be 'fast' or 'full'"),
    ("experiment", None, "field 'cmrlab_run.experiment' must be text"),
])
def test_run_metadata_is_checked_field_by_field(tmp_path, key, value, pattern):
    with pytest.raises(FileFormatError, match=pattern) as info:
        check_run_info(tmp_path / "best.pt", _run_info(**{key: value}))
    assert str(tmp_path / "best.pt") in str(info.value)
    clean = check_run_info(tmp_path / "best.pt", _run_info())
    assert clean["preprocessing"]["size"] == [32, 32] and clean["seed"] == 0


def test_checkpoints_of_the_earlier_segmentation_format_still_load(tmp_path):
    legacy = _run_info(format="cmrlab.train.segmentation/1", task=_DELETE)
    clean = check_run_info(tmp_path / "old.pt", legacy)
    assert clean["task"] == "segmentation" and clean["format"] == RUN_FORMAT
    assert clean["preprocessing"]["projection"] == "none"


def _tiny_checkpoint(path, **changes):
    from cmrlab.nn.registry import build_model

    torch.manual_seed(0)
    model = build_model("pspunet", base_filters=2, depth=2)
    return save_checkpoint(path, {"model": model.state_dict(), RUN_KEY: _run_info(**changes)})


def _nifti(path, data, zooms=(1.5, 1.5, 8.0), dtype=None):
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), np.diag([*zooms, 1.0]))
    img.header.set_zooms(zooms[: np.asarray(data).ndim] if np.asarray(data).ndim <= 3 else (*zooms, 1.0))
    nib.save(img, path)
    return path


def test_predict_refuses_complex_images_and_bad_spacings(tmp_path):
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt")
    image = np.random.default_rng(0).random((24, 24, 5)).astype(np.float32)
    out = tmp_path / "seg"
    ok = predict_files(ckpt, [_nifti(tmp_path / "ok.nii.gz", image)], out=out, device="cpu")
    assert np.asanyarray(nib.load(ok[0]).dataobj).shape == image.shape
    cplx = _nifti(tmp_path / "cplx.nii.gz", image + 1j * image, dtype=np.complex64)
    with pytest.raises(FileFormatError, match=r"cplx.nii.gz: holds complex voxels"):
        predict_files(ckpt, [cplx], out=out, device="cpu")
    for name, zooms in (("zero", (0.0, 1.5, 8.0)), ("nan", (1.5, 1.5, float("nan"))),
                        ("inf", (float("inf"), 1.5, 8.0))):
        path = tmp_path / f"{name}.nii"
        nib.save(nib.Nifti1Image(image, np.eye(4)), path)
        raw = bytearray(path.read_bytes())
        raw[80:92] = struct.pack("<3f", *zooms)            # pixdim[1:4] as a broken export writes it
        path.write_bytes(bytes(raw))
        with pytest.raises(FileFormatError, match=rf"{name}.nii: .*spacing.*finite"):
            predict_files(ckpt, [path], out=out, device="cpu")
    nan_image = image.copy()
    nan_image[3, 3, 2] = np.nan
    with pytest.raises(FileFormatError, match=r"nanvox.nii.gz: holds NaN or infinite intensities"):
        predict_files(ckpt, [_nifti(tmp_path / "nanvox.nii.gz", nan_image)], out=out, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["ok_seg.nii.gz"]      # nothing else written
    model = nn.Conv3d(1, 4, 1)
    for spacing in ((1.0, 1.0, 0.0), (1.0, -1.0, 1.0), (float("nan"), 1.0, 1.0), (1.0, float("inf"), 1.0)):
        with pytest.raises(ArgumentError, match=r"spacing\[\d\] must be a finite number > 0"):
            predict_volume(model, image, spacing, _run_info()["preprocessing"])
    with pytest.raises(ArgumentError, match="complex"):
        predict_volume(model, image.astype(np.complex64), (1.0, 1.0, 1.0), _run_info()["preprocessing"])


@pytest.mark.parametrize("changes, pattern", [
    ({"model.kwargs": {"base_filters": 2, "depth": 3}}, "weights do not fit the model 'pspunet'"),
    ({"model.kwargs": {"base_filters": -2}}, "'cmrlab_run.model.kwargs' does not build the model 'pspunet'"),
    ({"model.kwargs": {"no_such_arg": 1}}, "does not build the model"),
    ({"preprocessing.window": "3"}, "must be a number, got the text"),
])
def test_predict_with_checkpoints_whose_metadata_does_not_fit(tmp_path, changes, pattern):
    ckpt = _tiny_checkpoint(tmp_path / "odd.pt", **changes)
    image = _nifti(tmp_path / "img.nii.gz", np.ones((24, 24, 5), np.float32))
    with pytest.raises(FileFormatError, match=rf"odd.pt: .*{pattern}"):
        predict_files(ckpt, [image], out=tmp_path / "seg", device="cpu")
    assert not (tmp_path / "seg").exists()
    weights_bad = save_checkpoint(tmp_path / "w.pt", {"model": {"a": 1}, RUN_KEY: _run_info()})
    with pytest.raises(FileFormatError, match="w.pt: field 'model' must map parameter names to tensors"):
        predict_files(weights_bad, [image], out=tmp_path / "seg", device="cpu")


# ------------------------------------------------------------------------------------ background
def test_foreground_dice_leaves_the_background_out():
    """A hand-made 4-class prediction of 10 voxels: the background is right everywhere it should
    be, class 1 is half right, class 2 is missed, class 3 is absent from both (counts 1)."""
    target = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 2, 2]])
    pred = torch.tensor([[0, 0, 0, 0, 1, 1, 0, 0, 1, 1]])
    logits = F.one_hot(pred, 4).permute(0, 2, 1).float() * 5.0              # (1, 4, 10)
    d1 = 2 * 2 / (4 + 4)                                                    # |p∩t| = 2, |p| = 4, |t| = 4
    expected = (d1 + 0.0 + 1.0) / 3                                         # classes 1, 2, 3 only
    got = foreground_dice(logits, target)
    assert got.ndim == 0 and float(got) == pytest.approx(expected)
    background_only = F.one_hot(torch.zeros_like(target), 4).permute(0, 2, 1).float()
    assert float(foreground_dice(background_only, target)) == pytest.approx((0 + 0 + 1) / 3)  # not 1/4 + ...
    perfect = F.one_hot(target, 4).permute(0, 2, 1).float()
    assert float(foreground_dice(perfect, target)) == 1.0


class _Constant(nn.Module):
    """A "model" predicting class 1 everywhere: (B, 1, W, X, Y) → (B, 4, W, X, Y)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 4, *x.shape[2:]) + self.dummy
        logits[:, 1] = 10.0
        return logits


def test_predict_volume_labels_background_outside_the_crop():
    """The image is wider than the model's field of view (crop 16 px of 1 mm from 40 px): the
    voxels outside the crop window are background, those inside get the model's class."""
    image = np.random.default_rng(1).random((40, 40, 4)).astype(np.float32)
    pre = {"spacing": [1.0, 1.0], "size": [16, 16], "normalisation": "minmax", "window": 3, "stride": 1}
    labels, probs = predict_volume(_Constant(), image, (1.0, 1.0, 5.0), pre)
    assert labels.shape == image.shape and probs.shape == (*image.shape, 4)
    assert set(np.unique(labels)) == {0, 1}
    inside = labels[12:28, 12:28]
    assert (inside == 1).all()                                              # the centre 16 × 16
    assert (labels[:10] == 0).all() and (labels[30:] == 0).all() and (labels[:, :10] == 0).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------ a tiny run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    run = tmp_path_factory.mktemp("runs") / "tiny"
    trained = train_experiment(PSP, data_root=root, out=run, overrides=TINY, progress=False)
    return root, trained


def test_resume_cleans_partials_and_refuses_a_foreign_last_checkpoint(tiny_run, tmp_path):
    root, trained = tiny_run
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained.run_dir, run)
    # a checkpoint whose runner metadata is another model's: refused, the folder untouched
    state = load_checkpoint(run / "last.pt")
    state[RUN_KEY] = {**state[RUN_KEY], "model": {"name": "pspunet", "kwargs": {"base_filters": 3}}}
    save_checkpoint(run / "last.pt", state)
    before = _snapshot(run)
    with pytest.raises(ConfigError, match="last.pt was trained with another model"):
        train_experiment(PSP, data_root=root, out=run, overrides={**TINY, "epochs": 2}, resume=True,
                         cases=trained.cases, progress=False)
    assert _snapshot(run) == before
    state[RUN_KEY] = {"format": RUN_FORMAT, "task": "segmentation", "model": "x"}
    save_checkpoint(run / "last.pt", state)
    with pytest.raises(FileFormatError, match="last.pt: field 'cmrlab_run.experiment' must be text"):
        train_experiment(PSP, data_root=root, out=run, overrides={**TINY, "epochs": 2}, resume=True,
                         cases=trained.cases, progress=False)
    state = load_checkpoint(trained.last)
    save_checkpoint(run / "last.pt", {**state, "epoch": "one"})
    with pytest.raises(FileFormatError, match="last.pt: cannot be resumed by this trainer .*field 'epoch'"):
        train_experiment(PSP, data_root=root, out=run, overrides={**TINY, "epochs": 2}, resume=True,
                         cases=trained.cases, progress=False)
    # the real checkpoint back, with partials from a killed save: the resumed run removes them
    shutil.copy(trained.last, run / "last.pt")
    planted = [partial_name(run / "last.pt"), partial_name(run / "history.csv"), partial_name(run / "config.yaml")]
    for p in planted:
        p.write_bytes(b"half")
    resumed = train_experiment(PSP, data_root=root, out=run, overrides={**TINY, "epochs": 2}, resume=True,
                               cases=trained.cases, progress=False)
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    assert not any(p.exists() for p in planted)
    assert not [p for p in run.iterdir() if ".partial" in p.name]


def test_evaluate_refuses_odd_metadata(tiny_run, tmp_path):
    root, trained = tiny_run
    state = load_checkpoint(trained.checkpoint)
    state[RUN_KEY] = {**state[RUN_KEY], "seed": 1.5}
    odd = save_checkpoint(tmp_path / "odd.pt", state)
    with pytest.raises(FileFormatError, match="odd.pt: field 'cmrlab_run.seed' must be a whole number"):
        from cmrlab.train.segmentation import evaluate_experiment

        evaluate_experiment(PSP, odd, data_root=root, overrides=TINY, cases=trained.cases)
    assert not (tmp_path / "test_metrics.csv").exists()
