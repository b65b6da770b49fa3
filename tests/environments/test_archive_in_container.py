"""Archives of image files, unpacked into the node's cache and read inside a container.

First the photo archive: the five sample photos packed as ``test/<class>/<file>`` in a
tar.gz, read with ``path: test``, and EfficientNet-Lite0 (ONNX) decoding and classifying
them inside the docker environment, as inline does. Then, at more samples:

a tar.gz of 300 MNIST digits stored one file per image as
``<label>/<n>.npy`` (the docker image has numpy and onnxruntime, not an image codec), with
a reader that returns locators and a pre-process that opens each file. The container does
not see the driver's folders: it reads the files from the node's cache, which the docker
environment mounts read-only at the same path. Its predictions must equal inline's.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

import dlspec_ray

pytestmark = pytest.mark.usefixtures("ray_session")

REPO = Path(__file__).resolve().parents[2]
COUNT = 300

DATASET = """\
kind: dataset
id: 0b7d5f2e-3c1a-4f8e-9d2b-6a4c8e1f0a37
name: mnist-npy-archive
version: "1.0.0"
license: CC BY-SA 3.0
sources:
  - name: digits
    source: {archive}
    checksum: {checksum}
    unpack: true
    path: digits
reader: |
  def fn(ctx, data):
      from pathlib import Path

      root = Path(data["digits"])
      files = sorted(root.rglob("*.npy"), key=lambda p: int(p.stem))
      return {{
          "ids": [p.stem for p in files],
          "locators": [f"digits/{{p.relative_to(root).as_posix()}}" for p in files],
          "labels": [int(p.parent.name) for p in files],
      }}
"""

PRE = """pre-process: |
  def fn(ctx, data):
      # data: paths of .npy files, on this node (inside the container, on the mounted cache).
      import numpy as np

      images = np.stack([np.load(path) for path in data]).astype(np.float32) / np.float32(255.0)
      return np.ascontiguousarray(images.reshape(len(data), 1, 28, 28))
"""


def _digits_archive(folder: Path) -> Path:
    with gzip.open(REPO / "assets" / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:COUNT]
    with gzip.open(REPO / "assets" / "mnist" / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:COUNT]
    archive = folder / "digits.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for n, (image, label) in enumerate(zip(images, labels, strict=True)):
            buffer = io.BytesIO()
            np.save(buffer, image)
            info = tarfile.TarInfo(f"digits/{label}/{n}.npy")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    return archive


def _manifests(tmp_path: Path) -> tuple[Path, Path]:
    archive = _digits_archive(tmp_path)
    checksum = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    dataset = tmp_path / "dataset.yaml"
    dataset.write_text(DATASET.format(archive=archive, checksum=checksum))
    text = (REPO / "manifests" / "models" / "mnist-8.yaml").read_text()
    start = text.index("pre-process: |")
    end = text.index("run: |")
    text = text[:start] + PRE + text[end:]
    text = text.replace("../../assets/", f"{REPO}/assets/").replace(
        "name: mnist-8\n", "name: mnist-8-npy\n"
    )
    model = tmp_path / "model.yaml"
    model.write_text(text)
    return model, dataset


def test_an_image_archive_is_read_from_the_node_cache_inside_a_container(
    repo_cwd, tmp_path, docker_engine, onnxruntime_image
):
    model, dataset = _manifests(tmp_path)
    results = {}
    for software in ("onnxruntime-cpu", "onnxruntime-cpu-docker"):
        results[software] = dlspec_ray.evaluate(
            str(model),
            str(dataset),
            software=f"{software}@1.0.0",
            batch_size=50,
            progress=False,
            cache_dir=tmp_path / "node-cache",
            out=tmp_path / software,
        )
    inline, docker = results["onnxruntime-cpu"], results["onnxruntime-cpu-docker"]
    assert docker.summary["environment"]["kind"] == "docker"
    assert docker.summary["errors"]["count"] == 0, docker.summary["errors"]
    assert docker.summary["samples"] == COUNT
    assert sorted(docker.table.column("sample_id").to_pylist(), key=int) == [
        str(n) for n in range(COUNT)
    ]
    assert (
        docker.table.column("prediction").to_pylist()
        == inline.table.column("prediction").to_pylist()
    )
    assert docker.summary["accuracy"]["top1"] == inline.summary["accuracy"]["top1"] > 0.95


def test_the_photo_archive_is_classified_inside_a_container_as_inline(
    repo_cwd, tmp_path, docker_engine, onnxruntime_image, photo_archive
):
    if not (REPO / "assets" / "efficientnet-lite0" / "efficientnet-lite0.onnx").is_file():
        pytest.skip("the EfficientNet-Lite0 graph is made by `make venv`; it is not there")
    dataset = photo_archive(tmp_path)
    tables = {}
    for software in ("onnxruntime-cpu", "onnxruntime-cpu-docker"):
        result = dlspec_ray.evaluate(
            "efficientnet-lite0-onnx@1.0.0",
            str(dataset),
            software=f"{software}@1.0.0",
            batch_size=2,
            progress=False,
            cache_dir=tmp_path / "node-cache",
            out=tmp_path / software,
        )
        assert result.summary["errors"]["count"] == 0, result.summary["errors"]
        tables[software] = result.table.sort_by("sample_id")
        if software.endswith("docker"):
            assert result.summary["environment"]["kind"] == "docker"
            assert result.summary["accuracy"] == {"top1": 0.8, "top5": 1.0}
    inline, docker = tables["onnxruntime-cpu"], tables["onnxruntime-cpu-docker"]
    assert docker.column("sample_id").to_pylist() == [
        "daisy/flower.jpg", "espresso/coffee.png", "missile/rocket.jpg",
        "palace/china.jpg", "tabby/chelsea.png",
    ]  # fmt: skip
    assert docker.column("top_k").to_pylist() == inline.column("top_k").to_pylist()
