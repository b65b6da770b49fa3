"""The imagenet-samples dataset's image-folder reader, on folders and archives made here.

It labels ``<class>/<file>`` and refuses layouts it cannot label instead of
guessing: the common one is an archive whose top folder is a split
(``test/<class>/<file>``), which ``path: test`` on the source fixes.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from dlspec_ray.artifacts import checksum_of, fetch_all
from dlspec_ray.spec.loader import load_manifest
from dlspec_ray.stages import read_samples
from dlspec_ray.stages.reader import ReaderError

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "manifests" / "datasets" / "imagenet-samples.yaml"
CLASSES = REPO / "assets" / "imagenet-samples" / "imagenet-classes.txt"
PHOTOS = REPO / "assets" / "imagenet-samples" / "images"
PHOTO = (PHOTOS / "tabby" / "chelsea.png").read_bytes()
IMAGES_BLOCK = re.compile(r"  - name: images\n(    .*\n)+")


def dataset(tmp_path: Path, images: str, *, classes: bool = True) -> Path:
    """A copy of imagenet-samples whose ``images`` source is the YAML lines ``images``."""
    text = MANIFEST.read_text()
    text, count = IMAGES_BLOCK.subn(lambda _m: f"  - name: images\n{images}", text)
    assert count == 1
    text = text.replace("../../assets/imagenet-samples/imagenet-classes.txt", str(CLASSES))
    if not classes:
        start = text.index("  - name: classes")
        text = text[:start] + text[text.index("reader: |") :]
    path = tmp_path / "dataset.yaml"
    path.write_text(text)
    return path


def read(path: Path, cache: Path, **options):
    manifest = load_manifest(path)
    return read_samples(manifest, fetch_all(manifest.sources, cache, **options))


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def folder(root: Path, files: list[str]) -> Path:
    root.mkdir(parents=True)
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(PHOTO)
    return root


def test_the_shipped_photos_keep_their_labels(cache: Path) -> None:
    samples = read(MANIFEST, cache)
    assert dict(zip(samples.ids, samples.labels.tolist(), strict=True)) == {
        "daisy/flower.jpg": 985,
        "espresso/coffee.png": 967,
        "missile/rocket.jpg": 657,
        "palace/china.jpg": 698,
        "tabby/chelsea.png": 281,
    }


# The archive of the bug report: its top folder is the split, the classes are inside.
SPLIT = {"test/tabby/a.png": PHOTO, "test/tabby/b.png": PHOTO, "test/daisy/c.png": PHOTO}


@pytest.mark.parametrize("classes", [True, False], ids=["classes-file", "by-position"])
def test_an_archive_with_a_split_folder_is_refused_with_the_fix(
    http_server, tmp_path: Path, cache: Path, classes: bool
) -> None:
    checksum = http_server.add("val.tar.gz", tar_gz(SPLIT))
    url = http_server.url("val.tar.gz")
    path = dataset(
        tmp_path,
        f"    source: {url}\n    checksum: {checksum}\n    unpack: true\n",
        classes=classes,
    )
    with pytest.raises(
        ReaderError,
        match=r"dataset\.yaml: reader: the reader raised ValueError: \S+: the class "
        r"folder 'test' holds sub-folders with images \(test/daisy/, test/tabby/\), so it is "
        r"not clear which folders are the classes, and the reader will not guess the labels\. "
        r"It expects <class>/<file>\. If 'test' is a folder around the class folders \(an "
        r"archive unpacked to test/<class>/<file>\), add `path: test` to this source \(the "
        r"sub-folder of the archive or folder to use\), or point source: at that inner folder "
        r"of a folder source\. If they are sub-folders of one class, move their images up "
        r"into test/$",
    ) as info:
        read(path, cache)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("classes", "labels"), [(True, [985, 281, 281]), (False, [0, 1, 1])], ids=["file", "position"]
)
def test_the_same_archive_with_path_test_is_labelled_right(
    http_server, tmp_path: Path, cache: Path, classes: bool, labels: list[int]
) -> None:
    checksum = http_server.add("val.tar.gz", tar_gz(SPLIT))
    url = http_server.url("val.tar.gz")
    lines = f"    source: {url}\n    checksum: {checksum}\n    unpack: true\n    path: test\n"
    samples = read(dataset(tmp_path, lines, classes=classes), cache)
    assert samples.ids == ["daisy/c.png", "tabby/a.png", "tabby/b.png"]
    assert samples.labels.tolist() == labels


def test_a_checked_folder_with_path_is_labelled_right(tmp_path: Path, cache: Path) -> None:
    root = folder(tmp_path / "unpacked", ["test/tabby/a.png", "test/daisy/c.png"])
    lines = f"    source: {root}\n    checksum: {checksum_of(root)}\n    path: test\n"
    samples = read(dataset(tmp_path, lines), cache)
    assert (samples.ids, samples.labels.tolist()) == (["daisy/c.png", "tabby/a.png"], [985, 281])


@pytest.mark.parametrize(
    ("files", "ids"),
    [
        (["tabby/a.png", "tabby/.thumbs/a.png"], ["tabby/a.png"]),  # hidden sub-folders: skipped
        (["tabby/a.png", "tabby/notes/readme.txt"], ["tabby/a.png"]),  # no images below: fine
        (["tabby/a.png", "daisy/b.PNG", "daisy/c.txt", "README"], ["daisy/b.PNG", "tabby/a.png"]),
    ],
    ids=["hidden-sub-folder", "sub-folder-without-images", "other-files"],
)  # fmt: skip
def test_layouts_that_can_be_labelled(
    tmp_path: Path, cache: Path, files: list[str], ids: list[str]
) -> None:
    root = folder(tmp_path / "images", files)
    samples = read(dataset(tmp_path, f"    source: {root}\n"), cache, allow_unverified=True)
    assert samples.ids == ids


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            ["tabby/a.png", "tabby/kitten/b.png"],
            r"the class folder 'tabby' holds sub-folders with images \(tabby/kitten/\)",
        ),
        (
            ["train/tabby/a.png", "val/daisy/b.png"],
            r"the class folder 'train' holds sub-folders with images \(train/tabby/\) "
            r"\(so do 'val'\).*add `path: train`",
        ),
        (
            ["test/1/a.png", "test/2/a.png", "test/3/a.png", "test/4/a.png"],
            r"\(test/1/, test/2/, test/3/, \.\.\.\)",
        ),
        (
            ["tabby/a.png", "loose.png", "more.jpg"],
            r"2 image file\(s\) sit directly in the folder, outside any class folder \(loose\.png, "
            r"more\.jpg\), so they have no label; the reader expects <class>/<file>",
        ),
    ],
    ids=["nested-class", "two-splits", "many-inner", "loose-images"],
)
def test_layouts_that_cannot_be_labelled_are_refused(
    tmp_path: Path, cache: Path, files: list[str], message: str
) -> None:
    root = folder(tmp_path / "images", files)
    path = dataset(tmp_path, f"    source: {root}\n")
    with pytest.raises(ReaderError, match=message) as info:
        read(path, cache, allow_unverified=True)
    assert info.value.exit_code == 2 and "reader" in str(info.value)
