"""Benchmark: a 256×256 slice through simulated k-space with 8 coils, noise and partial Fourier.

Forward: coil images → fft2c → complex noise → partial-Fourier mask.
Recon:   zero-filled or homodyne → inverse FFT → root-sum-of-squares.

The peer is the bare FFT cost of the same arrays: ``torch.fft.fft2`` + ``torch.fft.ifft2`` of the
``8×256×256`` complex64 array, no shifts, no noise. The target is a ratio ≤ 3× (issue 3).
Run: ``python benchmarks/bench_kspace.py [--device cpu|cuda] [--repeats 50]``.
"""
from __future__ import annotations

import argparse

import torch

from _timing import time_interleaved
from cmrlab.physics.coils import coil_combine_rss, coil_sensitivities
from cmrlab.physics.kspace import (
    fft2c,
    homodyne_recon,
    partial_fourier_mask,
    sample_object,
    shepp_logan_ellipses,
    zero_filled_recon,
)
from cmrlab.physics.noise import add_noise, snr_to_sigma


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n, n_coils = args.size, args.coils

    obj = sample_object(shepp_logan_ellipses(0.9 * 256.0), 256.0, n, device=device).image
    maps = coil_sensitivities((n, n), n_coils, device=device)
    coil_images = (maps * obj).contiguous()                                    # (8, 256, 256) complex64
    sigma = snr_to_sigma(obj, snr=30.0, signal_mask=obj.abs() > 0.1)
    mask = partial_fourier_mask((n, n), 5 / 8, device=device)
    gen = torch.Generator(device=device).manual_seed(0)

    def bare() -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(coil_images))

    def noise_only() -> torch.Tensor:
        return add_noise(coil_images, sigma, generator=gen)

    def forward() -> torch.Tensor:
        return add_noise(fft2c(coil_images), sigma, generator=gen) * mask

    def zero_filled() -> torch.Tensor:
        return coil_combine_rss(zero_filled_recon(forward(), mask))

    def homodyne() -> torch.Tensor:
        return coil_combine_rss(homodyne_recon(forward(), mask))

    results = time_interleaved({
        "bare fft2 + ifft2 (peer)": bare,
        "complex noise alone (for reference)": noise_only,
        "forward only (fft, noise, PF mask)": forward,
        "forward + zero-filled recon + RSS": zero_filled,
        "forward + homodyne recon + RSS": homodyne,
    }, device, args.repeats, warmup=3)
    t_bare = results["bare fft2 + ifft2 (peer)"][0]
    print(f"device={device}  threads={torch.get_num_threads()}  array={n_coils}x{n}x{n} complex64  "
          f"repeats={args.repeats}")
    print(f"{'':38s} {'best':>8s} {'median':>9s}   ratio of best times (target <= 3x for a full pipeline)")
    for name, (best, med) in results.items():
        print(f"{name:38s} {best * 1e3:6.2f} ms {med * 1e3:6.2f} ms   {best / t_bare:5.2f}x")

if __name__ == "__main__":
    main()
