"""DDP through torchrun on the CPU (gloo, 2 processes) equals one process on the union batches."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from cmrlab.train import ResumableRandomSampler, Trainer, load_checkpoint
from cmrlab.train.distributed import get_rank, get_world_size, init_distributed, is_distributed

N_TRAIN, N_VAL, BATCH, EPOCHS, SEED = 16, 8, 2, 2, 3

SCRIPT = textwrap.dedent('''
    import sys

    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from cmrlab.train import (CSVLogger, ResumableRandomSampler, Trainer, cleanup_distributed,
                              init_distributed, resumable_loader)

    torch.set_num_threads(1)
    out = sys.argv[1]
    info = init_distributed()
    assert info.world_size == 2 and info.backend == "gloo" and info.device.type == "cpu"

    def data(n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 4, generator=g)
        return TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long())

    torch.manual_seed(0 if info.rank == 0 else 1)  # different inits: DDP must broadcast rank 0's
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    val = data({n_val}, 2)
    trainer = Trainer(
        model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5),
        train_loader=resumable_loader(data({n_train}, 1), batch_size={batch}, seed={seed}),
        val_loader=DataLoader(val, batch_size=3, sampler=ResumableRandomSampler(val, shuffle=False)),
        metrics={{"acc": lambda o, y: (o.argmax(1) == y).float().mean()}},
        max_epochs={epochs}, device=info.device, progress=False, checkpoint_dir=out + "/ck",
        callbacks=[CSVLogger(out + "/log.csv")])
    trainer.fit()
    torch.save({{"model": model.state_dict(), "history": trainer.history}}, f"{{out}}/rank{{info.rank}}.pt")
    cleanup_distributed()
''').format(n_train=N_TRAIN, n_val=N_VAL, batch=BATCH, seed=SEED, epochs=EPOCHS)


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long())


class UnionBatches:
    """Batch ``i`` of epoch ``e`` = batch ``i`` of rank 0 followed by batch ``i`` of rank 1."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        ranks = [ResumableRandomSampler(N_TRAIN, seed=SEED, num_replicas=2, rank=r).indices(self.epoch)
                 for r in (0, 1)]
        for i in range(0, len(ranks[0]), BATCH):
            yield ranks[0][i : i + BATCH] + ranks[1][i : i + BATCH]

    def __len__(self):
        return N_TRAIN // (2 * BATCH)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    script = out / "ddp_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", str(script), str(out)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_ranks_end_identical_and_match_one_process_on_the_union_batches(ddp_run):
    r0 = torch.load(ddp_run / "rank0.pt", weights_only=True)
    r1 = torch.load(ddp_run / "rank1.pt", weights_only=True)
    for name in r0["model"]:
        assert torch.equal(r0["model"][name], r1["model"][name]), name
    assert r0["history"] == r1["history"]  # losses and metrics are summed over the ranks

    torch.manual_seed(0)  # rank 0's initial weights
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    single = Trainer(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5),
                     train_loader=DataLoader(_data(N_TRAIN, 1), batch_sampler=UnionBatches()),
                     val_loader=DataLoader(_data(N_VAL, 2), batch_size=N_VAL),
                     metrics={"acc": lambda o, y: (o.argmax(1) == y).float().mean()},
                     max_epochs=EPOCHS, device="cpu", progress=False)
    single.fit()
    for name, value in model.state_dict().items():
        assert torch.allclose(r0["model"][name], value, rtol=0, atol=1e-6), name
    for ddp_row, row in zip(r0["history"], single.history, strict=True):
        for key in ("loss", "val_loss", "val_acc"):
            assert ddp_row[key] == pytest.approx(row[key], abs=1e-6), key


def test_only_rank_zero_writes_and_checkpoints_hold_the_whole_run(ddp_run):
    assert sorted(p.name for p in (ddp_run / "ck").iterdir()) == ["best.pt", "last.pt"]
    last = load_checkpoint(ddp_run / "ck" / "last.pt")
    assert last["world_size"] == 2 and last["epoch"] == EPOCHS
    assert last["sampler"] == {"seed": SEED, "epoch": EPOCHS - 1, "start": 0, "num_replicas": 2,
                               "rank": 0}
    lines = (ddp_run / "log.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,lr,val_loss,val_acc" and len(lines) == EPOCHS + 1


def test_without_torchrun_everything_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed()
    assert (info.rank, info.world_size, info.backend, info.is_main) == (0, 1, None, True)
    assert not is_distributed() and get_rank() == 0 and get_world_size() == 1
