"""cmrlab.data.download against a local HTTP server on 127.0.0.1: never the real network.

The server (a thread, port 0) serves archives made in the tests, answers ``Range`` requests with
206 (or 416 past the end), can ignore ``Range`` like some servers do, and can break a transfer
off after N bytes on its first request, to exercise resume.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cmrlab.data.download import (
    DatasetSource,
    DownloadError,
    archive_subfolder,
    download,
    extract,
    fetch,
    file_digest,
    partial_path,
)
from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError


# ----------------------------------------------------------------------------------------------
# The local server
# ----------------------------------------------------------------------------------------------
class RangeServer:
    """A threaded HTTP server on 127.0.0.1 serving in-memory files, with ``Range`` support.

    ``files[path] = bytes`` publishes a file at ``url(path)``. ``cut_after[path] = n`` makes the
    first request for it send only ``n`` bytes (with the full Content-Length) and close the
    connection. ``ignore_range`` holds paths answered with 200 and the whole file even when a
    range was asked. ``etags[path]`` is sent as the ETag, and a request whose ``If-Range`` differs
    gets the whole file (200). ``no_length`` holds paths sent without a Content-Length (the body
    ends when the connection closes); ``announce[path] = n`` sends ``n`` as the Content-Length
    whatever the body (a lying server); ``content_types[path]`` sets the Content-Type. ``log``
    records ``(path, Range header or None, status)`` per request, ``if_ranges`` the If-Range
    headers.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.etags: dict[str, str] = {}
        self.no_length: set[str] = set()
        self.announce: dict[str, int] = {}
        self.content_types: dict[str, str] = {}
        self.log: list[tuple[str, str | None, int]] = []
        self.if_ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                server.log.append((self.path, self.headers.get("Range"), status))
                server.if_ranges.append(self.headers.get("If-Range"))
                if self.path in server.no_length:
                    headers.pop("Content-Length", None)
                elif self.path in server.announce and status in (200, 206):
                    headers["Content-Length"] = str(server.announce[self.path])
                if self.path in server.etags:
                    headers["ETag"] = server.etags[self.path]
                if self.path in server.content_types:
                    headers["Content-Type"] = server.content_types[self.path]
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                    pass

            def do_GET(self):
                data = server.files.get(self.path)
                if data is None:
                    self._send(404, {"Content-Length": "0"})
                    return
                wanted = self.headers.get("Range")
                match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
                if_range = self.headers.get("If-Range")
                changed = if_range is not None and if_range != server.etags.get(self.path)
                if match and self.path not in server.ignore_range and not changed:
                    start = int(match.group(1))
                    if start >= len(data):
                        self._send(416, {"Content-Range": f"bytes */{len(data)}",
                                         "Content-Length": "0"})
                        return
                    self._send(206, {
                        "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                        "Content-Length": str(len(data) - start),
                    }, data[start:])
                    return
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:  # announce everything, send a part, hang up
                    self._send(200, {"Content-Length": str(len(data))}, data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, {"Content-Length": str(len(data))}, data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r, _ in self.log if p == path]

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with RangeServer() as srv:
        yield srv


# ----------------------------------------------------------------------------------------------
# Archives made in the tests
# ----------------------------------------------------------------------------------------------
def make_tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    """A tar archive (gzip by default) of regular files ``{name: content}``, deterministic."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression  # writestr takes it from the ZipInfo
            zf.writestr(info, content)
    return buffer.getvalue()


GOOD = {
    "Task/dataset.json": b'{"name": "test"}',
    "Task/imagesTr/case_001.nii.gz": bytes(range(256)) * 40,
    "Task/labelsTr/case_001.nii.gz": b"label" * 100,
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resumable(dest: Path, data: bytes, url: str, *, total: int | None = None, size=None,
              md5=None, sha256=None, etag=None) -> Path:
    """A partial download of ``dest`` holding ``data``, with the record download() writes
    (the JSON format documented in partial_path), as an interrupted run leaves it."""
    part = partial_path(dest)
    part.write_bytes(data)
    record = {"url": url, "size": size, "md5": md5, "sha256": sha256, "total": total,
              "etag": etag, "last_modified": None}
    part.with_name(part.name + ".json").write_text(json.dumps(record))
    return part


def leftovers(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden ones included), relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------
def test_good_archive_is_downloaded_verified_and_extracted(server, tmp_path):
    data = make_tar(GOOD)
    server.files["/good.tar.gz"] = data
    dest = tmp_path / "dl" / "good.tar.gz"
    got = download(server.url("/good.tar.gz"), dest, md5=md5(data), sha256=sha256(data),
                   size=len(data), progress=False)
    assert got == dest and dest.read_bytes() == data
    assert not partial_path(dest).exists()
    assert leftovers(tmp_path / "dl") == ["good.tar.gz"]
    files = extract(dest, tmp_path / "out")
    assert files == sorted(tmp_path / "out" / name for name in GOOD)
    for name, content in GOOD.items():
        assert (tmp_path / "out" / name).read_bytes() == content


def test_complete_file_with_matching_checksum_needs_no_network(server, tmp_path):
    data = b"x" * 5000
    dest = tmp_path / "f.bin"
    dest.write_bytes(data)
    # the URL is not even served: any request would fail with 404
    assert download(server.url("/absent"), dest, sha256=sha256(data), progress=False) == dest
    assert server.log == []
    # a complete partial file of known size is verified and renamed without a request too
    dest2 = tmp_path / "g.bin"
    resumable(dest2, data, server.url("/absent"), size=len(data), md5=md5(data))
    download(server.url("/absent"), dest2, md5=md5(data), size=len(data), progress=False)
    assert dest2.read_bytes() == data and server.log == []
    assert leftovers(tmp_path) == ["f.bin", "g.bin"]  # record deleted with the partial file


def test_existing_file_with_wrong_checksum_is_downloaded_again(server, tmp_path):
    # (changed on purpose: an existing file that fails its check used to be reported and trusted
    # by nobody; now it is never trusted and a verified download replaces it)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old content")
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("/absent"), dest, md5=md5(b"new content"), progress=False)
    assert dest.read_bytes() == b"old content" and len(server.log) == 1  # kept until replaced
    server.files["/f.bin"] = b"new content"
    download(server.url("/f.bin"), dest, md5=md5(b"new content"), progress=False)
    assert dest.read_bytes() == b"new content" and leftovers(tmp_path) == ["f.bin"]


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    data = make_tar(GOOD)
    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2] ^= 0xFF
    server.files["/bad.tar.gz"] = bytes(corrupt)
    dest = tmp_path / "bad.tar.gz"
    url = server.url("/bad.tar.gz")
    with pytest.raises(DownloadError) as info:
        download(url, dest, sha256=sha256(data), progress=False)
    message = str(info.value)
    assert url in message and sha256(data) in message and sha256(bytes(corrupt)) in message
    assert info.value.algorithm == "sha256" and info.value.actual == sha256(bytes(corrupt))
    assert isinstance(info.value, CmrlabError)
    assert leftovers(tmp_path) == []


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    data = os.urandom(300_000)
    server.files["/big.bin"] = data
    server.cut_after["/big.bin"] = 100_000
    dest = tmp_path / "big.bin"
    url = server.url("/big.bin")
    with pytest.raises(DownloadError, match="run again to resume"):
        download(url, dest, md5=md5(data), progress=False, retries=0, chunk=8192)
    part = partial_path(dest)
    assert part.stat().st_size == 100_000 and not dest.exists()
    assert part.name.startswith(".")  # hidden: dataset globs never see it

    download(url, dest, md5=md5(data), progress=False, retries=0)
    assert dest.read_bytes() == data and not part.exists()
    assert server.ranges("/big.bin") == [None, "bytes=100000-"]
    assert [status for _, _, status in server.log] == [200, 206]


def test_interrupted_download_is_retried_within_one_call(server, tmp_path):
    data = os.urandom(50_000)
    server.files["/f.bin"] = data
    server.cut_after["/f.bin"] = 12_345
    dest = tmp_path / "f.bin"
    download(server.url("/f.bin"), dest, sha256=sha256(data), progress=False, retries=1)
    assert dest.read_bytes() == data
    assert server.ranges("/f.bin") == [None, "bytes=12345-"]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = os.urandom(40_000)
    server.files["/f.bin"] = data
    server.ignore_range.add("/f.bin")
    dest = tmp_path / "f.bin"
    resumable(dest, b"garbage that must not stay in front", server.url("/f.bin"), md5=md5(data))
    download(server.url("/f.bin"), dest, md5=md5(data), progress=False)
    assert dest.read_bytes() == data
    assert server.log == [("/f.bin", "bytes=35-", 200)]


def test_416_means_the_partial_file_is_complete(server, tmp_path):
    data = os.urandom(10_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    resumable(dest, data, server.url("/f.bin"), sha256=sha256(data))
    download(server.url("/f.bin"), dest, sha256=sha256(data), progress=False)
    assert dest.read_bytes() == data and not partial_path(dest).exists()
    assert server.log == [("/f.bin", "bytes=10000-", 416)]


def test_wrong_size_is_refused_before_downloading(server, tmp_path):
    server.files["/f.bin"] = b"a" * 1000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="offers 1,000 bytes, expected 2,000"):
        download(server.url("/f.bin"), dest, size=2000, progress=False)
    assert not dest.exists()


def test_http_error_and_bad_arguments(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("/missing"), tmp_path / "x", progress=False)
    assert leftovers(tmp_path) == []
    with pytest.raises(ArgumentError, match="md5 must be 32 hexadecimal digits"):
        download(server.url("/x"), tmp_path / "x", md5="abc")
    with pytest.raises(ArgumentError, match="url must start with http"):
        download("ftp://example.org/x", tmp_path / "x")
    with pytest.raises(DownloadError, match="cannot connect"):
        download("http://127.0.0.1:9/nothing", tmp_path / "x", progress=False, timeout=2)


def test_file_digest_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"cmrlab" * 1000)
    assert file_digest(path, "md5") == md5(b"cmrlab" * 1000)
    assert file_digest(path) == sha256(b"cmrlab" * 1000)
    with pytest.raises(ArgumentError):
        file_digest(path, "sha1")


# ----------------------------------------------------------------------------------------------
# extract: hostile and damaged archives
# ----------------------------------------------------------------------------------------------
def _tar_with(tmp_path: Path, add) -> Path:
    """A plain tar with one good file plus whatever ``add(tar)`` puts in."""
    path = tmp_path / "hostile.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("ok/file.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
        add(tar)
    return path


def _file(name: str):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    return add


def _link(name: str, target: str, kind: bytes):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tar.addfile(info)
    return add


HOSTILE_TARS = {
    "dotdot": (_file("../evil"), "'../evil'"),
    "nested-dotdot": (_file("ok/../../evil"), "'ok/../../evil'"),
    "absolute": (_file("/abs/evil"), "'/abs/evil'"),
    "symlink-etc": (_link("ok/etc", "/etc", tarfile.SYMTYPE), "'ok/etc'"),
    "symlink-up": (_link("ok/up", "../../outside", tarfile.SYMTYPE), "'ok/up'"),
    "hardlink-out": (_link("ok/hard", "../outside", tarfile.LNKTYPE), "'ok/hard'"),
    "hardlink-abs": (_link("ok/hard", "/etc/passwd", tarfile.LNKTYPE), "'ok/hard'"),
    "device": (_link("ok/dev", "", tarfile.CHRTYPE), "'ok/dev'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_members_are_refused_and_nothing_is_extracted(tmp_path, case):
    add, member = HOSTILE_TARS[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar_with(tmp_path, add)
    with pytest.raises(FileFormatError, match="refused") as info:
        extract(archive, work / "out")
    assert str(archive) in str(info.value) and member in str(info.value)
    assert leftovers(work) == []  # no dest, no staging folder
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("name", ["../evil", "/abs", "ok/../../evil", "C:/evil", "..\\evil"])
def test_hostile_zip_members_are_refused(tmp_path, name):
    archive = tmp_path / "hostile.zip"
    archive.write_bytes(make_zip({"ok/file.txt": b"ok", name: b"evil"}))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(FileFormatError, match="refused") as info:
        extract(archive, work / "out")
    assert repr(name) in str(info.value)
    assert leftovers(work) == []


def test_zip_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("ok/link")
        info.external_attr = (0o120777 << 16)  # S_IFLNK | 0777
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(FileFormatError, match="'ok/link' is a symbolic link"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_links_inside_the_target_are_kept(tmp_path):
    archive = _tar_with(tmp_path, _link("ok/alias.txt", "file.txt", tarfile.SYMTYPE))
    files = extract(archive, tmp_path / "out")
    assert files == [tmp_path / "out/ok/alias.txt", tmp_path / "out/ok/file.txt"]
    assert (tmp_path / "out/ok/alias.txt").is_symlink()
    assert (tmp_path / "out/ok/alias.txt").read_bytes() == b"ok"


def test_macos_metadata_is_skipped_and_filter_applies(tmp_path):
    members = {"T/a.txt": b"a", "T/._a.txt": b"apple", "__MACOSX/T/._a.txt": b"apple",
               "T/imagesTs/b.txt": b"b", "./T/c.txt": b"c"}
    for kind, data in (("tar", make_tar(members)), ("zip", make_zip(members))):
        archive = tmp_path / f"m.{kind}"
        archive.write_bytes(data)
        out = tmp_path / f"out-{kind}"
        files = extract(archive, out, members_filter=lambda n: "imagesTs" not in n)
        assert [str(p.relative_to(out)) for p in files] == ["T/a.txt", "T/c.txt"], kind
        assert leftovers(out) == ["T", "T/a.txt", "T/c.txt"], kind


def test_damaged_archives_raise_and_leave_dest_untouched(tmp_path):
    data = make_tar(GOOD)
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(FileFormatError, match="damaged or truncated"):
        extract(truncated, work / "out")
    assert leftovers(work) == []

    stored = make_zip({"a.bin": b"0123456789" * 100}, compression=zipfile.ZIP_STORED)
    index = stored.index(b"0123456789")
    bad_crc = stored[:index] + b"X" + stored[index + 1:]
    (tmp_path / "crc.zip").write_bytes(bad_crc)
    with pytest.raises(FileFormatError, match="CRC"):
        extract(tmp_path / "crc.zip", work / "out")
    assert leftovers(work) == []

    (tmp_path / "text.tar").write_text("not an archive")
    with pytest.raises(FileFormatError, match="neither a tar"):
        extract(tmp_path / "text.tar", work / "out")


def test_extract_refuses_a_non_empty_destination(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar(GOOD))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileFormatError, match="not an empty folder"):
        extract(archive, dest)
    assert leftovers(dest) == ["keep.txt"]
    (dest / "keep.txt").unlink()  # an empty folder is fine
    assert len(extract(archive, dest)) == len(GOOD)


# ----------------------------------------------------------------------------------------------
# fetch
# ----------------------------------------------------------------------------------------------
def test_fetch_downloads_extracts_moves_and_verifies(server, tmp_path):
    data = make_tar(GOOD)
    server.files["/Task.tar.gz"] = data
    seen = []
    source = DatasetSource(
        name="test", url=server.url("/Task.tar.gz"), folder="MSD/Task", archive_name="Task.tgz",
        md5=md5(data), locate=archive_subfolder("Task"),
        verify=lambda folder: seen.append(folder) or "report",
    )
    root = tmp_path / "root"
    result = fetch(source, root, progress=False, log=lambda m: None)
    assert result.folder == root / "MSD/Task" and result.report == "report"
    assert result.sha256 == sha256(data) and result.archive is None and result.downloaded
    assert seen == [root / "MSD/Task"]
    assert leftovers(root) == ["MSD", "MSD/Task", "MSD/Task/dataset.json", "MSD/Task/imagesTr",
                               "MSD/Task/imagesTr/case_001.nii.gz", "MSD/Task/labelsTr",
                               "MSD/Task/labelsTr/case_001.nii.gz"]
    # a second run finds the folder and only verifies
    again = fetch(source, root, progress=False, log=lambda m: None)
    assert not again.downloaded and len(server.log) == 1 and seen == [root / "MSD/Task"] * 2


def test_fetch_with_corrupt_archive_leaves_nothing(server, tmp_path):
    data = make_tar(GOOD)
    server.files["/Task.tar.gz"] = data[:-10] + b"0123456789"
    source = DatasetSource(name="t", url=server.url("/Task.tar.gz"), folder="MSD/Task",
                           archive_name="Task.tgz", md5=md5(data))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DownloadError, match="md5 checksum mismatch"):
        fetch(source, root, progress=False, log=lambda m: None)
    assert leftovers(root) == []


def test_fetch_with_wrong_layout_names_the_folder_and_cleans_up(server, tmp_path):
    data = make_tar(GOOD)
    server.files["/Task.tar.gz"] = data
    source = DatasetSource(name="t", url=server.url("/Task.tar.gz"), folder="MSD/Other",
                           archive_name="Task.tgz", locate=archive_subfolder("Other"))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(FileFormatError, match="no folder 'Other'.*'Task'"):
        fetch(source, root, progress=False, log=lambda m: None, keep_archive=True)
    assert leftovers(root) == ["downloads", "downloads/Task.tgz"]
