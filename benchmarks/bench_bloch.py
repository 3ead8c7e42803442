"""Benchmark: Bloch simulation of 10⁶ isochromats × 100 time steps.

cmrlab: ``cmrlab.physics.bloch.simulate`` (a 90° pulse, then 100 steps of exact precession and
relaxation, each isochromat at its own off-resonance, recording the net magnetisation per step).

Peers doing the same work in bare torch, in the same process on the same data:

* ``bare matrices``: precompute each isochromat's 3×3 matrix A and vector B once, then
  ``M = A @ M + B`` per step (the textbook matrix formulation), with the same net recording;
* ``bare fused``: the same update written out on the three components (what cmrlab does inside).

Prints throughput (isochromat-steps per second) and the ratios cmrlab / peer: the overhead of the
API. Run: ``python benchmarks/bench_bloch.py [--device cpu|cuda] [--spins 1000000] [--steps 100]``
(default: the CPU, then CUDA too if available; ``--threads 1`` for steady CPU timings on a
shared machine).
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

import torch

from _timing import time_interleaved
from cmrlab.physics.bloch import rf_rotation_matrix, simulate

T1, T2, DT = 1000.0, 100.0, 1.0  # ms


def _time(fns: dict[str, Callable[[], torch.Tensor]], device: torch.device, repeats: int) -> dict[str, float]:
    """Best wall time (s) of each function (see ``_timing.time_interleaved``), printed with the median."""
    results = time_interleaved(fns, device, repeats)
    for name, (best, median) in results.items():
        print(f"    {name:15s} best {best:8.4f} s   median {median:8.4f} s")
    return {name: best for name, (best, _) in results.items()}


def run(device: torch.device, n_spins: int, n_steps: int, repeats: int) -> None:
    dtype = torch.float32
    gen = torch.Generator(device="cpu").manual_seed(0)
    df = (torch.randn(n_spins, generator=gen) * 50.0).to(device=device, dtype=dtype)  # Hz
    t1 = torch.tensor(T1, device=device, dtype=dtype)
    t2 = torch.tensor(T2, device=device, dtype=dtype)

    def cmrlab_api() -> torch.Tensor:
        return simulate(t1, t2, duration=n_steps * DT, flip=90.0, df=df, n_steps=n_steps, net=True).M

    # the same physics as bare torch matrices: M <- A M + B with per-isochromat A
    phi = 2 * math.pi * df * DT / 1000.0
    e1, e2 = math.exp(-DT / T1), math.exp(-DT / T2)
    c, s = torch.cos(phi), torch.sin(phi)
    zero = torch.zeros_like(c)
    A = torch.stack([torch.stack([e2 * c, e2 * s, zero], -1), torch.stack([-e2 * s, e2 * c, zero], -1),
                     torch.stack([zero, zero, torch.full_like(c, e1)], -1)], -2)  # (N, 3, 3)
    B = torch.tensor([0.0, 0.0, 1 - e1], device=device, dtype=dtype)
    R = torch.as_tensor(rf_rotation_matrix(90.0), device=device, dtype=dtype)

    def bare_matrices() -> torch.Tensor:
        M = torch.zeros(n_spins, 3, device=device, dtype=dtype)
        M[:, 2] = 1.0
        rec = [M.mean(0)]
        M = M @ R.T
        rec.append(M.mean(0))
        for _ in range(n_steps):
            M = (A @ M.unsqueeze(-1)).squeeze(-1) + B
            rec.append(M.mean(0))
        return torch.stack(rec)

    def bare_fused() -> torch.Tensor:
        mx = torch.zeros(n_spins, device=device, dtype=dtype)
        my = torch.ones(n_spins, device=device, dtype=dtype)  # after the 90° pulse
        mz = torch.zeros(n_spins, device=device, dtype=dtype)
        ce, se = e2 * c, e2 * s
        rec = []
        for _ in range(n_steps):
            mx, my, mz = mx * ce + my * se, my * ce - mx * se, mz * e1 + (1 - e1)
            rec.append(torch.stack([mx.mean(), my.mean(), mz.mean()]))
        return torch.stack(rec)

    ref = cmrlab_api()
    assert torch.allclose(ref, bare_matrices(), atol=1e-4), "cmrlab and the matrix peer disagree"
    assert torch.allclose(ref[2:], bare_fused(), atol=1e-4), "cmrlab and the fused peer disagree"

    best = _time({"cmrlab": cmrlab_api, "bare matrices": bare_matrices, "bare fused": bare_fused},
                 device, repeats)
    work = n_spins * n_steps
    for name, t in best.items():
        print(f"    {name:15s} {work / t / 1e6:8.1f} M isochromat-steps/s")
    print(f"    overhead ratio cmrlab / bare matrices = {best['cmrlab'] / best['bare matrices']:.2f}")
    print(f"    overhead ratio cmrlab / bare fused    = {best['cmrlab'] / best['bare fused']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, then cuda if available)")
    parser.add_argument("--spins", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 gives steadier timings on a busy machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads")
    for name in devices:
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"{args.spins} isochromats x {args.steps} steps, float32, on {label}:")
        run(device, args.spins, args.steps, args.repeats)


if __name__ == "__main__":
    main()
