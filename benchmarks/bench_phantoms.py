"""Benchmark: the phantoms' speed and the cost of realism (issue 4).

Cardiac: one ACDC-like patient (10 slices × 30 frames, k-space simulated) through
:func:`cmrlab.phantoms.cine4d.cine_case`; the peer is the same label volumes without the physics
(the same sampled patient and geometry, labels drawn at the voxel centres, no images). The target
is ≤ 1 s per patient on one CPU core; the ratio is "the cost of realism".
Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_phantoms.py [--repeats 5] [--matrix 224]``.
Sections: ``--section cardiac`` (more sections may be added to :func:`main`).
"""
from __future__ import annotations

import argparse
import os

import torch

from _timing import time_interleaved
from cmrlab.phantoms import cine4d


def cardiac(repeats: int, matrix: int) -> None:
    kwargs = dict(n_slices=10, n_frames=30, matrix=matrix, spacing=1.5)

    def full() -> object:
        return cine4d.cine_case("NOR", seed=1, **kwargs)

    def labels_only() -> object:
        p = cine4d._sample_params("NOR", 1, 10, 30, matrix, 1.5, None, None)
        p["oversample"] = 2
        return cine4d._label_volume(p, cine4d._setup(p))

    t = time_interleaved({"physics": full, "labels only": labels_only}, torch.device("cpu"), repeats)
    (best, med), (lbest, lmed) = t["physics"], t["labels only"]
    print(f"cardiac cine, 10 slices x 30 frames, {matrix}x{matrix} at 1.5 mm, oversample 2")
    print(f"{'':24s}{'best s':>9s}{'median s':>10s}{'patients/s':>12s}")
    print(f"{'cine_case (physics)':24s}{best:9.3f}{med:10.3f}{1 / best:12.2f}")
    print(f"{'labels only':24s}{lbest:9.3f}{lmed:10.3f}{1 / lbest:12.2f}")
    print(f"cost of realism (physics / labels only, best times): {best / lbest:.1f}x; target <= 1 s per patient")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["all", "cardiac"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--matrix", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    if args.section in ("all", "cardiac"):
        cardiac(args.repeats, args.matrix)


if __name__ == "__main__":
    main()
