"""The shared argument checks (cmrlab.checks) and safe file helpers (cmrlab.files)."""
import json
import math
import os

import numpy as np
import pytest

from cmrlab.checks import (check_bool, check_choice, check_int, check_int_tuple, check_number,
                           check_spacing, did_you_mean, metadata_number)
from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError
from cmrlab.files import (atomic_folder, atomic_write, atomic_write_text, inside, is_partial,
                          load_json, load_yaml, partial_name, read_text, remove_partials)


# ---------------------------------------------------------------------------------------------- checks
@pytest.mark.parametrize("value", [True, 3.0, "3", None, 0, -1, np.float64(2)])
def test_check_int_refuses(value):
    with pytest.raises(ArgumentError, match="depth must be an integer >= 1"):
        check_int("depth", value)


def test_check_int_accepts_numpy_and_bounds():
    assert check_int("n", np.int64(4)) == 4 and type(check_int("n", np.int64(4))) is int
    assert check_int("n", 0, minimum=0) == 0
    with pytest.raises(ArgumentError, match=r"in \[1, 3\]"):
        check_int("n", 4, 1, 3)
    assert check_int("n", -5, minimum=None) == -5


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1", True, 1j, None, [1.0]])
def test_check_number_refuses_non_finite_and_non_numbers(value):
    with pytest.raises(ArgumentError, match="T1 must be a finite number"):
        check_number("T1", value)


def test_check_number_bounds_and_scalars():
    assert check_number("x", np.float32(0.5), 0, 1) == 0.5
    assert check_number("x", np.array(2.0)) == 2.0
    with pytest.raises(ArgumentError, match="> 0"):
        check_number("x", 0.0, 0, low_open=True)
    with pytest.raises(ArgumentError, match="< 1"):
        check_number("x", 1.0, maximum=1, high_open=True)
    assert check_number("x", math.inf, 0, finite=False) == math.inf
    with pytest.raises(ArgumentError):
        check_number("x", math.nan, finite=False)


def test_check_bool_and_choice():
    assert check_bool("flag", np.bool_(True)) is True
    with pytest.raises(ArgumentError, match="True or False"):
        check_bool("flag", 1)
    assert check_choice("act", "relu", ("relu", "tanh")) == "relu"
    assert check_choice("act", "relu", {"relu": 7}) == 7
    with pytest.raises(ArgumentError, match="did you mean 'softmax'"):
        check_choice("activation", "softmx", ("softmax", "sigmoid"))
    with pytest.raises(ArgumentError):
        check_choice("k", True, (1, 2))  # True == 1, but a flag is not a number option
    with pytest.raises(ArgumentError):
        check_choice("k", [1], (1, 2))
    assert did_you_mean("zzz", ["abc"]) == ""


def test_check_spacing_and_int_tuple():
    assert check_spacing("spacing", [1, 2.5, 10]) == (1.0, 2.5, 10.0)
    for bad in ([0, 1, 1], [1, -1, 1], [1, math.nan, 1], [math.inf], "1,1,1", [], 3):
        with pytest.raises(ArgumentError, match="spacing"):
            check_spacing("spacing", bad)
    with pytest.raises(ArgumentError, match="3 numbers"):
        check_spacing("spacing", [1, 1], ndim=3)
    assert check_int_tuple("k", [3, 5], odd=True) == (3, 5)
    with pytest.raises(ArgumentError, match="odd"):
        check_int_tuple("k", [3, 4], odd=True)


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "", "abc", None, True, math.inf, "-Infinity"])
def test_metadata_number_names_file_and_field(tmp_path, value):
    with pytest.raises(FileFormatError) as info:
        metadata_number(tmp_path / "Info.cfg", "ED", value)
    assert "Info.cfg" in str(info.value) and "'ED'" in str(info.value)


def test_metadata_number_integer_and_range(tmp_path):
    f = tmp_path / "Info.cfg"
    assert metadata_number(f, "ED", " 12 ", integer=True, minimum=1) == 12
    assert metadata_number(f, "Height", "178.5") == 178.5
    with pytest.raises(FileFormatError, match="whole number"):
        metadata_number(f, "ED", "1.5", integer=True)
    with pytest.raises(FileFormatError, match="must lie in"):
        metadata_number(f, "ED", "0", integer=True, minimum=1)
    assert metadata_number(f, "ED", 3.0, integer=True) == 3


# ---------------------------------------------------------------------------------------------- files
def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "a.nii.gz"
    atomic_write_text(target, "old")
    seen = []

    def fail(tmp):
        seen.append(tmp)
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(FileFormatError, match="a.nii.gz: could not be written.*disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert seen[0].name.endswith(".partial.nii.gz") and is_partial(seen[0])
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.nii.gz"]


def test_atomic_write_passes_cmrlab_errors_and_interrupts(tmp_path):
    def cmr(tmp):
        raise ArgumentError("bad value")

    with pytest.raises(ArgumentError, match="bad value"):
        atomic_write(tmp_path / "x.txt", cmr)

    def interrupt(tmp):
        tmp.write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.txt", interrupt)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileFormatError, match="is a folder"):
        atomic_write_text(tmp_path, "x")


def test_remove_partials_only_touches_ours(tmp_path):
    (tmp_path / "last.pt").write_text("keep")
    (tmp_path / ".hidden").write_text("keep")
    p1 = partial_name(tmp_path / "last.pt")
    p1.write_text("stale")
    p2 = partial_name(tmp_path / "best.pt")
    p2.write_text("stale")
    assert remove_partials(tmp_path, "last.pt") == [p1]
    assert p2.exists()
    assert remove_partials(tmp_path) == [p2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "last.pt"]
    assert remove_partials(tmp_path / "missing") == []


def test_atomic_folder(tmp_path):
    dest = tmp_path / "out"
    with atomic_folder(dest) as tmp:
        (tmp / "a").write_text("1")
        assert not dest.exists()
    assert (dest / "a").read_text() == "1"
    dest2 = tmp_path / "out2"
    with pytest.raises(RuntimeError):
        with atomic_folder(dest2) as tmp:
            (tmp / "a").write_text("1")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(FileFormatError, match="could not be created"):
        with atomic_folder(dest) as tmp:  # dest exists and is not empty
            (tmp / "b").write_text("2")
    with atomic_folder(dest, exist_ok_if=lambda d: (d / "a").exists()) as tmp:
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_inside_refuses_escapes(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    (tmp_path / "secret").write_text("x")
    assert inside(root, "imagesTr/a.nii.gz") == root / "imagesTr" / "a.nii.gz"
    for bad in ("../secret", "/etc/passwd", "a/../../secret", "", "a\x00b"):
        with pytest.raises(FileFormatError):
            inside(root, bad, source=root / "dataset.json")
    os.symlink(tmp_path / "secret", root / "link")
    with pytest.raises(FileFormatError, match="leads outside"):
        inside(root, "link", source=root / "dataset.json")
    os.symlink(root / "imagesTr", root / "inner")  # a link that stays inside is fine
    assert inside(root, "inner/x") == root / "inner" / "x"


def test_read_text_strict(tmp_path):
    f = tmp_path / "Info.cfg"
    f.write_bytes(b"ED: 1\nGroup: \xff\xfe\n")
    with pytest.raises(FileFormatError, match="Info.cfg: is not UTF-8"):
        read_text(f)
    f.write_bytes("\ufeffED: 1".encode())
    assert read_text(f) == "ED: 1"
    with pytest.raises(FileFormatError, match="larger than"):
        read_text(f, max_bytes=3)
    with pytest.raises(FileFormatError, match="does not exist"):
        read_text(tmp_path / "nope")
    with pytest.raises(FileFormatError, match="is a folder"):
        read_text(tmp_path)


@pytest.mark.parametrize("text, match", [
    ('{"a": Infinity}', "finite"), ('{"a": NaN}', "finite"), ('{"a": 1e400}', "'a'"),
    ('[' * 100000 + ']' * 100000, "nested"), ('[' * 70 + ']' * 70, "nested"), ('{"a": ', "not valid JSON"),
])
def test_load_json_hostile(tmp_path, text, match):
    f = tmp_path / "dataset.json"
    f.write_text(text)
    with pytest.raises(FileFormatError, match=match) as info:
        load_json(f)
    assert "dataset.json" in str(info.value)


def test_load_json_good(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"a": [1, 2.5, {"b": None}]}))
    assert load_json(f) == {"a": [1, 2.5, {"b": None}]}
    f.write_text('{"a": Infinity}')
    assert load_json(f, allow_non_finite=True) == {"a": math.inf}


@pytest.mark.parametrize("text, match", [
    ("lr: .inf\n", "'lr'"), ("a: {b: [.nan]}\n", r"a.b\[0\]"), ("a: [\n", "not valid YAML"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested"), ("a: 1e400\n", None),
])
def test_load_yaml_hostile(tmp_path, text, match):
    f = tmp_path / "config.yaml"
    f.write_text(text)
    if match is None:  # PyYAML reads 1e400 as the string '1e400' (no dot): a later field check refuses it
        assert load_yaml(f) == {"a": "1e400"}
        return
    with pytest.raises(FileFormatError, match=match):
        load_yaml(f)


def test_errors_are_cmrlab_errors():
    assert issubclass(FileFormatError, CmrlabError) and issubclass(ArgumentError, CmrlabError)
