"""Benchmark: in-plane resampling of a whole ACDC-like cine (:func:`cmrlab.data.preprocess.resample_inplane`).

cmrlab resamples with SimpleITK's ``ResampleImageFilter`` (one call per array: the slices and
frames become the third axis of one 3D image). Peers, on the same array and the same output grid:

* ``scipy``: ``scipy.ndimage.map_coordinates`` (order 1 for images, 0 for labels, edges
  replicated) at the same sample coordinates, one slice at a time;
* ``numpy``: the rule written out with ``np.take`` (separable bilinear; cmrlab's own code before
  it called SimpleITK, kept in ``tests/test_preprocess.py`` as the reference).

Images (float32, bilinear) and labels (uint8, nearest) are timed separately, and every result is
checked to match cmrlab's first. Prints best times and the ratio cmrlab / peer (≤ 1 is faster).
Run: ``python benchmarks/bench_preprocess.py [--repeats 5] [--shape 216 256 10 30]``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import time_interleaved  # noqa: E402

from cmrlab.data.preprocess import resample_inplane, resampled_size  # noqa: E402


def _coords(shape: tuple[int, ...], spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    size = [resampled_size(shape[a], spacing[a], 1.0) for a in (0, 1)]
    return tuple(np.arange(size[a], dtype=np.float64) / spacing[a] for a in (0, 1))  # type: ignore[return-value]


def scipy_resample(array: np.ndarray, spacing: tuple[float, float], order: int) -> np.ndarray:
    rows, cols = _coords(array.shape, spacing)
    grid = np.stack(np.meshgrid(np.clip(rows, 0, array.shape[0] - 1), np.clip(cols, 0, array.shape[1] - 1),
                                indexing="ij"))
    planes = array.reshape(*array.shape[:2], -1)
    out = np.empty((rows.size, cols.size, planes.shape[2]), array.dtype if order == 0 else np.float32)
    for k in range(planes.shape[2]):
        out[..., k] = ndimage.map_coordinates(planes[..., k], grid, order=order, mode="nearest")
    return out.reshape(rows.size, cols.size, *array.shape[2:])


def numpy_resample(array: np.ndarray, spacing: tuple[float, float], order: int) -> np.ndarray:
    out = array
    for axis, coords in enumerate(_coords(array.shape, spacing)):
        n = array.shape[axis]
        c = np.clip(coords, 0.0, n - 1.0)
        if order == 0:
            out = np.take(out, np.minimum(np.floor(c + 0.5).astype(np.intp), n - 1), axis=axis)
            continue
        low = np.minimum(np.floor(c).astype(np.intp), n - 1)
        high = np.minimum(low + 1, n - 1)
        w = (c - low).reshape([-1 if a == axis else 1 for a in range(array.ndim)]).astype(np.float32)
        lo, hi = np.take(out, low, axis=axis), np.take(out, high, axis=axis)
        out = lo + w * (hi - lo)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shape", type=int, nargs=4, default=(216, 256, 10, 30), metavar=("X", "Y", "Z", "T"))
    parser.add_argument("--spacing", type=float, default=1.46, help="in-plane spacing, mm (resampled to 1 mm)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = tuple(args.shape)
    image = rng.random(shape, dtype=np.float32)
    labels = rng.integers(0, 4, shape).astype(np.uint8)
    spacing = (args.spacing, args.spacing)
    print(f"cine {shape} at {args.spacing} mm → 1 mm; {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}")
    cpu = torch.device("cpu")
    for kind, array, order, name in (("image, bilinear", image, 1, "linear"), ("labels, nearest", labels, 0, "nearest")):
        ours = resample_inplane(array, spacing, 1.0, order=name)
        for peer in (scipy_resample, numpy_resample):
            other = peer(array, spacing, order)
            if order == 0:
                assert np.array_equal(ours, other), f"{peer.__name__} disagrees on labels"
            else:
                np.testing.assert_allclose(ours, other, atol=1e-5, err_msg=f"{peer.__name__} disagrees")
        times = time_interleaved({
            "cmrlab (SimpleITK)": lambda a=array, n=name: resample_inplane(a, spacing, 1.0, order=n),
            "scipy map_coordinates": lambda a=array, o=order: scipy_resample(a, spacing, o),
            "numpy np.take": lambda a=array, o=order: numpy_resample(a, spacing, o),
        }, cpu, args.repeats)
        ours_t = times["cmrlab (SimpleITK)"][0]
        print(f"\n{kind}")
        for label, (best, median) in times.items():
            print(f"  {label:24s} best {best * 1000:8.1f} ms  median {median * 1000:8.1f} ms  "
                  f"cmrlab / this = {ours_t / best:5.2f}")


if __name__ == "__main__":
    main()
