"""Benchmark: training throughput of :class:`cmrlab.train.Trainer` vs a bare PyTorch loop.

Both train the same small 2D U-Net (:class:`cmrlab.nn.models.UNet2D`, 1 input channel, 4 classes,
``padding="same"``, depth 4, base width 8 by default: the ``fast`` width) with Adam and
cross-entropy, on the same random 64×64 images and label maps, batch 8, one epoch per timed
call. The two models start from the same weights. Peer, the loop every tutorial writes::

    for x, y in loader:                       # DataLoader(shuffle=True)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

cmrlab: ``Trainer.fit()`` for one more epoch (``max_epochs += 1``), with a
:func:`~cmrlab.train.resumable_loader`, no validation, no progress bar unless ``--progress``;
mixed precision and channels-last are off so that both do the same arithmetic (``--amp`` turns
them on for the Trainer on CUDA, to see what they bring). The Trainer's extra work per batch:
moving nested batches, the running loss sum, the callback calls and the bookkeeping that makes
checkpoints resumable.

Overhead ratio = Trainer's best epoch time / the bare loop's best; target ≤ 1.05. The two run
interleaved in one process (``_timing.time_interleaved``).

Run: ``python benchmarks/bench_train.py [--threads 1] [--width 8] [--batches 16] [--batch-size 8]
[--repeats 5] [--device cpu|cuda] [--progress] [--amp]``.
"""
from __future__ import annotations

import argparse
import copy
import os

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from _timing import time_interleaved
from cmrlab.config import select_device
from cmrlab.nn.models import UNet2D
from cmrlab.train import Trainer, resumable_loader


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--width", type=int, default=8, help="U-Net base width")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batches", type=int, default=16, help="batches per epoch")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--progress", action="store_true", help="show the Trainer's tqdm bar")
    parser.add_argument("--amp", action="store_true", help="Trainer: AMP + channels-last (CUDA)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    n = args.batches * args.batch_size
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 1, args.size, args.size, generator=g)
    labels = torch.randint(0, 4, (n, args.size, args.size), generator=g)
    data = TensorDataset(images, labels)

    torch.manual_seed(0)
    bare_model = UNet2D(1, 4, base_filters=args.width, depth=4, padding="same").to(device)
    ours_model = copy.deepcopy(bare_model)
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=1e-3)
    ours_opt = torch.optim.Adam(ours_model.parameters(), lr=1e-3)
    bare_loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)

    def bare_epoch() -> None:
        bare_model.train()
        for x, y in bare_loader:
            x, y = x.to(device), y.to(device)
            bare_opt.zero_grad()
            loss = F.cross_entropy(bare_model(x), y)
            loss.backward()
            bare_opt.step()

    trainer = Trainer(ours_model, F.cross_entropy, ours_opt,
                      train_loader=resumable_loader(data, args.batch_size, seed=0),
                      device=device, max_epochs=0, progress=args.progress,
                      amp="auto" if args.amp else False,
                      channels_last="auto" if args.amp else False)

    def trainer_epoch() -> None:
        trainer.max_epochs += 1
        trainer.fit()

    times = time_interleaved({"bare loop": bare_epoch, "Trainer": trainer_epoch}, device,
                             repeats=args.repeats, warmup=1)
    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, device {device}, "
          f"torch {torch.__version__}")
    print(f"UNet2D width {args.width}, depth 4, {args.size}×{args.size}, batch {args.batch_size}, "
          f"{args.batches} batches per epoch, Adam, cross-entropy, {args.repeats} repeats")
    print(f"{'':12s} {'best s/epoch':>13s} {'median':>9s} {'samples/s':>10s}")
    for name, (best, median) in times.items():
        print(f"{name:12s} {best:13.4f} {median:9.4f} {n / best:10.1f}")
    ratio = times["Trainer"][0] / times["bare loop"][0]
    median_ratio = times["Trainer"][1] / times["bare loop"][1]
    print(f"overhead ratio (Trainer / bare, best times): {ratio:.3f}  (medians: {median_ratio:.3f}; "
          "target <= 1.05)")
    return {"ratio": ratio, "median_ratio": median_ratio}


if __name__ == "__main__":
    main()
