"""Timing shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def time_interleaved(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int,
                     warmup: int = 1) -> dict[str, tuple[float, float]]:
    """(best, median) wall time in seconds of each function.

    Each function is called ``warmup`` times first. Then the functions run in turn within each
    repeat, so the peer and cmrlab's code see the same machine load; ratios should use the best
    times, the least disturbed by other work on a shared machine. CUDA is synchronised around
    each call.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - t0)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}
