"""Windows of adjacent slices, their reassembly, batching, paired augmentation and 3D patches.

::

    from cmrlab.data.patches import slice_windows, assemble_windows, SliceWindowDataset
    windows, index = slice_windows(volume)            # (Z - 2, 3, X, Y) and (Z - 2, 3)
    probs = model(torch.as_tensor(windows)[:, None]).softmax(1)     # (N, C, 3, X, Y)
    per_slice = assemble_windows(probs, volume.shape[-1])           # (C, X, Y, Z)

**Windows** (cardiac thesis ch. 5, L3828-3834): the networks see 3 consecutive short-axis
slices, 176×176×3, taken with stride 1, so a stack of :math:`Z` slices gives :math:`Z - 2`
windows (2045 windows from the thesis's 260 training volumes). With a stride :math:`t > 1` a
last window ending at the last slice is added when the stride does not reach it, so that every
slice is covered.

**Reassembly** (our choice): the thesis reconstructs the volume "by concatenating the stack
predictions" (Fig 5.7) and does not say how the overlapping windows are merged. We average
them: slice :math:`z` gets :math:`\\bar p_z = \\frac{1}{|W_z|} \\sum_{w \\in W_z} p_{w,z}`, the
mean of the softmax probabilities of the windows :math:`W_z` that contain it (3 windows for an
inner slice with stride 1, fewer at the ends: 1 for the first and last slice, 2 for the second
and second-to-last). Averaging probabilities, not labels, keeps each window's confidence.

**Batching**: :class:`SliceWindowDataset` makes windows of a list of volumes a torch
``Dataset``; :class:`SameShapeBatchSampler` batches items of equal shape (volumes with different
slice or frame counts cannot share a batch without padding), shuffled within shape buckets,
deterministic for a seed and an epoch.

**Augmentation**: :class:`PairedAugment` applies the thesis's random in-plane transform
(rotation ±30°, zoom 1 ± 0.1, shear ±20°; L3834-3852), the same for the image, its labels
(nearest neighbour) and every slice of a window; :func:`augmentation_plan` draws which windows
are augmented offline, each at most 4 times, as the thesis did (6295 extra from 2045).

**3D patches** (brain thesis, patch training): :func:`random_patches` crops random sub-volumes,
a given fraction of them centred on a labelled voxel; :class:`RandomPatchDataset` serves them as
a deterministic ``Dataset``.
"""
from __future__ import annotations

import math
import random as _random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cmrlab.data.augment import RandomAugment
from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError

__all__ = [
    "PairedAugment",
    "RandomPatchDataset",
    "SameShapeBatchSampler",
    "SliceWindowDataset",
    "assemble_windows",
    "augmentation_plan",
    "random_patches",
    "slice_windows",
    "window_starts",
]


def window_starts(n_slices: int, size: int = 3, stride: int = 1) -> list[int]:
    """First slice of every window: ``0, stride, 2·stride, …`` while the window fits, plus
    ``n_slices - size`` if the stride does not land there (so the last slice is covered)."""
    n_slices = check_int("n_slices", n_slices, 1)
    size = check_int("size", size, 1)
    stride = check_int("stride", stride, 1)
    if n_slices < size:
        raise ArgumentError(f"a volume of {n_slices} slices is too thin for windows of size {size}")
    starts = list(range(0, n_slices - size + 1, stride))
    if starts[-1] != n_slices - size:
        starts.append(n_slices - size)
    return starts


def _volume_3d(name: str, volume: object) -> np.ndarray | torch.Tensor:
    if not isinstance(volume, (np.ndarray, torch.Tensor)):
        raise ArgumentError(f"{name} must be a numpy array or torch tensor (X, Y, Z), got {type(volume).__name__}")
    if volume.ndim != 3 or min(volume.shape) == 0:
        raise ArgumentError(f"{name} must be (X, Y, Z) with the slices last, got shape {tuple(volume.shape)}")
    return volume


def _is_integer(array: np.ndarray | torch.Tensor) -> bool:
    if isinstance(array, torch.Tensor):
        return not (array.is_floating_point() or array.is_complex())
    return np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_


def slice_windows(volume: np.ndarray | torch.Tensor, size: int = 3, stride: int = 1,
                  ) -> tuple[np.ndarray | torch.Tensor, np.ndarray]:
    """Windows of ``size`` adjacent slices of ``volume`` (X, Y, Z).

    Returns ``windows`` (N, size, X, Y), slices first as the models read them (same type and dtype
    as ``volume``; a copy), and ``index`` (N, size), the slice number of every window slice:
    ``windows[n, k] == volume[:, :, index[n, k]]``. See :func:`window_starts` for the starts.
    """
    volume = _volume_3d("volume", volume)
    starts = window_starts(volume.shape[2], size, stride)
    index = np.asarray(starts)[:, None] + np.arange(size)[None, :]
    if isinstance(volume, torch.Tensor):
        moved = volume.permute(2, 0, 1)                                   # (Z, X, Y)
        return moved[torch.as_tensor(index, device=volume.device)], index
    return np.ascontiguousarray(np.moveaxis(volume, 2, 0)[index]), index


def assemble_windows(preds: np.ndarray | torch.Tensor, n_slices: int, index: np.ndarray | None = None, *,
                     size: int | None = None, stride: int = 1, return_counts: bool = False,
                     ) -> Any:
    """Per-slice values from overlapping window predictions, by averaging (see the module docstring).

    ``preds`` is (N, C, size, X, Y), the model's layout, or (N, size, X, Y) without classes;
    ``index`` the (N, size) slice numbers from :func:`slice_windows` (default: the windows of
    ``n_slices`` with ``size`` = ``preds``' window size and ``stride``). Returns (C, X, Y, Z) or
    (X, Y, Z), floating point, same type and device as ``preds``: slice :math:`z` is the mean of
    the window slices that are slice :math:`z`. With ``return_counts`` also the (Z,) number of
    windows covering each slice. A slice no window covers is an error.
    """
    if not isinstance(preds, (np.ndarray, torch.Tensor)):
        raise ArgumentError(f"preds must be a numpy array or torch tensor, got {type(preds).__name__}")
    if preds.ndim not in (4, 5):
        raise ArgumentError(f"preds must be (N, C, size, X, Y) or (N, size, X, Y), got shape {tuple(preds.shape)}")
    as_numpy = isinstance(preds, np.ndarray)
    x = torch.from_numpy(np.asarray(preds)) if as_numpy else preds
    no_channels = x.ndim == 4
    if no_channels:
        x = x[:, None]
    if not x.is_floating_point():
        x = x.float()
    n, c, k, h, w = x.shape
    n_slices = check_int("n_slices", n_slices, 1)
    if index is None:
        index = np.asarray(window_starts(n_slices, size or k, stride))[:, None] + np.arange(size or k)[None, :]
    index = np.asarray(index)
    if index.shape != (n, k):
        raise ArgumentError(f"index must be ({n}, {k}) to match preds {tuple(preds.shape)}, got {index.shape}")
    if index.min() < 0 or index.max() >= n_slices:
        raise ArgumentError(f"index holds slice numbers outside 0..{n_slices - 1}")
    flat_index = torch.as_tensor(index.reshape(-1), device=x.device)
    values = x.permute(0, 2, 1, 3, 4).reshape(n * k, c, h, w)            # one row per window slice
    total = torch.zeros(n_slices, c, h, w, dtype=x.dtype, device=x.device).index_add_(0, flat_index, values)
    counts = torch.bincount(flat_index, minlength=n_slices)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ArgumentError(f"slices {missing} are in no window; cannot assemble {n_slices} slices")
    mean = (total / counts.to(x.dtype)[:, None, None, None]).permute(1, 2, 3, 0)   # (C, X, Y, Z)
    if no_channels:
        mean = mean[0]
    if as_numpy:
        mean, counts = mean.numpy(), counts.numpy()
    return (mean, counts) if return_counts else mean


class SliceWindowDataset(Dataset):
    """Every ``size``-slice window of a list of volumes, as a torch ``Dataset``.

    ``volumes`` are (X, Y, Z) arrays or tensors (float images, already preprocessed), ``labels``
    the matching integer label maps or None. Item ``i`` is ``(image, label)``: ``image``
    (1, size, X, Y) float32 (the channel axis the models expect), ``label`` (size, X, Y) int64,
    or ``image`` alone without labels. ``transform(image, label)`` (e.g. a :class:`PairedAugment`
    call) is applied per item. :attr:`index` lists ``(volume, first slice)`` per item and
    :attr:`item_shapes` the shapes, for :class:`SameShapeBatchSampler`.
    """

    def __init__(self, volumes: Sequence[np.ndarray | torch.Tensor],
                 labels: Sequence[np.ndarray | torch.Tensor] | None = None, *, size: int = 3,
                 stride: int = 1, transform=None) -> None:
        if len(volumes) == 0:
            raise ArgumentError("volumes is empty")
        if labels is not None and len(labels) != len(volumes):
            raise ArgumentError(f"labels has {len(labels)} entries for {len(volumes)} volumes")
        self.volumes = [torch.as_tensor(_volume_3d(f"volumes[{i}]", v), dtype=torch.float32)
                        for i, v in enumerate(volumes)]
        self.labels = None
        if labels is not None:
            self.labels = []
            for i, (v, lab) in enumerate(zip(self.volumes, labels)):
                lab = _volume_3d(f"labels[{i}]", lab)
                if tuple(lab.shape) != tuple(v.shape):
                    raise ArgumentError(f"labels[{i}] has shape {tuple(lab.shape)}, volumes[{i}] {tuple(v.shape)}")
                if not _is_integer(lab):
                    raise ArgumentError(f"labels[{i}] must hold integers, got {lab.dtype}")
                self.labels.append(torch.as_tensor(np.asarray(lab) if isinstance(lab, np.ndarray) else lab,
                                                   dtype=torch.int64))
        self.size = check_int("size", size, 1)
        self.stride = check_int("stride", stride, 1)
        self.transform = transform
        # slices first, contiguous: a window is then a view, and batching copies each voxel once
        self._slices = [v.permute(2, 0, 1).contiguous() for v in self.volumes]
        self._label_slices = None if self.labels is None else [lab.permute(2, 0, 1).contiguous()
                                                                for lab in self.labels]
        self.index: list[tuple[int, int]] = [
            (v, s) for v, vol in enumerate(self.volumes) for s in window_starts(vol.shape[2], size, stride)]

    def __len__(self) -> int:
        return len(self.index)

    @property
    def item_shapes(self) -> list[tuple[int, ...]]:
        """Shape of every item's image, ``(1, size, X, Y)``."""
        return [(1, self.size, *self.volumes[v].shape[:2]) for v, _ in self.index]

    def __getitem__(self, i: int):
        v, s = self.index[i]
        image = self._slices[v][s:s + self.size][None]
        if self._label_slices is None:
            return image if self.transform is None else self.transform(image, None)[0]
        label = self._label_slices[v][s:s + self.size]
        if self.transform is not None:
            image, label = self.transform(image, label)
        return image, label


class SameShapeBatchSampler(Sampler[list[int]]):
    """Batches of item indices whose items all have the same shape.

    ``shapes[i]`` is the shape of item ``i`` (or pass a dataset with ``item_shapes``). Items are
    grouped in buckets by shape; each epoch, every bucket is shuffled and cut into batches of
    ``batch_size`` (the last one smaller unless ``drop_last``), and the order of all the batches
    is shuffled. The shuffles use ``random.Random(seed + epoch)`` only, so they are identical on
    every run and machine; call :meth:`set_epoch` at the start of each epoch (as with
    ``DistributedSampler``). ``shuffle=False`` keeps the item order within buckets and the
    buckets in order of first appearance.
    """

    def __init__(self, shapes: Sequence[Sequence[int]] | Dataset, batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0) -> None:
        if hasattr(shapes, "item_shapes"):
            shapes = shapes.item_shapes  # type: ignore[union-attr]
        self.shapes = [tuple(int(s) for s in shape) for shape in shapes]  # type: ignore[union-attr]
        if not self.shapes:
            raise ArgumentError("shapes is empty: nothing to batch")
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = check_int("seed", seed, 0)
        self.epoch = 0
        buckets: dict[tuple[int, ...], list[int]] = {}
        for i, shape in enumerate(self.shapes):
            buckets.setdefault(shape, []).append(i)
        self.buckets = buckets

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle :meth:`__iter__` yields."""
        self.epoch = check_int("epoch", epoch, 0)

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch, in order."""
        rng = _random.Random(self.seed + self.epoch)
        out: list[list[int]] = []
        for items in self.buckets.values():
            items = list(items)
            if self.shuffle:
                rng.shuffle(items)
            for k in range(0, len(items), self.batch_size):
                batch = items[k:k + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    out.append(batch)
        if self.shuffle:
            rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        if self.drop_last:
            return sum(len(b) // self.batch_size for b in self.buckets.values())
        return sum(math.ceil(len(b) / self.batch_size) for b in self.buckets.values())


class PairedAugment:
    """The thesis's window augmentation: one random in-plane transform for image, labels and slices.

    Rotation uniform in ±``rotation`` degrees, zoom factor uniform in ``1 ± zoom`` about the image
    centre, shear uniform in ±``shear`` degrees (thesis: 30, 0.1, 20; L3834-3852). The output
    keeps the input's size (the thesis crops enlarged results back to 176×176), images are
    interpolated bilinearly and labels by nearest neighbour (outside: background). It is
    :class:`cmrlab.data.augment.RandomAugment` with ``spatial_dims=3``.

    Call on a batch ``images`` (N, C, size, X, Y) float, ``labels`` (N, size, X, Y) integer or
    None, or on one item ``(C, size, X, Y)``/``(size, X, Y)`` as a dataset transform. A
    ``generator`` makes it reproducible; without one, the one given at construction (``seed``)
    is used.
    """

    def __init__(self, rotation: float = 30.0, zoom: float = 0.1, shear: float = 20.0, *,
                 seed: int | None = None) -> None:
        self.augment = RandomAugment(rotation=rotation, scale=zoom, shear=shear, spatial_dims=3)
        self.generator = None if seed is None else torch.Generator().manual_seed(check_int("seed", seed, 0))

    def __repr__(self) -> str:
        a = self.augment
        return f"PairedAugment(rotation={a.rotation}, zoom={a.scale}, shear={a.shear})"

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not isinstance(images, torch.Tensor):
            raise ArgumentError(f"images must be a torch tensor, got {type(images).__name__}")
        single = images.ndim == 4
        if single:
            images = images[None]
            labels = None if labels is None else labels[None]
        out, lab = self.augment(images, labels, generator=generator or self.generator)
        if single:
            out, lab = out[0], None if lab is None else lab[0]
        return out, lab


def augmentation_plan(n_items: int, n_extra: int, max_uses: int = 4, seed: int = 0) -> np.ndarray:
    """Which items to augment offline: ``n_extra`` item numbers, none more than ``max_uses`` times.

    The thesis made 6295 extra training windows from its 2045 by picking windows at random, each
    at most 4 times (L3834-3852). Drawn without replacement from ``max_uses`` copies of every
    item, so the result is uniform over such plans; sorted. Deterministic for a ``seed``.
    """
    n_items = check_int("n_items", n_items, 1)
    n_extra = check_int("n_extra", n_extra, 0)
    max_uses = check_int("max_uses", max_uses, 1)
    if n_extra > n_items * max_uses:
        raise ArgumentError(f"n_extra={n_extra} exceeds n_items × max_uses = {n_items * max_uses}")
    pool = np.repeat(np.arange(n_items), max_uses)
    return np.sort(np.random.default_rng(seed).choice(pool, size=n_extra, replace=False))


def _patch_size(patch_size: object, ndim: int) -> tuple[int, ...]:
    try:
        size = tuple(patch_size)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentError(f"patch_size must be {ndim} integers, got {patch_size!r}") from None
    if len(size) != ndim:
        raise ArgumentError(f"patch_size must have {ndim} values (one per axis of labels), got {patch_size!r}")
    return tuple(check_int("patch_size", s, 1) for s in size)


def random_patches(volume: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, patch_size: Sequence[int],
                   n: int, foreground_ratio: float = 0.5, *, rng: np.random.Generator | int | None = None,
                   ) -> tuple[Any, Any, np.ndarray]:
    """``n`` random sub-volumes of ``volume`` and ``labels``.

    ``labels`` is (X, Y, Z) (any number of axes); ``volume`` has the same shape or an extra
    leading channel axis (C, X, Y, Z), e.g. T1 and T2. With probability ``foreground_ratio`` a
    patch is centred on a voxel drawn uniformly among the labelled ones (``labels > 0``);
    otherwise its position is uniform over all positions where it fits. Patches never leave the
    volume (centres near the border are shifted in). Returns ``(patches, label_patches,
    starts)``: (n, [C,] *patch_size) and (n, *patch_size) of the inputs' types, and (n, ndim)
    first voxels. ``rng`` a seed or ``numpy.random.Generator`` makes it reproducible.

    The brain thesis samples uniformly and rejects patches with no label (L3233-3237);
    ``foreground_ratio`` is the usual, cheaper way to get the same effect of balancing
    tissue and background.
    """
    if not isinstance(volume, (np.ndarray, torch.Tensor)) or not isinstance(labels, (np.ndarray, torch.Tensor)):
        raise ArgumentError("volume and labels must be numpy arrays or torch tensors")
    spatial = tuple(labels.shape)
    if tuple(volume.shape) not in (spatial, tuple(volume.shape[:1]) + spatial) or volume.ndim not in (
            len(spatial), len(spatial) + 1):
        raise ArgumentError(f"volume must have the labels' shape {spatial} or (C, *{spatial}), "
                            f"got {tuple(volume.shape)}")
    size = _patch_size(patch_size, len(spatial))
    if any(p > s for p, s in zip(size, spatial)):
        raise ArgumentError(f"patch_size {size} is larger than the volume {spatial}")
    n = check_int("n", n, 1)
    if isinstance(foreground_ratio, bool) or not isinstance(foreground_ratio, (int, float)) or not (
            0 <= foreground_ratio <= 1):
        raise ArgumentError(f"foreground_ratio must be a number in [0, 1], got {foreground_ratio!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    high = np.asarray(spatial) - np.asarray(size)                        # last valid start per axis
    starts = np.stack([gen.integers(0, h + 1, size=n) for h in high], axis=1)
    use_fg = gen.random(n) < foreground_ratio
    if use_fg.any():
        lab = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
        fg = np.flatnonzero(lab.reshape(-1) > 0)
        if fg.size:
            centres = np.stack(np.unravel_index(fg[gen.integers(0, fg.size, size=int(use_fg.sum()))], spatial), 1)
            starts[use_fg] = np.clip(centres - np.asarray(size) // 2, 0, high)
    channel = volume.ndim == len(spatial) + 1
    slicers = [tuple(slice(int(s), int(s) + p) for s, p in zip(start, size)) for start in starts]
    stack = torch.stack if isinstance(volume, torch.Tensor) else np.stack
    patches = stack([volume[(slice(None), *sl) if channel else sl] for sl in slicers])
    stack = torch.stack if isinstance(labels, torch.Tensor) else np.stack
    label_patches = stack([labels[sl] for sl in slicers])
    return patches, label_patches, starts


class RandomPatchDataset(Dataset):
    """``samples_per_volume`` random patches of every volume per epoch, as a map-style ``Dataset``.

    Item ``i`` is patch ``i % samples_per_volume`` of volume ``i // samples_per_volume``, drawn by
    :func:`random_patches` with a generator seeded from ``(seed, epoch, i)``: the same item of
    the same epoch is the same patch on every run (resumable), another epoch gives new patches
    (:meth:`set_epoch`). Returns ``(image, label)`` tensors: (C, *patch_size) float32 and
    (*patch_size) int64 (C = 1 when volumes have no channel axis).
    """

    def __init__(self, volumes: Sequence[np.ndarray | torch.Tensor], labels: Sequence[np.ndarray | torch.Tensor],
                 patch_size: Sequence[int], samples_per_volume: int = 1, foreground_ratio: float = 0.5, *,
                 seed: int = 0) -> None:
        if len(volumes) == 0 or len(volumes) != len(labels):
            raise ArgumentError(f"need as many label maps as volumes (≥ 1), got {len(volumes)} and {len(labels)}")
        self.labels = [torch.as_tensor(np.asarray(lab) if isinstance(lab, np.ndarray) else lab, dtype=torch.int64)
                       for lab in labels]
        self.volumes = []
        for i, (v, lab) in enumerate(zip(volumes, self.labels)):
            v = torch.as_tensor(v, dtype=torch.float32)
            self.volumes.append(v[None] if v.ndim == lab.ndim else v)
        self.patch_size = tuple(patch_size)
        for v, lab in zip(self.volumes, self.labels):      # checks every shape once, here
            random_patches(v, lab, self.patch_size, 1, foreground_ratio, rng=0)
        self.samples_per_volume = check_int("samples_per_volume", samples_per_volume, 1)
        self.foreground_ratio = foreground_ratio
        self.seed = check_int("seed", seed, 0)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        return len(self.volumes) * self.samples_per_volume

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        v = i // self.samples_per_volume
        rng = np.random.default_rng([self.seed, self.epoch, i])
        image, label, _ = random_patches(self.volumes[v], self.labels[v], self.patch_size, 1,
                                         self.foreground_ratio, rng=rng)
        return image[0], label[0]
