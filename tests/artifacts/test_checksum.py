from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dlspec_ray.artifacts import checksum as checksum_module
from dlspec_ray.artifacts.checksum import (
    CHUNK_SIZE,
    Checksum,
    checksum_of,
    parse_any_checksum,
    parse_checksum,
    sha256_file,
    tree_digest,
    tree_listing,
)
from dlspec_ray.errors import ArtifactError

HEX = hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 3])
def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "text",
    [f"sha256:{HEX}", f"sha256:{HEX.upper()}", f"  sha256:{HEX}\n"],
    ids=["lower", "upper", "whitespace"],
)
def test_parse_checksum_returns_lowercase_hex(text: str) -> None:
    assert parse_checksum(text) == HEX


@pytest.mark.parametrize(
    "text",
    [
        HEX,
        f"md5:{HEX}",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX}0",
        "sha256:" + "g" * 64,
        "",
        f"sha256: {HEX}",
    ],
    ids=["no-prefix", "md5", "short", "long", "not-hex", "empty", "space"],
)
def test_parse_checksum_refuses_malformed(text: str) -> None:
    with pytest.raises(
        ArtifactError, match=r"'sha256:' followed by 64 hex digits, got .*sha256sum"
    ):
        parse_checksum(text)


# Tree digests.

TREE = {
    "cat/a.jpg": b"a cat",
    "cat/b.jpg": b"another cat",
    "dog/c.jpg": b"a dog",
    "README": b"read me\n",
}


def make_tree(root: Path, files: dict[str, bytes], empty: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name in empty:
        (root / name).mkdir(parents=True)
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_tree_listing_is_the_documented_format(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", TREE, empty=("empty", "dog/none"))
    expected = (
        f"{sha(TREE['README'])}  README\n"
        f"{sha(b'a cat')}  cat/a.jpg\n"
        f"{sha(b'another cat')}  cat/b.jpg\n"
        f"{sha(b'a dog')}  dog/c.jpg\n"
        "-  dog/none/\n"
        "-  empty/\n"
    ).encode()
    assert tree_listing(root) == expected
    assert tree_digest(root) == sha(expected)


def test_an_empty_folder_has_the_digest_of_no_bytes(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert tree_digest(tmp_path / "d") == sha(b"")


def test_sorting_is_by_the_paths_bytes(tmp_path: Path) -> None:
    """'a-b' < 'a/b' < 'a0' < 'B' ... as bytes: '-' is 0x2d, '/' 0x2f, '0' 0x30, 'B' 0x42."""
    root = make_tree(tmp_path / "d", {"a/b": b"1", "a-b": b"2", "a0": b"3", "B": b"4", "é": b"5"})
    paths = [line.split(b"  ", 1)[1] for line in tree_listing(root).splitlines()]
    assert paths == [b"B", b"a-b", b"a/b", b"a0", "é".encode()]


def test_the_digest_is_what_sha256sum_gives_for_plain_files(tmp_path: Path) -> None:
    """The shell equivalent the docstring and docs promise, run with the real tools."""
    root = make_tree(tmp_path / "d", {**TREE, ".hidden": b"h", "sub dir/x y.txt": b"s"})
    shell = "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum"
    out = subprocess.run(
        ["bash", "-c", shell], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert out.split()[0] == tree_digest(root)


def test_the_digest_is_stable_across_copies_names_and_creation_order(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "first", TREE)
    second = make_tree(tmp_path / "elsewhere" / "second", dict(reversed(TREE.items())))
    copied = tmp_path / "copied"
    shutil.copytree(first, copied)
    os.utime(copied / "cat" / "a.jpg", (0, 0))  # timestamps and modes do not count
    (copied / "dog" / "c.jpg").chmod(0o600)
    renamed = first.rename(tmp_path / "renamed")
    digests = {tree_digest(p) for p in (second, copied, renamed)}
    assert digests == {tree_digest(renamed)}
    assert tree_digest(renamed) == tree_digest(renamed)


def _edit(root: Path, change: str) -> None:
    if change == "content":
        (root / "cat" / "a.jpg").write_bytes(b"a cut")
    elif change == "rename-file":
        (root / "cat" / "a.jpg").rename(root / "cat" / "z.jpg")
    elif change == "move-file":
        (root / "cat" / "a.jpg").rename(root / "dog" / "a.jpg")
    elif change == "rename-folder":
        (root / "dog").rename(root / "hound")
    elif change == "add-empty-file":
        (root / "cat" / "new.jpg").write_bytes(b"")
    elif change == "add-hidden-file":
        (root / ".DS_Store").write_bytes(b"finder")
    elif change == "add-empty-folder":
        (root / "bird").mkdir()
    elif change == "remove-file":
        (root / "README").unlink()
    elif change == "swap-contents":
        (root / "cat" / "a.jpg").write_bytes(TREE["cat/b.jpg"])
        (root / "cat" / "b.jpg").write_bytes(TREE["cat/a.jpg"])


CHANGES = [
    "content",
    "rename-file",
    "move-file",
    "rename-folder",
    "add-empty-file",
    "add-hidden-file",
    "add-empty-folder",
    "remove-file",
    "swap-contents",
]


def test_every_change_of_content_names_or_places_changes_the_digest(tmp_path: Path) -> None:
    base = tree_digest(make_tree(tmp_path / "base", TREE))
    digests = {}
    for change in CHANGES:
        root = make_tree(tmp_path / change, TREE)
        _edit(root, change)
        digests[change] = tree_digest(root)
    assert base not in digests.values()
    assert len(set(digests.values())) == len(CHANGES), digests  # and all differ from each other


def test_an_edit_after_hashing_is_seen_by_the_next_digest(tmp_path: Path) -> None:
    """The per-file memo never hides an edit, even one that keeps the size."""
    root = make_tree(tmp_path / "d", TREE)
    before = tree_digest(root)
    (root / "cat" / "a.jpg").write_bytes(b"a cut")  # same size
    assert tree_digest(root) != before
    (root / "cat" / "a.jpg").write_bytes(TREE["cat/a.jpg"])
    assert tree_digest(root) == before


def test_unchanged_old_files_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree(tmp_path / "d", TREE)
    reads: list[str] = []
    real = checksum_module.sha256_file

    def counting(path: str | Path) -> str:
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(checksum_module, "sha256_file", counting)
    # Files changed within _RACY_NS of hashing are never remembered; pretend these are old.
    monkeypatch.setattr(checksum_module, "_RACY_NS", -(10**18))
    first = tree_digest(root)
    assert sorted(reads) == ["README", "a.jpg", "b.jpg", "c.jpg"]
    reads.clear()
    assert tree_digest(root) == first and reads == []
    (root / "dog" / "c.jpg").write_bytes(b"a bigger dog")
    assert tree_digest(root) != first and reads == ["c.jpg"]


def test_a_recently_changed_file_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose timestamps are not safely in the past is hashed every time."""
    root = make_tree(tmp_path / "d", {"f": b"x"})
    future = 4_000_000_000  # 2096: never 2 s in the past while this test runs
    os.utime(root / "f", (future, future))
    reads: list[str] = []
    real = checksum_module.sha256_file
    monkeypatch.setattr(checksum_module, "sha256_file", lambda p: reads.append(str(p)) or real(p))
    tree_digest(root)
    tree_digest(root)
    assert len(reads) == 2


def test_symlinks_inside_count_as_what_they_point_to(tmp_path: Path) -> None:
    plain = make_tree(tmp_path / "plain", {**TREE, "alias.jpg": TREE["cat/a.jpg"]})
    shutil.copytree(plain / "cat", plain / "felines")
    linked = make_tree(tmp_path / "linked", TREE)
    (linked / "alias.jpg").symlink_to("cat/a.jpg")
    (linked / "felines").symlink_to("cat", target_is_directory=True)
    assert tree_digest(linked) == tree_digest(plain)
    followed = tmp_path / "followed"
    shutil.copytree(linked, followed)  # follows links, as `dlspec-ray submit` copies folders
    assert tree_digest(followed) == tree_digest(linked)


def test_a_symlinked_root_is_the_folder_it_points_to(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", TREE)
    (tmp_path / "link").symlink_to(root, target_is_directory=True)
    assert tree_digest(tmp_path / "link") == tree_digest(root)


def _outside_file(root: Path) -> None:
    (root.parent / "secret").write_bytes(b"s")
    (root / "cat" / "leak").symlink_to("../../secret")


def _outside_folder(root: Path) -> None:
    (root / "up").symlink_to("..", target_is_directory=True)


def _absolute(root: Path) -> None:
    (root / "etc").symlink_to("/etc", target_is_directory=True)


def _dangling(root: Path) -> None:
    (root / "cat" / "gone").symlink_to("nothing-here")


def _loop(root: Path) -> None:
    (root / "cat" / "again").symlink_to("..", target_is_directory=True)


def _self(root: Path) -> None:
    (root / "cat" / "me").symlink_to(".", target_is_directory=True)


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pipe")


def _newline(root: Path) -> None:
    (root / "two\nlines").write_bytes(b"x")


REFUSED = [
    (_outside_file, r"cat/leak is a symlink to '\.\./\.\./secret', which resolves to \S+/secret, "
     r"outside the folder \S+; a folder's checksum only covers what is inside it"),
    (_outside_folder, r"/up is a symlink to '\.\.', which resolves to .*outside the folder"),
    (_absolute, r"/etc is a symlink to '/etc', which resolves to /etc, outside the folder"),
    (_dangling, r"cat/gone is a symlink to 'nothing-here', which does not exist; remove the link"),
    (_loop, r"cat/again is a symlink to a folder that contains it, so the folder has no end"),
    (_self, r"cat/me is a symlink to a folder that contains it"),
    (_fifo, r"/pipe is not a regular file or folder \(a FIFO, socket or device\)"),
    (_newline, r"a name with a line break cannot be listed in a tree digest; rename it"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), REFUSED, ids=[m.__name__[1:] for m, _ in REFUSED])
def test_what_a_tree_digest_cannot_cover_is_refused(tmp_path: Path, make, message: str) -> None:
    root = make_tree(tmp_path / "d", TREE)
    make(root)
    with pytest.raises(ArtifactError, match=message):
        tree_digest(root)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, r"/missing does not exist; a tree digest is of a folder"),
        (lambda p: p.write_bytes(b"x"), r"/missing is not a folder; a tree digest is of a folder"),
    ],
    ids=["missing", "a-file"],
)
def test_a_tree_digest_needs_a_folder(tmp_path: Path, make, message: str) -> None:
    make(tmp_path / "missing")
    with pytest.raises(ArtifactError, match=message):
        tree_digest(tmp_path / "missing")


def test_checksum_of_gives_the_manifest_form(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", TREE)
    assert checksum_of(root) == f"sha256-tree:{tree_digest(root)}"
    assert checksum_of(root / "README") == f"sha256:{sha(TREE['README'])}"
    assert checksum_of(str(root / "README")) == checksum_of(root / "README")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, r"/x does not exist; give the path of a file or folder"),
        (lambda p: os.mkfifo(p), r"/x is not a regular file or folder, so it has no checksum"),
    ],
    ids=["missing", "fifo"],
)
def test_checksum_of_refuses_what_has_none(tmp_path: Path, make, message: str) -> None:
    make(tmp_path / "x")
    with pytest.raises(ArtifactError, match=message):
        checksum_of(tmp_path / "x")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (f"sha256:{HEX}", Checksum("sha256", HEX)),
        (f"sha256-tree:{HEX.upper()}", Checksum("sha256-tree", HEX)),
        (f" sha256-tree:{HEX}\n", Checksum("sha256-tree", HEX)),
    ],
)
def test_parse_any_checksum(text: str, parsed: Checksum) -> None:
    assert parse_any_checksum(text) == parsed
    assert str(parsed) == f"{parsed.kind}:{HEX}"
    assert parsed.is_tree == text.strip().startswith("sha256-tree:")


@pytest.mark.parametrize(
    "text",
    [HEX, f"tree:{HEX}", f"sha256-tree:{HEX[:-1]}", f"sha256_tree:{HEX}", "", f"md5:{HEX}"],
    ids=["no-prefix", "tree", "short", "underscore", "empty", "md5"],
)
def test_parse_any_checksum_refuses_malformed(text: str) -> None:
    with pytest.raises(
        ArtifactError,
        match=r"'sha256:' \(a file\) or 'sha256-tree:' \(a folder\) followed by 64 hex digits, "
        r"got .*`dlspec-ray checksum PATH`",
    ):
        parse_any_checksum(text)
