from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from dlspec_ray.artifacts import unpack
from dlspec_ray.artifacts.unpack import archive_format, safe_unpack
from dlspec_ray.errors import ArtifactError

TAR_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}


def _entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    data: bytes = b"",
    link: str = "",
    mode: int | None = None,
):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = mode if mode is not None else 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_tar(path: Path, entries: list, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in entries:
            if data is not None:
                data.seek(0)  # entries are module constants, reused by each parametrization
            tar.addfile(info, data)
    return path


def make_zip(path: Path, names: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in names.items():
            zipped.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.fixture(params=[True, False], ids=["data-filter", "no-data-filter"])
def data_filter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both paths: Pythons with tarfile's ``data`` filter, and 3.10 releases without it."""
    if request.param and not unpack._HAS_DATA_FILTER:
        pytest.skip("this Python's tarfile has no data filter")
    monkeypatch.setattr(unpack, "_HAS_DATA_FILTER", request.param)
    return request.param


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.tar.gz", "tar"),
        ("A.TGZ", "tar"),
        ("a.tar.bz2", "tar"),
        ("a.tar.xz", "tar"),
        ("a.tar", "tar"),
        ("a.zip", "zip"),
        ("t10k-images-idx3-ubyte.gz", "gz"),
        ("model.onnx", None),
        ("a.tar.zst", None),
    ],
)
def test_archive_format_from_the_name(name: str, kind: str | None) -> None:
    assert archive_format(name) == kind


@pytest.mark.parametrize("suffix", list(TAR_MODES))
def test_tar_archives_unpack_with_their_links(
    tmp_path: Path, suffix: str, data_filter: bool
) -> None:
    archive = make_tar(
        tmp_path / f"data{suffix}",
        [
            _entry("data", tarfile.DIRTYPE),
            _entry("data/a.txt", data=b"alpha"),
            _entry("data/sub/b.txt", data=b"beta"),
            _entry("data/link", tarfile.SYMTYPE, link="sub/b.txt"),
            _entry("data/hard", tarfile.LNKTYPE, link="data/a.txt"),
            _entry("data/setuid", data=b"#!/bin/sh\n", mode=0o6777),
        ],
        TAR_MODES[suffix],
    )
    target = tmp_path / "out" / "digest"
    assert safe_unpack(archive, target) == target
    assert (target / "data" / "a.txt").read_bytes() == b"alpha"
    assert (target / "data" / "link").read_bytes() == b"beta"
    assert os.readlink(target / "data" / "link") == "sub/b.txt"
    assert (target / "data" / "hard").read_bytes() == b"alpha"
    mode = (target / "data" / "setuid").stat().st_mode
    assert (mode & 0o7777, mode & 0o100) == (0o755, 0o100)  # no setuid/setgid, no o+w
    assert _leftovers(target.parent) == []


def test_zip_unpacks(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "x.zip", {"images/1.png": b"one", "labels.txt": b"7\n"})
    target = safe_unpack(archive, tmp_path / "out")
    assert (target / "images" / "1.png").read_bytes() == b"one"
    assert (target / "labels.txt").read_bytes() == b"7\n"


def test_single_gz_file_unpacks_to_its_name_without_gz(tmp_path: Path) -> None:
    archive = tmp_path / "t10k-labels-idx1-ubyte.gz"
    archive.write_bytes(gzip.compress(b"\x00\x00\x08\x01labels"))
    target = safe_unpack(archive, tmp_path / "out")
    assert os.listdir(target) == ["t10k-labels-idx1-ubyte"]
    assert (target / "t10k-labels-idx1-ubyte").read_bytes() == b"\x00\x00\x08\x01labels"


def test_an_existing_target_is_reused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "x.zip", {"f": b"1"})
    target = safe_unpack(archive, tmp_path / "out")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # readable by a container's user
    target.chmod(0o700)  # as earlier versions left it
    archive.unlink()
    assert safe_unpack(archive, target) == target
    assert (target / "f").read_bytes() == b"1"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_concurrent_unpacks_of_one_archive_all_succeed(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "x.tar.gz", [_entry(f"f{i}", data=bytes(1000) * i) for i in range(50)], "w:gz"
    )
    target = tmp_path / "unpacked" / "digest"
    results: list[Path | BaseException] = []
    start = threading.Barrier(6)

    def work() -> None:
        start.wait()
        try:
            results.append(safe_unpack(archive, target))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [target] * 6
    assert len(os.listdir(target)) == 50
    assert _leftovers(target.parent) == []


UNSAFE_TARS = {
    "dotdot": ([_entry("../evil.txt", data=b"x")], r"'\.\./evil\.txt' has '\.\.'"),
    "nested-dotdot": ([_entry("a/../../evil", data=b"x")], r"'a/\.\./\.\./evil' has '\.\.'"),
    "absolute": ([_entry("/tmp/evil.txt", data=b"x")], r"'/tmp/evil\.txt' has an absolute path"),
    "symlink-out": (
        [_entry("link", tarfile.SYMTYPE, link="../outside")],
        r"'link' is a symlink to '\.\./outside', outside the target",
    ),
    "symlink-absolute": (
        [_entry("passwd", tarfile.SYMTYPE, link="/etc/passwd")],
        r"'passwd' is a symlink to the absolute path '/etc/passwd'",
    ),
    "symlink-deep-out": (
        [_entry("a/b/link", tarfile.SYMTYPE, link="../../../x")],
        r"'a/b/link' is a symlink to '\.\./\.\./\.\./x', outside",
    ),
    "symlink-chain": (
        [_entry("a", tarfile.SYMTYPE, link="."), _entry("b", tarfile.SYMTYPE, link="a/..")],
        r"'b' is a symlink to 'a/\.\.', outside the target",
    ),
    "symlink-reaimed-later": (
        [_entry("l", tarfile.SYMTYPE, link="d/.."), _entry("d", tarfile.SYMTYPE, link=".")],
        r"'l' ends up as a symlink pointing outside the target",
    ),
    "write-through-symlink": (
        [_entry("up", tarfile.SYMTYPE, link="."), _entry("up/x", data=b"fine")],
        None,
    ),
    "hardlink-out": (
        [_entry("hard", tarfile.LNKTYPE, link="../secret")],
        r"'hard' is a hard link to '\.\./secret', outside",
    ),
    "char-device": ([_entry("tty", tarfile.CHRTYPE)], r"'tty' is a device file"),
    "block-device": ([_entry("sda", tarfile.BLKTYPE)], r"'sda' is a device file"),
    "fifo": ([_entry("pipe", tarfile.FIFOTYPE)], r"'pipe' is a special file \(tar type '6'\)"),
}


@pytest.mark.parametrize("case", list(UNSAFE_TARS))
def test_unsafe_tar_is_refused_and_leaves_nothing(
    tmp_path: Path, case: str, data_filter: bool
) -> None:
    entries, match = UNSAFE_TARS[case]
    archive = make_tar(tmp_path / "bad.tar", entries)
    target = tmp_path / "deep" / "out"
    if match is None:  # a link that stays inside is fine to write through
        assert (safe_unpack(archive, target) / "x").read_bytes() == b"fine"
        return
    with pytest.raises(ArtifactError, match=rf"archive .*bad\.tar refused: member {match}.*unsafe"):
        safe_unpack(archive, target)
    assert not target.exists()
    assert os.listdir(target.parent) == []
    assert sorted(os.listdir(tmp_path)) == ["bad.tar", "deep"]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil.txt", r"'\.\./evil\.txt' has '\.\.'"),
        ("a/../../evil.txt", r"'a/\.\./\.\./evil\.txt' has '\.\.'"),
        ("/abs.txt", r"'/abs\.txt' has an absolute path"),
        ("C:/windows.txt", r"'C:/windows\.txt' has an absolute path"),
        ("..\\evil.txt", r"'\.\.\\\\evil\.txt' has '\.\.'"),
    ],
    ids=["dotdot", "nested", "absolute", "drive", "backslash"],
)
def test_zip_slip_is_refused(tmp_path: Path, name: str, match: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", {"fine.txt": b"ok", name: b"x"})
    target = tmp_path / "deep" / "out"
    with pytest.raises(ArtifactError, match=rf"bad\.zip refused: member {match}"):
        safe_unpack(archive, target)
    assert os.listdir(target.parent) == []
    assert sorted(os.listdir(tmp_path)) == ["bad.zip", "deep"]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("broken.tar.gz", b"not gzip at all", r"cannot unpack .*broken\.tar\.gz as a tar archive"),
        ("broken.zip", b"PK but not really", r"cannot unpack .*broken\.zip as a zip archive"),
        ("broken.gz", b"\x1f\x8b\x08 truncated", r"cannot unpack .*broken\.gz as a gz archive"),
        ("model.onnx", b"onnx", r"model\.onnx: its name does not end in one of \.tar\.gz"),
    ],
    ids=["tar", "zip", "gz", "unknown"],
)
def test_damaged_or_unknown_archives_are_refused(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    archive = tmp_path / name
    archive.write_bytes(content)
    with pytest.raises(ArtifactError, match=match):
        safe_unpack(archive, tmp_path / "out" / "x")
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_missing_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"cannot unpack .*nope\.zip: the file does not exist"):
        safe_unpack(tmp_path / "nope.zip", tmp_path / "out")


MIB = 1024**2
ZEROS = bytes(5 * MIB)  # unpacks to 5 MiB, compresses to a few KB


def _bomb(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"bomb{suffix}"
    if suffix == ".gz":
        path.write_bytes(gzip.compress(ZEROS))
    elif suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
            zipped.writestr("zeros.bin", ZEROS)
    else:
        make_tar(path, [_entry("zeros.bin", data=ZEROS)], mode="w:gz")
    return path


BOMBS = [".gz", ".zip", ".tar.gz"]


@pytest.mark.parametrize("suffix", BOMBS)
def test_an_archive_past_the_size_limit_is_refused_and_leaves_nothing(
    tmp_path: Path, suffix: str
) -> None:
    archive = _bomb(tmp_path, suffix)
    out = tmp_path / "unpacked" / "x"
    with pytest.raises(
        ArtifactError,
        match=rf"^archive .*bomb{re.escape(suffix)} refused: it (declares that it unpacks to "
        r"5\.0 MiB|unpacks to more than 1\.0 MiB), over the "
        r"unpacked-size limit of 1\.0 MiB \(DLSPEC_RAY_MAX_UNPACKED_BYTES=1048576\).*"
        r"nothing of it was kept\. If you trust the archive, set DLSPEC_RAY_MAX_UNPACKED_BYTES",
    ):
        safe_unpack(archive, out, max_bytes=MIB, max_ratio=1e9)
    assert os.listdir(tmp_path / "unpacked") == []


@pytest.mark.parametrize("suffix", BOMBS)
def test_an_archive_past_the_ratio_limit_is_refused_and_leaves_nothing(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unpack, "RATIO_FLOOR", 0)
    archive = _bomb(tmp_path, suffix)
    with pytest.raises(
        ArtifactError,
        match=r"refused: .*over 200 times its own size of .* \(the compression-ratio limit, "
        r"DLSPEC_RAY_MAX_COMPRESSION_RATIO=200\).*set DLSPEC_RAY_MAX_COMPRESSION_RATIO",
    ):
        safe_unpack(archive, tmp_path / "unpacked" / "x")
    assert os.listdir(tmp_path / "unpacked") == []


@pytest.mark.parametrize("suffix", BOMBS)
def test_the_limits_come_from_the_environment(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _bomb(tmp_path, suffix)
    monkeypatch.setenv("DLSPEC_RAY_MAX_UNPACKED_BYTES", "2MiB")
    with pytest.raises(ArtifactError, match=r"unpacked-size limit of 2\.0 MiB"):
        safe_unpack(archive, tmp_path / "unpacked" / "x")
    monkeypatch.setenv("DLSPEC_RAY_MAX_UNPACKED_BYTES", "6MiB")
    monkeypatch.setenv("DLSPEC_RAY_MAX_COMPRESSION_RATIO", "1e6")
    out = safe_unpack(archive, tmp_path / "unpacked" / "x")
    assert sum(p.stat().st_size for p in out.iterdir()) == len(ZEROS)


def test_a_zip_that_lies_about_its_size_is_stopped_by_the_bytes_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _bomb(tmp_path, ".zip")
    monkeypatch.setattr(unpack._Budget, "check_declared", lambda self, total: None)
    with pytest.raises(ArtifactError, match=r"refused: it unpacks to more than 1\.0 MiB"):
        safe_unpack(archive, tmp_path / "unpacked" / "x", max_bytes=MIB)
    assert os.listdir(tmp_path / "unpacked") == []


@pytest.mark.parametrize(
    "variable, value, match",
    [
        ("DLSPEC_RAY_MAX_UNPACKED_BYTES", "lots", r"DLSPEC_RAY_MAX_UNPACKED_BYTES='lots' is not"),
        ("DLSPEC_RAY_MAX_COMPRESSION_RATIO", "0.5", r"DLSPEC_RAY_MAX_COMPRESSION_RATIO must be"),
    ],
)
def test_bad_limits_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, match: str
) -> None:
    from dlspec_ray.errors import UsageError

    archive = make_zip(tmp_path / "x.zip", {"f": b"1"})
    monkeypatch.setenv(variable, value)
    with pytest.raises(UsageError, match=match):
        safe_unpack(archive, tmp_path / "out")


def test_a_small_archive_may_compress_well(tmp_path: Path) -> None:
    archive = tmp_path / "mask.npy.gz"
    archive.write_bytes(gzip.compress(bytes(MIB)))  # about 1000:1, but only 1 MiB
    out = safe_unpack(archive, tmp_path / "out")
    assert (out / "mask.npy").stat().st_size == MIB


def test_zip_folders_are_unpacked_as_folders(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "x.zip", {"empty/": b"", "d/": b"", "d/f.txt": b"1"})
    out = safe_unpack(archive, tmp_path / "out")
    assert (out / "empty").is_dir()
    assert (out / "d" / "f.txt").read_bytes() == b"1"
