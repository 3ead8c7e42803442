"""Shared pieces of the dataset scripts in this folder: command line, data root, verify step.

Not a script itself. Each ``data_scripts/<name>.py`` imports it (the script's own folder is on
``sys.path`` when it runs as ``python data_scripts/<name>.py``).

Exit codes of every script: 0 the data are in place and checked; 1 the data are missing (the
instructions were printed) or a check failed; 2 bad command-line arguments (argparse);
130 interrupted with Ctrl-C (a partial download is kept and resumes on the next run).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmrlab.config import data_root as default_data_root
from cmrlab.errors import CmrlabError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class ReaderMissing(CmrlabError):
    """The format module that checks a dataset's layout is not part of this cmrlab version."""


def make_parser(description: str, *, downloads: bool) -> argparse.ArgumentParser:
    """The common options; ``downloads`` adds those of the scripts that download an archive."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                        help="the data root (default: $CMRLAB_DATA_ROOT, else ~/cmrlab-data)")
    parser.add_argument("--verify-only", action="store_true",
                        help="download nothing; only check the files already under the data root")
    parser.add_argument("--deep", action="store_true",
                        help="read every case while checking (slower)")
    if downloads:
        parser.add_argument("--url", default=None, help="download from this URL instead")
        parser.add_argument("--md5", default=None, help="expected MD5 of the archive (hex)")
        parser.add_argument("--sha256", default=None, help="expected SHA-256 of the archive (hex)")
        parser.add_argument("--size", type=int, default=None,
                            help="expected size of the archive in bytes")
        parser.add_argument("--max-bytes", type=int, default=None, metavar="BYTES",
                            help="the most bytes the archive may unpack to (default: "
                                 "$CMRLAB_MAX_EXTRACT_BYTES, else 64 GiB)")
        parser.add_argument("--archive", type=Path, default=None, metavar="FILE",
                            help="use an archive you downloaded yourself instead of the URL")
        parser.add_argument("--keep-archive", action="store_true",
                            help="keep the downloaded archive in <data root>/downloads/")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def resolve_root(args: argparse.Namespace) -> Path:
    """The data root: ``--data-root`` if given, else :func:`cmrlab.config.data_root`."""
    return Path(args.data_root).expanduser() if args.data_root else Path(default_data_root())


def has_files(folder: Path) -> bool:
    """True if ``folder`` is a folder with anything in it."""
    return folder.is_dir() and any(folder.iterdir())


def check_with_reader(module_name: str, folder: Path, *, deep: bool = False) -> Any:
    """Run ``cmrlab.data.<module_name>.check_dataset(folder, deep=deep)`` and return its report.

    The module is imported by name when needed, so this script works (and says so) with a cmrlab
    version that has no reader for the format yet: :class:`ReaderMissing` then.
    """
    full = f"cmrlab.data.{module_name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name in (full, "cmrlab.data"):
            raise ReaderMissing(
                f"this cmrlab version has no {full} module, so the layout of {folder} cannot be "
                "checked") from None
        raise
    check = getattr(module, "check_dataset", None)
    if check is None:
        raise ReaderMissing(f"{full} has no check_dataset(); the layout of {folder} cannot be "
                            "checked")
    return check(folder, deep=deep)


def describe(report: Any) -> str:
    """A report in a few lines: its fields when it is a dataclass, else its ``repr``."""
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        lines = []
        for field in dataclasses.fields(report):
            value = getattr(report, field.name)
            if isinstance(value, (list, tuple)) and len(value) > 5:
                value = f"{list(value[:5])} … ({len(value)} in all)"
            lines.append(f"  {field.name}: {value}")
        return "\n".join(lines)
    return f"  {report!r}"


def print_instructions(text: str) -> None:
    """Print step-by-step instructions (dedented) on standard output."""
    print(textwrap.dedent(text).strip() + "\n")


def fail(message: str) -> int:
    """Print ``error: message`` on standard error and return the failure exit code."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def verify(name: str, folder: Path, check: Callable[[Path], Any], *,
           missing_ok_when_checksummed: bool = False) -> int:
    """Run the layout check ``check(folder)``, print its report and return an exit code.

    With ``missing_ok_when_checksummed`` (the archive's checksum was verified), a missing reader
    is a warning and the exit code is 0: the bytes are known to be right.
    """
    try:
        report = check(folder)
    except ReaderMissing as exc:
        if missing_ok_when_checksummed:
            print(f"warning: {exc}; the archive's checksum was verified", file=sys.stderr)
            return EXIT_OK
        return fail(str(exc))
    except CmrlabError as exc:
        return fail(f"{name} layout check failed: {exc}")
    print(f"{name}: {folder} looks right")
    print(describe(report))
    return EXIT_OK


def registration_only(name: str, folder: Path, instructions: str,
                      check: Callable[[Path], Any], *, verify_only: bool) -> int:
    """The flow of a dataset that needs a registration: instructions, or the check when present."""
    if not has_files(folder):
        if not verify_only:
            print_instructions(instructions)
        return fail(f"{name} not found: {folder} is missing or empty. "
                    + ("Run without --verify-only for the download steps."
                       if verify_only else "Follow the steps above, then run this script again."))
    return verify(name, folder, check)


def verify_existing(name: str, folder: Path, check: Callable[[Path], Any]) -> int:
    """``--verify-only`` of a download script: check ``folder``, or fail if it is missing or empty."""
    if not has_files(folder):
        return fail(f"{folder} is missing or empty: run without --verify-only to download it")
    return verify(name, folder, check)


def registration_main(description: str, name: str, folder: str, reader: str,
                      instructions: str) -> Callable[[], int]:
    """The ``main`` of a registration-only script: parse the common options, then
    :func:`registration_only` on ``<data root>/<folder>`` with ``cmrlab.data.<reader>``'s check.

    ``instructions`` may use ``{folder}`` (the dataset folder) and ``{root}`` (the data root).
    """

    def main() -> int:
        args = make_parser(description, downloads=False).parse_args()
        root = resolve_root(args)
        path = root / folder
        return registration_only(
            name, path, instructions.format(folder=path, root=root),
            lambda found: check_with_reader(reader, found, deep=args.deep),
            verify_only=args.verify_only)

    return main


def run(main: Callable[[], int]) -> None:
    """Call ``main()`` and exit with its code; a cmrlab error becomes one clear line, no traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("\ninterrupted: a partial download is kept and resumes when you run this again",
              file=sys.stderr)
        code = EXIT_INTERRUPTED
    except CmrlabError as exc:
        code = fail(str(exc))
    sys.exit(code)
