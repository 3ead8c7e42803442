"""Download the Medical Segmentation Decathlon brain-tumour or heart task into the data root.

    python data_scripts/msd.py --task Task01_BrainTumour [--data-root DIR] [--keep-archive]
    python data_scripts/msd.py --task Task02_Heart --verify-only

The archives are the ones MONAI's ``DecathlonDataset`` downloads (Amazon S3 bucket
``msd-for-monai``), checked with MONAI's MD5s; Task01's size is checked too. The result is
``<data root>/MSD/<task>/{dataset.json, imagesTr/, labelsTr/, imagesTs/}``; macOS ``._*`` files in
the archives are skipped. Licence: CC-BY-SA 4.0 (dataset.json); cite Antonelli et al. 2022 and
Simpson et al. 2019.
"""
from __future__ import annotations

import _common
from cmrlab.data.download import DatasetSource, archive_subfolder, fetch

#: The tasks this course uses: URL, MD5 (from MONAI 1.6 ``monai.apps.DecathlonDataset``) and
#: size in bytes (None: not published, not checked).
TASKS = {
    "Task01_BrainTumour": dict(
        url="https://msd-for-monai.s3-us-west-2.amazonaws.com/Task01_BrainTumour.tar",
        md5="240a19d752f0d9e9101544901065d872",
        size=7_608_266_240,
    ),
    "Task02_Heart": dict(
        url="https://msd-for-monai.s3-us-west-2.amazonaws.com/Task02_Heart.tar",
        md5="06ee59366e1e5124267b774dbd654057",
        size=None,
    ),
}


def main() -> int:
    parser = _common.make_parser(__doc__, downloads=True)
    parser.add_argument("--task", choices=sorted(TASKS), default="Task02_Heart",
                        help="which task (default: Task02_Heart, the small one)")
    args = parser.parse_args()
    root = _common.resolve_root(args)
    folder = root / "MSD" / args.task

    def check(path):
        return _common.check_with_reader("msd", path, deep=args.deep)

    if args.verify_only:
        return _common.verify_existing(f"MSD {args.task}", folder, check)

    task = TASKS[args.task]
    # Checksums given on the command line replace the published ones (and their size); a --url
    # alone (a mirror) is still checked against the published MD5 and size.
    pinned = bool(args.md5 or args.sha256)
    source = DatasetSource(
        name=f"MSD {args.task}",
        url=args.url or task["url"],
        folder=f"MSD/{args.task}",
        archive_name=f"{args.task}.tar",
        md5=args.md5 if pinned else task["md5"],
        sha256=args.sha256,
        size=args.size if args.size is not None or pinned else task["size"],
        max_bytes=args.max_bytes,
        locate=archive_subfolder(args.task),
    )
    result = fetch(source, root, keep_archive=args.keep_archive, archive=args.archive,
                   progress=not args.no_progress)
    return _common.verify(source.name, result.folder, check,
                          missing_ok_when_checksummed=result.downloaded)


if __name__ == "__main__":
    _common.run(main)
