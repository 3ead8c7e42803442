"""Download, verify and unpack the public datasets safely.

Three verbs, used by the scripts in ``data_scripts/``:

:func:`download`
    Streams a URL into the hidden resumable partial file :func:`partial_path`
    (``.<name>.download.partial``) next to the destination, beside a small record of what it holds
    (``.<name>.download.partial.json``: the URL, the pinned size and checksums, and the server's
    length, ETag and Last-Modified). An interrupted transfer resumes with an HTTP ``Range`` request
    (plus ``If-Range``, so a file that changed on the server is sent again whole), but only when
    the record matches this call: a partial file from another URL, another pinned file or an
    older cmrlab is deleted and the download starts from byte 0. Before the partial file is
    renamed to the destination (``os.replace``, atomic on one file system) it must pass every
    check that applies: the size (pinned, or the length the server announced), the MD5/SHA-256
    checksum, the type (the magic bytes the destination's extension promises, so an HTML login
    page is named as such) and, when no checksum is pinned, the archive's integrity (a full read
    of the zip or tar). A file that fails is deleted: nothing wrong is ever left under the final
    name. A destination that is already there is checked the same way and returned without any
    network access when it passes, else downloaded again (it stays until a verified file
    replaces it).
:func:`extract`
    Unpacks a tar (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) or zip archive into a
    hidden sibling folder (:func:`cmrlab.files.atomic_folder`) and renames it into place only
    when the archive was read to its very end without error, so a failure leaves the destination
    untouched. Members that would write outside the destination are refused, naming the archive
    and the member: absolute paths, ``..`` components, links whose target leaves the destination,
    device files and FIFOs; so are duplicate members, an archive cut short (a tar without its
    end-of-archive marker, a gzip stream whose CRC-32 or length is wrong) and archive bombs (more
    than ``max_bytes`` unpacked or ``max_members`` members). macOS metadata (``._*`` AppleDouble
    files and ``__MACOSX/``) is skipped.
:func:`fetch`
    The common flow of a dataset script: download → verify → extract → move the dataset folder
    into the data root → run the dataset's layout check.

The resumable partial file and the temporaries of :mod:`cmrlab.files` share the naming rule
(hidden, containing ``.partial``), so :func:`cmrlab.files.is_partial` recognises both and dataset
globs skip both. They differ in lifetime: an atomic write's temporary is worthless once its
writer stopped and :func:`cmrlab.files.remove_partials` may delete it, whereas the download's
partial file is kept on purpose and continued by the next run (deleting it costs only a fresh
download).

Only the standard library is used for the network (``urllib``); progress bars are tqdm's, through
:func:`cmrlab.viz.progress`.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import socket
import stat
import struct
import sys
import tarfile
import unicodedata
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Union

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError, CmrlabError, ConfigError, FileFormatError
from cmrlab.files import (atomic_folder, atomic_write_text, inside, load_json, partial_name,
                          remove_partials)
from cmrlab.viz.progress import progress as _progress_bar

__all__ = [
    "DatasetSource",
    "DownloadError",
    "FetchResult",
    "KINDS",
    "MAX_EXTRACT_BYTES",
    "MAX_EXTRACT_BYTES_ENV",
    "MAX_MEMBERS",
    "archive_subfolder",
    "download",
    "extract",
    "fetch",
    "file_digest",
    "kind_from_name",
    "partial_path",
]

PathLike = Union[str, os.PathLike]

#: Bytes read from the network (and from disk when hashing) at a time.
CHUNK = 1 << 20
#: Seconds a socket may stay silent before the transfer counts as interrupted.
TIMEOUT = 60.0
#: Sent with every request; some servers refuse urllib's default agent.
USER_AGENT = "cmrlab-data-scripts/0.1 (python-urllib)"
#: Default upper bound on the bytes one archive may unpack to (64 GiB; the largest course dataset,
#: MSD Task01, unpacks to about 7.6 GB). ``max_bytes=`` or ``$CMRLAB_MAX_EXTRACT_BYTES`` change it.
MAX_EXTRACT_BYTES = 64 * 1024**3
#: The environment variable that replaces :data:`MAX_EXTRACT_BYTES` when ``max_bytes`` is not given.
MAX_EXTRACT_BYTES_ENV = "CMRLAB_MAX_EXTRACT_BYTES"
#: Default upper bound on the number of members (files, folders, links) in one archive.
MAX_MEMBERS = 200_000
#: The file types :func:`download` can check by their first bytes.
KINDS = ("zip", "tar", "gzip", "bzip2", "xz")
_KIND_NAMES = {"zip": "zip archive", "tar": "tar archive", "gzip": "gzip file",
               "bzip2": "bzip2 file", "xz": "xz file"}
_MAGIC = {"zip": (b"PK\x03\x04", b"PK\x05\x06"), "gzip": (b"\x1f\x8b",), "bzip2": (b"BZh",),
          "xz": (b"\xfd7zXZ\x00",)}
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_HEX = {"md5": 32, "sha256": 64}
_HEAD = 512  # bytes read to recognise a file's type (one tar header block)


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


class _Bad(DownloadError):
    """The bytes received are wrong; the partial file and its record are deleted."""


# ----------------------------------------------------------------------------------------------
# Checksums and file types
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


def kind_from_name(name: PathLike) -> str | None:
    """The file type a name promises: ``"zip"``, ``"gzip"`` (``.tar.gz``, ``.tgz``, ``.gz``),
    ``"bzip2"``, ``"xz"``, ``"tar"``, or None for another extension."""
    lower = Path(name).name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".gz", ".tgz")):
        return "gzip"
    if lower.endswith((".bz2", ".tbz2", ".tbz")):
        return "bzip2"
    if lower.endswith((".xz", ".txz")):
        return "xz"
    if lower.endswith(".tar"):
        return "tar"
    return None


def _is_tar_name(name: PathLike) -> bool:
    return Path(name).name.lower().endswith(_TAR_SUFFIXES)


def _looks_like(head: bytes, kind: str) -> bool:
    """Whether the first bytes ``head`` of a file fit the type ``kind``."""
    if kind == "tar":
        if head[257:262] == b"ustar":  # POSIX and GNU tar
            return True
        try:  # an old (v7) tar has no magic; a valid first header block still identifies it
            tarfile.TarInfo.frombuf(head[:_HEAD], "utf-8", "surrogateescape")
            return True
        except tarfile.HeaderError:
            return False
    return head.startswith(_MAGIC[kind])


def _describe_head(head: bytes, content_type: str | None = None) -> str:
    """What a file that is not of the expected type seems to be, from its first bytes."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    html_type = bool(content_type) and "html" in content_type.lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title")) or (
            html_type and text.startswith(b"<")):
        return "an HTML page (a login page?)"
    if text.startswith(b"<?xml"):
        return "an XML document (an error message?)"
    if text.startswith((b"{", b"[")):
        return "a JSON document (an error message?)"
    if not head:
        return "no bytes at all"
    return f"bytes starting {head[:8]!r}"


def _type_problem(head: bytes, kind: str | None, content_type: str | None = None) -> str | None:
    """None if ``head`` fits ``kind`` (``"any"``: anything but an HTML page; None: anything),
    else what the bytes seem to be."""
    if kind is None:
        return None
    if kind == "any":
        what = _describe_head(head, content_type)
        return what if what.startswith("an HTML page") else None
    if _looks_like(head, kind):
        return None
    expected = " or ".join(repr(m) for m in _MAGIC.get(kind, ()))
    return (f"{_describe_head(head, content_type)}, not a {_KIND_NAMES[kind]}"
            + (f" (which starts with {expected})" if expected else ""))


def _read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(_HEAD)


def _full_read(path: Path, kind: str | None, *, tar: bool = False) -> None:
    """Read an archive (or compressed file) to its end; :class:`FileFormatError` if damaged.

    zip: every member is decompressed and its CRC-32 checked. tar (plain or compressed): every
    member's data is read, the end-of-archive marker must be there and the compressed stream is
    read to its end (its trailer holds gzip's CRC-32 and length); ``tar`` says the file is one
    (its name, e.g. ``.tar.gz``). A lone gzip/bzip2/xz file is decompressed to its end. Other
    files are not read.
    """
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.flag_bits & 0x1:
                        raise FileFormatError(path, f"member {info.filename!r} is encrypted")
                    with zf.open(info) as member:
                        while member.read(CHUNK):
                            pass
        elif tar or kind == "tar":
            with tarfile.open(path, "r:*", tarinfo=_TarInfo) as tar:
                for member in _tar_members(tar, path, None):
                    if member.isfile():
                        source = tar.extractfile(member)
                        while source.read(CHUNK):
                            pass
        elif kind in ("gzip", "bzip2", "xz"):
            opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind]
            with opener(path, "rb") as stream:
                while stream.read(CHUNK):
                    pass
    except CmrlabError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader error means the same: damaged
        raise FileFormatError(path, f"is damaged or truncated ({type(exc).__name__}: "
                                    f"{exc})") from None


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------
def partial_path(dest: PathLike) -> Path:
    """The resumable partial file a download of ``dest`` streams into: ``.<name>.download.partial``.

    Beside it, ``.<name>.download.partial.json`` records what it holds, as a JSON object with the
    keys ``url``, ``size``, ``md5``, ``sha256`` (the call's pinned values, or null), ``total``
    (the length the server announced), ``etag`` and ``last_modified`` (the server's validators).
    A partial file is continued only when its record's ``url``, ``size``, ``md5`` and ``sha256``
    equal the new call's. Both names are recognised by :func:`cmrlab.files.is_partial`.
    """
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.download.partial")


def _record_path(part: Path) -> Path:
    return part.with_name(f"{part.name}.json")


def _legacy_partial(dest: Path) -> Path:
    """The partial file name of cmrlab 0.1 (``.<name>.part``), which had no record."""
    return dest.with_name(f".{dest.name}.part")


def _discard(part: Path) -> None:
    """Delete a partial file and its record."""
    part.unlink(missing_ok=True)
    _record_path(part).unlink(missing_ok=True)


@dataclass(frozen=True)
class _Want:
    """What a download must produce."""

    url: str
    size: int | None       # the exact size, when pinned
    max_size: int | None   # the most bytes accepted, when the exact size is not pinned
    digests: dict[str, str]
    kind: str | None       # the type checked by the first bytes: a KINDS member, "any" (no
                           # HTML page) or None (no check)
    tar: bool = False      # a tar archive (maybe compressed): read it as one

    @property
    def limit(self) -> int | None:
        return self.size if self.size is not None else self.max_size

    def identity(self) -> dict[str, Any]:
        return {"url": self.url, "size": self.size, "md5": self.digests.get("md5"),
                "sha256": self.digests.get("sha256")}


def _resumable_record(part: Path, want: _Want) -> dict[str, Any] | None:
    """The record of a partial file this call may continue, or None (the stale ones are deleted)."""
    record_file = _record_path(part)
    if not part.exists():
        record_file.unlink(missing_ok=True)
        return None
    try:
        record = load_json(record_file, max_bytes=64 * 1024)
    except CmrlabError:
        record = None
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in want.identity().items()):
        _discard(part)  # another file's bytes, or bytes nobody can vouch for: start again
        return None
    total = record.get("total")
    record["total"] = total if isinstance(total, int) and not isinstance(total, bool) else None
    return record


def _content_range_total(header: str | None) -> int | None:
    """Total size from a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header."""
    match = re.fullmatch(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*", header or "")
    return int(match.group(1)) if match else None


def _content_range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", header or "")
    return int(match.group(1)) if match else None


def _open(url: str, start: int, timeout: float, record: dict[str, Any] | None) -> Any:
    """Send a GET (with ``Range: bytes=start-`` and ``If-Range`` when resuming); the response."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
        etag = (record or {}).get("etag")
        modified = (record or {}).get("last_modified")
        if isinstance(etag, str) and etag and not etag.startswith("W/"):
            headers["If-Range"] = etag  # the server sends the whole file again if it changed
        elif isinstance(modified, str) and modified:
            headers["If-Range"] = modified
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(
    want: _Want, part: Path, record: dict[str, Any] | None, label: str, progress: bool,
    chunk: int, timeout: float,
) -> dict[str, Any] | None:
    """One attempt: bring ``part`` to the full length of the remote file; returns its record.

    Resumes from the bytes already in ``part`` when ``record`` vouches for them. Raises
    :class:`_Interrupted` when the connection breaks (the partial file is kept for the next
    attempt), :class:`_Bad` when the bytes are wrong (the caller deletes them) and
    :class:`DownloadError` when the server refuses.
    """
    url = want.url
    start = part.stat().st_size if part.exists() and record is not None else 0
    expected = want.size if want.size is not None else (record or {}).get("total")
    if expected is not None and start > expected:  # longer than the file can be: start over
        _discard(part)
        record, start = None, 0
    if start > 0 and expected is not None and start == expected:
        return record  # complete already; the caller verifies it
    try:
        response = _open(url, start, timeout, record)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start > 0:
            # "Range not satisfiable": we asked for bytes past the end. Only a server that says
            # the file has exactly the bytes we hold (and as many as first announced) means the
            # partial file is complete.
            total = _content_range_total(exc.headers.get("Content-Range"))
            exc.close()
            if total is None:
                total = expected
            if total is None or total != start or (expected is not None and total != expected):
                raise _Bad(url, f"the partial file has {start:,} bytes, but the server "
                           + (f"now says the file has {total:,}" if total is not None else
                              "does not say how long the file is")
                           + (f" (it first announced {expected:,})" if expected not in (None, total)
                              else "") + "; it was deleted, run again to download from the start"
                           ) from None
            return record
        raise DownloadError(url, f"the server answered HTTP {exc.code} ({exc.reason})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(url, f"cannot connect ({reason})") from None

    with response:
        status = getattr(response, "status", 200)
        content_type = response.headers.get("Content-Type")
        if start > 0 and status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != start:
                raise _Bad(url, f"asked for bytes from {start:,}, the server sent "
                           f"{response.headers.get('Content-Range')!r}; the partial file was "
                           "deleted")
            total = _content_range_total(response.headers.get("Content-Range"))
            if expected is not None and total is not None and total != expected:
                _discard(part)
                raise _Interrupted(url, f"the file changed on the server (it had {expected:,} "
                                        f"bytes, now {total:,}); the partial file was deleted, "
                                        "the next attempt starts from byte 0")
            total = total if total is not None else expected
            mode = "ab"
        else:  # 200: a fresh download, a changed file (If-Range) or a server that ignores Range
            start = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            mode = "wb"
            record = {**want.identity(), "total": total, "etag": response.headers.get("ETag"),
                      "last_modified": response.headers.get("Last-Modified")}
            _discard(part)
            atomic_write_text(_record_path(part), json.dumps(record))
        if want.size is not None and total is not None and total != want.size:
            raise _Bad(url, f"the server offers {total:,} bytes, expected {want.size:,}: wrong URL "
                       "or the file changed (pass the new size and checksum if you trust it)")
        limit = want.limit
        if limit is not None and total is not None and total > limit:
            raise _Bad(url, f"the server offers {total:,} bytes, more than the {limit:,} allowed "
                       "(max_size): refused")
        bar = _progress_bar(total=total, initial=start, unit="B", unit_scale=True,
                            unit_divisor=1024, desc=label, disable=not progress)
        received = start
        head = b"" if start == 0 else None  # the first bytes, to check the type early
        with part.open(mode) as out, bar:
            try:
                while True:
                    wanted = chunk if limit is None else max(1, min(chunk, limit + 1 - received))
                    block = response.read(wanted)
                    if not block:
                        break
                    if head is not None:
                        head += block[: _HEAD - len(head)]
                        if len(head) >= _HEAD:
                            problem = _type_problem(head, want.kind, content_type)
                            if problem:
                                raise _Bad(url, f"the server sent {problem}; nothing was kept")
                            head = None
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
                    if limit is not None and received > limit:
                        raise _Bad(url, f"the server sent more than the {limit:,} bytes expected"
                                   + (" (it gave no Content-Length)" if total is None else "")
                                   + "; nothing was kept")
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                out.flush()
                raise _Interrupted(
                    url, f"the transfer broke off after {received:,} bytes "
                    f"({type(exc).__name__}: {exc}); the partial file {part} is kept: run again "
                    "to resume") from None
    if head is not None:  # a body shorter than one header block: check what there is
        problem = _type_problem(head, want.kind, content_type)
        if problem:
            raise _Bad(url, f"the server sent {problem}; nothing was kept")
    if total is not None and received < total:
        raise _Interrupted(
            url, f"the transfer stopped after {received:,} of {total:,} bytes; the partial file "
            f"{part} is kept: run again to resume")
    return record


def _problem(
    want: _Want, path: Path, *, subject: str, full_read: bool, progress: bool,
    announced: int | None = None,
) -> DownloadError | None:
    """The first check ``path`` fails, as an error to raise, or None when it passes them all.

    Checks, in order: the size (pinned, else the length the server ``announced``, and never
    above ``max_size``), the type by the first bytes, the checksums, and — only when no checksum
    is pinned and ``full_read`` — the archive's integrity by reading it to its end.
    """
    url = want.url
    actual_size = path.stat().st_size
    if want.size is not None and actual_size != want.size:
        return DownloadError(url, f"{path} has {actual_size:,} bytes, expected {want.size:,}")
    if announced is not None and actual_size != announced:
        return DownloadError(url, f"{path} has {actual_size:,} bytes, but the server announced "
                                  f"{announced:,}")
    if want.max_size is not None and actual_size > want.max_size:
        return DownloadError(url, f"{path} has {actual_size:,} bytes, more than the "
                                  f"{want.max_size:,} allowed (max_size)")
    problem = _type_problem(_read_head(path), want.kind)
    if problem:
        return DownloadError(url, f"{subject} {problem}")
    for algorithm, expected in want.digests.items():
        actual = file_digest(path, algorithm, show_progress=progress)
        if actual != expected:
            return DownloadError(
                url,
                f"{algorithm} checksum mismatch for {path.name}: expected {expected}, got {actual}",
                algorithm=algorithm, expected=expected, actual=actual,
            )
    if full_read and not want.digests:
        try:
            _full_read(path, want.kind, tar=want.tar)
        except FileFormatError as exc:
            return DownloadError(url, f"{subject} a damaged or incomplete file: {exc.problem}")
    return None


def _check_size_argument(name: str, value: Any) -> int | None:
    return None if value is None else check_int(name, value, minimum=0)


def download(
    url: str,
    dest: PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    max_size: int | None = None,
    kind: str | None = "auto",
    progress: bool = True,
    chunk: int = CHUNK,
    timeout: float = TIMEOUT,
    retries: int = 2,
) -> Path:
    """Download ``url`` to ``dest`` safely and return ``dest`` as a :class:`~pathlib.Path`.

    The bytes go to the hidden partial file :func:`partial_path` with a record of the URL and the
    pinned values. A partial file left by an interrupted run of the *same* download (same URL,
    ``size``, ``md5``, ``sha256``) is continued with ``Range: bytes=N-`` and ``If-Range`` (the
    server's ETag or Last-Modified); any other partial file is deleted first. A server that
    answers 200 (it ignores ``Range``, or the file changed) makes it start again from byte 0; a
    416 (range not satisfiable) counts as "complete" only when the server's length equals the
    bytes held and the length first announced, else the partial file is deleted.

    Before the partial file is renamed to ``dest`` it must pass these checks; a failure deletes it
    and raises :class:`DownloadError` naming the URL and the problem (for a checksum, both digests):

    - ``size`` (bytes, exact) when pinned, else the ``Content-Length`` the server announced.
      Reading stops at the first byte beyond ``size`` (or ``max_size``, a bound for a file whose
      exact size is not known), even from a server that sends no length.
    - ``kind``: the type the first bytes must have, one of :data:`KINDS` (zip ``PK\\x03\\x04``,
      gzip ``\\x1f\\x8b``, ...); ``"auto"`` (the default) takes it from ``dest``'s extension
      (:func:`kind_from_name`; an unknown extension only refuses HTML pages), None checks nothing.
      An HTML page is named as such: "the server sent an HTML page (a login page?)".
    - ``md5`` / ``sha256`` (hexadecimal) when given; without them, an archive (``kind`` zip or
      tar, or a tar name) is read to its end instead, so a truncated or damaged one is refused.

    A broken connection keeps the partial file; after ``retries`` further attempts (each
    resuming) it raises :class:`DownloadError`, and running again resumes. If ``dest`` exists
    already and passes the same checks it is returned at once without network access; if it
    fails them it is downloaded again, and the old file stays until a verified one replaces it.
    """
    md5 = _check_digest("md5", md5)
    sha256 = _check_digest("sha256", sha256)
    size = _check_size_argument("size", size)
    max_size = _check_size_argument("max_size", max_size)
    if not isinstance(url, str) or not re.match(r"https?://", url):
        raise ArgumentError(f"url must start with http:// or https://, got {url!r}")
    chunk = check_int("chunk", chunk, minimum=1)
    retries = check_int("retries", retries, minimum=0)
    dest = Path(dest).expanduser()
    if kind == "auto":
        kind = kind_from_name(dest) or "any"
    elif kind is not None and kind not in KINDS:
        raise ArgumentError(f"kind must be 'auto', None or one of {', '.join(map(repr, KINDS))}, "
                            f"got {kind!r}")
    digests = {k: v for k, v in (("md5", md5), ("sha256", sha256)) if v is not None}
    want = _Want(url, size, max_size, digests, kind, kind == "tar" or _is_tar_name(dest))

    if dest.is_dir():
        raise FileFormatError(dest, "is a folder: give the name of the file to download to")
    if dest.exists() and _problem(want, dest, subject=f"{dest} is", full_read=True,
                                  progress=progress) is None:
        return dest  # there already, and it passes every check: no network needed
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(dest.parent, f"cannot be created ({exc.strerror or exc})") from None

    _legacy_partial(dest).unlink(missing_ok=True)  # no record says what it holds
    part = partial_path(dest)
    record = _resumable_record(part, want)
    try:
        for attempt in range(retries + 1):
            try:
                record = _transfer(want, part, record, dest.name, progress, chunk, float(timeout))
                break
            except _Interrupted:
                if attempt == retries:
                    raise
                record = _resumable_record(part, want)
    except _Bad:
        _discard(part)
        raise
    if not part.exists():  # every successful attempt leaves it; guard against surprises
        raise DownloadError(url, "the server sent nothing")
    error = _problem(want, part, subject="the server sent", full_read=True, progress=progress,
                     announced=(record or {}).get("total"))
    if error is not None:
        _discard(part)
        raise DownloadError(url, f"{error.problem}; the downloaded file was deleted",
                            algorithm=error.algorithm, expected=error.expected,
                            actual=error.actual)
    os.replace(part, dest)
    _record_path(part).unlink(missing_ok=True)
    return dest


# ----------------------------------------------------------------------------------------------
# extract
# ----------------------------------------------------------------------------------------------
def _is_macos_metadata(name: str) -> bool:
    """True for the AppleDouble ``._*`` files and the ``__MACOSX/`` folder macOS adds."""
    parts = [p for p in re.split(r"[\\/]", name) if p]
    return any(p == "__MACOSX" or p.startswith("._") for p in parts)


def _is_top_folder(name: str, is_dir: bool) -> bool:
    """True for a folder member naming the archive's top itself (``./``, as ``tar -C dir .``
    writes it): there is nothing to create for it."""
    return is_dir and bool(name) and all(p in ("", ".") for p in re.split(r"[\\/]", name))


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


class _Names:
    """The member names seen so far, to refuse duplicates.

    Two members that name the same path — exactly, after dropping ``./`` and doubled slashes, or
    only differing in letter case or Unicode normalisation, which is the same file on macOS and
    Windows — are refused, since one would silently replace the other. A folder listed twice is
    harmless and allowed; a file where a folder is (or the other way round) is refused.
    """

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.seen: dict[str, tuple[str, bool]] = {}  # folded name -> (raw name, is a folder)

    @staticmethod
    def _fold(rel: PurePosixPath) -> str:
        return unicodedata.normalize("NFC", str(rel)).casefold()

    def add(self, rel: PurePosixPath, raw: str, is_dir: bool) -> None:
        for parent in reversed(rel.parents[:-1] if len(rel.parts) > 1 else ()):
            self._add(parent, raw, True, implied=True)
        self._add(rel, raw, is_dir, implied=False)

    def _add(self, rel: PurePosixPath, raw: str, is_dir: bool, *, implied: bool) -> None:
        key = self._fold(rel)
        previous = self.seen.get(key)
        if previous is None:
            self.seen[key] = (raw if not implied else f"{rel}/", is_dir)
            return
        before, before_dir = previous
        if before_dir and is_dir:
            return
        if implied or before_dir != is_dir:
            problem = (f"member {raw!r} needs {str(rel)!r} as a folder, but {before!r} is a file"
                       if implied or not before_dir else
                       f"member {raw!r} is a file where {before!r} is a folder")
        elif str(PurePosixPath(*re.split(r"[\\/]", before))) == str(rel) or before == raw:
            problem = f"member {raw!r} appears twice (also as {before!r})"
        else:
            problem = (f"members {before!r} and {raw!r} differ only in letter case (or Unicode "
                       "form): they are the same file on macOS and Windows")
        raise FileFormatError(self.archive, f"{problem}: refused, one would silently replace the "
                                            "other")


class _Budget:
    """The limits of one extraction: total bytes (from the headers and as written) and members."""

    def __init__(self, archive: Path, max_bytes: int, max_members: int) -> None:
        self.archive = archive
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.announced = 0  # bytes the headers promise so far
        self.written = 0    # bytes actually written so far

    def _bomb(self, what: str) -> FileFormatError:
        return FileFormatError(
            self.archive, f"{what}: refused as a possible archive bomb (raise max_bytes=, "
            f"--max-bytes or ${MAX_EXTRACT_BYTES_ENV} if you trust it)")

    def members(self, count: int) -> None:
        if count > self.max_members:
            raise FileFormatError(
                self.archive, f"holds {count:,} members, more than the {self.max_members:,} "
                "allowed (max_members): refused as a possible archive bomb")

    def announce(self, size: int, name: str) -> None:
        """Count a member's size as its header gives it, before anything of it is written."""
        self.announced += max(0, int(size))
        if self.announced > self.max_bytes:
            raise self._bomb(f"unpacks to more than {self.max_bytes:,} bytes (its headers say "
                             f"{self.announced:,} by member {name!r})")

    def copy(self, source: Any, out: Path, name: str) -> None:
        """Copy a member's data to ``out``, counting every byte written against the limit."""
        try:
            dst = out.open("wb")
        except OSError as exc:
            raise FileFormatError(out, f"cannot be written ({exc.strerror or exc})") from None
        with dst:
            while block := source.read(CHUNK):
                self.written += len(block)
                if self.written > self.max_bytes:
                    raise self._bomb(f"member {name!r} brings the bytes written past "
                                     f"{self.max_bytes:,}, more than its headers said")
                try:
                    dst.write(block)
                except OSError as exc:
                    raise FileFormatError(out, f"cannot be written "
                                               f"({exc.strerror or exc})") from None


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(folder, f"cannot be created ({exc.strerror or exc})") from None


_HAS_FILTER = hasattr(tarfile, "data_filter")  # Python >= 3.10.12 / 3.11.4
_FILTER_ERROR = getattr(tarfile, "FilterError", ())


class _TarInfo(tarfile.TarInfo):
    """A TarInfo that remembers why the member list ended, so a tar cut short is noticed.

    :mod:`tarfile` stops quietly when the file ends where the next header should be, or in the
    middle of one; only an all-zero block (the end-of-archive marker) means the archive is whole.
    """

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as exc:
            tar._cmrlab_stop = exc
            raise


def _tar_members(
    tar: tarfile.TarFile, archive: Path, max_members: int | None
) -> Iterator[tarfile.TarInfo]:
    """Yield the members of ``tar`` (opened with ``tarinfo=_TarInfo``), then check its end.

    After the last member the end-of-archive marker must follow, and the rest of the stream is
    read, which makes a gzip/bzip2/xz reader check its trailer (gzip: CRC-32 and length).
    """
    count = 0
    while (member := tar.next()) is not None:
        count += 1
        if max_members is not None and count > max_members:
            raise FileFormatError(archive, f"holds more than {max_members:,} members "
                                           "(max_members): refused as a possible archive bomb")
        yield member
    stop = getattr(tar, "_cmrlab_stop", None)
    if not isinstance(stop, tarfile.EOFHeaderError):
        if isinstance(stop, tarfile.EmptyHeaderError):
            problem = ("ends without the end-of-archive marker after the last member: it was "
                       "cut short")
        elif isinstance(stop, tarfile.TruncatedHeaderError):
            problem = "ends in the middle of a member header: it was cut short"
        else:
            problem = f"has a damaged member header at byte {tar.offset:,} ({stop})"
        raise FileFormatError(archive, f"{problem}; download it again")
    while tar.fileobj.read(CHUNK):  # to the end: a compressed stream checks its trailer there
        pass


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


def _unpack_tar(
    archive: Path, target: Path, keep: Callable[[str], bool], budget: _Budget
) -> list[PurePosixPath]:
    """Check and extract each tar member in one pass over the archive (no random access).

    Regular files are written here (so their bytes are counted); links go through tarfile's
    ``data`` filter, which refuses any that would leave ``target``.
    """
    written: list[PurePosixPath] = []
    names = _Names(archive)
    with tarfile.open(archive, "r:*", tarinfo=_TarInfo) as tar:
        for member in _tar_members(tar, archive, budget.max_members):
            if _is_macos_metadata(member.name) or _is_top_folder(member.name, member.isdir()):
                continue
            rel = _check_tar_member(archive, member)
            names.add(rel, member.name, member.isdir())
            if not keep(str(rel)):
                continue
            # resolved through the links already written: nothing may land outside the target
            out = inside(target, str(rel), source=archive, what=f"member {member.name!r}: path")
            if member.isdir():
                _make_folder(out)
                continue
            _make_folder(out.parent)
            if member.isfile():
                budget.announce(member.size, member.name)
                budget.copy(tar.extractfile(member), out, member.name)
                os.chmod(out, 0o755 if member.mode & 0o100 else 0o644)
            else:  # a link that stays inside (checked above)
                member.name = str(rel)
                try:
                    if _HAS_FILTER:
                        tar.extract(member, target, filter="data")
                    else:  # Python < 3.10.12 / 3.11.4: our checks and inside() stand alone
                        tar.extract(member, target, set_attrs=False)
                except _FILTER_ERROR as exc:  # our checks should have caught it first
                    raise FileFormatError(archive,
                                          f"member {member.name!r} refused ({exc})") from None
                except OSError as exc:
                    raise FileFormatError(out,
                                          f"cannot be created ({exc.strerror or exc})") from None
            written.append(rel)
    return written


def _zip_entry_count(archive: Path) -> int | None:
    """The member count in a zip's end-of-central-directory record (zip64 too), read without
    loading the central directory; None when the record cannot be found (zipfile will say why)."""
    try:
        with archive.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - (1 << 16) - 22))
            tail = f.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < 22:
                return None
            entries = struct.unpack("<H", tail[at + 10: at + 12])[0]
            locator = tail[at - 20: at] if at >= 20 else b""
            if entries == 0xFFFF and locator.startswith(b"PK\x06\x07"):
                offset = struct.unpack("<Q", locator[8:16])[0]
                f.seek(offset)
                record = f.read(56)
                if record.startswith(b"PK\x06\x06") and len(record) == 56:
                    entries = struct.unpack("<Q", record[32:40])[0]
            return entries
    except (OSError, struct.error):
        return None


def _unpack_zip(
    archive: Path, target: Path, keep: Callable[[str], bool], budget: _Budget
) -> list[PurePosixPath]:
    """Check every zip member, then extract; zipfile checks each member's CRC-32 as it reads.

    The member count (from the end record) and the total size (from the central directory) are
    checked before anything is written; the bytes written are counted as well.
    """
    count = _zip_entry_count(archive)
    if count is not None:
        budget.members(count)  # before zipfile reads the whole central directory into memory
    written: list[PurePosixPath] = []
    names = _Names(archive)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        budget.members(len(infos))
        plan = []
        for info in infos:
            if _is_macos_metadata(info.filename) or _is_top_folder(info.filename, info.is_dir()):
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
            if info.flag_bits & 0x1:
                raise FileFormatError(archive, f"member {info.filename!r} is encrypted: cmrlab "
                                               "does not unpack encrypted zip archives")
            names.add(rel, info.filename, info.is_dir())
            if keep(str(rel)):
                plan.append((info, rel))
        for info, rel in plan:  # the headers' total, before anything is written
            if not info.is_dir():
                budget.announce(info.file_size, info.filename)
        for info, rel in plan:
            out = inside(target, str(rel), source=archive, what=f"member {info.filename!r}: path")
            if info.is_dir():
                _make_folder(out)
                continue
            _make_folder(out.parent)
            with zf.open(info) as src:
                budget.copy(src, out, info.filename)
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
    head = _read_head(archive)
    what = _describe_head(head)
    raise FileFormatError(archive, "is neither a tar (.tar, .tar.gz, .tgz) nor a zip archive"
                                   + (f": it is {what}" if what.startswith("an ") else ""))


def _limit(name: str, value: Any, default: int, env: str | None = None) -> int:
    """An extraction limit: the argument, else the variable ``env``, else ``default``."""
    if value is not None:
        return check_int(name, value, minimum=1)
    text = os.environ.get(env, "").strip() if env else ""
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"${env} must be a whole number of bytes >= 1, got {text!r}")
    return int(text)


def _unpack(archive: Path, target: Path, members_filter: Callable[[str], bool] | None,
            max_bytes: int | None, max_members: int | None) -> list[PurePosixPath]:
    """Unpack ``archive`` into the existing, empty folder ``target``; errors name the archive."""
    budget = _Budget(archive,
                     _limit("max_bytes", max_bytes, MAX_EXTRACT_BYTES, MAX_EXTRACT_BYTES_ENV),
                     _limit("max_members", max_members, MAX_MEMBERS))
    keep = members_filter or (lambda name: True)
    kind = _archive_kind(archive)
    try:
        if kind == "zip":
            return _unpack_zip(archive, target, keep, budget)
        return _unpack_tar(archive, target, keep, budget)
    except CmrlabError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader error (writes are reported above)
        raise FileFormatError(archive, f"is damaged or truncated ({type(exc).__name__}: "
                                       f"{exc}); download it again") from None


def extract(
    archive: PathLike,
    dest: PathLike,
    *,
    members_filter: Callable[[str], bool] | None = None,
    max_bytes: int | None = None,
    max_members: int | None = None,
) -> list[Path]:
    """Unpack a tar or zip ``archive`` into the folder ``dest`` and return the files written.

    ``dest`` must not exist yet (or be an empty folder). Everything is first unpacked into a
    hidden sibling folder (:func:`cmrlab.files.atomic_folder`), which is renamed to ``dest`` only
    when the whole archive was read without error, so a failure leaves ``dest`` as it was and
    removes the partial folder.

    Every member is checked before it is written; a bad one stops the extraction with
    :class:`~cmrlab.errors.FileFormatError` naming the archive and the member: absolute paths,
    ``..`` components, symbolic or hard links whose target leaves ``dest`` (zip: any symbolic
    link), device files and FIFOs, encrypted zip members, and duplicates (the same name twice,
    also after dropping ``./`` or when the names differ only in letter case). A damaged archive
    is refused too: a zip member with a wrong CRC-32, a tar that ends without its end-of-archive
    marker (cut short, even at a member boundary), a gzip stream with a wrong CRC-32 or length.

    Limits against archive bombs: at most ``max_members`` members (default :data:`MAX_MEMBERS`)
    and at most ``max_bytes`` bytes unpacked (default ``$CMRLAB_MAX_EXTRACT_BYTES``, else
    :data:`MAX_EXTRACT_BYTES`). A zip's total is judged from its central directory before anything
    is written, a tar member's size from its header before it is written, and the bytes actually
    written are counted too.

    AppleDouble ``._*`` files and ``__MACOSX/`` are skipped. ``members_filter(name)`` (the
    member's cleaned relative name, ``/``-separated) returns False for members to leave out. The
    result lists the final paths of the extracted files and links, sorted; folders are not listed.
    """
    archive = Path(archive).expanduser()
    dest = Path(dest).expanduser()
    if not archive.is_file():
        raise FileFormatError(archive, "does not exist or is not a file: nothing to extract")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileFormatError(dest, "exists already and is not an empty folder: move it away or "
                                    "delete it before extracting again")
    with atomic_folder(dest) as staging:
        written = _unpack(archive, staging, members_filter, max_bytes, max_members)
    return sorted(dest.joinpath(*rel.parts) for rel in written)


# ----------------------------------------------------------------------------------------------
# fetch
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and where it goes.

    ``folder`` is the dataset's folder relative to the data root (``"MSD/Task02_Heart"``).
    ``archive_name`` is the file name the archive is saved under (in ``<data root>/downloads/``);
    its extension says which type the download must be (``.zip``, ``.tar``, ``.tar.gz``).
    ``size`` pins the archive's exact size in bytes; ``max_size`` bounds it when the exact size is
    not known (at most that many bytes are read). ``max_bytes`` and ``max_members`` bound what the
    archive may unpack to (see :func:`extract`; None: the defaults).
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
    max_size: int | None = None
    max_bytes: int | None = None
    max_members: int | None = None


def archive_subfolder(name: str) -> Callable[[Path], Path]:
    """A ``locate`` function for archives whose dataset sits in the top folder ``name``."""

    def locate(extracted: Path) -> Path:
        found = extracted / name
        if not found.is_dir():
            inside_ = sorted(p.name for p in extracted.iterdir())[:10]
            raise FileFormatError(found, f"the archive has no folder {name!r} at its top "
                                         f"(it holds {inside_}); is it the right archive?")
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
       ``size``/``max_size``/``md5``/``sha256``, the type the name promises and, without a
       checksum, the archive's integrity). An archive already there is checked the same way and
       downloaded again if it fails. Without a pinned SHA-256 the archive's SHA-256 is computed
       and returned, so a user can pin it next time.
    3. :func:`extract` it (with ``max_bytes``/``max_members``) into a hidden staging folder next to
       the dataset folder, pick the dataset folder with ``source.locate`` and rename it to
       ``<root>/<source.folder>``; the staging folder is then removed. Nothing half-extracted is
       ever at the final place. A staging folder left by a killed run is removed first.
    4. Delete the downloaded archive unless ``keep_archive`` (after a failed extraction it stays,
       verified, so a run with other limits needs no new download).
    5. Run ``source.verify`` on the dataset folder. If it fails, the folder stays (the download
       was verified; the error says what the layout check found).

    ``archive`` names an archive downloaded by hand (e.g. in a browser) to use instead of the URL:
    it is checked against ``size``/``md5``/``sha256`` and its type (an HTML page saved instead of
    the archive is named as such) and never deleted; :func:`extract` reads it to its end.
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
        digests = {k: v for k, v in (("md5", _check_digest("md5", source.md5)),
                                     ("sha256", _check_digest("sha256", source.sha256))) if v}
        want = _Want(str(archive), _check_size_argument("size", source.size),
                     _check_size_argument("max_size", source.max_size), digests,
                     kind_from_name(source.archive_name) or "any")
        error = _problem(want, archive, subject=f"{archive} is", full_read=False,
                         progress=progress)
        if error is not None:
            raise error
    else:
        archive = root / "downloads" / source.archive_name
        say(f"{source.name}: downloading {source.url}\n  to {archive}")
        try:
            download(source.url, archive, md5=source.md5, sha256=source.sha256,
                     size=source.size, max_size=source.max_size, progress=progress)
        except CmrlabError:
            _remove_if_empty(archive.parent)  # a partial file from a broken transfer stays
            raise
    if source.sha256:
        digest: str | None = source.sha256
    else:
        digest = file_digest(archive, "sha256", show_progress=progress)
        say(f"{source.name}: sha256 of the archive: {digest}")

    remove_partials(folder.parent, stem=folder.name)  # staging folders of a killed run
    staging = partial_name(folder)
    try:
        say(f"{source.name}: extracting {archive.name}")
        _make_folder(staging)
        _unpack(archive, staging, source.members_filter, source.max_bytes, source.max_members)
        found = source.locate(staging) if source.locate else staging
        if folder.exists():
            folder.rmdir()  # empty, checked above
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
