"""How fast does the volume viewer answer a slider move? cmrlab vs the naive matplotlib redraw.

cmrlab: ``VolumeViewer`` with the live widget, moving the slice slider: numpy window/level, label
overlay blending and a PNG for the ``ipywidgets.Image``.
Peer: what a notebook would do without it: a new matplotlib figure with ``imshow`` of the slice
and a masked label overlay, saved to PNG (the usual ``interact`` + ``plt.imshow`` viewer).

Prints milliseconds per slider move for both and the ratio cmrlab / peer (target ≤ 0.5, and
< 50 ms per move for a 256×256 slice).
"""
from __future__ import annotations

import io
import os
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cmrlab.viz import VolumeViewer  # noqa: E402


def volume(n: int = 256, depth: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.arange(depth), np.arange(n), np.arange(n), indexing="ij")
    r = np.hypot(x - n / 2, y - n / 2)
    image = (1000 * np.exp(-r / n) + 50 * rng.standard_normal((depth, n, n))).transpose(2, 1, 0)
    labels = ((r < n / 6).astype(np.int16) + (r < n / 10)).transpose(2, 1, 0)
    return image.astype(np.float32), labels


def naive_redraw(image, labels, k):
    fig = Figure(figsize=(5, 5), dpi=72)
    ax = fig.subplots()
    ax.imshow(image[:, :, k].T, cmap="gray", origin="lower")
    ax.imshow(np.ma.masked_equal(labels[:, :, k].T, 0), cmap="tab10", alpha=0.4, origin="lower",
              vmin=0, vmax=9)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    image, labels = volume()
    viewer = VolumeViewer(image, labels, label_names={1: "outer", 2: "inner"})
    _ = viewer.widget  # build the live widget once
    depth = image.shape[2]

    def cmrlab_moves():
        for k in range(depth):
            viewer.slice_index = k

    def naive_moves():
        for k in range(depth):
            naive_redraw(image, labels, k)

    ours = best_of(cmrlab_moves) / depth
    peer = best_of(naive_moves) / depth
    print(f"machine: {os.cpu_count()} CPUs, matplotlib {matplotlib.__version__}")
    print(f"slice {image.shape[0]}x{image.shape[1]}, label overlay, PNG for the widget")
    print(f"cmrlab VolumeViewer slider move : {ours * 1e3:7.2f} ms")
    print(f"naive matplotlib redraw (peer)  : {peer * 1e3:7.2f} ms")
    print(f"ratio cmrlab / peer             : {ours / peer:7.3f}  (target <= 0.5)")


if __name__ == "__main__":
    main()
