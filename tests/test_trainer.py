"""The Trainer: loops, batch conventions, accumulation, devices, schedulers and callbacks."""
import csv
import math
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cmrlab.errors import ArgumentError, ConfigError, FileFormatError
from cmrlab.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    MonitorCallback,
    TensorBoardCallback,
    Trainer,
    batch_to,
    load_checkpoint,
    resumable_loader,
    split_batch,
)

torch.set_num_threads(1)


def _data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = (x @ torch.tensor([1.0, -2.0, 0.5]) > 0).long()
    return x, y


def _linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(3, 2)


def accuracy(out, y):
    return (out.argmax(1) == y).float().mean()


def _trainer(model=None, *, lr=0.5, loader=None, epochs=3, **kwargs):
    model = _linear() if model is None else model
    x, y = _data()
    kwargs.setdefault("val_loader", DataLoader(TensorDataset(*_data(10, 1)), batch_size=4))
    kwargs.setdefault("progress", False)
    return Trainer(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=lr),
                   train_loader=loader if loader is not None else resumable_loader(TensorDataset(x, y), 5),
                   max_epochs=epochs, device="cpu", **kwargs)


# ------------------------------------------------------------------------------------ loops


def test_fit_learns_and_reports_one_row_per_epoch():
    t = _trainer(metrics={"acc": accuracy}, epochs=6)
    history = t.fit()
    assert history is t.history and [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert list(history[0]) == ["epoch", "loss", "lr", "val_loss", "val_acc"]
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert history[-1]["val_acc"] >= 0.9
    assert (t.epoch, t.batch_in_epoch, t.global_step) == (6, 0, 6 * 5)  # 24 samples / 5 → 5 batches


def test_validation_numbers_are_sample_weighted_means():
    """val_loss over batches of 4, 4, 2 equals the cross-entropy of all 10 samples at once."""
    t = _trainer(metrics={"acc": accuracy, "bias": lambda out, y: 7.0})
    x, y = _data(10, 1)
    with torch.no_grad():
        out = t.model(x)
    got = t.validate()
    assert got.keys() == {"val_loss", "val_acc", "val_bias"}
    assert got["val_loss"] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-6)
    assert got["val_acc"] == pytest.approx(float(accuracy(out, y)), rel=1e-6)
    assert got["val_bias"] == pytest.approx(7.0)
    test = t.test(DataLoader(TensorDataset(x, y), batch_size=3))
    assert test["test_loss"] == pytest.approx(got["val_loss"], rel=1e-6)
    assert t.model.training  # the mode is given back


def test_dict_and_tuple_batches_train_identically():
    x, y = _data()

    class DictSet(Dataset):
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return {"image": x[i], "label": y[i], "case_id": f"case{i:03d}"}

    a = _trainer(_linear(), loader=resumable_loader(TensorDataset(x, y), 5, seed=3))
    b = _trainer(_linear(), loader=resumable_loader(DictSet(), 5, seed=3))
    a.fit(), b.fit()
    assert torch.equal(a.model.weight, b.model.weight)
    assert a.history == b.history
    pred = b.predict(DataLoader([{"image": x[i]} for i in range(7)], batch_size=3))
    assert pred.shape == (7, 2)
    assert torch.allclose(pred, b.model(x[:7]).detach())


def test_batch_to_moves_nested_tensors_and_keeps_the_rest():
    Pair = namedtuple("Pair", "a b")
    batch = {"image": torch.ones(2), "meta": [torch.zeros(1), ("id", 3)], "p": Pair(torch.ones(1), 2)}
    moved = batch_to(batch, "meta")
    assert moved["image"].device.type == "meta" and moved["meta"][0].device.type == "meta"
    assert moved["meta"][1] == ("id", 3)
    assert isinstance(moved["p"], Pair) and moved["p"].a.device.type == "meta" and moved["p"].b == 2
    assert batch["image"].device.type == "cpu"  # the input is not changed


def test_split_batch_conventions_and_errors():
    x, y = torch.ones(2, 3), torch.zeros(2)
    assert split_batch((x, y, "extra"))[1] is y
    assert split_batch({"image": x, "label": y})[0] is x
    assert split_batch(x, need_target=False) == (x, None)
    with pytest.raises(ArgumentError, match=r"'image' and 'label'.*\['img', 'label'\]"):
        split_batch({"img": x, "label": y})
    with pytest.raises(ArgumentError, match="sequence"):
        split_batch(x)


# ------------------------------------------------------------------------------------ accumulation


class _Batches:
    """A batch sampler with fixed batches of indices."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


@pytest.mark.parametrize("n", [12, 15])
def test_gradient_accumulation_equals_a_bigger_batch(n):
    """k=2 batches of 3 step like one batch of 6; a last lone batch of 3 steps by itself."""
    x, y = _data(n)
    data = TensorDataset(x, y)
    small = _trainer(_linear(), loader=DataLoader(data, batch_size=3), grad_accumulation=2, epochs=2,
                     val_loader=None)
    sizes = [list(range(i, min(i + 6, n))) for i in range(0, n, 6)]
    big = _trainer(_linear(), loader=DataLoader(data, batch_sampler=_Batches(sizes)), epochs=2,
                   val_loader=None)
    small.fit(), big.fit()
    assert small.global_step == big.global_step == 2 * math.ceil(n / 6)
    assert torch.allclose(small.model.weight, big.model.weight, atol=1e-6)
    assert torch.allclose(small.model.bias, big.model.bias, atol=1e-6)
    assert small.history[0]["loss"] == pytest.approx(big.history[0]["loss"], rel=1e-6)


# ------------------------------------------------------------------------------------ devices


def test_amp_and_channels_last_are_cuda_only():
    t = _trainer()
    assert (t.amp, t.channels_last, t.device.type) == (False, False, "cpu")
    with pytest.raises(ArgumentError, match=r"amp=True needs a CUDA device.*cpu"):
        _trainer(amp=True)
    with pytest.raises(ArgumentError, match="channels_last=True needs a CUDA device"):
        _trainer(channels_last=True)
    with pytest.raises(ArgumentError, match="amp must be one of 'auto', True, False, got 'yes'"):
        _trainer(amp="yes")


def test_deterministic_mode_holds_during_fit_only():
    seen = []

    class Probe(Callback):
        def on_epoch_start(self, trainer, epoch):
            seen.append((torch.are_deterministic_algorithms_enabled(),
                         torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark))

    before = torch.are_deterministic_algorithms_enabled()
    _trainer(deterministic=True, callbacks=[Probe()], epochs=1).fit()
    assert seen == [(True, True, False)]
    assert torch.are_deterministic_algorithms_enabled() == before


def test_same_seed_same_run_and_fit_continues():
    a, b = _trainer(seed=4), _trainer(seed=4)
    a.fit(), b.fit()
    assert torch.equal(a.model.weight, b.model.weight)
    a.max_epochs = 5
    a.fit()  # continues from epoch 3, without re-seeding
    assert [r["epoch"] for r in a.history] == [1, 2, 3, 4, 5] and a.global_step == 25


def test_no_cuda_calls_in_the_training_code():
    src = Path(__file__).resolve().parents[1] / "cmrlab" / "train"
    for name in ("trainer.py", "callbacks.py", "checkpoint.py", "distributed.py"):
        assert ".cuda()" not in (src / name).read_text(), name


def test_a_unet_trains_with_a_dice_loss():
    from cmrlab.nn.losses import DiceLoss
    from cmrlab.nn.models import UNet2D

    g = torch.Generator().manual_seed(0)
    y = torch.zeros(8, 16, 16, dtype=torch.long)
    for i in range(8):
        r, c = torch.randint(3, 9, (2,), generator=g).tolist()
        y[i, r : r + 6, c : c + 6] = 1
    x = y[:, None].float() + 0.3 * torch.randn(8, 1, 16, 16, generator=g)
    torch.manual_seed(0)
    model = UNet2D(1, 2, base_filters=4, depth=2, padding="same")
    t = Trainer(model, DiceLoss(), torch.optim.Adam(model.parameters(), 1e-2),
                train_loader=resumable_loader(TensorDataset(x, y), 4), max_epochs=15,
                progress=False, device="cpu")
    t.fit()
    assert t.history[-1]["loss"] < 0.5 * t.history[0]["loss"]
    assert t.predict(DataLoader(TensorDataset(x), batch_size=4)).shape == (8, 2, 16, 16)


# ------------------------------------------------------------------------------------ schedulers


def test_scheduler_per_epoch_and_per_step():
    t = _trainer(lr=0.1)
    t.scheduler = torch.optim.lr_scheduler.StepLR(t.optimizer, step_size=1, gamma=0.5)
    t.fit()
    assert [r["lr"] for r in t.history] == pytest.approx([0.1, 0.05, 0.025])
    s = _trainer(lr=0.1, scheduler_interval="step", epochs=2)
    s.scheduler = torch.optim.lr_scheduler.StepLR(s.optimizer, step_size=1, gamma=0.9)
    s.fit()
    assert [r["lr"] for r in s.history] == pytest.approx([0.1, 0.1 * 0.9**5])
    p = _trainer(lr=0.1, epochs=4)
    p.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(p.optimizer, patience=0, factor=0.5,
                                                             threshold=10.0)  # never "improves"
    p.fit()
    assert [r["lr"] for r in p.history] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


# ------------------------------------------------------------------------------------ callbacks


def test_callbacks_are_called_in_order():
    events = []

    class Record(Callback):
        def on_fit_start(self, trainer):
            events.append("fit_start")

        def on_epoch_start(self, trainer, epoch):
            events.append(f"epoch_start {epoch}")

        def on_batch_end(self, trainer, batch, logs):
            assert logs["loss"].ndim == 0 and not logs["loss"].requires_grad
            events.append(f"batch {batch}")

        def on_epoch_end(self, trainer, epoch, logs):
            events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_fit_end(self, trainer):
            events.append("fit_end")

    _trainer(callbacks=[Record()], epochs=2).fit()
    batches = [f"batch {i}" for i in range(5)]
    ends = "['loss', 'lr', 'val_loss']"
    assert events == ["fit_start", "epoch_start 1", *batches, f"epoch_end 1 {ends}",
                      "epoch_start 2", *batches, f"epoch_end 2 {ends}", "fit_end"]
    with pytest.raises(ArgumentError, match="hooks"):
        _trainer(callbacks=[object()])


def test_csv_logger_writes_the_history(tmp_path):
    t = _trainer(metrics={"acc": accuracy}, callbacks=[CSVLogger(tmp_path / "log" / "metrics.csv")])
    t.fit()
    with open(tmp_path / "log" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "loss", "lr", "val_loss", "val_acc"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["val_loss"]) for r in rows] == [h["val_loss"] for h in t.history]  # exact
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == ["metrics.csv"]


def _scripted(values):
    """A metric that reports values[epoch index] whatever the model does."""
    box = {}

    def metric(out, y):
        return values[box["trainer"].epoch]

    return box, metric


def test_early_stopping_stops_after_patience_epochs():
    box, metric = _scripted([5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 2.0])
    stop = EarlyStopping("val_score", patience=3)
    t = _trainer(metrics={"score": metric}, callbacks=[stop], epochs=7)
    box["trainer"] = t
    t.fit()
    assert len(t.history) == 5 and stop.stopped_epoch == 5
    assert (stop.best, stop.best_epoch, stop.wait) == (4.0, 2, 3)
    with pytest.raises(ArgumentError, match="monitor='val_dice' is not among"):
        _trainer(callbacks=[EarlyStopping("val_dice")], epochs=1).fit()


def test_model_checkpoint_keeps_last_best_and_epochs(tmp_path):
    box, metric = _scripted([0.5, 0.9, 0.7])
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snapshots[epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    ck = ModelCheckpoint(tmp_path, monitor="val_dice", mode="max", keep_epochs=True)
    t = _trainer(metrics={"dice": metric}, callbacks=[ck, Snapshot()])
    box["trainer"] = t
    assert t.callbacks[-1] is ck  # checkpoints run after the other callbacks
    t.fit()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.pt", "epoch-0001.pt", "epoch-0002.pt", "epoch-0003.pt", "last.pt"]
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == 2 and last["epoch"] == 3 and (ck.best, ck.best_epoch) == (0.9, 2)
    assert torch.equal(best["model"]["weight"], snapshots[2]["weight"])
    assert torch.equal(last["model"]["weight"], snapshots[3]["weight"])
    assert last["callbacks"][-1] == {"class": "ModelCheckpoint", "state": {"best": 0.9, "best_epoch": 2}}
    fresh = _linear(seed=9)
    fresh.load_state_dict(best["model"])
    assert torch.equal(fresh.weight, snapshots[2]["weight"])


def test_checkpoint_dir_resume_and_errors(tmp_path):
    t = _trainer(checkpoint_dir=tmp_path, epochs=2)
    t.fit(resume=True)  # nothing to resume yet: starts from scratch
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    u = _trainer(_linear(seed=5), checkpoint_dir=tmp_path, epochs=3)
    u.fit(resume=True)  # continues epoch 3 from t's checkpoint
    assert [r["epoch"] for r in u.history] == [1, 2, 3] and u.history[:2] == t.history
    with pytest.raises(FileFormatError, match="nope.pt"):
        _trainer().fit(resume=tmp_path / "nope.pt")
    other = nn.Linear(3, 5)  # another architecture
    wrong = Trainer(other, F.cross_entropy, torch.optim.SGD(other.parameters(), lr=0.1),
                    train_loader=DataLoader(TensorDataset(*_data()), batch_size=4), max_epochs=4,
                    device="cpu", progress=False)
    with pytest.raises(FileFormatError, match=r"last.pt: cannot be resumed by this trainer"):
        wrong.fit(resume=tmp_path / "last.pt")
    with pytest.raises(ArgumentError, match="checkpoint_dir"):
        _trainer().fit(resume=True)
    with pytest.raises(ArgumentError, match="checkpoint_every_steps needs checkpoint_dir"):
        _trainer(checkpoint_every_steps=2)


def test_progress_bar_runs(capsys):
    t = _trainer(loader=DataLoader(TensorDataset(*_data()), batch_size=2), progress=True, epochs=1)
    t.fit()
    captured = capsys.readouterr()  # stderr in JupyterLab, stdout in the static site build
    assert "epoch 1/1" in captured.err + captured.out


def test_monitor_callback_records_the_curves():
    mon = MonitorCallback(live=False, title="linear")
    _trainer(callbacks=[mon], metrics={"acc": accuracy}).fit()
    assert set(mon.monitor.history) == {"loss", "val_loss", "val_acc"}  # lr is left out
    assert [e for e, _ in mon.monitor.history["val_acc"]] == [1, 2, 3]
    assert mon.monitor.figure() is not None


def test_tensorboard_is_optional(tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install tensorboard"):
            TensorBoardCallback(tmp_path)
    else:
        tb = TensorBoardCallback(tmp_path)
        _trainer(callbacks=[tb], epochs=1).fit()
        assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())


def test_mixed_precision_and_channels_last_code_paths():
    """Forced on for a CPU trainer (bfloat16 autocast and NHWC work on the CPU too) to run the
    code that CUDA uses: the model turns channels-last at the first batch, outputs are float32."""
    from cmrlab.nn.models import UNet2D

    torch.manual_seed(0)
    model = UNet2D(1, 2, base_filters=4, depth=2, padding="same")
    x = torch.randn(4, 1, 16, 16)
    y = (x[:, 0] > 0).long()
    t = Trainer(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-2),
                train_loader=DataLoader(TensorDataset(x, y), batch_size=2), max_epochs=2,
                device="cpu", progress=False)
    t.amp, t.amp_dtype, t.channels_last = True, torch.bfloat16, True
    weight = model.down[1][0].weight  # (8, 4, 3, 3)
    assert not weight.is_contiguous(memory_format=torch.channels_last)
    t.fit()
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(t.history[-1]["loss"])
    out = t.predict(DataLoader(TensorDataset(x), batch_size=4))
    assert out.dtype == torch.float32 and out.shape == (4, 2, 16, 16)
