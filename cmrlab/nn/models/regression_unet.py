"""Regression U-Net with a fixed scanning module: LV volume from volume-only labels (cardiac ch. 6).

The cardiac thesis (``cardiacthesis``, chapter 6, L4697-4849, Figs 6.3-6.5) trains a
network on one number per case, the LV end-diastolic volume in ml, and still gets a segmentation
out of it. The trick is the architecture:

1. a 3D U-Net turns the image into a **CAM**, a sigmoid map that gives each voxel the
   probability of being LV (this is an output of the network, not the post-hoc CAM technique);
2. a **scanning module** with no trainable parameters measures that map: the largest CAM mass that
   fits in a 25×25 window of each slice (the LV area), the largest vertical and horizontal extent
   (the diameter), the volume ``V = Σ_slices area × voxel volume`` and a roundness estimate
   ``π̂ = 4·A / d²``.

Because the volume is computed from the CAM by fixed operations, the only way the network can get
the volume right is to paint the LV into the CAM, so the CAM is guaranteed to be the region the
prediction used. The loss of Eq. 6.1 (in :mod:`cmrlab.nn.losses`) adds ``100·|π̂ − π|`` (a
circular-shape prior) and L1 penalties on the bottleneck and on the CAM, which is why the model
also returns those two tensors.

Tensor layout is torch's ``(N, C, D, H, W)``: **D is the slice axis** (any number of slices,
8-14 in the thesis data), H and W the in-plane axes (88×88 pixels of 2×2 mm in the thesis).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from cmrlab.checks import check_bool, check_int, check_number, check_spacing
from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import DoubleConv, UpConv, check_model_input
from cmrlab.nn.models.unet_trunk import UNetTrunk, doubling_widths

__all__ = ["RegressionUNet", "RegressionUNetOutput", "ScanOutput", "ScanningModule"]

# Keras BatchNormalization defaults (momentum 0.99 on the running mean, epsilon 1e-3) in torch
# terms, and the Keras layer order Conv3D(activation="relu") → BatchNormalization.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3
_KERAS_CONV = {"bn_momentum": BN_MOMENTUM, "bn_eps": BN_EPS, "order": "conv-act-bn"}

#: Voxel spacing in mm, ``(slice, row, column)`` = (D, H, W) order, used when a call gives none:
#: 2×2 mm in plane (the thesis resamples to it) and 10 mm between slice centres (7 mm slices with
#: a 3 mm gap, the thesis's acquisition, L2824-2852).
DEFAULT_SPACING = (10.0, 2.0, 2.0)

Spacing = Union[Sequence[float], torch.Tensor]


class ScanOutput(NamedTuple):
    """What the scanning module measures on a CAM (``N`` cases, ``D`` slices).

    ``volume`` (N,) in ml; ``pi`` (N,) the roundness estimate averaged over slices;
    ``area`` (N, D) per-slice area in pixels; ``diameter`` (N, D) per-slice diameter in pixels;
    ``pi_per_slice`` (N, D) the per-slice ``4·area / diameter²``.
    """

    volume: torch.Tensor
    pi: torch.Tensor
    area: torch.Tensor
    diameter: torch.Tensor
    pi_per_slice: torch.Tensor


class RegressionUNetOutput(NamedTuple):
    """Outputs of :class:`RegressionUNet` for a batch of ``N`` cases with ``D`` slices.

    ``volume`` (N,) LV volume in ml; ``pi`` (N,) the π estimate (target: ``math.pi``);
    ``cam`` (N, 1, D, H, W) the sigmoid LV map, i.e. the explanation / segmentation;
    ``bottleneck`` (N, C, D, H/2^depth, W/2^depth) the deepest feature map (L1-penalised by
    Eq. 6.1); ``area`` and ``diameter`` (N, D) the per-slice measurements in pixels.
    """

    volume: torch.Tensor
    pi: torch.Tensor
    cam: torch.Tensor
    bottleneck: torch.Tensor
    area: torch.Tensor
    diameter: torch.Tensor


def _voxel_volume_ml(spacing: Spacing, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Volume of one voxel in ml for each of ``batch`` cases: ``dz·dy·dx / 1000`` (mm³ → ml).

    ``spacing`` is ``(slice, row, column)`` in mm: a sequence of three numbers shared by the
    batch, or a tensor of shape (3,) or (batch, 3). The result has ``like``'s device and dtype.
    """
    if isinstance(spacing, torch.Tensor):
        if spacing.shape not in ((3,), (batch, 3)):
            raise ArgumentError(
                f"spacing must have shape (3,) or ({batch}, 3) (one row per case), "
                f"got {tuple(spacing.shape)}"
            )
        values = spacing.to(device=like.device, dtype=like.dtype).expand(batch, 3)
        if not bool((torch.isfinite(values) & (values > 0)).all()):
            raise ArgumentError("spacing must hold finite positive numbers (mm)")
    else:  # three numbers (slice, row, column) in mm
        values = torch.tensor(
            check_spacing("spacing", spacing, ndim=3), device=like.device, dtype=like.dtype
        ).expand(batch, 3)
    return values.prod(dim=1) / 1000.0


class ScanningModule(nn.Module):
    """The fixed "scanning module" of the cardiac thesis (ch. 6, L4777-4830, Fig 6.5).

    It has **no trainable parameters**: the all-ones area kernel is a buffer and the other steps
    are sums and maxima, so the same CAM always gives the same numbers, and gradients flow
    through it to the CAM. For each slice ``s`` of a CAM ``c`` (values in [0, 1]):

    - **area** ``A_s = max over window positions of Σ_{25×25 window} c`` (pixels): a convolution
      with a fixed all-ones ``k×k`` kernel (k = 25: 50 mm at 2 mm/pixel, "big enough to ensure
      the LV is always captured") followed by a max over the slice (the thesis's 88×88×1 max
      pooling). It is the CAM mass of the largest object that fits in the window, so residual
      blobs elsewhere in the slice do not count;
    - **diameter** ``d_s = ½·(max_column Σ_rows c + max_row Σ_columns c)`` (pixels): the fixed
      88×1 and 1×88 all-ones kernels of the thesis span the whole 88×88 slice, so they compute
      column sums and row sums (the vertical and horizontal extent of the object); the largest of
      each is taken and the two are averaged per slice;
    - **roundness** ``π̂_s = 4·A_s / d_s²``, which is exactly π for a disc (``A = π r²``,
      ``d = 2r``) and ``4π a b / (a + b)²`` < π for an ellipse with semi-axes ``a ≠ b``;
    - per case: ``V = Σ_s A_s · (dz·dy·dx / 1000)`` ml and ``π̂ = mean_s π̂_s``.

    Design choices the thesis leaves open ([choice]):

    - [choice] the area convolution is "valid" (windows inside the slice). The thesis's Keras
      layer presumably pads ("same"); for a non-negative CAM and a slice at least ``k`` pixels
      wide the maximum is the same, because a window that hangs over the border holds a subset
      of the pixels of a window shifted inside.
    - [choice] "the results of both paths are then averaged at the slice level ... forced to
      compute the largest diameter" is read as: the maximum column sum and the maximum row sum
      of the slice, averaged.
    - [choice] the π formula is not printed; ``π̂ = 4A/d²`` is the ratio that equals π for a
      circle. Slices whose diameter is below ``min_diameter`` pixels (an empty CAM slice) use
      ``min_diameter²`` as the denominator, so an empty slice gives ``π̂_s ≈ 0`` instead of 0/0.
    - [choice] π̂ is the plain mean over all slices ("averaging the roundness properties through
      the slices", L6828-6830), as the thesis describes; slices outside the LV therefore pull
      π̂ down, which matches the thesis's tube-shaped CAMs.
    - [choice] the slice spacing used for the volume is not stated; the default is 10 mm (7 mm
      slices + 3 mm gap, centre to centre). Pass the true spacing per case when you have it.

    Args:
        area_kernel: side of the all-ones area window in pixels (25 in the thesis; the thesis
            suggests a smaller one for ES, L5275-5287).
        spacing: default voxel spacing ``(slice, row, column)`` in mm when ``forward`` gets none.
        min_diameter: smallest diameter (pixels) used in the π̂ denominator.
        trainable: an ablation, not the thesis: the area kernel becomes a trainable parameter
            initialised to the all-ones window (and so the module is no longer fixed).

    Input ``cam``: (N, 1, D, H, W) with D slices, ``H, W >= area_kernel``.
    """

    area_weight: torch.Tensor

    def __init__(
        self,
        area_kernel: int = 25,
        spacing: Sequence[float] = DEFAULT_SPACING,
        min_diameter: float = 1.0,
        trainable: bool = False,
    ) -> None:
        super().__init__()
        self.area_kernel = check_int("area_kernel", area_kernel)
        self.trainable = check_bool("trainable", trainable)
        self.spacing = check_spacing("spacing", spacing, ndim=3)
        self.min_diameter = check_number("min_diameter", min_diameter, 0.0, low_open=True)
        # A fixed all-ones kernel: a buffer (moves with .to(device)), not a parameter, and not in
        # the state dict (it is fully determined by area_kernel).
        ones = torch.ones(1, 1, self.area_kernel, self.area_kernel)
        if self.trainable:  # ablation: a learnable area kernel initialised to the all-ones window
            self.area_weight = nn.Parameter(ones)
        else:
            self.register_buffer("area_weight", ones, persistent=False)

    def extra_repr(self) -> str:
        return f"area_kernel={self.area_kernel}, spacing={self.spacing}, min_diameter={self.min_diameter}"

    def forward(self, cam: torch.Tensor, spacing: Spacing | None = None) -> ScanOutput:
        """Measure ``cam`` (N, 1, D, H, W); ``spacing`` in mm overrides the default (see class)."""
        if not isinstance(cam, torch.Tensor):
            raise ArgumentError(f"cam must be a torch.Tensor, got {type(cam).__name__}")
        if cam.ndim != 5 or cam.shape[1] != 1:
            raise ArgumentError(f"cam must have shape (N, 1, D, H, W), got {tuple(cam.shape)}")
        if not cam.is_floating_point():
            raise ArgumentError(f"cam must be a floating-point tensor, got {cam.dtype}")
        n, _, depth, height, width = cam.shape
        if n < 1 or depth < 1:
            raise ArgumentError(f"cam must hold at least one case and one slice, got {tuple(cam.shape)}")
        k = self.area_kernel
        if height < k or width < k:
            raise ArgumentError(
                f"cam slices must be at least area_kernel = {k} pixels on each side, got {height}×{width}"
            )
        voxel_ml = _voxel_volume_ml(self.spacing if spacing is None else spacing, n, cam)

        planes = cam.reshape(n * depth, 1, height, width)
        window_sums = F.conv2d(planes, self.area_weight.to(dtype=cam.dtype))
        area = window_sums.amax(dim=(-2, -1)).reshape(n, depth)

        vertical = planes.sum(dim=-2).amax(dim=-1)    # column sums = the H×1 all-ones kernel
        horizontal = planes.sum(dim=-1).amax(dim=-1)  # row sums = the 1×W all-ones kernel
        diameter = (0.5 * (vertical + horizontal)).reshape(n, depth)

        pi_per_slice = 4.0 * area / diameter.clamp_min(self.min_diameter).square()
        return ScanOutput(
            volume=area.sum(dim=1) * voxel_ml,
            pi=pi_per_slice.mean(dim=1),
            area=area,
            diameter=diameter,
            pi_per_slice=pi_per_slice,
        )


def _rename_old_bottom(module: "RegressionUNet", state_dict: dict, prefix: str, *_: object) -> None:
    """Load checkpoints written before the shared U-Net trunk: ``bottom.*`` → ``encoder.{depth}.*``."""
    old = prefix + "bottom."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[f"{prefix}encoder.{module.depth}.{key[len(old):]}"] = state_dict.pop(key)


class RegressionUNet(UNetTrunk):
    """Regression U-Net + fixed scanning module of the cardiac thesis (ch. 6, L4697-4849).

    Trained on the LV volume alone, it outputs the volume (ml), a π estimate, the CAM (the
    explanation mask) and the bottleneck activations; see the module docstring and
    :class:`ScanningModule`. Input ``x``: (N, in_channels, D, H, W) with **D = slices** (any
    number ≥ 1; 8-14 in the thesis), H = W = 88 pixels of 2×2 mm in the thesis (any multiple of
    ``2**depth`` that is at least ``area_kernel`` works), intensities min-max scaled to [0, 1].

    >>> model = RegressionUNet(base_filters=4)  # the thesis build is base_filters=64
    >>> out = model(torch.rand(2, 1, 9, 88, 88), spacing=(10.0, 2.0, 2.0))
    >>> tuple(out.volume.shape), tuple(out.cam.shape), tuple(out.bottleneck.shape)
    ((2,), (2, 1, 9, 88, 88), (2, 32, 9, 11, 11))

    Architecture (thesis text, L4705-4755):

    - each level: two 3×3×3 convolutions, each followed by ReLU and batch norm;
    - down: 2×2×1 max pooling (in-plane only, the slice count never changes);
    - up: 2×2×1 transposed convolutions ("up-convolutions"), concatenation skips;
    - the bottleneck (the deepest level's output, "the layer just before starting the
      up-sampling") is returned for the L1 activity penalty of Eq. 6.1;
    - last layer: 1×1×1 convolution + sigmoid → the CAM, then the :class:`ScanningModule`.

    The encoder and decoder are the shared :class:`~cmrlab.nn.models.unet_trunk.UNetTrunk`
    (concatenation ``[up-sampled, skip]``); the bottleneck block is ``encoder[depth]`` (also
    reachable as ``bottom``). Checkpoints written when it was stored under ``bottom.*`` still
    load: :meth:`load_state_dict` renames those keys.

    Parameter count: the thesis reports **21.87 M** (L4830); levels and widths are only in
    Fig 6.4, which the text file lacks.

    ========================  =======================  ==========================
    build                     parameters               vs 21.87 M
    ========================  =======================  ==========================
    64→512, 3 poolings        21 711 297 (default)     −0.73 %
    32→512, 4 poolings        21 884 897               +0.07 %
    ========================  =======================  ==========================

    [choice] The default is **64→512 with 3 poolings**: 88 = 8 × 11 halves cleanly exactly three
    times to the same 11×11 bottom as the thesis's other two models (ch. 5 and ch. 7), and the
    thesis says it chose depths that avoid "padding or cropping operations within the model"
    (ch. 7, L5710-5714); four poolings would leave 5.5 pixels. Neither build gives 21.87 M exactly (the
    thesis truncates counts, cf. ch. 5's 87 519 364 → "87.51"); among textbook variants (bias
    on/off, batch norm after the up-convolutions, Keras's four BN values per channel) only
    builds *without* batch norm fall in 21.870-21.879 M, and the text says every layer has batch
    norm. The 32→512 build is available as ``RegressionUNet(base_filters=32, depth=4)`` for
    inputs divisible by 16.

    Other design choices ([choice]):

    - [choice] order conv → ReLU → batch norm, as the same author's ch. 7 states ("each
      convolution is always followed by a batch normalization layer", L5694); batch norm with Keras's
      defaults (torch ``momentum=0.01``, ``eps=1e-3``); convolutions keep their bias.
    - [choice] the up-convolution halves the channels and has no activation or batch norm (the
      textbook U-Net; it gives the 21 711 297 of the issue).
    - [choice] torch's default weight initialisation (Keras would use Glorot-uniform).
    - [choice] 3×3×3 convolutions mix neighbouring slices with zero padding at the first and
      last slice, so a single-slice input works.

    Args:
        in_channels: image channels (1 for cine MRI).
        base_filters: channels of the first level; each deeper level doubles them (64 in the
            thesis build; use e.g. 4-8 for the ``fast`` profile).
        depth: number of 2×2×1 poolings (3 in the default build).
        area_kernel, spacing, min_diameter: passed to :class:`ScanningModule`.
        trainable_scanner: make the scanning module's area kernel a trainable parameter
            (initialised to the all-ones window) — an ablation, not the thesis: the volume is then
            no longer a fixed measurement of the CAM (the course's ch. 6 shows what that costs).
        bn_momentum: torch's batch-norm momentum (Keras's 0.99 is 0.01, the default; a short CPU
            run needs e.g. 0.1 for the running statistics to settle).
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_filters: int = 64,
        depth: int = 3,
        area_kernel: int = 25,
        spacing: Sequence[float] = DEFAULT_SPACING,
        min_diameter: float = 1.0,
        trainable_scanner: bool = False,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        widths = doubling_widths(base_filters, depth)
        conv_kw = {**_KERAS_CONV, "bn_momentum": check_number("bn_momentum", bn_momentum, 0.0, 1.0)}
        super().__init__(
            3, in_channels, 1, widths,
            block=lambda c_in, c_out: DoubleConv(3, c_in, c_out, 3, **conv_kw),
            up=lambda c_in, c_out: UpConv(3, c_in, c_out, factor=(1, 2, 2)),
            pool_size=(1, 2, 2), up_first=True,
        )
        self.base_filters = widths[0]
        self.scanner = ScanningModule(area_kernel=area_kernel, spacing=spacing, min_diameter=min_diameter,
                                      trainable=trainable_scanner)
        self.register_load_state_dict_pre_hook(_rename_old_bottom)

    @property
    def bottom(self) -> nn.Module:
        """The deepest level (the bottleneck block), ``encoder[depth]``."""
        return self.encoder[self.depth]

    def _check_input(self, x: torch.Tensor) -> None:
        check_model_input(x, in_channels=self.in_channels, layout="(N, C, D, H, W) with D = slices",
                          poolings=self.depth, poolings_name="depth", in_plane_only=True,
                          why=f"depth {self.depth}")

    def forward(self, x: torch.Tensor, spacing: Spacing | None = None) -> RegressionUNetOutput:
        """Volume, π̂, CAM and bottleneck of ``x`` (N, C, D, H, W); ``spacing`` in mm, see
        :class:`ScanningModule` (default: the one given at construction)."""
        self._check_input(x)
        bottleneck, skips = self.encode(x)
        cam = torch.sigmoid(self.head(self.decode(bottleneck, skips)))
        scan = self.scanner(cam, spacing)
        return RegressionUNetOutput(
            volume=scan.volume,
            pi=scan.pi,
            cam=cam,
            bottleneck=bottleneck,
            area=scan.area,
            diameter=scan.diameter,
        )
