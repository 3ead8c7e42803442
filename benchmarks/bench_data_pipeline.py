"""Benchmark: data-loading throughput of cmrlab's window/patch pipeline vs TorchIO's ``Queue``.

Two workloads, each one epoch over the same in-memory volumes, batches collated by a
``DataLoader`` (``num_workers=0`` on both sides, so the comparison measures the pipelines and
not the process pool):

* **windows** (cardiac thesis ch. 5): 3-slice windows, stride 1, of 176×176×Z volumes with
  labels, batch 3. cmrlab: :class:`~cmrlab.data.patches.SliceWindowDataset` +
  :class:`~cmrlab.data.patches.SameShapeBatchSampler`. TorchIO: ``tio.Queue`` with a
  ``UniformSampler`` of 176×176×3 patches (the in-plane size is the whole slice, so its patches
  are windows too), ``samples_per_volume = Z - 2``, so both produce the same number of windows.
* **patches** (brain thesis): random 32³ patches of 128×128×64 two-channel volumes, half of them
  centred on a labelled voxel, 16 per volume, batch 4. cmrlab:
  :class:`~cmrlab.data.patches.RandomPatchDataset`. TorchIO: ``tio.Queue`` with a
  ``LabelSampler`` (label probabilities 0.5 / 0.5).

Prints patches per second and the ratio cmrlab / TorchIO (target ≥ 1.0, issue 7).
Run: ``python benchmarks/bench_data_pipeline.py [--repeats 5] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from torch.utils.data import DataLoader

from _timing import time_interleaved
from cmrlab.data.patches import RandomPatchDataset, SameShapeBatchSampler, SliceWindowDataset


def _cardiac_volumes(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    slices = rng.integers(8, 15, size=n)                     # 8-14 slices, as in the thesis's data
    vols = [rng.random((176, 176, int(z)), dtype=np.float32) for z in slices]
    labs = [rng.integers(0, 4, (176, 176, int(z))).astype(np.uint8) for z in slices]
    return vols, labs


def _brain_volumes(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    vols = [rng.random((2, 128, 128, 64), dtype=np.float32) for _ in range(n)]
    labs = []
    for _ in range(n):
        lab = np.zeros((128, 128, 64), np.uint8)
        lab[40:90, 30:100, 10:50] = rng.integers(1, 4, (50, 70, 40))
        labs.append(lab)
    return vols, labs


def _drain(loader) -> int:
    count = 0
    for image, _label in loader:
        count += image.shape[0]
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", type=int, default=12, help="cardiac volumes")
    parser.add_argument("--brains", type=int, default=4, help="brain volumes")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import torchio as tio

    rng = np.random.default_rng(0)
    device = torch.device("cpu")
    print(f"CPUs {os.cpu_count()}, torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"torchio {tio.__version__}")

    # --- windows ---------------------------------------------------------------------------
    vols, labs = _cardiac_volumes(args.cases, rng)
    n_windows = sum(v.shape[2] - 2 for v in vols)
    ours_ds = SliceWindowDataset(vols, labs)
    sampler = SameShapeBatchSampler(ours_ds, 3, seed=0)

    def ours_windows() -> int:
        return _drain(DataLoader(ours_ds, batch_sampler=sampler))

    subjects = [tio.Subject(image=tio.ScalarImage(tensor=torch.from_numpy(v)[None]),
                            label=tio.LabelMap(tensor=torch.from_numpy(lab.astype(np.int64))[None]))
                for v, lab in zip(vols, labs)]
    # TorchIO's Queue draws the same number of windows from every volume; give it the mean count
    per_volume = round(n_windows / len(vols))

    def tio_windows() -> int:
        queue = tio.Queue(tio.SubjectsDataset(subjects), max_length=4 * per_volume, samples_per_volume=per_volume,
                          sampler=tio.UniformSampler((176, 176, 3)), num_workers=0, shuffle_subjects=True,
                          shuffle_patches=True, verbose=False)
        count = 0
        for batch in DataLoader(queue, batch_size=3, num_workers=0):
            count += batch["image"][tio.DATA].shape[0]
        return count

    assert ours_windows() == n_windows
    t = time_interleaved({"cmrlab": ours_windows, "torchio": tio_windows}, device, args.repeats)
    tio_count = per_volume * len(vols)
    ours_rate, tio_rate = n_windows / t["cmrlab"][0], tio_count / t["torchio"][0]
    print(f"windows  176×176×3, {args.cases} volumes, {n_windows} windows/epoch (TorchIO {tio_count})")
    print(f"  cmrlab  {ours_rate:9.0f} windows/s   (best {t['cmrlab'][0] * 1e3:.1f} ms/epoch)")
    print(f"  torchio {tio_rate:9.0f} windows/s   (best {t['torchio'][0] * 1e3:.1f} ms/epoch)")
    print(f"  ratio cmrlab/torchio = {ours_rate / tio_rate:.2f}  (target >= 1.0)")

    # --- 3D patches ------------------------------------------------------------------------
    bvols, blabs = _brain_volumes(args.brains, rng)
    per = 16
    patch_ds = RandomPatchDataset(bvols, blabs, (32, 32, 32), samples_per_volume=per, foreground_ratio=0.5, seed=0)

    def ours_patches() -> int:
        return _drain(DataLoader(patch_ds, batch_size=4, shuffle=True))

    bsubjects = [tio.Subject(image=tio.ScalarImage(tensor=torch.from_numpy(v)),
                             label=tio.LabelMap(tensor=torch.from_numpy(lab.astype(np.int64))[None]))
                 for v, lab in zip(bvols, blabs)]
    # LabelSampler needs a binary map for {0, 1} probabilities: foreground = any label
    bsubjects_binary = [tio.Subject(image=s["image"], label=tio.LabelMap(tensor=(s["label"].data > 0).long()))
                        for s in bsubjects]
    label_sampler = tio.LabelSampler((32, 32, 32), label_name="label", label_probabilities={0: 0.5, 1: 0.5})

    def tio_patches() -> int:
        queue = tio.Queue(tio.SubjectsDataset(bsubjects_binary), max_length=4 * per, samples_per_volume=per,
                          sampler=label_sampler, num_workers=0, verbose=False)
        count = 0
        for batch in DataLoader(queue, batch_size=4, num_workers=0):
            count += batch["image"][tio.DATA].shape[0]
        return count

    total = per * len(bvols)
    assert ours_patches() == total == tio_patches()
    t = time_interleaved({"cmrlab": ours_patches, "torchio": tio_patches}, device, args.repeats)
    ours_rate, tio_rate = total / t["cmrlab"][0], total / t["torchio"][0]
    print(f"patches  32³ of 2×128×128×64, {args.brains} volumes × {per}, foreground ratio 0.5")
    print(f"  cmrlab  {ours_rate:9.0f} patches/s   (best {t['cmrlab'][0] * 1e3:.1f} ms/epoch)")
    print(f"  torchio {tio_rate:9.0f} patches/s   (best {t['torchio'][0] * 1e3:.1f} ms/epoch)")
    print(f"  ratio cmrlab/torchio = {ours_rate / tio_rate:.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
