from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dlspec_ray.artifacts import checksum_of, fetch, fetch_all, unverified_sources
from dlspec_ray.errors import ArtifactError, UsageError
from dlspec_ray.spec.types import Source

FAST = {"retries": 3, "backoff": 0.01}
WHERE = r"manifests/test-dataset\.yaml: sources\[0\]\.source: "
DATA = b"\x08\x01" + bytes(range(256)) * 40
CHECKSUM = "sha256:" + hashlib.sha256(DATA).hexdigest()
HEX = CHECKSUM.removeprefix("sha256:")
OTHER = "sha256:" + hashlib.sha256(b"something else").hexdigest()
TREE_CHECKSUM = "sha256-tree:" + "ab" * 32

MakeSource = Callable[..., Source]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits fetch asks for, recorded instead of slept.

    Retry tests check these, not the wall clock, so none depends on how busy the
    machine is; timeouts on a socket (the read timeout) stay real.
    """
    import importlib
    import types

    module = importlib.import_module("dlspec_ray.artifacts.fetch")
    waits: list[float] = []
    clock = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    monkeypatch.setattr(module, "time", types.SimpleNamespace(**{**clock, "sleep": waits.append}))
    return waits


ListFiles = Callable[[Path], list[Path]]


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_http_fetch_is_verified_cached_and_not_downloaded_again(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles
) -> None:
    checksum = http_server.add("models/mnist-8.onnx", DATA)
    source = make_source(http_server.url("models/mnist-8.onnx"), checksum)
    seen: list[tuple[int, int | None]] = []

    path = fetch(source, cache, progress=lambda done, total: seen.append((done, total)))

    assert path == cache / "sha256" / HEX / "mnist-8.onnx"
    assert path.read_bytes() == DATA
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert seen[-1] == (len(DATA), len(DATA))
    assert fetch(source, cache) == path
    assert http_server.requests == ["/models/mnist-8.onnx"]
    assert list_files(cache) == [path]


def test_the_cache_folder_comes_from_the_environment(
    http_server, make_source: MakeSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLSPEC_RAY_CACHE", str(tmp_path / "env-cache"))
    checksum = http_server.add("w.bin", DATA)
    path = fetch(make_source(http_server.url("w.bin"), checksum))
    assert path == tmp_path / "env-cache" / "sha256" / HEX / "w.bin"


def test_same_bytes_under_another_url_are_not_downloaded_again(
    http_server, make_source: MakeSource, cache: Path
) -> None:
    http_server.add("a/weights.bin", DATA)
    http_server.add("b/weights-copy.bin", DATA)
    first = fetch(make_source(http_server.url("a/weights.bin"), CHECKSUM), cache)
    second = fetch(make_source(http_server.url("b/weights-copy.bin"), CHECKSUM), cache)
    assert (first.parent, first.name, second.name) == (
        second.parent,
        "weights.bin",
        "weights-copy.bin",
    )
    assert second.read_bytes() == DATA
    assert http_server.requests == ["/a/weights.bin"]


def test_local_sources_without_checksum_are_used_in_place(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    data_dir = tmp_path / "assets" / "my data"
    data_dir.mkdir(parents=True)
    (data_dir / "labels.txt").write_bytes(b"7\n2\n")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    expected = data_dir / "labels.txt"

    relative = make_source("../assets/my data/labels.txt", base_dir=manifests)
    absolute = make_source(str(expected))
    url = make_source("file://" + str(expected).replace(" ", "%20"))
    localhost = make_source("file://localhost" + str(expected))
    assert [fetch(s, cache) for s in (relative, absolute, url, localhost)] == [expected] * 4
    assert not cache.exists()


def test_local_source_with_checksum_is_copied_into_the_cache(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    original = tmp_path / "t10k.bin"
    original.write_bytes(DATA)
    path = fetch(make_source("t10k.bin", CHECKSUM), cache)
    assert path == cache / "sha256" / HEX / "t10k.bin"
    original.unlink()  # verified bytes stay usable when the original goes
    assert fetch(make_source("t10k.bin", CHECKSUM), cache).read_bytes() == DATA


@pytest.mark.parametrize("checksum", [None, CHECKSUM], ids=["no-checksum", "checksum"])
def test_missing_local_file_names_the_resolved_path(
    tmp_path: Path, make_source: MakeSource, cache: Path, checksum: str | None
) -> None:
    source = make_source("../data/missing.bin", checksum, base_dir=tmp_path / "manifests")
    resolved = tmp_path / "data" / "missing.bin"
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}the local file {resolved} does not exist \('\.\./data/missing\.bin' "
        rf"is resolved against the manifest's folder {tmp_path / 'manifests'}\); fix source:",
    ):
        fetch(source, cache)


@pytest.mark.parametrize("where", ["http", "local"])
def test_checksum_mismatch_is_never_cached_or_used(
    http_server,
    make_source: MakeSource,
    cache: Path,
    tmp_path: Path,
    list_files: ListFiles,
    where: str,
) -> None:
    http_server.add("changed.bin", DATA)
    (tmp_path / "changed.bin").write_bytes(DATA)
    source = make_source(
        http_server.url("changed.bin") if where == "http" else "changed.bin", OTHER
    )
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}checksum mismatch for .*changed\.bin: expected {OTHER}, got {CHECKSUM}\. "
        rf"The file changed or the manifest is wrong; if you trust the new file, set "
        rf"checksum: {CHECKSUM}\.",
    ):
        fetch(source, cache)
    assert list_files(cache) == []
    assert os.listdir(cache / "tmp") == []
    assert not (cache / "sha256").exists()


BAD_SOURCES = [
    (
        {"source": "https://127.0.0.1:9/model.onnx"},
        r"the remote source https://127\.0\.0\.1:9/model\.onnx has no checksum.*"
        r"add checksum: sha256:<digest>",
    ),
    (
        {"source": "http://127.0.0.1:9/m.onnx", "checksum": "md5:abc"},
        r"checksum must be 'sha256:' \(a file\) or 'sha256-tree:' \(a folder\) followed by 64 "
        r"hex digits, got 'md5:abc'",
    ),
    (
        {"source": "http://127.0.0.1:9/m.onnx", "checksum": TREE_CHECKSUM},
        rf"checksum: {TREE_CHECKSUM} is a folder's tree digest, but the remote source "
        r"http://127\.0\.0\.1:9/m\.onnx is one file; write its file checksum, sha256:<digest>",
    ),
    (
        {"source": "d.tar.gz", "checksum": TREE_CHECKSUM, "unpack": True},
        rf"checksum: {TREE_CHECKSUM} is a folder's tree digest \(sha256-tree:\), but unpack: "
        r"true unpacks an archive, a file, which is checked by its own checksum",
    ),
    (
        {"source": "sub/a.bin", "checksum": TREE_CHECKSUM},
        rf"checksum: {TREE_CHECKSUM} is a folder's tree digest \(sha256-tree:\), but \S+/sub/a"
        rf"\.bin is a file; set checksum: {CHECKSUM} \(printed by `dlspec-ray checksum \S+`\)\. "
        r"The file was not used\.",
    ),
    (
        {"source": "nowhere", "checksum": TREE_CHECKSUM},
        rf"checksum: {TREE_CHECKSUM} is a folder's tree digest, but the local file \S+/nowhere "
        r"does not exist",
    ),
    (
        {"source": "ftp://127.0.0.1/m.onnx", "checksum": CHECKSUM},
        r"unsupported source scheme 'ftp'.*expected file:///absolute/path",
    ),
    (
        {"source": "file://somehost/data/m.onnx"},
        r"'file://somehost/data/m\.onnx' is not an absolute file URL; write file:///absolute",
    ),
    (
        {"source": "http://127.0.0.1:9/model.onnx", "checksum": CHECKSUM, "unpack": True},
        r"unpack: true, but 'model\.onnx' does not end in one of \.tar\.gz.*set unpack: false",
    ),
    (
        {"source": "sub", "unpack": True},
        r"unpack: true, but 'sub' does not end in one of",
    ),
    (
        {"source": "sub.tar", "unpack": True, "checksum": CHECKSUM},
        r"\S+/sub\.tar is a folder, but unpack: true needs an archive file; set unpack: false",
    ),
    (
        {"source": "sub.tar", "unpack": True},
        r"\S+/sub\.tar is a folder, but unpack: true needs an archive file",
    ),
    (
        {"source": "sub/a.bin", "path": "inner"},
        r"path: 'inner' names an entry inside a folder, but \S+/sub/a\.bin is a file; set "
        r"unpack: true if it is an archive, or remove path:",
    ),
]


@pytest.mark.parametrize(("fields", "match"), BAD_SOURCES)
def test_bad_sources_are_refused_before_any_download(
    tmp_path: Path, cache: Path, sleeps: list[float], fields: dict, match: str
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub.tar").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(DATA)
    fields = dict(fields)
    source = Source(
        name="blob",
        base_dir=tmp_path,
        origin="manifests/test-dataset.yaml",
        field="sources[0].source",
        checksum=fields.pop("checksum", None),
        unpack=fields.pop("unpack", False),
        **fields,
    )
    with pytest.raises(ArtifactError, match=f"^{WHERE}{match}"):
        fetch(source, cache, retries=5, backoff=10)
    assert sleeps == []  # no attempt failed and was retried: none was made


def test_message_without_manifest_names_the_artifact(cache: Path) -> None:
    source = Source("graph", "https://127.0.0.1:9/m.onnx", None, False, Path("."))
    with pytest.raises(ArtifactError, match=r"^artifact 'graph': the remote source"):
        fetch(source, cache)


def test_unreachable_host_fails_clearly_in_bounded_time(
    make_source: MakeSource,
    cache: Path,
    closed_port: int,
    list_files: ListFiles,
    sleeps: list[float],
) -> None:
    source = make_source(f"http://127.0.0.1:{closed_port}/model.onnx", CHECKSUM)
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}could not download http://127\.0\.0\.1:{closed_port}/model\.onnx: "
        r"connection refused \(tried 3 time\(s\).*download the file yourself",
    ):
        fetch(source, cache, retries=2, backoff=0.05)
    assert sleeps == [0.05, 0.1]  # bounded: two waits between three attempts
    assert list_files(cache) == []


@pytest.mark.parametrize("status", [404, 403, 410])
def test_client_errors_fail_at_once_without_retrying(
    http_server, make_source: MakeSource, cache: Path, sleeps: list[float], status: int
) -> None:
    http_server.add("gone.onnx", DATA)
    http_server.status = status
    with pytest.raises(ArtifactError, match=rf"^{WHERE}HTTP {status} .* \(not retried"):
        fetch(make_source(http_server.url("gone.onnx"), CHECKSUM), cache, retries=3, backoff=5)
    assert sleeps == []
    assert http_server.requests == ["/gone.onnx"]


@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_errors_are_retried_until_success(
    http_server, make_source: MakeSource, cache: Path, status: int
) -> None:
    http_server.add("flaky.onnx", DATA)
    http_server.fail_next, http_server.fail_status = 2, status
    path = fetch(make_source(http_server.url("flaky.onnx"), CHECKSUM), cache, **FAST)
    assert path.read_bytes() == DATA
    assert http_server.requests == ["/flaky.onnx"] * 3


def test_backoff_doubles_and_retries_are_bounded(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles, sleeps: list[float]
) -> None:
    http_server.add("down.onnx", DATA)
    http_server.fail_next = 100
    with pytest.raises(
        ArtifactError, match=rf"^{WHERE}could not download .*: HTTP 503 .*tried 3 time\(s\)"
    ):
        fetch(make_source(http_server.url("down.onnx"), CHECKSUM), cache, retries=2, backoff=0.1)
    assert sleeps == [0.1, 0.2]  # doubling, between the three attempts
    assert len(http_server.requests) == 3
    assert list_files(cache) == []


@pytest.mark.parametrize("when", ["headers", "body"])
def test_a_stalled_server_hits_the_read_timeout(
    http_server,
    make_source: MakeSource,
    cache: Path,
    list_files: ListFiles,
    sleeps: list[float],
    when: str,
) -> None:
    http_server.add("slow.onnx", DATA)
    if when == "headers":
        http_server.stall_s = 30
    else:
        http_server.stall_after_bytes = 100
    # The server stalls for 30 s: only the read timeout can end the fetch with this message.
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}could not download .*slow\.onnx: the server sent nothing for 0\.3 s "
        r"\(read timeout\) \(tried 2 time\(s\)",
    ):
        fetch(
            make_source(http_server.url("slow.onnx"), CHECKSUM),
            cache,
            read_timeout=0.3,
            retries=1,
            backoff=0.01,
        )
    assert sleeps == [0.01]
    assert len(http_server.requests) == 2
    assert list_files(cache) == []


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1},
        {"backoff": -1},
        {"connect_timeout": 0},
        {"read_timeout": -2},
        {"deadline_s": 0},
    ],
)
def test_nonsense_options_are_usage_errors(
    make_source: MakeSource, cache: Path, options: dict
) -> None:
    with pytest.raises(UsageError, match=r"must be"):
        fetch(make_source("x", CHECKSUM), cache, **options)


def test_remote_archive_is_unpacked_once(http_server, make_source: MakeSource, cache: Path) -> None:
    checksum = http_server.add("mnist.tar.gz", _tar_gz({"mnist/images": b"img", "labels": b"l"}))
    source = make_source(http_server.url("mnist.tar.gz"), checksum, unpack=True)
    folder = fetch(source, cache)
    assert folder == cache / "unpacked" / checksum.removeprefix("sha256:")
    assert (folder / "mnist" / "images").read_bytes() == b"img"
    assert fetch(source, cache) == folder
    assert http_server.requests == ["/mnist.tar.gz"]


def test_local_archive_without_checksum_is_unpacked_by_its_content(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    archive = tmp_path / "d.tar.gz"
    archive.write_bytes(_tar_gz({"a": b"1"}))
    first = fetch(make_source("d.tar.gz", unpack=True), cache)
    archive.write_bytes(_tar_gz({"a": b"2"}))  # edited in place: must not reuse the old tree
    second = fetch(make_source("d.tar.gz", unpack=True), cache)
    assert first != second
    assert ((first / "a").read_bytes(), (second / "a").read_bytes()) == (b"1", b"2")
    assert not (cache / "sha256").exists()


def test_fetch_all_maps_names_to_paths(
    http_server, tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    checksum = http_server.add("graph.onnx", DATA)
    (tmp_path / "labels.txt").write_bytes(b"7\n")
    sources = [
        make_source(http_server.url("graph.onnx"), checksum, name="graph"),
        make_source("labels.txt", name="labels"),
    ]
    assert fetch_all(sources, cache, **FAST) == {
        "graph": cache / "sha256" / HEX / "graph.onnx",
        "labels": tmp_path / "labels.txt",
    }
    with pytest.raises(ArtifactError, match=r"the artifact name 'graph' is used twice"):
        fetch_all([sources[0], sources[0]], cache)


def test_concurrent_fetchers_of_one_blob_all_succeed(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles
) -> None:
    """The server holds every response until all fetchers have missed the cache."""
    fetchers = 6
    http_server.add("shared.onnx", DATA)
    http_server.gate = threading.Barrier(fetchers)
    source = make_source(http_server.url("shared.onnx"), CHECKSUM)
    results: list[Path | BaseException] = []

    def work() -> None:
        try:
            results.append(fetch(source, cache, retries=0))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(fetchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)  # only bounds a hang; the gate opens once all arrive
    expected = cache / "sha256" / HEX / "shared.onnx"
    assert results == [expected] * fetchers
    assert len(http_server.requests) == fetchers
    assert list_files(cache) == [expected]
    assert os.listdir(cache / "tmp") == []


def test_concurrent_processes_fetching_one_blob_all_succeed(
    http_server, cache: Path, tmp_path: Path, list_files: ListFiles
) -> None:
    """Like two Ray actors on one node: separate interpreters racing for one rename."""
    processes = 3
    http_server.add("shared.tar.gz", archive := _tar_gz({"f": DATA}))
    checksum = "sha256:" + hashlib.sha256(archive).hexdigest()
    http_server.gate = threading.Barrier(processes)
    script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from dlspec_ray.artifacts import fetch
        from dlspec_ray.spec.types import Source
        source = Source("data", {http_server.url("shared.tar.gz")!r}, {checksum!r}, True, Path("."))
        print(json.dumps(str(fetch(source, Path({str(cache)!r}), retries=0))))
        """
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(processes)
    ]
    outputs = [child.communicate(timeout=300) for child in children]  # interpreters start slowly
    assert [child.returncode for child in children] == [0] * processes, outputs
    folder = cache / "unpacked" / checksum.removeprefix("sha256:")
    assert {json.loads(out) for out, _err in outputs} == {str(folder)}
    assert (folder / "f").read_bytes() == DATA
    assert len(http_server.requests) == processes
    assert os.listdir(cache / "tmp") == []
    assert [n for n in os.listdir(cache / "unpacked") if n.startswith(".tmp-")] == []


# Folders: verified by their tree digest, used in place.


def _folder(root: Path) -> Path:
    for name, data in {"cat/a.jpg": b"a cat", "dog/b.jpg": b"a dog", ".hidden": b"h"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_a_folder_with_its_tree_checksum_is_used_in_place(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    source = make_source("images", checksum_of(folder))
    assert fetch(source, cache) == folder
    assert fetch_all([source], cache) == {"blob": folder}
    assert not cache.exists()  # not copied: folders can be large


def test_a_folder_that_changed_is_refused_with_the_new_checksum(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    source = make_source("images", checksum_of(folder))
    assert fetch(source, cache) == folder
    (folder / "dog" / "b.jpg").write_bytes(b"a cat")  # same size, other bytes
    actual = checksum_of(folder)
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}checksum mismatch for the folder {folder}: expected {source.checksum}, "
        rf"got {actual}\. A file in it was added, removed, renamed or changed, or the manifest "
        rf"is wrong; if you trust the folder as it is, set checksum: {actual} \(printed by "
        rf"`dlspec-ray checksum {folder}`\)\. The folder was not used\.",
    ):
        fetch(source, cache)


def test_a_folder_without_a_checksum_is_refused_with_the_one_to_add(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    source = make_source("images")
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}{folder} is a folder without a checksum: a folder source needs a "
        r"checksum so the dataset can be reproduced; add `checksum: "
        rf"{checksum_of(folder)}` \(printed by `dlspec-ray checksum {folder}`\), or pass "
        r"--allow-unverified",
    ):
        fetch(source, cache)
    with pytest.raises(ArtifactError, match="a folder source needs a checksum"):
        fetch_all([source], cache)


def test_a_folder_without_a_checksum_is_used_when_unverified_is_allowed(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    (tmp_path / "labels.txt").write_bytes(b"7\n")
    sources = [make_source("images", name="images"), make_source("labels.txt", name="labels")]
    assert fetch(sources[0], cache, allow_unverified=True) == folder
    assert fetch_all(sources, cache, allow_unverified=True) == {
        "images": folder,
        "labels": tmp_path / "labels.txt",
    }


def test_a_folder_given_a_file_checksum_is_told_its_tree_checksum(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}{folder} is a folder, but checksum: {CHECKSUM} is a file's checksum; a "
        rf"folder's checksum is its tree digest: set checksum: {checksum_of(folder)} ",
    ):
        fetch(make_source("images", CHECKSUM), cache, allow_unverified=True)


def test_a_folder_with_a_symlink_out_of_it_is_refused(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    (tmp_path / "secret").write_bytes(b"s")
    (folder / "cat" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}{folder}/cat/leak is a symlink to .*outside the folder {folder};",
    ):
        fetch(make_source("images"), cache)


@pytest.mark.parametrize(
    ("checksum", "names"),
    [
        ([None, None, None], ["folder", "file"]),
        ([TREE_CHECKSUM, CHECKSUM, CHECKSUM], []),
        ([None, CHECKSUM, CHECKSUM], ["folder"]),
        ([TREE_CHECKSUM, None, CHECKSUM], ["file"]),
    ],
    ids=["none", "all", "folder-unchecked", "file-unchecked"],
)
def test_unverified_sources_names_local_sources_without_a_checksum(
    make_source: MakeSource, checksum: list[str | None], names: list[str]
) -> None:
    sources = [
        make_source("images", checksum[0], name="folder"),
        make_source("labels.txt", checksum[1], name="file"),
        make_source("http://127.0.0.1:9/w.onnx", checksum[2], name="remote"),
    ]
    assert unverified_sources(sources) == names
    # A remote source without a checksum is never used, so it is not "unverified".
    assert unverified_sources([make_source("http://127.0.0.1:9/w.onnx")]) == []


# path: the entry to use inside an unpacked archive or a folder.

SPLIT = {"test/cat/a.jpg": b"a cat", "test/dog/b.jpg": b"a dog", "README": b"r"}


def test_path_selects_a_sub_folder_of_a_downloaded_archive(
    http_server, make_source: MakeSource, cache: Path
) -> None:
    checksum = http_server.add("val.tar.gz", _tar_gz(SPLIT))
    url = http_server.url("val.tar.gz")
    folder = fetch(make_source(url, checksum, unpack=True, path="test"), cache)
    assert folder == cache / "unpacked" / checksum.removeprefix("sha256:") / "test"
    assert (folder / "cat" / "a.jpg").read_bytes() == b"a cat"
    nested = fetch(make_source(url, checksum, unpack=True, path="test/dog"), cache)
    whole = fetch(make_source(url, checksum, unpack=True), cache)
    assert (nested, whole) == (folder / "dog", folder.parent)
    assert http_server.requests == ["/val.tar.gz"]  # one download, one unpacked tree


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "val",
            r"path: 'val' is not in the unpacked archive \S+; its top level holds 'README', "
            r"'test/'\. Fix path: \(it is relative to the top of the unpacked archive\)\.",
        ),
        (
            "test/bird",
            r"path: 'test/bird' is not in the unpacked archive \S+; test/ holds 'cat/', 'dog/'\.",
        ),
    ],
    ids=["top-level", "nested"],
)
def test_a_missing_path_lists_what_the_archive_holds(
    http_server, make_source: MakeSource, cache: Path, path: str, message: str
) -> None:
    checksum = http_server.add("val.tar.gz", _tar_gz(SPLIT))
    source = make_source(http_server.url("val.tar.gz"), checksum, unpack=True, path=path)
    with pytest.raises(ArtifactError, match=rf"^{WHERE}{message}"):
        fetch(source, cache)


def test_path_selects_inside_a_local_archive_and_a_folder(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    (tmp_path / "val.tgz").write_bytes(_tar_gz(SPLIT))
    checksum = "sha256:" + hashlib.sha256((tmp_path / "val.tgz").read_bytes()).hexdigest()
    for archived in (None, checksum):
        found = fetch(make_source("val.tgz", archived, unpack=True, path="test"), cache)
        assert sorted(p.name for p in found.iterdir()) == ["cat", "dog"]
    folder = _folder(tmp_path / "images")
    tree = checksum_of(folder)  # the checksum is of the whole folder
    assert fetch(make_source("images", tree, path="cat"), cache) == folder / "cat"
    assert fetch(make_source("images", tree, path="cat/a.jpg"), cache) == folder / "cat/a.jpg"
    with pytest.raises(
        ArtifactError, match=rf"^{WHERE}path: 'bird' is not in the folder {folder}; its top level "
        r"holds '\.hidden', 'cat/', 'dog/'\. Fix path:",
    ):  # fmt: skip
        fetch(make_source("images", tree, path="bird"), cache)


def test_path_cannot_leave_the_folder_through_a_symlink(
    tmp_path: Path, make_source: MakeSource, cache: Path
) -> None:
    folder = _folder(tmp_path / "images")
    (tmp_path / "elsewhere").mkdir()
    (folder / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}path: 'out' resolves to {tmp_path / 'elsewhere'}, outside {folder}, "
        r"through a symlink",
    ):
        fetch(make_source("images", path="out"), cache, allow_unverified=True)


@pytest.mark.parametrize("how", ["keyword", "environment"])
def test_a_trickling_server_hits_the_deadline_and_leaves_no_partial_file(
    http_server,
    make_source: MakeSource,
    cache: Path,
    list_files: ListFiles,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    http_server.add("slow.onnx", DATA)
    # A byte every 50 ms: the read timeout (30 s) never fires, and the whole file
    # would take over 8 minutes; only the deadline can end the fetch with this message.
    http_server.drip_s = 0.05
    options: dict = {"read_timeout": 30, "retries": 3, "backoff": 0.01}
    if how == "keyword":
        options["deadline_s"] = 0.5
    else:
        monkeypatch.setenv("DLSPEC_RAY_DOWNLOAD_DEADLINE_S", "0.5")
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}could not download .*slow\.onnx within its deadline of 0\.5 s "
        rf"\(tried 1 time\(s\); last: \d+ of {len(DATA)} bytes had arrived\).*"
        r"raise DLSPEC_RAY_DOWNLOAD_DEADLINE_S \(deadline_s= from Python\)",
    ):
        fetch(make_source(http_server.url("slow.onnx"), CHECKSUM), cache, **options)
    assert sleeps == []  # not retried: a retry would share the spent deadline
    assert http_server.requests == ["/slow.onnx"]
    assert list_files(cache) == []


def test_retries_share_the_deadline(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles, sleeps: list[float]
) -> None:
    http_server.add("down.onnx", DATA)
    http_server.fail_next = 100
    # The first wait (60 s) would end past the 1 s deadline: the fetch gives up instead.
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}could not download .*down\.onnx within its deadline of 1 s "
        r"\(tried 1 time\(s\); last: HTTP 503",
    ):
        fetch(
            make_source(http_server.url("down.onnx"), CHECKSUM),
            cache,
            retries=5,
            backoff=60,
            deadline_s=1,
        )
    assert sleeps == []
    assert http_server.requests == ["/down.onnx"]
    assert list_files(cache) == []


def test_a_redirect_loop_fails_at_once_without_retrying(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles, sleeps: list[float]
) -> None:
    import requests

    http_server.redirects["/loop.onnx"] = "/loop.onnx"
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}http://.*/loop\.onnx redirects in a loop \(more than 30 redirects; "
        r"not retried\)",
    ):
        fetch(make_source(http_server.url("loop.onnx"), CHECKSUM), cache, retries=3, backoff=5)
    assert sleeps == []
    # One attempt: the request and the redirects requests follows before it gives up.
    assert len(http_server.requests) == requests.models.DEFAULT_REDIRECT_LIMIT + 1
    assert list_files(cache) == []


@pytest.mark.parametrize("target", ["file", "ftp"])
def test_a_redirect_out_of_http_is_refused(
    http_server,
    make_source: MakeSource,
    cache: Path,
    list_files: ListFiles,
    sleeps: list[float],
    tmp_path: Path,
    target: str,
) -> None:
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(DATA)
    location = f"file://{secret}" if target == "file" else "ftp://127.0.0.1/secret.onnx"
    http_server.redirects["/x.onnx"] = location
    with pytest.raises(
        ArtifactError,
        match=rf"^{WHERE}http://.*/x\.onnx redirects to {location}, a {target} URL, which was "
        r"refused \(not retried\): a download follows only http:// and https:// redirects",
    ):
        fetch(make_source(http_server.url("x.onnx"), CHECKSUM), cache, retries=3, backoff=5)
    assert sleeps == []
    assert http_server.requests == ["/x.onnx"]
    assert list_files(cache) == []


def test_an_http_redirect_is_followed(http_server, make_source: MakeSource, cache: Path) -> None:
    http_server.add("real.onnx", DATA)
    http_server.redirects["/old.onnx"] = http_server.url("real.onnx")
    path = fetch(make_source(http_server.url("old.onnx"), CHECKSUM), cache)
    assert path.read_bytes() == DATA
    assert http_server.requests == ["/old.onnx", "/real.onnx"]


def test_an_interrupted_download_leaves_no_partial_file(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles
) -> None:
    http_server.add("big.onnx", DATA)

    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch(make_source(http_server.url("big.onnx"), CHECKSUM), cache, progress=interrupt)
    assert list_files(cache) == []


def test_a_fetch_sweeps_what_killed_fetchers_left(
    http_server, make_source: MakeSource, cache: Path, list_files: ListFiles
) -> None:
    from dlspec_ray.artifacts.cache import owner_tag

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_tag = f"{child.pid}.1@{owner_tag().split('@')[1]}"  # this host, a pid that is gone
    partial = cache / "tmp" / f"blob-{dead_tag}-model.onnx-abc123" / "model.onnx"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA[:100])
    unrelated = cache / "tmp" / "notes.txt"
    unrelated.write_text("mine")
    http_server.add("model.onnx", DATA)
    path = fetch(make_source(http_server.url("model.onnx"), CHECKSUM), cache)
    assert list_files(cache) == sorted([path, unrelated])


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_deadline_variable_is_a_usage_error(
    make_source: MakeSource, cache: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DLSPEC_RAY_DOWNLOAD_DEADLINE_S", value)
    with pytest.raises(UsageError, match=r"DLSPEC_RAY_DOWNLOAD_DEADLINE_S"):
        fetch(make_source("x", CHECKSUM), cache)
