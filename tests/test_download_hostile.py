"""Hostile cases for cmrlab.data.download and the download scripts (issue 12).

Lying and wrong servers on 127.0.0.1 (short bodies, wrong or missing Content-Length, HTML login
pages, changed files), stale partial files, bad files already in place, damaged archives
(broken gzip trailer, tar cut at a member boundary or in a header, damaged header), duplicate
members, and archive bombs (too many bytes or members, by the headers and as written). Every
case checks the error (a cmrlab error naming the URL or file and the problem) and that nothing
wrong is left under a final name.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from test_data_scripts import fake_reader, msd_heart_tar, run_script
from test_download import GOOD, RangeServer, leftovers, make_tar, make_zip, resumable

from cmrlab.data import download as dl
from cmrlab.data.download import DatasetSource, DownloadError, download, extract, fetch, partial_path
from cmrlab.errors import ArgumentError, CmrlabError, ConfigError, FileFormatError
from cmrlab.files import is_partial

LOGIN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>"
              b"<form action='/login'>" + b"<input name='user'>" * 40 + b"</form></body></html>")


@pytest.fixture
def server():
    with RangeServer() as srv:
        yield srv


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_bytes() -> bytes:
    return make_zip(GOOD)


# ----------------------------------------------------------------------------------------------
# download: wrong bodies never become the final file
# ----------------------------------------------------------------------------------------------
def test_short_body_with_a_lying_content_length_is_never_the_final_file(server, tmp_path):
    data = zip_bytes()
    server.files["/a.zip"] = data
    server.announce["/a.zip"] = 2 * len(data)  # says twice as long, sends the file, hangs up
    dest = tmp_path / "a.zip"
    url = server.url("/a.zip")
    with pytest.raises(DownloadError) as info:
        download(url, dest, progress=False, retries=2)
    message = str(info.value)
    assert url in message and f"first announced {2 * len(data):,}" in message
    assert leftovers(tmp_path) == []  # neither dest nor the partial file nor its record
    # without retries the partial file is kept for a resume, but never under the final name
    with pytest.raises(DownloadError, match="run again to resume"):
        download(url, dest, progress=False, retries=0)
    assert not dest.exists() and partial_path(dest).stat().st_size == len(data)
    # the server is fixed: the next run notices the partial file's record no longer fits
    del server.announce["/a.zip"]
    with pytest.raises(DownloadError, match="first announced"):
        download(url, dest, progress=False, retries=0)
    assert leftovers(tmp_path) == []
    assert download(url, dest, progress=False).read_bytes() == data


def test_content_length_too_small_gives_a_truncated_zip_that_is_refused(server, tmp_path):
    data = zip_bytes()
    server.files["/a.zip"] = data
    server.announce["/a.zip"] = len(data) - 40  # the central directory is cut off
    with pytest.raises(DownloadError, match="damaged or incomplete file") as info:
        download(server.url("/a.zip"), tmp_path / "a.zip", progress=False)
    assert "deleted" in str(info.value) and leftovers(tmp_path) == []


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", None])
@pytest.mark.parametrize("page", [LOGIN_PAGE, b"  <html><body>Please log in</body></html>"])
def test_html_login_page_is_named_and_nothing_is_kept(server, tmp_path, content_type, page):
    server.files["/acdc.zip"] = page
    if content_type:
        server.content_types["/acdc.zip"] = content_type
    url = server.url("/acdc.zip")
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "acdc.zip", progress=False)
    assert "the server sent an HTML page (a login page?)" in str(info.value)
    assert "not a zip archive" in str(info.value) and url in str(info.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name, body, what", [
    ("t.tar.gz", b'{"message": "Access denied", "type": "access"}', "a JSON document"),
    ("t.tar", b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', "an XML document"),
    ("t.zip", b"\x1f\x8b\x08\x00" + b"\x00" * 600, "bytes starting b'\\x1f\\x8b"),
    ("t.tgz", b"PK\x03\x04" + b"\x00" * 600, "not a gzip file"),
])
def test_wrong_type_by_magic_bytes(server, tmp_path, name, body, what):
    server.files["/f"] = body
    with pytest.raises(DownloadError, match="the server sent") as info:
        download(server.url("/f"), tmp_path / name, progress=False)
    assert what in str(info.value) and leftovers(tmp_path) == []


def test_kind_argument(server, tmp_path):
    server.files["/page"] = LOGIN_PAGE
    with pytest.raises(DownloadError, match="an HTML page"):  # unknown extension: no HTML
        download(server.url("/page"), tmp_path / "file.bin", progress=False)
    with pytest.raises(DownloadError, match="not a xz file"):
        download(server.url("/page"), tmp_path / "file.bin", kind="xz", progress=False)
    assert download(server.url("/page"), tmp_path / "page.html", kind=None,
                    progress=False).read_bytes() == LOGIN_PAGE
    with pytest.raises(ArgumentError, match="kind must be 'auto', None or one of 'zip'"):
        download(server.url("/page"), tmp_path / "x", kind="rar")
    with pytest.raises(ArgumentError, match="max_size must be an integer >= 0"):
        download(server.url("/page"), tmp_path / "x", max_size=-1)


def test_no_content_length_reads_at_most_the_pinned_size(server, tmp_path):
    body = b"PK\x03\x04" + os.urandom(3_000_000)
    server.files["/a.zip"] = body
    server.no_length.add("/a.zip")
    with pytest.raises(DownloadError) as info:
        download(server.url("/a.zip"), tmp_path / "a.zip", size=1000, progress=False, chunk=256)
    assert "more than the 1,000 bytes expected (it gave no Content-Length)" in str(info.value)
    assert leftovers(tmp_path) == []
    with pytest.raises(DownloadError, match="more than the 5,000 bytes expected"):
        download(server.url("/a.zip"), tmp_path / "a.zip", max_size=5000, progress=False)
    assert leftovers(tmp_path) == []


def test_announced_length_above_max_size_is_refused_before_reading(server, tmp_path):
    server.files["/a.zip"] = zip_bytes()
    with pytest.raises(DownloadError, match=r"offers [\d,]+ bytes, more than the 100 allowed"):
        download(server.url("/a.zip"), tmp_path / "a.zip", max_size=100, progress=False)
    assert leftovers(tmp_path) == []


def test_no_content_length_and_a_short_body(server, tmp_path):
    data = zip_bytes()
    server.files["/a.zip"] = data[: len(data) // 2]
    server.no_length.add("/a.zip")
    with pytest.raises(DownloadError, match=f"has {len(data) // 2:,} bytes, expected {len(data):,}"):
        download(server.url("/a.zip"), tmp_path / "a.zip", size=len(data), progress=False)
    assert leftovers(tmp_path) == []
    with pytest.raises(DownloadError, match="damaged or incomplete"):  # no size: the zip is read
        download(server.url("/a.zip"), tmp_path / "a.zip", progress=False)
    assert leftovers(tmp_path) == []


def test_tar_cut_at_a_member_boundary_is_refused_by_the_download(server, tmp_path):
    data = make_tar(GOOD, mode="w")
    server.files["/t.tar"] = cut_at_member_boundary(data)
    with pytest.raises(DownloadError, match="end-of-archive marker"):
        download(server.url("/t.tar"), tmp_path / "t.tar", progress=False)
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# download: stale partial files and bad files in place
# ----------------------------------------------------------------------------------------------
def test_stale_partial_of_another_url_is_not_resumed(server, tmp_path):
    data = os.urandom(20_000)
    server.files["/new.bin"] = data
    dest = tmp_path / "f.bin"
    resumable(dest, b"X" * 5000, server.url("/old.bin"), total=20_000)
    assert download(server.url("/new.bin"), dest, sha256=sha(data), progress=False).read_bytes() == data
    assert server.log == [("/new.bin", None, 200)] and leftovers(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("record", [None, "not json {", '{"url": NaN}', "[1, 2]"])
def test_partial_without_a_valid_record_is_not_resumed(server, tmp_path, record):
    data = os.urandom(9_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    part = partial_path(dest)
    part.write_bytes(b"stale bytes of some other file")
    if record is not None:
        part.with_name(part.name + ".json").write_text(record)
    download(server.url("/f.bin"), dest, md5=hashlib.md5(data).hexdigest(), progress=False)
    assert dest.read_bytes() == data and server.log == [("/f.bin", None, 200)]
    assert leftovers(tmp_path) == ["f.bin"]


def test_partial_for_another_pinned_checksum_is_not_resumed(server, tmp_path):
    data = os.urandom(9_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    resumable(dest, data[:4000], server.url("/f.bin"), sha256="0" * 64, total=9_000)
    download(server.url("/f.bin"), dest, sha256=sha(data), progress=False)
    assert dest.read_bytes() == data and server.ranges("/f.bin") == [None]


def test_legacy_part_file_is_removed(server, tmp_path):
    data = os.urandom(3_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    (tmp_path / ".f.bin.part").write_bytes(b"from cmrlab 0.1")
    download(server.url("/f.bin"), dest, progress=False)
    assert leftovers(tmp_path) == ["f.bin"] and server.ranges("/f.bin") == [None]


def test_changed_file_is_sent_whole_through_if_range(server, tmp_path):
    old, new = os.urandom(30_000), os.urandom(30_000)
    server.files["/f.bin"] = new
    server.etags["/f.bin"] = '"v2"'
    dest = tmp_path / "f.bin"
    resumable(dest, old[:10_000], server.url("/f.bin"), total=30_000, etag='"v1"')
    download(server.url("/f.bin"), dest, progress=False)
    assert dest.read_bytes() == new  # not old[:10000] + new[10000:]
    assert server.log == [("/f.bin", "bytes=10000-", 200)] and server.if_ranges == ['"v1"']


def test_interrupted_download_sends_the_etag_and_resumes(server, tmp_path):
    data = os.urandom(60_000)
    server.files["/f.bin"] = data
    server.etags["/f.bin"] = '"abc"'
    server.cut_after["/f.bin"] = 25_000
    dest = tmp_path / "f.bin"
    download(server.url("/f.bin"), dest, progress=False, retries=1)
    assert dest.read_bytes() == data and server.if_ranges == [None, '"abc"']
    assert [status for _, _, status in server.log] == [200, 206]


def test_changed_length_without_validators_starts_again(server, tmp_path):
    data = os.urandom(12_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    resumable(dest, os.urandom(4_000), server.url("/f.bin"), total=50_000)
    with pytest.raises(DownloadError, match="changed on the server .*50,000 bytes, now 12,000"):
        download(server.url("/f.bin"), dest, progress=False, retries=0)
    assert leftovers(tmp_path) == []
    download(server.url("/f.bin"), dest, progress=False, retries=0)
    assert dest.read_bytes() == data


def test_416_without_a_length_is_not_taken_as_complete(server, tmp_path):
    data = os.urandom(5_000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    resumable(dest, data + b"extra", server.url("/f.bin"))  # longer than the file
    with pytest.raises(DownloadError, match="partial file has 5,005 bytes, but the server now "
                                            "says the file has 5,000"):
        download(server.url("/f.bin"), dest, progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["truncated", "html", "empty"])
def test_bad_existing_file_is_downloaded_again(server, tmp_path, bad):
    data = zip_bytes()
    server.files["/a.zip"] = data
    dest = tmp_path / "a.zip"
    dest.write_bytes({"truncated": data[:-30], "html": LOGIN_PAGE, "empty": b""}[bad])
    assert download(server.url("/a.zip"), dest, progress=False).read_bytes() == data
    assert len(server.log) == 1 and leftovers(tmp_path) == ["a.zip"]


def test_good_existing_file_without_checksum_is_read_not_downloaded(server, tmp_path):
    dest = tmp_path / "a.zip"
    dest.write_bytes(zip_bytes())
    assert download(server.url("/absent.zip"), dest, progress=False) == dest
    assert server.log == []


def test_partial_names_are_recognised_as_partials(tmp_path):
    part = partial_path(tmp_path / "acdc.zip")
    assert part.name == ".acdc.zip.download.partial" and is_partial(part)
    assert is_partial(part.with_name(part.name + ".json"))


# ----------------------------------------------------------------------------------------------
# extract: damaged archives
# ----------------------------------------------------------------------------------------------
def tar_members_offsets(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def cut_at_member_boundary(data: bytes) -> bytes:
    """A plain tar without its end-of-archive blocks: cut right after the last member's data."""
    last = tar_members_offsets(data)[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    return data[:end]


def damaged(tmp_path: Path, name: str, data: bytes) -> tuple[Path, Path]:
    archive = tmp_path / name
    archive.write_bytes(data)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return archive, work


def _gzip_trailer(data: bytes, index: int) -> bytes:
    corrupt = bytearray(data)
    corrupt[index] ^= 0x01
    return bytes(corrupt)


TAR = make_tar(GOOD, mode="w")
DAMAGED_TARS = {
    # name: (archive name, bytes, what the message says)
    "gzip-crc": ("t.tar.gz", _gzip_trailer(make_tar(GOOD), -8), "CRC"),
    "gzip-length": ("t.tar.gz", _gzip_trailer(make_tar(GOOD), -1), "length"),
    "gzip-garbage-after": ("t.tar.gz", make_tar(GOOD) + b"garbage!", "damaged or truncated"),
    "cut-at-member": ("t.tar", cut_at_member_boundary(TAR), "end-of-archive marker"),
    "cut-at-member-gz": ("t.tar.gz", __import__("gzip").compress(cut_at_member_boundary(TAR),
                                                                  mtime=0), "end-of-archive marker"),
    "cut-in-header": ("t.tar", TAR[: tar_members_offsets(TAR)[-1].offset + 100], "cut short"),
    "cut-in-data": ("t.tar", TAR[: tar_members_offsets(TAR)[-1].offset_data + 10],
                    "damaged or truncated"),
    "bad-header": ("t.tar", TAR[: tar_members_offsets(TAR)[1].offset + 3] + b"\xff"
                   + TAR[tar_members_offsets(TAR)[1].offset + 4:], "damaged member header"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_TARS))
def test_damaged_tar_fails_and_leaves_nothing(tmp_path, case):
    name, data, message = DAMAGED_TARS[case]
    archive, work = damaged(tmp_path, name, data)
    with pytest.raises(FileFormatError, match=message) as info:
        extract(archive, work / "out")
    assert str(archive) in str(info.value)
    assert leftovers(work) == []  # no dest, no hidden staging folder


def test_zip_lying_about_its_size_cannot_write_more_than_its_header(tmp_path):
    payload = b"\0" * 200_000
    data = bytearray(make_zip({"big.bin": payload}))
    central = data.index(b"PK\x01\x02")
    for field in (22, central + 24):  # local header and central directory: uncompressed size
        data[field: field + 4] = (10).to_bytes(4, "little")
    archive, work = damaged(tmp_path, "lie.zip", bytes(data))
    with pytest.raises(FileFormatError, match="CRC"):
        extract(archive, work / "out")
    assert leftovers(work) == []
    # with the CRC patched to fit the first 10 bytes the zip is "valid": 10 bytes come out
    crc = zlib.crc32(payload[:10]).to_bytes(4, "little")
    data[14:18] = crc
    data[central + 16: central + 20] = crc
    archive.write_bytes(bytes(data))
    files = extract(archive, work / "out")
    assert [p.stat().st_size for p in files] == [10]


def test_encrypted_zip_member_is_refused(tmp_path):
    data = bytearray(make_zip({"a.txt": b"secret"}, compression=zipfile.ZIP_STORED))
    central = data.index(b"PK\x01\x02")
    data[6] |= 1
    data[central + 8] |= 1  # general purpose flag bit 0: encrypted
    archive, work = damaged(tmp_path, "enc.zip", bytes(data))
    with pytest.raises(FileFormatError, match="'a.txt' is encrypted"):
        extract(archive, work / "out")
    assert leftovers(work) == []


def test_html_page_saved_as_an_archive(tmp_path):
    archive, work = damaged(tmp_path, "acdc.zip", LOGIN_PAGE)
    with pytest.raises(FileFormatError, match=r"nor a zip archive: it is an HTML page \(a login"):
        extract(archive, work / "out")


# ----------------------------------------------------------------------------------------------
# extract: duplicate members
# ----------------------------------------------------------------------------------------------
def zip_with(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name"
        for i, name in enumerate(names):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), f"content {i}")
    return buffer.getvalue()


def tar_with(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, name in enumerate(names):
            content = f"content {i}".encode()
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


DUPLICATES = {
    "same-name": (["T/a.txt", "T/b.txt", "T/a.txt"], "'T/a.txt' appears twice"),
    "dot-slash": (["T/a.txt", "./T/a.txt"], "'./T/a.txt' appears twice (also as 'T/a.txt')"),
    "double-slash": (["T/a.txt", "T//a.txt"], "appears twice"),
    "case": (["T/Image.nii.gz", "T/image.nii.gz"], "differ only in letter case"),
    "unicode-form": (["T/caf\u00e9.txt", "T/cafe\u0301.txt"], "differ only in letter case"),
    "file-then-folder": (["T/a", "T/a/b.txt"], "needs 'T/a' as a folder, but 'T/a' is a file"),
    "folder-then-file": (["T/a/b.txt", "T/a"], "'T/a' is a file where 'T/a/' is a folder"),
}


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_members_are_refused(tmp_path, kind, case):
    names, message = DUPLICATES[case]
    data = zip_with(names) if kind == "zip" else tar_with(names)
    archive, work = damaged(tmp_path, f"dup.{kind}", data)
    with pytest.raises(FileFormatError, match="refused, one would silently replace") as info:
        extract(archive, work / "out")
    assert message in str(info.value) and str(archive) in str(info.value)
    assert leftovers(work) == []


def test_folder_listed_twice_is_fine(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("T", "T/sub", "T"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        info = tarfile.TarInfo("T/sub/a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    archive, work = damaged(tmp_path, "dirs.tar", buffer.getvalue())
    assert extract(archive, work / "out") == [work / "out/T/sub/a.txt"]


def test_top_folder_member_is_skipped_but_a_file_named_dot_is_not(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:  # as `tar -cf x.tar -C dir .` writes it
        info = tarfile.TarInfo("./")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        info = tarfile.TarInfo("./T/a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    archive, work = damaged(tmp_path, "dot.tar", buffer.getvalue())
    assert extract(archive, work / "out") == [work / "out/T/a.txt"]
    archive.write_bytes(tar_with(["./", "T/a.txt"]))  # "./" as a regular file
    with pytest.raises(FileFormatError, match="member './' names no file"):
        extract(archive, work / "out2")


def test_symlink_used_as_a_folder_cannot_climb_out(tmp_path):
    # d/l1 -> ..  (stays inside), then d/l1/l2 -> .. (lexically inside, really one level up)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, target in (("d/l1", ".."), ("d/l1/l2", "..")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        info = tarfile.TarInfo("d/l1/l2/evil")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    archive = tmp_path / "climb.tar"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(FileFormatError, match="needs 'd/l1' as a folder"):
        extract(archive, work / "out")
    assert leftovers(tmp_path / "a") == ["b"]


# ----------------------------------------------------------------------------------------------
# extract: archive bombs
# ----------------------------------------------------------------------------------------------
BOMB = {"bomb/a.bin": b"\0" * 600_000, "bomb/b.bin": b"\0" * 600_000}


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_total_size_limit_from_the_headers(tmp_path, kind):
    data = make_zip(BOMB) if kind == "zip" else make_tar(BOMB)
    assert len(data) < 10_000  # small on disk, 1.2 MB unpacked
    archive, work = damaged(tmp_path, f"bomb.{kind}", data)
    with pytest.raises(FileFormatError, match="unpacks to more than 1,000,000 bytes .*headers say "
                                              "1,200,000.*archive bomb") as info:
        extract(archive, work / "out", max_bytes=1_000_000)
    assert str(archive) in str(info.value) and leftovers(work) == []
    assert len(extract(archive, work / "out", max_bytes=1_200_000)) == 2


def test_zip_total_is_judged_before_anything_is_written(tmp_path, monkeypatch):
    written = []
    real = dl._Budget.copy
    monkeypatch.setattr(dl._Budget, "copy", lambda self, *a: written.append(a) or real(self, *a))
    archive, work = damaged(tmp_path, "bomb.zip", make_zip(BOMB))
    with pytest.raises(FileFormatError, match="archive bomb"):
        extract(archive, work / "out", max_bytes=1_000_000)
    assert written == []


def test_bytes_written_are_counted_even_when_the_headers_lie(tmp_path):
    class Endless:
        def __init__(self):
            self.calls = 0

        def read(self, n):
            self.calls += 1
            return b"\0" * 1000 if self.calls < 10_000 else b""

    budget = dl._Budget(tmp_path / "x.zip", max_bytes=5_000, max_members=10)
    budget.announce(10, "a.bin")  # the header says 10 bytes
    source = Endless()
    with pytest.raises(FileFormatError, match="more than its headers said"):
        budget.copy(source, tmp_path / "a.bin", "a.bin")
    assert source.calls == 6 and (tmp_path / "a.bin").stat().st_size == 5_000


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_member_count_limit(tmp_path, kind):
    names = [f"T/f{i:03d}.txt" for i in range(50)]
    archive, work = damaged(tmp_path, f"many.{kind}", zip_with(names) if kind == "zip" else tar_with(names))
    with pytest.raises(FileFormatError, match="more than the 10 allowed|more than 10 members"):
        extract(archive, work / "out", max_members=10)
    assert leftovers(work) == []
    assert len(extract(archive, work / "out", max_members=50)) == 50


def test_zip_member_count_is_read_from_the_end_record(tmp_path):
    path = tmp_path / "z.zip"
    path.write_bytes(zip_with([f"f{i}" for i in range(37)]) + b"")
    assert dl._zip_entry_count(path) == 37
    path.write_bytes(b"PK\x03\x04 not a zip")
    assert dl._zip_entry_count(path) is None


def test_size_limit_from_the_environment(tmp_path, monkeypatch):
    archive, work = damaged(tmp_path, "bomb.zip", make_zip(BOMB))
    monkeypatch.setenv("CMRLAB_MAX_EXTRACT_BYTES", "700000")
    with pytest.raises(FileFormatError, match="more than 700,000 bytes"):
        extract(archive, work / "out")
    monkeypatch.setenv("CMRLAB_MAX_EXTRACT_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"\$CMRLAB_MAX_EXTRACT_BYTES must be a whole number"):
        extract(archive, work / "out")
    with pytest.raises(ArgumentError, match="max_bytes must be an integer >= 1"):
        extract(archive, work / "out", max_bytes=0)
    assert leftovers(work) == []


# ----------------------------------------------------------------------------------------------
# fetch and the scripts
# ----------------------------------------------------------------------------------------------
def test_fetch_refuses_an_html_page_saved_by_hand(tmp_path):
    page = tmp_path / "acdc.zip"
    page.write_bytes(LOGIN_PAGE)
    source = DatasetSource(name="ACDC", url="http://127.0.0.1:9/x", folder="ACDC/database",
                           archive_name="acdc.zip")
    with pytest.raises(DownloadError, match=r"acdc.zip is an HTML page \(a login page\?\)"):
        fetch(source, tmp_path / "root", archive=page, progress=False, log=lambda m: None)
    assert page.read_bytes() == LOGIN_PAGE and not (tmp_path / "root").exists()


def test_fetch_removes_a_staging_folder_left_by_a_killed_run(server, tmp_path):
    server.files["/Task.tar.gz"] = make_tar(GOOD)
    root = tmp_path / "root"
    stale = root / "MSD" / ".Task.1a2b3c4d.partial"
    (stale / "Task").mkdir(parents=True)
    source = DatasetSource(name="t", url=server.url("/Task.tar.gz"), folder="MSD/Task",
                           archive_name="Task.tar.gz", locate=dl.archive_subfolder("Task"))
    fetch(source, root, progress=False, log=lambda m: None)
    assert sorted(p.name for p in (root / "MSD").iterdir()) == ["Task"]


def test_acdc_script_login_page_then_a_good_url(server, tmp_path, monkeypatch, capsys):
    server.files["/login"] = LOGIN_PAGE
    server.content_types["/login"] = "text/html"
    root = tmp_path / "data"
    code, out, err = run_script(monkeypatch, capsys, "acdc", "--url", server.url("/login"),
                                "--data-root", str(root), "--no-progress",
                                readers={"acdc": fake_reader([])})
    assert code == 1 and "the server sent an HTML page (a login page?)" in err
    assert server.url("/login") in err and "Traceback" not in err
    assert not root.exists() or leftovers(root) == []
    data = make_zip({"database/training/patient001/Info.cfg": b"ED: 1\n"})
    server.files["/acdc.zip"] = data
    code, out, err = run_script(monkeypatch, capsys, "acdc", "--url", server.url("/acdc.zip"),
                                "--data-root", str(root), "--no-progress",
                                readers={"acdc": fake_reader([])})
    assert code == 0, err
    assert (root / "ACDC/database/training/patient001/Info.cfg").read_bytes() == b"ED: 1\n"


def test_acdc_script_does_not_trust_a_bad_archive_in_place(server, tmp_path, monkeypatch, capsys):
    data = make_zip({"training/patient001/Info.cfg": b"ED: 1\n"})
    server.files["/acdc.zip"] = data
    root = tmp_path / "data"
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / "acdc.zip").write_bytes(data[: len(data) // 2])  # an earlier cut copy
    code, out, err = run_script(monkeypatch, capsys, "acdc", "--url", server.url("/acdc.zip"),
                                "--data-root", str(root), "--no-progress", "--keep-archive",
                                readers={"acdc": fake_reader([])})
    assert code == 0, err
    assert (root / "downloads" / "acdc.zip").read_bytes() == data and len(server.log) == 1
    assert f"--sha256 {sha(data)}" in out


def test_acdc_script_bounds_an_endless_download(server, tmp_path, monkeypatch, capsys):
    server.files["/acdc.zip"] = b"PK\x03\x04" + b"\0" * 400_000
    server.no_length.add("/acdc.zip")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "data_scripts"))
    import acdc  # the script's module, to lower its bound for the test

    monkeypatch.setattr(acdc, "MAX_ZIP_BYTES", 100_000)
    monkeypatch.setattr("sys.argv", ["acdc.py", "--url", server.url("/acdc.zip"), "--data-root",
                                     str(tmp_path / "data"), "--no-progress"])
    with pytest.raises(DownloadError, match="more than the 100,000 bytes expected"):
        acdc.main()
    assert leftovers(tmp_path / "data") == []


def test_msd_script_max_bytes_refuses_and_keeps_the_verified_archive(server, tmp_path,
                                                                     monkeypatch, capsys):
    data, _ = msd_heart_tar()
    server.files["/t.tar"] = data
    root = tmp_path / "data"
    args = ["--url", server.url("/t.tar"), "--sha256", sha(data), "--data-root", str(root),
            "--no-progress"]
    code, out, err = run_script(monkeypatch, capsys, "msd", *args, "--max-bytes", "1000",
                                readers={"msd": fake_reader([])})
    assert code == 1 and "archive bomb" in err and "--max-bytes" in err
    assert leftovers(root) == ["downloads", "downloads/Task02_Heart.tar"]  # nothing unpacked
    code, out, err = run_script(monkeypatch, capsys, "msd", *args, readers={"msd": fake_reader([])})
    assert code == 0, err
    assert len(server.log) == 1  # the verified archive was used again, not downloaded again
    assert (root / "MSD/Task02_Heart/dataset.json").is_file()


def test_every_error_is_a_cmrlab_error_naming_the_url(server, tmp_path):
    server.files["/page.zip"] = LOGIN_PAGE
    for call in (lambda: download(server.url("/page.zip"), tmp_path / "p.zip", progress=False),
                 lambda: download(server.url("/none.zip"), tmp_path / "n.zip", progress=False)):
        with pytest.raises(CmrlabError) as info:
            call()
        assert isinstance(info.value, DownloadError) and "127.0.0.1" in str(info.value)
        assert "\n" not in str(info.value)  # one plain line, no traceback text
