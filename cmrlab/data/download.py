"""Download, verify and unpack the public datasets safely.

Three verbs, used by the scripts in ``data_scripts/``:

:func:`download`
    Streams a URL into a hidden partial file next to the destination (``.<name>.part``), resumes
    an interrupted transfer with an HTTP ``Range`` request, checks the size and the MD5/SHA-256
    checksum, and only then renames the partial file to the destination (``os.replace``, atomic on
    one file system). A checksum mismatch deletes the partial file: nothing is left behind. A
    destination that is already there and matches its checksum is returned without any network
    access.
:func:`extract`
    Unpacks a tar (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) or zip archive into a
    hidden sibling folder and renames it into place, so a failure leaves the destination untouched.
    Members that would write outside the destination are refused, naming the archive and the
    member: absolute paths, ``..`` components, links whose target leaves the destination, device
    files and FIFOs. macOS metadata (``._*`` AppleDouble files and ``__MACOSX/``) is skipped.
:func:`fetch`
    The common flow of a dataset script: download → verify → extract → move the dataset folder
    into the data root → run the dataset's layout check.

Only the standard library is used for the network (``urllib``); progress bars are tqdm's, through
:func:`cmrlab.viz.progress`.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Union

from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError
from cmrlab.viz.progress import progress as _progress_bar

__all__ = [
    "DatasetSource",
    "DownloadError",
    "FetchResult",
    "download",
    "extract",
    "fetch",
    "file_digest",
    "archive_subfolder",
    "partial_path",
]

PathLike = Union[str, os.PathLike]

#: Bytes read from the network (and from disk when hashing) at a time.
CHUNK = 1 << 20
#: Seconds a socket may stay silent before the transfer counts as interrupted.
TIMEOUT = 60.0
#: Sent with every request; some servers refuse urllib's default agent.
USER_AGENT = "cmrlab-data-scripts/0.1 (python-urllib)"
_HEX = {"md5": 32, "sha256": 64}


class DownloadError(CmrlabError):
    """A download failed: the server refused it, the transfer broke off, or the bytes are wrong.

    ``url`` is the address and ``problem`` says what went wrong; the message reads
    ``"<url>: <problem>"``. For a checksum mismatch ``algorithm``, ``expected`` and ``actual`` hold
    the two digests.
    """

    def __init__(
        self,
        url: str,
        problem: str,
        *,
        algorithm: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ):
        self.url = url
        self.problem = problem
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(f"{url}: {problem}")

    def __reduce__(self):  # keep the error picklable with its keyword-only fields
        return (_rebuild_download_error, (self.url, self.problem, self.algorithm, self.expected,
                                          self.actual))


def _rebuild_download_error(url, problem, algorithm, expected, actual) -> DownloadError:
    return DownloadError(url, problem, algorithm=algorithm, expected=expected, actual=actual)


class _Interrupted(DownloadError):
    """The transfer broke off part-way; the partial file is kept and another attempt resumes."""


# ----------------------------------------------------------------------------------------------
# Checksums
# ----------------------------------------------------------------------------------------------
def _check_digest(name: str, value: str | None) -> str | None:
    """Return a checksum argument in lower case, or raise :class:`ArgumentError` if malformed."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not re.fullmatch(rf"[0-9a-f]{{{_HEX[name]}}}", text):
        raise ArgumentError(
            f"{name} must be {_HEX[name]} hexadecimal digits, got {value!r}"
        )
    return text


def file_digest(path: PathLike, algorithm: str = "sha256", *, show_progress: bool = False) -> str:
    """Hexadecimal digest (``"md5"`` or ``"sha256"``) of a file's bytes, read in 1 MiB chunks."""
    if algorithm not in _HEX:
        raise ArgumentError(f"algorithm must be 'md5' or 'sha256', got {algorithm!r}")
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "does not exist or is not a file: nothing to checksum")
    hasher = hashlib.new(algorithm)
    bar = _progress_bar(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=f"{algorithm} {path.name}", disable=not show_progress, leave=False)
    with path.open("rb") as f, bar:
        while block := f.read(CHUNK):
            hasher.update(block)
            bar.update(len(block))
    return hasher.hexdigest()


def partial_path(dest: PathLike) -> Path:
    """The hidden file a download of ``dest`` streams into: ``<folder>/.<name>.part``."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------
def _content_range_total(header: str | None) -> int | None:
    """Total size from a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header."""
    match = re.fullmatch(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*", header or "")
    return int(match.group(1)) if match else None


def _content_range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", header or "")
    return int(match.group(1)) if match else None


def _verify_file(
    url: str, path: Path, size: int | None, digests: dict[str, str], progress: bool
) -> None:
    """Raise :class:`DownloadError` if ``path`` has the wrong size or checksum (the file stays)."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DownloadError(url, f"{path} has {actual_size:,} bytes, expected {size:,}")
    for algorithm, expected in digests.items():
        actual = file_digest(path, algorithm, show_progress=progress)
        if actual != expected:
            raise DownloadError(
                url,
                f"{algorithm} checksum mismatch for {path.name}: expected {expected}, got {actual}",
                algorithm=algorithm, expected=expected, actual=actual,
            )


def _open(url: str, start: int, timeout: float) -> Any:
    """Send a GET (with ``Range: bytes=start-`` when ``start > 0``) and return the response."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(
    url: str, part: Path, size: int | None, progress: bool, chunk: int, timeout: float
) -> None:
    """One attempt: bring ``part`` to the full length of the remote file.

    Resumes from the bytes already in ``part``. Raises :class:`DownloadError` when the server
    refuses or the connection breaks; the partial file is then kept for the next attempt.
    """
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start > size:  # longer than the file can be: not ours, start over
        part.unlink()
        start = 0
    if size is not None and start == size:
        return  # complete already; the caller verifies it
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start > 0:
            # "Range not satisfiable": we asked for bytes past the end, so the partial file holds
            # the whole file already (or more than it; the size/checksum check will tell).
            total = _content_range_total(exc.headers.get("Content-Range"))
            exc.close()
            if total is not None and total != start:
                part.unlink()
                raise DownloadError(
                    url, f"the partial file had {start:,} bytes but the file has {total:,}; "
                    "it was deleted, run again to download from the start") from None
            return
        raise DownloadError(url, f"the server answered HTTP {exc.code} ({exc.reason})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(url, f"cannot connect ({reason})") from None

    with response:
        status = getattr(response, "status", 200)
        if start > 0 and status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != start:
                raise DownloadError(
                    url, f"asked for bytes from {start:,}, the server sent "
                    f"{response.headers.get('Content-Range')!r}")
            total = _content_range_total(response.headers.get("Content-Range"))
            mode = "ab"
        else:  # 200: a fresh download, or a server that ignores Range (start again from 0)
            start = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if size is not None and total is not None and total != size:
            raise DownloadError(
                url, f"the server offers {total:,} bytes, expected {size:,}: wrong URL or the "
                "file changed (pass the new size and checksum if you trust it)")
        bar = _progress_bar(total=total, initial=start, unit="B", unit_scale=True,
                            unit_divisor=1024, desc=part.name.removeprefix(".").removesuffix(
                                ".part"), disable=not progress)
        received = start
        with part.open(mode) as out, bar:
            try:
                while block := response.read(chunk):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                out.flush()
                raise _Interrupted(
                    url, f"the transfer broke off after {received:,} bytes "
                    f"({type(exc).__name__}: {exc}); the partial file {part} is kept: run again "
                    "to resume") from None
    if total is not None and received < total:
        raise _Interrupted(
            url, f"the transfer stopped after {received:,} of {total:,} bytes; the partial file "
            f"{part} is kept: run again to resume")


def download(
    url: str,
    dest: PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    chunk: int = CHUNK,
    timeout: float = TIMEOUT,
    retries: int = 2,
) -> Path:
    """Download ``url`` to ``dest`` safely and return ``dest`` as a :class:`~pathlib.Path`.

    The bytes go to the hidden partial file :func:`partial_path` (``.<name>.part``). If that file
    is already there from an interrupted run, the download resumes with ``Range: bytes=N-``; a
    server that ignores ``Range`` (answers 200) makes it start again from byte 0, and one that
    answers 416 (range not satisfiable) means the partial file is complete. After the transfer the
    size (``size``, in bytes) and the checksums (``md5``, ``sha256``, hexadecimal) are checked and
    only then is the partial file renamed to ``dest``.

    - A checksum or size mismatch deletes the partial file and raises :class:`DownloadError`
      naming the URL and the expected and actual digests: nothing is left behind.
    - A broken connection keeps the partial file; after ``retries`` further attempts (each
      resuming) it raises :class:`DownloadError`, and running again resumes.
    - If ``dest`` exists already and matches ``size`` and the checksums, it is returned at once
      without network access; if it does not match, :class:`DownloadError` says so and leaves it.
      With no checksum and no size an existing ``dest`` is trusted as it is.
    """
    md5 = _check_digest("md5", md5)
    sha256 = _check_digest("sha256", sha256)
    if size is not None:
        size = int(size)
        if size < 0:
            raise ArgumentError(f"size must be a number of bytes >= 0, got {size}")
    if not isinstance(url, str) or not re.match(r"https?://", url):
        raise ArgumentError(f"url must start with http:// or https://, got {url!r}")
    if int(chunk) < 1:
        raise ArgumentError(f"chunk must be a positive number of bytes, got {chunk!r}")
    if int(retries) < 0:
        raise ArgumentError(f"retries must be >= 0, got {retries!r}")
    dest = Path(dest).expanduser()
    digests = {k: v for k, v in (("md5", md5), ("sha256", sha256)) if v is not None}

    if dest.is_dir():
        raise FileFormatError(dest, "is a folder: give the name of the file to download to")
    if dest.exists():
        _verify_file(url, dest, size, digests, progress)  # raises if it does not match
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(dest.parent, f"cannot be created ({exc.strerror or exc})") from None

    part = partial_path(dest)
    for attempt in range(int(retries) + 1):
        try:
            _transfer(url, part, size, progress, int(chunk), float(timeout))
            break
        except _Interrupted:
            if attempt == int(retries):
                raise
    if not part.exists():  # every successful attempt leaves it; guard against surprises
        raise DownloadError(url, "the server sent nothing")
    try:
        _verify_file(url, part, size, digests, progress)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------------------------
# extract
# ----------------------------------------------------------------------------------------------
def _is_macos_metadata(name: str) -> bool:
    """True for the AppleDouble ``._*`` files and the ``__MACOSX/`` folder macOS adds."""
    parts = [p for p in re.split(r"[\\/]", name) if p]
    return any(p == "__MACOSX" or p.startswith("._") for p in parts)


def _safe_relative(archive: Path, name: str) -> PurePosixPath:
    """Check a member name and return it as a relative path that stays inside the target.

    Refuses absolute names (``/x``, ``\\x``, ``C:x``), ``..`` components and empty names. A
    backslash counts as a separator here, so a Windows-made ``..\\x`` is refused too.
    """
    if not name or "\x00" in name:
        raise FileFormatError(archive, f"member {name!r} has an empty or invalid name")
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise FileFormatError(archive, f"member {name!r} has an absolute path: refused")
    parts = [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]
    if ".." in parts:
        raise FileFormatError(archive, f"member {name!r} points outside the target folder "
                                       "('..'): refused")
    if not parts:
        raise FileFormatError(archive, f"member {name!r} names no file")
    return PurePosixPath(*parts)


def _link_stays_inside(base: PurePosixPath, target: str) -> bool:
    """True if ``target`` (relative to folder ``base``, both archive-relative) stays inside."""
    if not target or target.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", target):
        return False
    depth = len(base.parts)
    for part in re.split(r"[\\/]", target):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return False
    return True


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> PurePosixPath:
    rel = _safe_relative(archive, member.name)
    if member.issym():
        if not _link_stays_inside(rel.parent, member.linkname):
            raise FileFormatError(
                archive, f"member {member.name!r} is a symbolic link to {member.linkname!r}, "
                "outside the target folder: refused")
    elif member.islnk():
        if not _link_stays_inside(PurePosixPath(), member.linkname):
            raise FileFormatError(
                archive, f"member {member.name!r} is a hard link to {member.linkname!r}, "
                "outside the target folder: refused")
    elif member.ischr() or member.isblk() or member.isfifo():
        raise FileFormatError(archive, f"member {member.name!r} is a device file or FIFO: refused")
    elif not (member.isfile() or member.isdir()):
        raise FileFormatError(archive, f"member {member.name!r} has an unsupported type "
                                       f"{member.type!r}: refused")
    return rel


def _extract_tar(
    archive: Path, target: Path, keep: Callable[[str], bool]
) -> list[PurePosixPath]:
    """Check and extract each tar member in one pass over the archive (no random access)."""
    written: list[PurePosixPath] = []
    has_filter = hasattr(tarfile, "data_filter")  # Python >= 3.11.4 / 3.10.12
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if _is_macos_metadata(member.name):
                continue
            rel = _check_tar_member(archive, member)
            if not keep(str(rel)):
                continue
            member.name = str(rel)  # the cleaned name (no leading "./")
            try:
                if has_filter:
                    tar.extract(member, target, filter="data")
                else:
                    tar.extract(member, target, set_attrs=False)
            except tarfile.FilterError as exc:  # our checks should have caught it first
                raise FileFormatError(archive, f"member {member.name!r} refused ({exc})") from None
            if not member.isdir():
                written.append(rel)
    return written


def _extract_zip(
    archive: Path, target: Path, keep: Callable[[str], bool]
) -> list[PurePosixPath]:
    """Check and extract each zip member; zipfile checks every member's CRC-32 as it reads."""
    written: list[PurePosixPath] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if _is_macos_metadata(info.filename):
                continue
            rel = _safe_relative(archive, info.filename)
            # The Unix file type sits in the high 16 bits when the zip was made on Unix (3);
            # many writers leave it 0, which means a regular file or a folder.
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            if stat.S_ISLNK(mode):
                raise FileFormatError(archive, f"member {info.filename!r} is a symbolic link: "
                                               "links in zip archives are refused")
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise FileFormatError(archive, f"member {info.filename!r} is a device file or "
                                               "FIFO: refused")
            if not keep(str(rel)):
                continue
            out = target.joinpath(*rel.parts)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            written.append(rel)
    return written


def _archive_kind(archive: Path) -> str:
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except OSError:
        pass
    raise FileFormatError(archive, "is neither a tar (.tar, .tar.gz, .tgz) nor a zip archive")


def extract(
    archive: PathLike,
    dest: PathLike,
    *,
    members_filter: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Unpack a tar or zip ``archive`` into the folder ``dest`` and return the files written.

    ``dest`` must not exist yet (or be an empty folder). Everything is first unpacked into a
    hidden sibling folder ``.<dest>.extract-<random>``, which is renamed to ``dest`` only when all
    members are out, so a failure leaves ``dest`` as it was and removes the partial folder.

    Every member is checked before it is written; a bad one stops the extraction with
    :class:`~cmrlab.errors.FileFormatError` naming the archive and the member: absolute paths,
    ``..`` components, symbolic or hard links whose target leaves ``dest`` (zip: any symbolic
    link), device files and FIFOs. AppleDouble ``._*`` files and ``__MACOSX/`` are skipped.
    ``members_filter(name)`` (the member's cleaned relative name, ``/``-separated) returns False
    for members to leave out. The result lists the final paths of the extracted files and links,
    sorted; folders are not listed.
    """
    archive = Path(archive).expanduser()
    dest = Path(dest).expanduser()
    if not archive.is_file():
        raise FileFormatError(archive, "does not exist or is not a file: nothing to extract")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileFormatError(dest, "exists already and is not an empty folder: move it away or "
                                    "delete it before extracting again")
    keep = members_filter or (lambda name: True)
    kind = _archive_kind(archive)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(dest.parent, f"cannot be created ({exc.strerror or exc})") from None
    staging = dest.with_name(f".{dest.name}.extract-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        try:
            if kind == "zip":
                written = _extract_zip(archive, staging, keep)
            else:
                written = _extract_tar(archive, staging, keep)
        except CmrlabError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
            raise FileFormatError(archive, f"is damaged or truncated ({type(exc).__name__}: "
                                           f"{exc}); download it again") from None
        except OSError as exc:
            raise FileFormatError(archive, f"could not be extracted into {dest} "
                                           f"({exc.strerror or exc})") from None
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(dest.joinpath(*rel.parts) for rel in written)


# ----------------------------------------------------------------------------------------------
# fetch
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and where it goes.

    ``folder`` is the dataset's folder relative to the data root (``"MSD/Task02_Heart"``).
    ``archive_name`` is the file name the archive is saved under (in ``<data root>/downloads/``).
    ``locate(extracted)`` returns the folder inside the unpacked archive that becomes ``folder``
    (default: the unpacked archive itself); :func:`archive_subfolder` makes one for a fixed name.
    ``verify(folder)`` checks the layout once the folder is in place (e.g. a format module's
    ``check_dataset``) and its result is returned by :func:`fetch`.
    """

    name: str
    url: str
    folder: str
    archive_name: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    locate: Callable[[Path], Path] | None = None
    members_filter: Callable[[str], bool] | None = None
    verify: Callable[[Path], Any] | None = None


def archive_subfolder(name: str) -> Callable[[Path], Path]:
    """A ``locate`` function for archives whose dataset sits in the top folder ``name``."""

    def locate(extracted: Path) -> Path:
        found = extracted / name
        if not found.is_dir():
            inside = sorted(p.name for p in extracted.iterdir())[:10]
            raise FileFormatError(found, f"the archive has no folder {name!r} at its top "
                                         f"(it holds {inside}); is it the right archive?")
        return found

    return locate


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did: the dataset folder, the archive (None once deleted), its SHA-256
    (computed when no SHA-256 was given, so it can be pinned next time; else the given one), and
    the layout check's report (None without a check)."""

    folder: Path
    archive: Path | None
    sha256: str | None
    report: Any
    downloaded: bool


def fetch(
    source: DatasetSource,
    root: PathLike,
    *,
    keep_archive: bool = False,
    archive: PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> FetchResult:
    """Download ``source`` into the data root ``root`` and check it: the scripts' common flow.

    1. If ``<root>/<source.folder>`` exists already, only the layout check runs.
    2. :func:`download` the archive to ``<root>/downloads/<archive_name>`` (resuming, checking
       ``size``/``md5``/``sha256``). Without a pinned SHA-256 the archive's SHA-256 is computed and
       returned, so a user can pin it next time.
    3. :func:`extract` it into a hidden staging folder next to the dataset folder, pick the
       dataset folder with ``source.locate`` and rename it to ``<root>/<source.folder>``; the
       staging folder is then removed. Nothing half-extracted is ever at the final place.
    4. Delete the downloaded archive unless ``keep_archive``.

    ``archive`` names an archive downloaded by hand (e.g. in a browser) to use instead of the URL:
    it is checked against ``size``/``md5``/``sha256`` the same way and never deleted.
    5. Run ``source.verify`` on the dataset folder. If it fails, the folder stays (the download
       was verified by its checksum; the error says what the layout check found).
    """
    say = log or (lambda message: print(message, file=sys.stderr))
    root = Path(root).expanduser()
    folder = root / source.folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        say(f"{source.name}: {folder} exists already; skipping the download")
        report = source.verify(folder) if source.verify else None
        return FetchResult(folder, None, None, report, downloaded=False)

    if archive is not None:
        archive = Path(archive).expanduser()
        keep_archive = True
        if not archive.is_file():
            raise FileFormatError(archive, "does not exist or is not a file")
        say(f"{source.name}: checking {archive}")
        _verify_file(str(archive), archive, source.size,
                     {k: v for k, v in (("md5", _check_digest("md5", source.md5)),
                                        ("sha256", _check_digest("sha256", source.sha256))) if v},
                     progress)
    else:
        archive = root / "downloads" / source.archive_name
        say(f"{source.name}: downloading {source.url}\n  to {archive}")
        try:
            download(source.url, archive, md5=source.md5, sha256=source.sha256,
                     size=source.size, progress=progress)
        except CmrlabError:
            _remove_if_empty(archive.parent)  # a partial file from a broken transfer stays
            raise
    if source.sha256:
        digest: str | None = source.sha256
    else:
        digest = file_digest(archive, "sha256", show_progress=progress)
        say(f"{source.name}: sha256 of the archive: {digest}")

    staging = folder.with_name(f".{folder.name}.staging-{uuid.uuid4().hex[:8]}")
    try:
        say(f"{source.name}: extracting {archive.name}")
        extract(archive, staging, members_filter=source.members_filter)
        found = source.locate(staging) if source.locate else staging
        if folder.exists():
            folder.rmdir()  # empty, checked above
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(found, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(folder.parent, stop=root)
        raise
    shutil.rmtree(staging, ignore_errors=True)  # what the archive held besides the dataset
    if not keep_archive:
        archive.unlink()
        _remove_if_empty(archive.parent)
    say(f"{source.name}: extracted into {folder}")
    report = source.verify(folder) if source.verify else None
    return FetchResult(folder, archive if keep_archive else None, digest, report, downloaded=True)


def _remove_if_empty(folder: Path, stop: Path | None = None) -> None:
    """Remove ``folder`` (and then its parents, up to but not including ``stop``) while empty."""
    while folder != stop:
        try:
            folder.rmdir()
        except OSError:  # not empty, or not there
            return
        if stop is None:
            return
        folder = folder.parent
