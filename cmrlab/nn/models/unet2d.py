"""The 2D U-Net of Ronneberger et al. (2015) and its overlap-tile inference.

Source: brain thesis (``brainthesis``) §3.5 (L2351–2437, Figs 41–42), after
Ronneberger, Fischer & Brox, "U-Net: convolutional networks for biomedical image segmentation",
MICCAI 2015 (bibliography key ``ronneberger2015unet``); the DLMI 2021 and Zabihollahy lectures
(``dlmi2021fundamentals``, ``zabihollahy2021dlmethods``) teach the same network.

The network (input layout ``(N, C, H, W)``: one 2D slice per sample; a 3D volume is segmented
slice by slice, the thesis's "slice-wise" use):

* **contracting path**, ``depth`` levels: two 3×3 convolutions, each followed by a ReLU, then a
  2×2 max-pool with stride 2; the number of channels doubles at each level
  (64, 128, 256, 512 and 1024 at the bottom for the paper);
* **expansive path**: a 2×2 transposed convolution with stride 2 that halves the channels, the
  concatenation with the (centre-cropped) encoder map of the same level, two 3×3 convolutions
  with ReLU;
* a final 1×1 convolution to ``num_classes`` logits (no softmax: pair it with a loss that takes
  logits).

With ``padding="valid"`` (the paper) every 3×3 convolution loses one pixel on each side, so the
output is smaller than the input: 572 × 572 → 388 × 388, a border of 92 pixels on each side. Only
some input sizes work (each map must be even before a pooling): 572 is one of them, and in
general the valid sizes are ``n = 2^d·(b + 4) + 4·(2^d − 1)`` for a bottom size ``b`` large
enough for a positive output (``b ≥ 4`` when ``d ≥ 2``; for ``d = 4``: 188, 204, …, 572, …),
giving ``o = 2^d·b − 4·(2^d − 1)``. :meth:`UNet2D.output_size`
and :meth:`UNet2D.input_size` do this arithmetic. With ``padding="same"`` the output has the
input's size, which must be a multiple of ``2^depth``.

Parameter count (weights and biases) of the paper network, 1 input channel and 2 classes (the
paper's two-class softmax): **31 030 658**; with a single output channel (a sigmoid head) it is
31 030 593. Ronneberger et al. print no count; the padding mode does not change it. Each extra
input channel adds 576 (3×3×64 weights of the first layer).

Design choices the source leaves open, marked [choice]:

* [choice] biases in every convolution and transposed convolution (Caffe's default; the paper
  used Caffe); no batch normalisation (the paper has none);
* [choice] initial weights drawn from a Gaussian with standard deviation ``sqrt(2/N)``, ``N`` the
  number of inputs of one unit (the paper's rule, i.e. He initialisation), biases zero;
* [choice] the paper's "drop-out layers at the end of the contracting path" become one optional
  ``nn.Dropout(dropout)`` after the bottom block; ``dropout=0.0`` (the default) leaves it out, so
  the default network is deterministic;
* [choice] the skip is concatenated before the upsampled map (``[skip, up]``), as in the paper's
  figure; the order changes no count.

:func:`overlap_tile_predict` is the paper's overlap-tile strategy (Fig. 41 of the thesis):
mirror-pad the image, predict tiles, keep each tile's centre, stitch.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import check_dropout

__all__ = ["UNet2D", "mirror_pad", "overlap_tile_predict"]


def _pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints as a checked ``(rows, columns)`` pair."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ArgumentError(f"{name} must be an integer or a pair of integers, got {value!r}")
        return check_int(name, value[0], minimum), check_int(name, value[1], minimum)
    v = check_int(name, value, minimum)
    return v, v


def _double_conv(in_channels: int, out_channels: int, padding: int) -> nn.Sequential:
    """Two 3×3 convolutions, each followed by a ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=padding),
        nn.ReLU(inplace=True),
    )


def _centre_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The central ``size`` (rows, columns) window of a (N, C, H, W) tensor."""
    top = (x.shape[-2] - size[0]) // 2
    left = (x.shape[-1] - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


class UNet2D(nn.Module):
    """2D U-Net (Ronneberger et al. 2015): see the module docstring for the architecture.

    Args:
        in_channels: channels of the input image (1 for one MRI contrast).
        num_classes: output channels (logits), one per class, background included.
        base_filters: channels of the first level; level ``l`` has ``base_filters·2^l``
            (64 → 1024 for the paper; use e.g. 8 or 16 in the ``fast`` profile).
        depth: number of poolings (4 in the paper).
        padding: ``"valid"`` (the paper: no padding, the output is smaller than the input) or
            ``"same"`` (zero padding of 1: the output has the input's size).
        dropout: probability of the dropout after the bottom block (0 leaves it out).

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` each a valid size
    (:meth:`output_size` says which); output ``(N, num_classes, H', W')`` logits.

    Attributes:
        size_factor: ``2^depth``, the total down-sampling; tiles of :func:`overlap_tile_predict`
            start at multiples of it.
        border: pixels lost on each side (``6·2^depth − 4`` for ``"valid"``, 92 for the
            paper; 0 for ``"same"``).
        context: pixels of context a tile needs on each side for :func:`overlap_tile_predict`
            to reproduce the whole-image prediction exactly: ``border`` for ``"valid"``;
            ``6·2^depth`` for ``"same"`` (96 for depth 4: there a 16-aligned block of outputs
            depends on inputs up to 94 pixels beyond it, measured with gradients; rounded up to
            a multiple of 16 so that the tiles keep the pooling grid; the tests check the
            exactness for depth 2).

    >>> net = UNet2D(base_filters=4)
    >>> net.output_size(572), net.input_size(388), net.border, net.context
    (388, 572, 92, 92)
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_filters: int = 64,
        depth: int = 4,
        padding: str = "valid",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.base_filters = check_int("base_filters", base_filters, 1)
        self.depth = check_int("depth", depth, 1)
        if padding not in ("valid", "same"):
            raise ArgumentError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        dropout = check_dropout(dropout)

        pad = 0 if padding == "valid" else 1
        widths = [self.base_filters * 2**level for level in range(self.depth + 1)]
        self.down = nn.ModuleList()
        channels = self.in_channels
        for width in widths[:-1]:
            self.down.append(_double_conv(channels, width, pad))
            channels = width
        self.bottom = _double_conv(widths[-2], widths[-1], pad)
        self.dropout = nn.Dropout(float(dropout)) if dropout > 0 else nn.Identity()
        self.up = nn.ModuleList()
        self.decode = nn.ModuleList()
        for level in reversed(range(self.depth)):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.decode.append(_double_conv(2 * widths[level], widths[level], pad))
        self.head = nn.Conv2d(widths[0], self.num_classes, 1)

        self.size_factor = 2**self.depth
        self.border = 6 * self.size_factor - 4 if padding == "valid" else 0
        self.context = self.border if padding == "valid" else 6 * self.size_factor
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialisation (Gaussian, std ``sqrt(2/N)``, ``N`` inputs per unit), zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * math.prod(module.kernel_size)
            elif isinstance(module, nn.ConvTranspose2d):
                # kernel 2, stride 2: each output pixel gets one kernel tap per input channel
                fan_in = module.in_channels
            else:
                continue
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_in))
            nn.init.zeros_(module.bias)

    # ----------------------------------------------------------------------------- geometry

    def _output_or_none(self, size: int) -> int | None:
        """Output size along one axis, or None if ``size`` is not a valid input size."""
        n = size
        if self.padding == "same":
            ok = n % self.size_factor == 0
            return n if ok else None
        for _ in range(self.depth):
            n -= 4
            if n <= 0 or n % 2:
                return None
            n //= 2
        n -= 4  # bottom block
        if n <= 0:
            return None
        for _ in range(self.depth):
            n = 2 * n - 4
            if n <= 0:
                return None
        return n

    def output_size(self, input_size: int) -> int:
        """Output size along one axis for an input of ``input_size`` pixels.

        ``"valid"``: each level subtracts 4 (two 3×3 convolutions), then halves; the bottom
        subtracts 4; each up level doubles, then subtracts 4. ``"same"``: the size itself.
        Raises :class:`~cmrlab.errors.ArgumentError` for a size the network cannot take, and
        names the nearest sizes it can.
        """
        size = check_int("input_size", input_size, 1)
        out = self._output_or_none(size)
        if out is None:
            raise ArgumentError(
                f"input_size {size} does not fit this U-Net ({self._rule()}); "
                f"nearest valid sizes: {self._nearest_valid(size)}"
            )
        return out

    def input_size(self, output_size: int) -> int:
        """The input size along one axis that gives ``output_size`` outputs (inverse of
        :meth:`output_size`): ``n = o + 2·border`` for ``"valid"``, ``o`` for ``"same"``.
        Raises :class:`~cmrlab.errors.ArgumentError` if no input gives that output."""
        out = check_int("output_size", output_size, 1)
        n = out + 2 * self.border
        if self._output_or_none(n) != out:
            valid_outputs = sorted(
                {o for m in self._nearest_valid(n) if (o := self._output_or_none(m)) is not None}
            )
            raise ArgumentError(
                f"no input size gives output_size {out} ({self._rule()}); "
                f"nearest output sizes: {valid_outputs}"
            )
        return n

    def _rule(self) -> str:
        f = self.size_factor
        if self.padding == "same":
            return f"padding='same' needs a multiple of {f}"
        return (
            f"padding='valid' needs n ≡ {(4 * (f - 1)) % f} (mod {f}) and n >= "
            f"{f * 8 + 4 * (f - 1)}"
        )

    def _nearest_valid(self, size: int) -> list[int]:
        """The valid input sizes just below and above ``size`` (at most two)."""
        below = next((n for n in range(size - 1, 0, -1) if self._output_or_none(n)), None)
        above = next(n for n in itertools.count(size + 1) if self._output_or_none(n))
        return [n for n in (below, above) if n is not None]

    # ------------------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes, H', W')`` of a batch ``(N, in_channels, H, W)``."""
        if x.dim() != 4:
            raise ArgumentError(f"UNet2D expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ArgumentError(
                f"UNet2D was built for {self.in_channels} input channel(s), got {x.shape[1]}"
            )
        for axis, size in zip(("H", "W"), x.shape[-2:]):
            if self._output_or_none(int(size)) is None:
                raise ArgumentError(
                    f"input {axis} = {size} does not fit this U-Net ({self._rule()}); "
                    f"nearest valid sizes: {self._nearest_valid(int(size))}"
                )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.dropout(self.bottom(x))
        for up, block, skip in zip(self.up, self.decode, reversed(skips)):
            x = up(x)
            x = block(torch.cat([_centre_crop(skip, x.shape[-2:]), x], dim=1))
        return self.head(x)


# ------------------------------------------------------------------------------------------
# Overlap-tile inference
# ------------------------------------------------------------------------------------------

def _reflect_indices(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices ``-before … n + after − 1`` folded back into ``0 … n − 1`` by mirroring at the
    edges without repeating the edge pixel (period ``2(n − 1)``), so pads longer than the image
    mirror again and again."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def mirror_pad(image: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    """Mirror-pad the last two axes of ``image`` by ``pad = (top, bottom, left, right)``.

    The image is reflected at its edges without repeating the edge pixel (``[a b c d]`` padded
    by 2 on the left reads ``[c b a b c d]``, like ``numpy.pad(mode="reflect")``); unlike
    ``torch.nn.functional.pad(mode="reflect")`` a pad may be longer than the image, which then
    mirrors repeatedly.
    """
    if not isinstance(image, torch.Tensor) or image.dim() < 2:
        raise ArgumentError("image must be a torch tensor with at least 2 dimensions")
    if len(pad) != 4:
        raise ArgumentError(f"pad must be (top, bottom, left, right), got {pad!r}")
    top, bottom, left, right = (check_int("pad", p, 0) for p in pad)
    rows = _reflect_indices(image.shape[-2], top, bottom, image.device)
    cols = _reflect_indices(image.shape[-1], left, right, image.device)
    return image.index_select(-2, rows).index_select(-1, cols)


def _tile_starts(size: int, tile: int, step: int) -> list[int]:
    """Start positions ``0, step, 2·step, …`` of tiles of ``tile`` pixels covering ``size``."""
    count = 1 if size <= tile else math.ceil((size - tile) / step) + 1
    return [i * step for i in range(count)]


def overlap_tile_predict(
    model: nn.Module,
    image: torch.Tensor,
    tile: int | Sequence[int],
    *,
    context: int | Sequence[int] | None = None,
    align: int | None = None,
    batch_size: int = 4,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Predict a large image tile by tile, Ronneberger's overlap-tile strategy.

    Every output tile of ``tile`` pixels is predicted from an input window that adds
    ``context`` pixels on each side; at the image borders the missing context is filled by
    mirroring the image (:func:`mirror_pad`). The tiles are stitched into a prediction of the
    image's own size.

    * For a ``padding="valid"`` network the window of ``tile + 2·context`` pixels comes out as
      ``tile`` pixels, so ``context`` must be what the network loses per side (``model.border``,
      92 for the paper's U-Net).
    * For a ``padding="same"`` network the output has the window's size and its central
      ``tile`` pixels are kept; any ``context`` works, a small one leaves visible tile edges.

    The default ``context`` is ``model.context`` (:class:`UNet2D`: 92 for ``"valid"``, 96 for a
    ``"same"`` network of depth 4). Tiles start at multiples of ``step = align·⌊tile/align⌋``
    (neighbouring tiles overlap by ``tile − step`` pixels, which the later tile overwrites).
    With ``align`` the network's total down-sampling (``model.size_factor``, the default; 16
    for a 4-pooling U-Net) every tile sees the same pooling grid as the whole image, and with
    the default context the stitched result is **exactly** the prediction of the whole
    mirror-padded image, ``model(mirror_pad(image, 4 × [context]))`` (cropped by ``context``
    for a ``"same"`` network), up to floating-point rounding. The last tiles may run past the
    image: the image is then mirror-padded further and the excess is cropped.

    Args:
        model: a 2D network, already on the image's device and in the mode you want
            (call ``model.eval()`` first for inference with dropout/batch norm).
        image: ``(C, H, W)`` or ``(N, C, H, W)``.
        tile: output tile size, an int or ``(rows, columns)``; the window
            ``tile + 2·context`` must be an input size the network takes (for a valid U-Net:
            ``tile`` is a valid output size, e.g. 388; for a ``"same"`` U-Net: a multiple of
            ``2^depth`` when the context is one).
        context: pixels of context on each side of a tile (int or pair; default
            ``model.context``).
        align: tile starts are multiples of this (default ``model.size_factor``, else 1).
        batch_size: tiles per forward pass.
        pad_mode: ``"reflect"`` (mirror, the paper) or ``"zeros"``.

    Returns:
        ``(num_classes, H, W)`` or ``(N, num_classes, H, W)`` (as ``image`` had a batch axis or
        not), computed without gradients.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    image = torch.as_tensor(image)
    if image.dim() not in (3, 4):
        raise ArgumentError(
            f"image must be (C, H, W) or (N, C, H, W), got shape {tuple(image.shape)}"
        )
    batched = image.dim() == 4
    if not batched:
        image = image.unsqueeze(0)
    if not image.is_floating_point():
        image = image.float()
    tile_hw = _pair("tile", tile, 1)
    if context is None:
        context = getattr(model, "context", None)
        if context is None:
            raise ArgumentError(
                "give context=: the model has no 'context' attribute to take it from"
            )
    ctx = _pair("context", context, 0)
    if align is None:
        align = getattr(model, "size_factor", 1)
    align = check_int("align", align, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if pad_mode not in ("reflect", "zeros"):
        raise ArgumentError(f"pad_mode must be 'reflect' or 'zeros', got {pad_mode!r}")
    steps = []
    for name, t in zip(("rows", "columns"), tile_hw):
        step = align * (t // align)
        if step == 0:
            raise ArgumentError(f"tile ({name}) = {t} is smaller than align = {align}")
        steps.append(step)

    n, _, height, width = image.shape
    starts_y = _tile_starts(height, tile_hw[0], steps[0])
    starts_x = _tile_starts(width, tile_hw[1], steps[1])
    canvas_h = starts_y[-1] + tile_hw[0]
    canvas_w = starts_x[-1] + tile_hw[1]
    pad = (ctx[0], ctx[0] + canvas_h - height, ctx[1], ctx[1] + canvas_w - width)
    if pad_mode == "reflect":
        padded = mirror_pad(image, pad)
    else:
        padded = F.pad(image, (pad[2], pad[3], pad[0], pad[1]))
    win_h, win_w = tile_hw[0] + 2 * ctx[0], tile_hw[1] + 2 * ctx[1]
    if isinstance(model, UNet2D):
        for name, win, c in (("rows", win_h, ctx[0]), ("columns", win_w, ctx[1])):
            if model._output_or_none(win) is None:
                tiles = [m - 2 * c for m in model._nearest_valid(win) if m > 2 * c]
                raise ArgumentError(
                    f"tile ({name}) {win - 2 * c} with context {c} makes a {win}-pixel window, "
                    f"which this U-Net cannot take ({model._rule()}); nearest tile sizes: {tiles}"
                )

    jobs = [(b, y, x) for b in range(n) for y in starts_y for x in starts_x]
    out: torch.Tensor | None = None
    with torch.no_grad():
        for first in range(0, len(jobs), batch_size):
            chunk = jobs[first : first + batch_size]
            windows = torch.stack([padded[b, :, y : y + win_h, x : x + win_w] for b, y, x in chunk])
            pred = model(windows)
            got = tuple(pred.shape[-2:])
            if got == (win_h, win_w):
                pred = pred[..., ctx[0] : ctx[0] + tile_hw[0], ctx[1] : ctx[1] + tile_hw[1]]
            elif got != tile_hw:
                raise ArgumentError(
                    f"the model maps a {win_h}×{win_w} window to {got[0]}×{got[1]}; expected "
                    f"{tile_hw[0]}×{tile_hw[1]} (valid network, context = the pixels it loses "
                    f"per side) or {win_h}×{win_w} (same-size network)"
                )
            if out is None:
                out = pred.new_zeros((n, pred.shape[1], canvas_h, canvas_w))
            for (b, y, x), p in zip(chunk, pred):
                out[b, :, y : y + tile_hw[0], x : x + tile_hw[1]] = p
    assert out is not None
    out = out[..., :height, :width]
    return out if batched else out[0]
