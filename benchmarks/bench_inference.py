"""Benchmark: inference time per patient for a whole cine, chapter-5 models, fast and full width.

For one synthetic ACDC patient (the fast profile's data) every frame of the cine is segmented as
``cmrlab predict`` does it (:func:`cmrlab.train.segmentation.predict_volume`): preprocessing,
3-slice windows, one forward pass over all of a frame's windows, averaging of the window
probabilities per slice, and restoring to the original grid. The peer is the bare model forward
over the same windows (already preprocessed and stacked, no reassembly, no restoring): the ratio
``pipeline / forward`` is the overhead of our windowing and reassembly (target: close to 1 at
full width, where the network dominates).

Widths: ``fast`` (the fast profile's widths and 64×64 windows at 2.75 mm) and ``full`` (the
thesis's networks, 87.5 M and 30.8 M parameters, at 176×176 and 1 mm). Full width on a CPU is
slow: it is timed on ``--full-frames`` frames of the patient (default 2) and scaled to the whole
cine, which the table says. Weights are random (timing does not depend on them).

Run: ``python benchmarks/bench_inference.py [--threads 1] [--repeats 3] [--device cpu|cuda]
[--full-frames 2] [--skip-full]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import time_interleaved  # noqa: E402

from cmrlab.config import select_device  # noqa: E402
from cmrlab.data.acdc import read_patient  # noqa: E402
from cmrlab.data.datasets import get_dataset  # noqa: E402
from cmrlab.data.patches import slice_windows  # noqa: E402
from cmrlab.data.preprocess import preprocess_volume  # noqa: E402
from cmrlab.train.experiment import load_experiment  # noqa: E402
from cmrlab.train.segmentation import predict_volume  # noqa: E402

EXPERIMENTS = {"cardiac_unet3d": "cardiac-ch5-unet3d", "pspunet": "cardiac-ch5-pspunet"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-frames", type=int, default=2, help="frames timed at full width")
    parser.add_argument("--skip-full", action="store_true", help="time the fast widths only")
    parser.add_argument("--data-root", default=None, help="data root (default: a temporary folder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    root = args.data_root or tempfile.mkdtemp(prefix="cmrlab-bench-")
    location = get_dataset("acdc", data_root=root, synthetic=True, n_cases=1, progress=False)
    patient = read_patient(location.cases()[0])
    cine = patient.image4d
    n_frames = cine.shape[3]
    print(f"patient {patient.id}: cine {cine.shape} at {np.round(patient.spacing, 2)} mm, {n_frames} frames; "
          f"device {device}, {torch.get_num_threads()} thread(s)")

    rows = []
    for profile in ("fast", "full"):
        if profile == "full" and args.skip_full:
            continue
        for name, experiment in EXPERIMENTS.items():
            exp = load_experiment(experiment, profile)
            pre = dataclasses.asdict(exp.dataset.preprocessing)
            torch.manual_seed(0)
            model = exp.build_model().to(device).eval()
            frames = n_frames if profile == "fast" else min(args.full_frames, n_frames)
            volumes = [np.ascontiguousarray(cine[..., t]) for t in range(frames)]
            stacks = []
            for v in volumes:
                # the same preprocessing predict_volume applies (see cmrlab.train.segmentation)
                image = preprocess_volume(v, patient.spacing, target_spacing=tuple(pre["spacing"]),
                                          size=tuple(pre["size"]),
                                          normalise=pre["normalisation"] == "minmax").image
                windows, _ = slice_windows(image, pre["window"], pre["stride"])
                stacks.append(torch.from_numpy(windows)[:, None].to(device))

            def pipeline(model=model, volumes=volumes, pre=pre) -> None:
                with torch.no_grad():
                    for v in volumes:
                        predict_volume(model, v, patient.spacing, pre)

            def forward(model=model, stacks=stacks) -> None:
                with torch.no_grad():
                    for x in stacks:
                        model(x)

            repeats = args.repeats if profile == "fast" else 1
            times = time_interleaved({"pipeline": pipeline, "forward": forward}, device, repeats,
                                     warmup=1 if profile == "fast" else 0)
            scale = n_frames / frames
            rows.append((profile, name, sum(p.numel() for p in model.parameters()), frames,
                         times["pipeline"][0] * scale, times["forward"][0] * scale))

    print(f"\n{'width':<6}{'model':<16}{'parameters':>12}{'frames timed':>14}{'cine, s':>10}"
          f"{'forward, s':>12}{'ratio':>8}")
    for profile, name, params, frames, pipe, fwd in rows:
        note = "" if frames == n_frames else f"  (×{n_frames / frames:.1f} from {frames} frames)"
        print(f"{profile:<6}{name:<16}{params:>12,}{frames:>14}{pipe:>10.2f}{fwd:>12.2f}{pipe / fwd:>8.2f}{note}")
    print("\ncine, s: whole-cine inference per patient (every frame: preprocessing, windows, forward, "
          "reassembly, restoring); forward, s: the bare model on the same windows; ratio = cine / forward.")


if __name__ == "__main__":
    main()
