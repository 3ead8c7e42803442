"""One U-Net trunk (encoder, decoder, 1×1 head) for 2D and 3D, shared by the course's U-Nets.

The PSPU-net and the 3D U-Net of the cardiac thesis (ch. 5), the regression U-Net (ch. 6) and
Çiçek's 3D U-Net of the brain thesis are the same loop with different parts, so the loop lives
here once, in the manner of MONAI's ``spatial_dims`` networks:

- level ``l = 0 … depth`` of the **encoder** is ``block(c_in, widths[l])``; a max pooling of
  ``pool_size`` (kernel = stride) comes before every level but the first;
- the output of each level but the deepest is a **skip**; an optional ``skip(level, channels)``
  module transforms it on the way across (the PSPU-net's pyramid pooling), else it is passed as
  it is;
- the **decoder** climbs back, level ``l = depth − 1 … 0``: ``up(c, widths[l])`` brings the
  deeper map up one level, it is concatenated with the skip (skip first, or the up-sampled map
  first with ``up_first=True``) and ``decoder_block(c_skip + c_up, widths[l])`` mixes them;
- a 1×1 convolution with bias, the **head**, maps the top decoder level to ``out_channels``.

Factories return modules that say their width in ``out_channels`` (every block of
:mod:`cmrlab.nn.blocks` and torch's (transposed) convolutions do); an up factory may ignore the
width it is offered (Çiçek's up-convolutions keep the channels). What comes after the head is
each model's own (a softmax, the regression U-Net's sigmoid CAM and scanning module).

Models *inherit* from :class:`UNetTrunk` rather than hold one, so their parameters keep the names
``encoder.*``, ``skips.*``, ``up.*``, ``decoder.*`` and ``head.*`` at the top of the model's
``state_dict``, and the modules are built in the same order as the hand-written loops they
replaced (encoder, skips, each decoder level's up-step and block, head): a seed gives the same
initial weights as before.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from cmrlab.checks import check_bool, check_choice, check_int, check_int_tuple
from cmrlab.errors import ArgumentError

__all__ = ["UNetTrunk", "doubling_widths"]

#: ``factory(in_channels, out_channels) -> module`` with an ``out_channels`` attribute.
BlockFactory = Callable[[int, int], nn.Module]
#: ``factory(level, channels) -> module`` transforming the skip of that level.
SkipFactory = Callable[[int, int], nn.Module]


def _width(module: nn.Module, what: str) -> int:
    width = getattr(module, "out_channels", None)
    return check_int(f"{what} out_channels", width, 1)


class UNetTrunk(nn.Module):
    """A U-Net, 2D or 3D: encoder, decoder and 1×1 head (see the module docstring).

    Args:
        spatial_dims: 2 (tensors ``(N, C, H, W)``) or 3 (``(N, C, D, H, W)``).
        in_channels: channels of the input.
        out_channels: channels of the head's output (classes, or 1 for a map).
        widths: output channels of encoder levels ``0 … depth`` (``depth = len(widths) − 1``);
            decoder level ``l`` has ``widths[l]`` too.
        block: ``block(c_in, c_out)``, the unit of an encoder level.
        decoder_block: the unit of a decoder level (default: ``block``).
        pool_size: max-pooling kernel = stride, an int or one per axis (``(1, 2, 2)`` pools only
            in the image plane of a ``(D, H, W)`` volume).
        up: ``up(c_in, c_out)``, the up-step of a decoder level; its ``out_channels`` may differ
            from ``c_out``.
        skip: optional ``skip(level, channels)`` applied to the skip of each level.
        up_first: concatenate ``[up-sampled, skip]`` instead of ``[skip, up-sampled]``.

    Attributes ``encoder``, ``skips`` (``None`` without ``skip``), ``up`` and ``decoder`` are
    :class:`~torch.nn.ModuleList` s; ``pool`` is the pooling, ``head`` the 1×1 convolution;
    ``in_channels``, ``out_channels``, ``widths``, ``depth`` and ``spatial_dims`` describe it.
    Subclasses write ``forward`` (input checks, then :meth:`logits` or :meth:`encode` and
    :meth:`decode`).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        widths: Sequence[int],
        *,
        block: BlockFactory,
        up: BlockFactory,
        decoder_block: BlockFactory | None = None,
        pool_size: int | Sequence[int] = 2,
        skip: SkipFactory | None = None,
        up_first: bool = False,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_choice("spatial_dims", spatial_dims, (2, 3))
        widths = check_int_tuple("widths", widths)
        if len(widths) < 2:
            raise ArgumentError(f"widths must give at least two levels (one pooling), got {widths!r}")
        self.widths = widths
        self.depth = len(widths) - 1
        self.up_first = check_bool("up_first", up_first)
        decoder_block = block if decoder_block is None else decoder_block
        pool = nn.MaxPool2d if self.spatial_dims == 2 else nn.MaxPool3d
        self.skips: nn.ModuleList | None = None

        self.encoder = nn.ModuleList()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.out_channels = check_int("out_channels", out_channels, 1)
        c = self.in_channels
        for w in widths:
            self.encoder.append(block(c, w))
            c = _width(self.encoder[-1], "encoder block")
        self.pool = pool(pool_size)
        skip_widths = [_width(b, "encoder block") for b in self.encoder[:-1]]
        if skip is not None:
            self.skips = nn.ModuleList(skip(level, w) for level, w in enumerate(skip_widths))
            skip_widths = [_width(s, "skip") for s in self.skips]
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(self.depth)):
            self.up.append(up(c, widths[level]))
            joined = skip_widths[level] + _width(self.up[-1], "up")
            self.decoder.append(decoder_block(joined, widths[level]))
            c = _width(self.decoder[-1], "decoder block")
        conv = nn.Conv2d if self.spatial_dims == 2 else nn.Conv3d
        self.head = conv(c, self.out_channels, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoder: ``(bottleneck, skips)``, skips from level 0 down, transformed if asked."""
        skips = []
        for level, block in enumerate(self.encoder):
            if level:
                x = self.pool(x)
            x = block(x)
            if level < self.depth:
                skips.append(x if self.skips is None else self.skips[level](x))
        return x, skips

    def decode(self, x: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """The decoder from the bottleneck ``x`` and the skips of :meth:`encode`."""
        for up, block, skip in zip(self.up, self.decoder, reversed(skips)):
            y = up(x)
            x = block(torch.cat([y, skip] if self.up_first else [skip, y], dim=1))
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder, decoder and head: ``out_channels`` maps at the input's size."""
        return self.head(self.decode(*self.encode(x)))


def doubling_widths(base_filters: int, depth: int) -> list[int]:
    """The textbook U-Net widths ``base_filters · 2**l`` for ``l = 0 … depth`` (both checked ≥ 1)."""
    base = check_int("base_filters", base_filters, 1)
    return [base * 2**level for level in range(check_int("depth", depth, 1) + 1)]

