"""Benchmark: inference time per case of the chapter-6 regression U-Net and the chapter-7 FrameDetector.

Each model runs as ``cmrlab evaluate`` / ``cmrlab predict`` run it per case, minus file I/O, on
one synthetic ACDC patient, against a **peer**, the bare model forward on the same tensor
(already preprocessed, on the device); the ratio ``pipeline / forward`` is what the task code adds.

* **Regression U-Net** (ch. 6, thesis: 1.07 s per case on a GPU): the pipeline is
  :func:`cmrlab.train.volume.predict_case` on the patient's ED volume: min-max, in-plane
  resampling, crop/pad, the forward with the voxel size, and the CAM, area and diameters to NumPy.
  The peer is ``model(x, spacing=...)`` with ``x`` and the spacing built as ``predict_case`` builds
  them (``_model_input``, ``_voxel``).
* **FrameDetector** (ch. 7, thesis: 0.1 s per case on a GPU): the pipeline is
  :func:`cmrlab.train.frames.project_cine` of the whole cine (resampling of every frame, crop/pad,
  min-max per frame, the median projection), :func:`~cmrlab.train.frames.predict_frames` and the
  selection of one ES and one ED frame by the naïve and the central method (``_select``, as
  ``FrameDetectionTask.evaluate`` and ``predict_file`` do it). The data are one cine of the
  ``long-cines`` synthetic variant (20-35 frames, the fast profile's data). The peer is the model on
  the projected frames ``(1, T, H, W)``.

The preprocessing alone (the same calls up to the model's input tensor) is timed too and printed
as its share of the pipeline. It does not grow with the network's width, so at ``fast`` width on a
CPU, where the networks are tiny (48×48 at 4 mm, 32×32 at 5 mm), it may dominate and the ratio
then exceeds 1.1; that is expected. The target, overhead ratio ≤ 1.1, is for ``full`` width (the
thesis's networks: 21.7 M parameters at 88×88 and 2 mm; 4.69 M at 176×176 and 1 mm), where the
network dominates. The FrameDetector's preprocessing resamples every frame of the cine to 1 mm
before the crop (0.5-1 s on one core for 35 frames), so even at full width it is about a tenth of
the pipeline on a CPU and the ratio sits near or above 1.1; on a GPU, where the forward is much
faster and the preprocessing stays on the CPU, its share would be larger still. Full width on a
CPU is slow (seconds per forward), so it is timed with ``--full-repeats`` (default 2) after one
warm-up call. Weights are random (timing does not depend on them); models are in eval mode under
``torch.no_grad()``. Ratios use the best times of :func:`_timing.time_interleaved`.

Run: ``python benchmarks/bench_task_inference.py [--threads 1] [--repeats 5] [--full-repeats 2]
[--device cpu|cuda] [--skip-full] [--data-root DIR]``.
"""
from __future__ import annotations

import argparse
import os
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
from cmrlab.train import frames as _frames  # noqa: E402
from cmrlab.train import volume as _volume  # noqa: E402
from cmrlab.train.experiment import load_experiment  # noqa: E402
from cmrlab.train.runner import preprocessing_of  # noqa: E402

REGRESSION = "cardiac-ch6-regression-unet"
FRAMES = "cardiac-ch7-framedetector-wce"
THESIS_SECONDS = {REGRESSION: _volume.THESIS_CH6["seconds_per_case"], FRAMES: 0.1}


def _regression_fns(exp, model, patient, device):
    """pipeline, preprocessing alone and bare forward of the regression U-Net on the ED volume."""
    pre = preprocessing_of(exp)
    image, spacing, affine = patient.ed_image, [float(s) for s in patient.spacing[:3]], patient.affine

    def preprocess():
        prep = _volume._preprocess(pre, image, spacing, None, affine)
        return (_volume._model_input(prep.image)[None].to(device),
                _volume._voxel(pre, spacing[2]).to(device))

    x, voxel = preprocess()

    def pipeline() -> None:
        with torch.no_grad():
            _volume.predict_case(model, image, spacing, pre, affine=affine)

    def forward() -> None:
        with torch.no_grad():
            model(x, spacing=voxel)

    return pipeline, preprocess, forward, tuple(x.shape)


def _frame_fns(exp, model, patient, device):
    """pipeline, preprocessing alone and bare forward of the FrameDetector on the whole cine."""
    pre = preprocessing_of(exp)
    cine, spacing = patient.image4d, patient.spacing
    threshold = float(exp.evaluation.option("frame_detection", "central_threshold"))
    head = exp.model.kwargs.get("head", "classes")

    def preprocess():
        return _frames._model_input(_frames.project_cine(cine, spacing, pre))[None].to(device)

    x = preprocess()

    def pipeline() -> None:
        with torch.no_grad():
            probs = _frames.predict_frames(model, _frames.project_cine(cine, spacing, pre))
            for method in ("naive", "central"):
                _frames._select(probs, head, method, threshold)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    return pipeline, preprocess, forward, tuple(x.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats at fast width")
    parser.add_argument("--full-repeats", type=int, default=2, help="timed repeats at full width")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-full", action="store_true", help="time the fast widths only")
    parser.add_argument("--data-root", default=None, help="data root (default: a temporary folder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    root = args.data_root or tempfile.mkdtemp(prefix="cmrlab-bench-")
    ed_patient = read_patient(get_dataset("acdc", data_root=root, synthetic=True, n_cases=1,
                                          progress=False).cases()[0])
    cine_patient = read_patient(get_dataset("acdc", data_root=root, synthetic=True, n_cases=1,
                                            variant="long-cines", progress=False).cases()[0])
    print(f"ED volume: patient {ed_patient.id}, {ed_patient.ed_image.shape} at "
          f"{np.round(ed_patient.spacing, 2)} mm; cine: patient {cine_patient.id} (long-cines), "
          f"{cine_patient.image4d.shape} at {np.round(cine_patient.spacing, 2)} mm")
    print(f"{os.cpu_count()} CPU(s), device {device}, {torch.get_num_threads()} torch thread(s)")

    rows = []
    for profile in ("fast", "full"):
        if profile == "full" and args.skip_full:
            continue
        for experiment, build, patient in ((REGRESSION, _regression_fns, ed_patient),
                                           (FRAMES, _frame_fns, cine_patient)):
            exp = load_experiment(experiment, profile)
            torch.manual_seed(0)
            model = exp.build_model().to(device).eval()
            pipeline, preprocess, forward, shape = build(exp, model, patient, device)
            repeats = args.repeats if profile == "fast" else args.full_repeats
            times = time_interleaved({"pipeline": pipeline, "preprocess": preprocess, "forward": forward},
                                     device, repeats, warmup=1)
            rows.append((exp.model.name, profile, sum(p.numel() for p in model.parameters()), shape,
                         times["pipeline"][0], times["preprocess"][0], times["forward"][0],
                         THESIS_SECONDS[experiment]))
            print(f"  timed {exp.model.name} ({profile}): input {shape}, {repeats} repeat(s)", flush=True)

    print(f"\n{'model':<18}{'width':<6}{'parameters':>12}{'pipeline, s':>13}{'forward, s':>12}{'ratio':>8}"
          f"{'preprocess, s':>15}{'share':>8}{'thesis, s (GPU)':>17}")
    for name, profile, params, _, pipe, prep, fwd, thesis in rows:
        print(f"{name:<18}{profile:<6}{params:>12,}{pipe:>13.4f}{fwd:>12.4f}{pipe / fwd:>8.2f}"
              f"{prep:>15.4f}{100 * prep / pipe:>7.0f}%{thesis:>17.2f}")
    print("\npipeline, s: per case as evaluate/predict run it without file I/O (regression: predict_case on "
          "the ED volume; frames: project_cine + predict_frames + naive and central selection); forward, s: "
          "the bare model on the same preprocessed tensor; ratio = pipeline / forward (target ≤ 1.1 at full "
          "width); preprocess, s: the preprocessing alone up to the model's input, share = preprocess / "
          "pipeline. Best of the repeats.")


if __name__ == "__main__":
    main()
