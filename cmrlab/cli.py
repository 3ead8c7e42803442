"""The ``cmrlab`` command: what instructors and full-scale runs use instead of a notebook.

::

    cmrlab info                                   environment, devices, data root, datasets
    cmrlab data list                              the datasets the course knows, real or synthetic
    cmrlab data synth acdc --cases 20 --out DIR   write a synthetic dataset in the real layout
                                                  (--variant long-cines: the ch. 7 cines)
    cmrlab train cardiac-ch5-pspunet [--profile full] [--data-root DIR] [--out DIR] [--resume]
    cmrlab evaluate cardiac-ch5-pspunet --checkpoint RUN/best.pt
    cmrlab predict --checkpoint RUN/best.pt IMAGE.nii.gz [...] --out DIR

Every mistake a user can make (a bad option, a missing file, an unknown config key, a ``--set``
value that is not valid YAML or not a finite number, a damaged run folder or checkpoint) ends with
one line ``cmrlab: error: ...`` naming it and exit status 2, never a traceback; nothing is written
to the run folder before the configuration has been checked.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError, CmrlabError

__all__ = ["main"]


# --------------------------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------------------------
def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from cmrlab.config import data_root, select_device
    from cmrlab.data.datasets import DATASETS

    print(f"cmrlab {_version('cmrlab')} on Python {platform.python_version()} ({platform.platform()})")
    for name in ("torch", "numpy", "monai", "SimpleITK", "nibabel", "pydicom", "jupyter-book"):
        print(f"  {name:12s} {_version(name)}")
    print(f"devices: cuda {'yes, ' + str(torch.cuda.device_count()) + ' GPU(s)' if torch.cuda.is_available() else 'no'}"
          f"; mps {'yes' if getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available() else 'no'}"
          f"; chosen: {select_device(args.device)}; CPU threads {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB")
    root = data_root(args.data_root)
    print(f"data root: {root}{'' if root.exists() else ' (does not exist yet)'}")
    for info in DATASETS.values():
        real = root / info.folder
        synth = root / "synthetic" / info.folder
        cached = sorted(p.name for p in synth.glob("n*-seed*")) if synth.is_dir() else []
        print(f"  {info.name:11s} real: {'present' if real.exists() else 'absent':7s}"
              f" synthetic cached: {', '.join(cached) or 'none'}")
    return 0


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def cmd_data_list(args: argparse.Namespace) -> int:
    from cmrlab.config import data_root
    from cmrlab.data.datasets import DATASETS

    root = data_root(args.data_root)
    for info in DATASETS.values():
        present = (root / info.folder).exists()
        print(f"{info.name:11s} {info.title:34s} {'real data present' if present else 'synthetic':18s}"
              f" {info.description}")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from cmrlab.data.datasets import dataset_info, synthesize

    info = dataset_info(args.name)
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):  # said in the command's words
        raise CmrlabError(f"--out {out}: exists and is not an empty folder; choose a new folder")
    synthesize(info.name, out, n_cases=args.cases, seed=args.seed, size=args.size, variant=args.variant)
    print(f"wrote {args.cases} synthetic {info.title} case(s){' (' + args.variant + ')' if args.variant else ''} to {out}")
    return 0


# --------------------------------------------------------------------------------------------
# train / evaluate / predict
# --------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from cmrlab.train.runner import train_experiment

    result = train_experiment(args.config, profile=args.profile, data_root=args.data_root,
                              out=args.out, resume=args.resume, device=args.device,
                              overrides=args.set)
    print(result.summary())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cmrlab.train.runner import evaluate_experiment

    result = evaluate_experiment(args.config, args.checkpoint, profile=args.profile,
                                 data_root=args.data_root, device=args.device, out=args.out,
                                 overrides=args.set)
    print(result.summary())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cmrlab.train.runner import predict_files

    written = predict_files(args.checkpoint, args.inputs, out=args.out, device=args.device)
    for path in written:
        print(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------------------------
def _whole_number(minimum: int):
    """An argparse type: a whole number ≥ ``minimum``, else a message naming the value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        try:
            return check_int("the value", value, minimum)
        except ArgumentError:
            raise argparse.ArgumentTypeError(f"expected a number ≥ {minimum}, got {value}") from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmrlab", description="The cmrlab course kit: data, training, inference.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser, profile: bool = False) -> None:
        p.add_argument("--data-root", metavar="DIR", help="folder holding the datasets "
                       "(default: $CMRLAB_DATA_ROOT, else ~/cmrlab-data)")
        p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the profile decides)")
        if profile:
            p.add_argument("--profile", choices=("fast", "full"), default="fast",
                           help="fast: CPU, synthetic data, small widths; full: the thesis settings")

    p = sub.add_parser("info", help="environment, devices, data root and datasets")
    common(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("data", help="list or generate datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    q = dsub.add_parser("list", help="the datasets the course knows")
    q.add_argument("--data-root", metavar="DIR")
    q.set_defaults(func=cmd_data_list)
    q = dsub.add_parser("synth", help="write N synthetic cases in a dataset's real layout")
    q.add_argument("name", help="acdc, mnms, sunnybrook, iseg2017, mrbrains18, brats2021, msd-task01")
    q.add_argument("--cases", type=_whole_number(1), default=10, help="number of cases (default 10)")
    q.add_argument("--seed", type=_whole_number(0), default=0, help="random seed (default 0)")
    q.add_argument("--size", choices=("fast", "full"), default="fast",
                   help="fast: laptop-sized cases (default); full: the published matrix sizes")
    q.add_argument("--variant", default=None, help="a variant of the synthetic data, e.g. long-cines for "
                   "acdc (20-35 frames, ED on any frame: the ES/ED detection chapter's data)")
    q.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder to write into")
    q.set_defaults(func=cmd_data_synth)

    p = sub.add_parser("train", help="train an experiment (a name from `cmrlab train --list` or a YAML file)")
    p.add_argument("config", help="experiment name or YAML file")
    common(p, profile=True)
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<experiment>-<profile>)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set epochs=2 (repeatable)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained checkpoint on the experiment's test cases")
    p.add_argument("config", help="experiment name or YAML file")
    p.add_argument("--checkpoint", required=True, metavar="FILE")
    p.add_argument("--out", metavar="DIR", help="where to write the per-case metrics CSV")
    common(p, profile=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value as for train (the data and split settings must match)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="segment NIfTI images; writes label maps with the input's geometry")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="NIfTI files (3D, or 4D cine: every frame)")
    p.add_argument("--checkpoint", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CmrlabError as exc:
        print(f"cmrlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmrlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
