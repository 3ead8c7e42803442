"""Checkpoints: atomic weights-only files, RNG states, data order, and exact resume after a kill."""
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError
from cmrlab.train.checkpoint import (
    ResumableRandomSampler,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)

# ------------------------------------------------------------------------------------ files


def test_save_load_round_trip_with_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "best": float("inf"),
             "name": "unet", "nested": [1, (2.5, None), {"k": True}], "np": np.float32(0.5)}
    path = save_checkpoint(tmp_path / "sub" / "last.pt", state)
    assert path == tmp_path / "sub" / "last.pt"
    back = torch.load(path, weights_only=True)  # loadable without load_checkpoint too
    assert torch.equal(back["model"]["w"], state["model"]["w"])
    got = load_checkpoint(path)
    assert got["epoch"] == 3 and got["best"] == float("inf") and got["name"] == "unet"
    assert got["nested"] == [1, (2.5, None), {"k": True}]
    assert got["np"] == 0.5 and type(got["np"]) is float
    assert sorted(os.listdir(path.parent)) == ["last.pt"]  # no temporary file left


def test_state_with_an_object_is_refused_and_names_the_entry(tmp_path):
    with pytest.raises(ArgumentError, match=r"state\['optimizer'\]\['fn'\] is a function"):
        save_checkpoint(tmp_path / "x.pt", {"optimizer": {"fn": lambda: 0}})
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", {"epoch": 1})

    def broken_save(obj, f):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(FileFormatError, match="last.pt"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing"])
def test_bad_checkpoint_files_raise_a_cmrlab_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(100, 100)}})
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a checkpoint\n" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    with pytest.raises(CmrlabError) as info:
        load_checkpoint(path)
    assert isinstance(info.value, FileFormatError)
    assert str(path) in str(info.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"opt": torch.optim.SGD}, path)  # a class: not allowed by weights_only
    with pytest.raises(FileFormatError, match="weights_only"):
        load_checkpoint(path)


# ------------------------------------------------------------------------------------ RNG


def _draws():
    return (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.randn(),
            torch.rand(4).tolist())


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)
    np.random.randn()  # leave a cached Gaussian in both generators
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng_state()})
    expected = _draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    assert _draws() != expected
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert _draws() == expected


# ------------------------------------------------------------------------------------ sampler


def test_sampler_order_is_fixed_by_seed_and_epoch():
    a = ResumableRandomSampler(50, seed=4)
    b = ResumableRandomSampler(list(range(50)), seed=4)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    a.set_epoch(1)
    assert list(a) != list(b)                     # another epoch, another order
    assert list(a) == a.indices(1) != a.indices(0)
    assert ResumableRandomSampler(50, seed=5).indices(0) != b.indices(0)
    # (seed, epoch) are mixed, not added: (4, 1) and (5, 0) differ
    assert ResumableRandomSampler(50, seed=5).indices(0) != a.indices(1)
    assert list(ResumableRandomSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_sampler_skips_the_first_samples_of_an_epoch():
    s = ResumableRandomSampler(30, seed=0)
    full = s.indices(2)
    s.set_epoch(2, start=12)
    assert list(s) == full[12:] and len(s) == 30
    s.load_state_dict({"seed": 0, "epoch": 2, "start": 20})
    assert list(s) == full[20:]
    assert s.state_dict() == {"seed": 0, "epoch": 2, "start": 20, "num_replicas": 1, "rank": 0}


def test_sampler_split_over_processes_like_distributed_sampler():
    from torch.utils.data import DistributedSampler

    parts = [ResumableRandomSampler(11, seed=3, num_replicas=3, rank=r) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    union = sorted(i for p in parts for i in p)
    assert set(union) == set(range(11)) and len(union) == 12  # padded by one repeat
    ours = ResumableRandomSampler(11, shuffle=False, num_replicas=3, rank=1)
    theirs = DistributedSampler(list(range(11)), num_replicas=3, rank=1, shuffle=False)
    assert list(ours) == list(theirs)
    dropped = ResumableRandomSampler(11, shuffle=False, num_replicas=3, rank=2, drop_last=True)
    assert list(dropped) == [2, 5, 8]
    with pytest.raises(ArgumentError, match="rank"):
        ResumableRandomSampler(11, num_replicas=2, rank=2)


# ------------------------------------------------------------------------------------ resume

SCRIPT = textwrap.dedent('''
    """One small training run: killed, resumed, or uninterrupted (see test_checkpoint_resume)."""
    import os
    import sys

    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from cmrlab.config import seed_everything
    from cmrlab.train import Callback, Trainer, resumable_loader

    torch.set_num_threads(1)
    ckdir, mode, accum, kill_epoch, kill_batch, out = sys.argv[1:]
    accum, kill_epoch, kill_batch = int(accum), int(kill_epoch), int(kill_batch)


    class NoisyShapes(Dataset):
        """Fixed images plus a random augmentation drawn from torch's global generator."""

        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randn(n, 1, 8, 8, generator=g)
            self.y = (self.x[:, 0, :, :4].mean((1, 2)) > self.x[:, 0, :, 4:].mean((1, 2))).long()

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            x = self.x[i] + 0.1 * torch.randn(1, 8, 8)
            if torch.rand(()) < 0.5:
                x = x.flip(-2)
            return x, self.y[i]


    class Kill(Callback):
        def on_batch_end(self, trainer, batch, logs):
            if trainer.epoch + 1 == kill_epoch and batch == kill_batch:
                os._exit(3)  # no clean-up, like a crash


    class Reseed(Callback):
        def on_fit_start(self, trainer):
            if mode == "resume-reseeded":
                seed_everything(99)  # throw away the restored generator states


    torch.manual_seed(123)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
                          nn.Linear(256, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = Trainer(
        model, nn.functional.cross_entropy, opt,
        train_loader=resumable_loader(NoisyShapes(22, 1), batch_size=4, seed=5),
        val_loader=DataLoader(NoisyShapes(8, 2), batch_size=4),
        scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
        max_epochs=3, grad_accumulation=accum, checkpoint_dir=ckdir, checkpoint_every_steps=1,
        callbacks=[Kill(), Reseed()], progress=False, device="cpu", seed=7)
    trainer.fit(resume=mode.startswith("resume"))
    torch.save({"model": model.state_dict(), "history": trainer.history,
                "global_step": trainer.global_step}, out)
''')


def _run(tmp_path, ckdir, mode, accum, kill=(0, 0), out="out.pt"):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(script), str(ckdir), mode, str(accum), str(kill[0]), str(kill[1]),
           str(tmp_path / out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted runs, one per grad_accumulation."""
    results = {}
    for accum in (1, 2):
        tmp = tmp_path_factory.mktemp(f"reference{accum}")
        proc = _run(tmp, tmp / "ck", "fresh", accum)
        assert proc.returncode == 0, proc.stderr
        results[accum] = torch.load(tmp / "out.pt", weights_only=True)
    return results


# 22 samples, batches of 4: 6 batches per epoch (the last of 2). A checkpoint follows every
# optimiser step: every batch, or with grad_accumulation=2 batches 1, 3, 5 (0-based). The kill
# callback runs before ModelCheckpoint, so the batch it kills at has no checkpoint:
# ``expected_position`` = (completed epochs, batches done in the next) of the last checkpoint.
@pytest.mark.parametrize(("accum", "kill", "expected_position"), [
    (2, (2, 4), (1, 4)),    # mid-epoch 2, one batch after the checkpoint of batch 3
    (1, (2, 0), (1, 0)),    # first batch of epoch 2: the last checkpoint is epoch 1's end
])
def test_killed_run_resumes_to_bit_identical_weights(tmp_path, references, accum, kill,
                                                      expected_position):
    ck = tmp_path / "ck"
    killed = _run(tmp_path, ck, "fresh", accum, kill)
    assert killed.returncode == 3, killed.stderr
    assert not (tmp_path / "out.pt").exists()
    last = load_checkpoint(ck / "last.pt")
    assert (last["epoch"], last["batch_in_epoch"]) == expected_position
    assert len(last["history"]) == last["epoch"]

    resumed = _run(tmp_path, ck, "resume", accum)
    assert resumed.returncode == 0, resumed.stderr
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    ref = references[accum]
    assert got["model"].keys() == ref["model"].keys()
    for name in ref["model"]:
        assert torch.equal(got["model"][name], ref["model"][name]), name
    assert got["history"] == ref["history"]  # same losses, learning rates and validation numbers
    assert got["global_step"] == ref["global_step"] == 3 * (6 if accum == 1 else 3)


def test_resume_without_the_saved_generators_does_not_match(tmp_path, references):
    """Dropout and augmentation make the generator states matter: re-seeding breaks exactness."""
    ck = tmp_path / "ck"
    assert _run(tmp_path, ck, "fresh", 1, (2, 3)).returncode == 3
    proc = _run(tmp_path, ck, "resume-reseeded", 1)
    assert proc.returncode == 0, proc.stderr
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    ref = references[1]
    assert not all(torch.equal(got["model"][k], ref["model"][k]) for k in ref["model"])
