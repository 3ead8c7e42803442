"""Download ACDC (MICCAI 2017 Automated Cardiac Diagnosis Challenge) into the data root.

    python data_scripts/acdc.py [--data-root DIR] [--sha256 HEX] [--keep-archive]
    python data_scripts/acdc.py --archive ~/Downloads/acdc.zip     # a zip you downloaded yourself
    python data_scripts/acdc.py --verify-only

The zip is the download of the "ACDC" folder of the Human Heart Project's Girder server at
CREATIS (the direct link the CineMA README uses). No checksum is published for it, so the script
prints the SHA-256 it computed: pass it with ``--sha256`` next time to pin that exact file.
Without a checksum the download is still checked before it is kept: it must start like a zip
(an HTML login page is named as such), be no larger than ``MAX_ZIP_BYTES`` (or exactly
``--size``) and read as a whole zip, every member's CRC-32 included; anything else is deleted and
the next run downloads it again. The result is
``<data root>/ACDC/database/{training,testing}/patientXXX/`` (Info.cfg, patientXXX_4d.nii.gz,
patientXXX_frameYY.nii.gz, patientXXX_frameYY_gt.nii.gz).

Terms: free for non-commercial scientific research only (CC BY-NC-SA 4.0 as stated in the
dataset's LICENSE_TERMS.md); cite Bernard et al., IEEE TMI 37(11) 2018, doi:10.1109/TMI.2018.2837502.
Landing page: https://www.creatis.insa-lyon.fr/Challenge/acdc/
"""
from __future__ import annotations

from pathlib import Path

import _common
from cmrlab.data.download import DatasetSource, fetch
from cmrlab.errors import FileFormatError

URL = ("https://humanheart-project.creatis.insa-lyon.fr/database/api/v1/folder/"
       "637218e573e9f0047faa00fc/download")
#: No size is published for the zip either, so it is bounded instead: a server that sends more
#: (an endless stream, the wrong folder) is cut off there and nothing is kept. The dataset is a
#: few GB; these bounds are generous. ``--size`` pins the exact size instead.
MAX_ZIP_BYTES = 16 * 1024**3
#: The most bytes the zip may unpack to (its members are mostly .nii.gz, stored nearly as is).
MAX_UNPACKED_BYTES = 32 * 1024**3


def locate_database(extracted: Path) -> Path:
    """The folder holding ``training/`` (ACDC's ``database/``), wherever the zip put it.

    A Girder folder download wraps the data in the folder's own name, so ``training/`` may sit at
    the top, under ``database/`` or under ``ACDC/database/``; look up to three levels down.
    """
    level = [extracted]
    for _ in range(4):
        for folder in level:
            if (folder / "training").is_dir():
                return folder
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir())
    raise FileFormatError(extracted, "the archive has no 'training' folder within three levels: "
                                     "is it the ACDC zip?")


def main() -> int:
    args = _common.make_parser(__doc__, downloads=True).parse_args()
    root = _common.resolve_root(args)
    dataset = root / "ACDC"

    def check(path):
        return _common.check_with_reader("acdc", dataset, deep=args.deep)

    if args.verify_only:
        return _common.verify_existing("ACDC", dataset, check)

    if not (args.md5 or args.sha256):
        print("note: no checksum is published for the ACDC zip; the SHA-256 computed after the "
              "download is printed below (pin it with --sha256)")
    source = DatasetSource(
        name="ACDC",
        url=args.url or URL,
        folder="ACDC/database",
        archive_name="acdc.zip",
        md5=args.md5,
        sha256=args.sha256,
        size=args.size,
        max_size=None if args.size is not None else MAX_ZIP_BYTES,
        max_bytes=args.max_bytes if args.max_bytes is not None else MAX_UNPACKED_BYTES,
        locate=locate_database,
    )
    result = fetch(source, root, keep_archive=args.keep_archive, archive=args.archive,
                   progress=not args.no_progress)
    if result.sha256 and not args.sha256:
        print(f"sha256 {result.sha256}  (pin it: --sha256 {result.sha256})")
    # A fresh download passed its zip CRC-32 checks (and the checksum, if pinned).
    return _common.verify("ACDC", dataset, check, missing_ok_when_checksummed=result.downloaded)


if __name__ == "__main__":
    _common.run(main)
