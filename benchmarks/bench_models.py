"""Benchmark: one training step (forward + backward) of the brain-thesis 3D models, next to MONAI.

Each step is ``zero_grad → forward → cross-entropy against random labels → backward`` at batch 1,
full width (the thesis's networks), in training mode. Pairs, run interleaved in one process:

- V-Net (:class:`cmrlab.nn.models.vnet.VNet`, 1 input, 4 classes) vs
  ``monai.networks.nets.VNet(in_channels=1, out_channels=4, act="prelu")``: the same layers.
  Before timing, our weights are copied into MONAI's network and the two outputs are checked
  equal (evaluation mode); MONAI's 4 extra up-convolution biases are set to zero.
- 3D U-Net (:class:`cmrlab.nn.models.unet3d.UNet3D`, 2 inputs, 4 classes) vs
  ``monai.networks.nets.BasicUNet(features=(64, 128, 256, 512, 512, 64), act="relu",
  norm="batch", bias=False, upsample="deconv")``, the closest MONAI configuration: the same
  output widths at the same resolutions, max pooling, two 3³ conv+BN+ReLU per level, transposed
  convolutions and concatenation skips; but BasicUNet has a fifth level, its first convolution
  of a level goes straight to the full width and its up-convolutions halve the channels. As the
  networks differ, the FLOPs per step are counted (``torch.utils.flop_counter``) and the ratio is
  also given per FLOP.
- V-Net light and the four 3D DenseNets have no MONAI counterpart: time and memory only.

Ratio = our best step time / MONAI's best step time; target ≤ 1.0. Peak memory per step: on the
CPU, the growth of the resident set during one step (its activations, gradients and work
buffers; Linux only, see ``_cpu_peak_step_memory``); on CUDA, ``torch.cuda.max_memory_allocated``
minus the memory allocated before the step. ``--amp`` (bfloat16 autocast) and
``--channels-last`` apply on CUDA only.

Run: ``python benchmarks/bench_models.py [--threads 1] [--size 32] [--dense-size 16]
[--repeats 3] [--device cpu|cuda] [--amp] [--channels-last]``.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cmrlab.nn.models.densenet3d import (
    densenet3d_single_path,
    densenet3d_three_stream_early_fusion,
    densenet3d_two_stream_early_fusion,
    densenet3d_two_stream_late_fusion,
)
from cmrlab.nn.models.unet3d import UNet3D
from cmrlab.nn.models.vnet import VNet, vnet_light
from cmrlab.nn.receptive_field import count_parameters


@dataclass(frozen=True)
class Case:
    """One model to time: how to build it, its input channels, and the input size key."""

    build: Callable[[], nn.Module]
    in_channels: int
    size_key: str  # "size" (V-Net / U-Net patches) or "dense_size" (DenseNet patches)


def _monai_vnet() -> nn.Module:
    from monai.networks.nets import VNet as MonaiVNet

    return MonaiVNet(spatial_dims=3, in_channels=1, out_channels=4, act="prelu")


def _monai_basic_unet() -> nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=3, in_channels=2, out_channels=4,
                     features=(64, 128, 256, 512, 512, 64), act="relu", norm="batch",
                     bias=False, upsample="deconv")


CASES: dict[str, Case] = {
    "vnet": Case(lambda: VNet(1, 4), 1, "size"),
    "monai_vnet": Case(_monai_vnet, 1, "size"),
    "vnet_light": Case(lambda: vnet_light(1, 4), 1, "size"),
    "unet3d": Case(lambda: UNet3D(2, 4), 2, "size"),
    "monai_basic_unet": Case(_monai_basic_unet, 2, "size"),
    "densenet3d_single_path": Case(lambda: densenet3d_single_path(1), 1, "dense_size"),
    "densenet3d_two_stream_late_fusion": Case(densenet3d_two_stream_late_fusion, 2, "dense_size"),
    "densenet3d_two_stream_early_fusion": Case(densenet3d_two_stream_early_fusion, 2, "dense_size"),
    "densenet3d_three_stream_early_fusion": Case(densenet3d_three_stream_early_fusion, 3,
                                                 "dense_size"),
}
#: (ours, MONAI peer) pairs; the other cases run alone.
PAIRS = {"vnet": "monai_vnet", "unet3d": "monai_basic_unet"}


# --------------------------------------------------------------------------- V-Net ↔ MONAI weights

_VNET_RULES = [
    (r"^input\.conv\.conv\.", "in_tr.conv_block.conv."),
    (r"^input\.conv\.bn\.", "in_tr.conv_block.adn.N."),
    (r"^input\.act\.", "in_tr.act_function."),
    (r"^(down|up)\.(\d+)\.convs\.(\d+)\.conv\.", r"\1.\2.ops.\3.conv_block.conv."),
    (r"^(down|up)\.(\d+)\.convs\.(\d+)\.bn\.", r"\1.\2.ops.\3.conv_block.adn.N."),
    (r"^(down|up)\.(\d+)\.convs\.(\d+)\.act\.", r"\1.\2.ops.\3.act_function."),
    (r"^down\.(\d+)\.down\.conv\.", r"down.\1.down_conv."),
    (r"^down\.(\d+)\.down\.bn\.", r"down.\1.bn1."),
    (r"^down\.(\d+)\.down\.act\.", r"down.\1.act_function1."),
    (r"^(down|up)\.(\d+)\.act\.", r"\1.\2.act_function2."),
    (r"^up\.(\d+)\.up\.0\.", r"up.\1.up_conv."),
    (r"^up\.(\d+)\.up\.1\.", r"up.\1.bn1."),
    (r"^up\.(\d+)\.up\.2\.", r"up.\1.act_function1."),
    (r"^output\.0\.conv\.", "out_tr.conv_block.conv."),
    (r"^output\.0\.bn\.", "out_tr.conv_block.adn.N."),
    (r"^output\.0\.act\.", "out_tr.act_function1."),
    (r"^output\.1\.", "out_tr.conv2."),
    (r"^down\.(\d)\.", lambda m: f"down_tr{32 * 2 ** int(m.group(1))}."),
    (r"^up\.(\d)\.", lambda m: f"up_tr{256 // 2 ** int(m.group(1))}."),
]


def vnet_state_dict_for_monai(ours: VNet) -> dict[str, torch.Tensor]:
    """Our full-width V-Net's tensors under MONAI's names, with zero up-convolution biases."""
    state = {}
    for key, value in ours.state_dict().items():
        for pattern, repl in _VNET_RULES:
            key = re.sub(pattern, repl, key)
        state[key] = value
    for name in ("up_tr256", "up_tr128", "up_tr64", "up_tr32"):
        weight = state[f"{name}.up_conv.weight"]
        state[f"{name}.up_conv.bias"] = weight.new_zeros(weight.shape[1])
    return state


def check_vnet_matches_monai(ours: VNet, monai_vnet: nn.Module, x: torch.Tensor) -> float:
    """Copy our weights into MONAI's V-Net; return the largest output difference (eval mode)."""
    monai_vnet.load_state_dict(vnet_state_dict_for_monai(ours), strict=True)
    ours.eval()
    monai_vnet.eval()
    with torch.no_grad():
        a, b = ours(x), monai_vnet(x)
    ours.train()
    monai_vnet.train()
    return (a - b).abs().max().item() / max(a.abs().max().item(), 1e-30)


# --------------------------------------------------------------------------- one training step

def _make_step(net: nn.Module, x: torch.Tensor, amp: bool) -> Callable[[], None]:
    target = torch.randint(0, 4, (x.shape[0], *x.shape[2:]), device=x.device,
                           generator=torch.Generator(device=x.device).manual_seed(0))

    def step() -> None:
        net.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            out = net(x)
        F.cross_entropy(out.float(), target).backward()

    return step


def _inputs(case: Case, args: argparse.Namespace, device: torch.device) -> torch.Tensor:
    s = getattr(args, case.size_key)
    x = torch.randn(1, case.in_channels, s, s, s, device=device,
                    generator=torch.Generator(device=device).manual_seed(1))
    if args.channels_last and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _build(case: Case, args: argparse.Namespace, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    net = case.build().to(device).train()
    if args.channels_last and device.type == "cuda":
        net = net.to(memory_format=torch.channels_last_3d)
    return net


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_interleaved(steps: dict[str, Callable[[], None]], device: torch.device,
                      repeats: int) -> dict[str, tuple[float, float]]:
    """(best, median) seconds per step; the functions alternate within each repeat."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def _flops(step: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


# --------------------------------------------------------------------------- peak memory

def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_resident_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    raise OSError("no VmHWM in /proc/self/status")


def _cpu_peak_step_memory(step: Callable[[], None], net: nn.Module) -> int | None:
    """Growth of the resident set at the peak of one training step (Linux only, else None).

    The gradients are freed and freed heap memory is handed back to the system
    (``malloc_trim``) first, then the kernel's high-water mark of the resident set is reset
    (``/proc/self/clear_refs``, value 5): what the step adds on top of the parameters is its
    activations, gradients and work buffers (e.g. the im2col buffers of CPU convolutions).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        net.zero_grad(set_to_none=True)
        gc.collect()
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _resident_bytes()
        step()
        return _peak_resident_bytes() - before
    except OSError:
        return None


def _cuda_peak_step_memory(step: Callable[[], None], net: nn.Module,
                           device: torch.device) -> int:
    """``max_memory_allocated`` during one step minus the memory allocated before it."""
    net.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--size", type=int, default=32, help="cube side of the V-Net/U-Net input")
    parser.add_argument("--dense-size", type=int, default=16, help="cube side of the DenseNet input")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d (CUDA only)")
    parser.add_argument("--only", nargs="*", default=None, help=f"subset of {list(CASES)}")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = args.amp and device.type == "cuda"
    wanted = set(CASES) if args.only is None else {*args.only, *(PAIRS.get(o) for o in args.only)}
    names = [n for n in CASES if n in wanted]
    try:
        import monai  # noqa: F401
    except ImportError:
        names = [n for n in names if not n.startswith("monai_")]
        print("MONAI is not installed: peers left out")

    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"CPUs {os.cpu_count()}, amp {amp}, channels_last {args.channels_last and device.type == 'cuda'}")
    print(f"inputs: batch 1, V-Net/U-Net {args.size}³, DenseNets {args.dense_size}³; "
          f"{args.repeats} timed steps after 1 warm-up\n")

    nets = {n: _build(CASES[n], args, device) for n in names}
    inputs = {n: _inputs(CASES[n], args, device) for n in names}
    if "vnet" in nets and "monai_vnet" in nets:
        diff = check_vnet_matches_monai(nets["vnet"], nets["monai_vnet"], inputs["vnet"])
        print(f"V-Net vs MONAI VNet with our weights: largest relative output difference {diff:.1e}")
        assert diff < 1e-4, "the two V-Nets should compute the same function"
    steps = {n: _make_step(nets[n], inputs[n], amp) for n in names}
    flops = {n: _flops(steps[n]) for n in names}

    groups = [[n] + ([PAIRS[n]] if PAIRS.get(n) in names else []) for n in names
              if not n.startswith("monai_")]
    timing: dict[str, tuple[float, float]] = {}
    for group in groups:
        timing.update(_time_interleaved({n: steps[n] for n in group}, device, args.repeats))
    memory = {}
    for n in names:  # after the timed steps: libraries loaded, kernels chosen
        peak = (_cuda_peak_step_memory(steps[n], nets[n], device) if device.type == "cuda"
                else _cpu_peak_step_memory(steps[n], nets[n]))
        if peak is not None:
            memory[n] = peak

    header = (f"{'model':38s} {'params':>11s} {'GFLOP':>7s} {'best ms':>9s} {'median ms':>9s} "
              f"{'peak MB':>8s}")
    print(header)
    print("-" * len(header))
    for n in names:
        mem = f"{memory[n] / 2**20:8.0f}" if n in memory else f"{'n/a':>8s}"
        print(f"{n:38s} {count_parameters(nets[n]):11,d} {flops[n] / 1e9:7.1f} "
              f"{timing[n][0] * 1e3:9.0f} {timing[n][1] * 1e3:9.0f} {mem}")
    print()
    for ours, peer in PAIRS.items():
        if ours in names and peer in names:
            ratio = timing[ours][0] / timing[peer][0]
            per_flop = ratio * flops[peer] / flops[ours]
            mem = (f", peak memory ratio {memory[ours] / memory[peer]:.2f}"
                   if memory.get(peer) else "")
            print(f"{ours} / {peer}: time ratio {ratio:.2f} (target ≤ 1.0), "
                  f"per FLOP {per_flop:.2f}{mem}")


if __name__ == "__main__":
    sys.exit(main())
