"""Calibration of the cine phantom's difficulty (issue 4, "Realism and difficulty").

Two measurements on fast-size synthetic cases (128² matrix, 1.8–2.4 mm pixels, 12–20 frames, the
settings of :func:`cmrlab.data.synthetic` for ``size="fast"``):

1. **Threshold baseline** on the myocardium, over mid-ventricular ED slices: Otsu's threshold on
   the slice; the blood pool is the bright connected component containing the true LV centre
   (holes filled); the myocardium is the band of the true mean wall thickness h around it
   (pixels outside the blood pool within h of it). h and the centre come from the labels, so the
   baseline is given more than a real method would know. Target: mean Dice well below 0.7.
2. **A small 2D U-Net** (:class:`cmrlab.nn.models.UNet2D` at the registry's fast width, "same"
   padding) trained from scratch on CPU on the ED and ES slices (all slices) of ``--train``
   cases and tested on ``--test`` other cases: 3D Dice per structure (LV cavity, myocardium,
   RV cavity) per case and phase, averaged. Target: the range the theses report on real data,
   LV ≈ 0.90–0.95, MYO ≈ 0.80–0.90, RV ≈ 0.80–0.90 (not 0.99).

Run: ``OMP_NUM_THREADS=1 python benchmarks/calibrate_cine.py [--quick] [--epochs 30] [--seed 0]``.
The numbers are deterministic for a seed on one machine (one thread); ``--quick`` trains for
fewer epochs (a smoke run, the U-Net numbers are then lower than the calibrated ones).
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator

import numpy as np
import torch
from scipy import ndimage
from skimage.filters import threshold_otsu

from cmrlab.nn.losses import dice_ce_loss
from cmrlab.nn.models import UNet2D
from cmrlab.nn.registry import MODELS
from cmrlab.phantoms.cine4d import ACDC_GROUPS, CineCase, cine_case

STRUCTURES = {"LV": 3, "MYO": 2, "RV": 1}


def fast_cases(n: int, seed: int) -> Iterator[CineCase]:
    """``n`` fast-size cases cycling the five groups (the acquisition of ``size="fast"`` datasets)."""
    for i in range(n):
        s = int(np.random.SeedSequence([seed, i]).generate_state(1)[0] >> 1)
        rng = np.random.default_rng([s, 1])
        yield cine_case(ACDC_GROUPS[i % len(ACDC_GROUPS)], seed=s, matrix=128,
                        spacing=float(rng.uniform(1.8, 2.4)), n_frames=int(rng.integers(12, 21)))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|) of two boolean masks (1 when both are empty)."""
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * (a & b).sum() / s)


def mid_slices(case: CineCase) -> list[int]:
    """Mid-ventricular slices: LV cavity present, in the middle third of the slices that have one."""
    zs = np.flatnonzero((case.labels[..., case.ed] == 3).any((0, 1)))
    n = len(zs)
    return [int(z) for z in zs[n // 3: max(n // 3 + 1, (2 * n) // 3)]]


def otsu_baseline(image: np.ndarray, labels: np.ndarray, roi: bool = False) -> float:
    """Myocardial Dice of the threshold baseline on one 2D slice (see the module notes).

    ``roi=False``: Otsu's threshold of the whole slice. ``roi=True`` (kinder): the threshold of a
    square around the true LV centre, of half-side twice the true epicardial radius, so that the
    dark lungs and air far from the heart do not pull it down.
    """
    lv, myo = labels == 3, labels == 2
    centre = tuple(np.round(np.argwhere(lv).mean(0)).astype(int))
    r_epi = np.sqrt((lv.sum() + myo.sum()) / np.pi)
    if roi:
        h = int(np.ceil(2 * r_epi))
        box = image[max(centre[0] - h, 0):centre[0] + h + 1, max(centre[1] - h, 0):centre[1] + h + 1]
        bright = image > threshold_otsu(box)
    else:
        bright = image > threshold_otsu(image)
    comp, _ = ndimage.label(bright)
    blood = ndimage.binary_fill_holes(comp == comp[centre]) if comp[centre] else np.zeros_like(bright)
    if not blood.any():                       # the centre is dark: take the centre pixel alone
        blood[centre] = True
    h = r_epi - np.sqrt(lv.sum() / np.pi)                                      # pixels
    band = (ndimage.distance_transform_edt(~blood) <= h) & ~blood
    return dice(band, myo)


def slices_of(case: CineCase) -> tuple[np.ndarray, np.ndarray]:
    """ED and ES slices of a case as (n, 1, H, W) float32 images (scaled by their 99th percentile)
    and (n, H, W) int64 labels."""
    imgs, labs = [], []
    for t in (case.ed, case.es):
        for z in range(case.image.shape[2]):
            img = case.image[:, :, z, t]
            imgs.append(img / max(float(np.percentile(img, 99)), 1e-6))
            labs.append(case.labels[:, :, z, t])
    return np.stack(imgs)[:, None].astype(np.float32), np.stack(labs).astype(np.int64)


def train_unet(x: np.ndarray, y: np.ndarray, epochs: int, seed: int, batch: int = 4) -> UNet2D:
    """A fast-width UNet2D trained with Dice + CE (Adam, lr 1e-3, random flips)."""
    torch.manual_seed(seed)
    net = UNet2D(in_channels=1, num_classes=4, padding="same", **MODELS["unet2d"].fast)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb, yb = xt[idx], yt[idx]
            if torch.rand((), generator=gen) < 0.5:
                xb, yb = xb.flip(-1), yb.flip(-1)
            if torch.rand((), generator=gen) < 0.5:
                xb, yb = xb.flip(-2), yb.flip(-2)
            loss = dice_ce_loss(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1:3d}  loss {total / len(xt):.4f}", flush=True)
    return net.eval()


@torch.no_grad()
def evaluate(net: UNet2D, cases: list[CineCase]) -> dict[str, list[float]]:
    """3D Dice per structure for the ED and ES volume of each case."""
    out: dict[str, list[float]] = {k: [] for k in STRUCTURES}
    for c in cases:
        x, y = slices_of(c)
        pred = net(torch.from_numpy(x)).argmax(1).numpy()
        half = len(x) // 2
        for part in (slice(0, half), slice(half, None)):        # ED volume, ES volume
            for name, v in STRUCTURES.items():
                out[name].append(dice(pred[part] == v, y[part] == v))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (smoke run)")
    parser.add_argument("--epochs", type=int, default=None, help="U-Net epochs (default 30; 6 with --quick)")
    parser.add_argument("--train", type=int, default=10, help="training cases")
    parser.add_argument("--test", type=int, default=5, help="test cases")
    parser.add_argument("--baseline-cases", type=int, default=12, help="cases for the threshold baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-unet", action="store_true", help="the threshold baseline only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = args.epochs if args.epochs is not None else (6 if args.quick else 30)
    print(f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    scores: dict[bool, list[float]] = {False: [], True: []}
    for c in fast_cases(args.baseline_cases, args.seed + 1000):
        for z in mid_slices(c)[:2]:
            for roi in (False, True):
                scores[roi].append(otsu_baseline(c.image[:, :, z, c.ed], c.labels[:, :, z, c.ed], roi))
    print("threshold baseline (Otsu, true LV centre, true mean wall thickness): myocardium Dice over "
          f"{len(scores[False])} mid-ventricular ED slices (target mean <= 0.6)")
    for roi, name in ((False, "whole slice"), (True, "heart ROI")):
        a = np.array(scores[roi])
        print(f"  Otsu of the {name:12s} mean {a.mean():.3f}  median {np.median(a):.3f}  "
              f"range {a.min():.2f}-{a.max():.2f}")
    if args.no_unet:
        return
    cases = list(fast_cases(args.train + args.test, args.seed))
    train, test = cases[:args.train], cases[args.train:]
    x, y = (np.concatenate(a) for a in zip(*(slices_of(c) for c in train)))
    print(f"data: {len(cases)} cases in {time.perf_counter() - t0:.1f} s; training on {len(x)} slices "
          f"({args.train} cases, ED+ES), {epochs} epochs")
    t1 = time.perf_counter()
    net = train_unet(x, y, epochs, args.seed)
    print(f"training {time.perf_counter() - t1:.0f} s")
    res = evaluate(net, test)
    print(f"\nU-Net2D (fast width) 3D Dice on {len(test)} test cases (ED and ES):")
    print(f"{'structure':10s}{'mean':>7s}{'sd':>7s}{'min':>7s}   target")
    targets = {"LV": "0.90-0.95", "MYO": "0.80-0.90", "RV": "0.80-0.90"}
    for name, d in res.items():
        a = np.array(d)
        print(f"{name:10s}{a.mean():7.3f}{a.std():7.3f}{a.min():7.3f}   {targets[name]}")


if __name__ == "__main__":
    main()
