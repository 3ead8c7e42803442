"""Benchmark: one multi-modal brain case (:func:`cmrlab.phantoms.brain3d.brain_case`) and one LGE stack.

cmrlab: a 2 mm brain case (five modalities, bias, noise) — plain, with a tumour, infant — and a
10-slice LGE stack (:func:`cmrlab.phantoms.lge3d.lge_volume`). The peer is the bare resampling of
the three MNI152 probability maps from 1 mm to 2 mm (``scipy.ndimage.zoom``, trilinear): the
least work any template-based phantom does. The ratio is the cost of the per-subject
deformation, tumour, physics, bias field and noise. The one-off loading of the templates
(nilearn's import and the NIfTI files; cached per process) is timed separately. Target: a 2 mm
case in ≤ 2 s on one CPU core.
Run: ``python benchmarks/bench_brain_phantom.py [--repeats 5] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
from scipy import ndimage

from _timing import time_interleaved
from cmrlab.phantoms.brain3d import brain_case, mni152_tissue_maps
from cmrlab.phantoms.lge3d import lge_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--full", action="store_true", help="also time one 1 mm case")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    probs, _ = mni152_tissue_maps(1)
    mni152_tissue_maps(2)
    load = time.perf_counter() - t0
    maps = probs.numpy()

    def peer() -> object:
        return [ndimage.zoom(m, 0.5, order=1) for m in maps]

    results = time_interleaved({
        "resample 3 maps 1 -> 2 mm (peer)": peer,
        "brain_case 2 mm": lambda: brain_case(seed=1),
        "brain_case 2 mm, tumour": lambda: brain_case(seed=1, tumour=True),
        "brain_case 2 mm, infant": lambda: brain_case(seed=1, infant=True),
        "lge_volume 10 x 96 x 96": lambda: lge_volume(seed=1),
    }, torch.device("cpu"), args.repeats, warmup=1)
    print(f"cpus={os.cpu_count()}  torch threads={torch.get_num_threads()}  repeats={args.repeats}")
    print(f"template loading (once per process, includes importing nilearn): {load:.2f} s")
    t_peer = results["resample 3 maps 1 -> 2 mm (peer)"][0]
    print(f"{'':34s} {'best':>8s} {'median':>9s}   ratio to the peer (best times)")
    for name, (best, med) in results.items():
        print(f"{name:34s} {best:6.3f} s {med:7.3f} s   {best / t_peer:5.2f}x")
    if args.full:
        t0 = time.perf_counter()
        brain_case(seed=1, spacing=1.0)
        print(f"brain_case 1 mm (one run): {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
