"""The model zoo: real ImageNet models in three frameworks, on real photos, against their logs.

The stage code runs in-process through the manifests' own compiled stages (no Ray),
so these tests pin down what the manifests compute; one test runs a model on Ray
end to end. The image-folder reader of the imagenet-samples dataset is tested on
folders made here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import dlspec_ray
from dlspec_ray.artifacts import fetch_all
from dlspec_ray.results import check_reference, rows_from_batch
from dlspec_ray.spec import Catalog, load_manifest
from dlspec_ray.stages import build_context, read_samples
from dlspec_ray.stages.reader import ReaderError

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
PHOTOS = REPO / "assets" / "imagenet-samples" / "images"
IMAGENET_MODELS = [
    ("efficientnet-lite0-pytorch", "efficientnet-lite0-pytorch-reference"),
    ("efficientnet-lite0-onnx", "efficientnet-lite0-onnx-reference"),
    ("mobilenet-v1-0.25-128-quant-tflite", "mobilenet-v1-0.25-128-quant-tflite-reference"),
]


@pytest.fixture(scope="module")
def catalog():
    return Catalog([MANIFESTS])


@pytest.fixture(scope="module")
def photos(catalog):
    dataset = catalog.resolve("imagenet-samples", "dataset")
    return read_samples(dataset, fetch_all(dataset.sources))


def run_in_process(model, samples, batch_size: int) -> tuple[dict, list]:
    stages = {name: src.compile() for name, src in model.stages.items()}
    ctx = build_context(model, fetch_all(model.artifacts), batch_size=batch_size, num_threads=1)
    ctx["model"] = stages["load"](ctx, ctx["artifacts"])
    outputs, rows = [], []
    for b, start in enumerate(range(0, len(samples), batch_size)):
        chunk = samples.inputs[start : start + batch_size]
        out = stages["post-process"](ctx, stages["run"](ctx, stages["pre-process"](ctx, chunk)))
        outputs.append(out["output"])
        rows.append(
            rows_from_batch(samples.ids[start : start + batch_size],
                            samples.labels[start : start + batch_size], out,
                            batch_id=b, shard_id=0, node_id="local",
                            pre_ms=0.0, run_ms=0.0, post_ms=0.0)
        )  # fmt: skip
    return {"output": np.concatenate(outputs)}, rows


def test_the_photos_read_with_imagenet_labels(photos):
    assert photos.ids == [
        "daisy/flower.jpg",
        "espresso/coffee.png",
        "missile/rocket.jpg",
        "palace/china.jpg",
        "tabby/chelsea.png",
    ]
    assert photos.labels.tolist() == [985, 967, 657, 698, 281]
    assert all(Path(p).is_file() for p in photos.inputs)


@pytest.mark.parametrize(("model_name", "reference_name"), IMAGENET_MODELS)
def test_each_model_gives_the_top5_its_reference_log_expects(
    catalog, photos, model_name, reference_name
):
    import pyarrow as pa

    model = catalog.resolve(model_name, "model")
    reference = catalog.resolve(reference_name, "reference")
    _, rows = run_in_process(model, photos, batch_size=2)
    table = pa.Table.from_batches(rows)
    from dlspec_ray.results import accuracy

    verdict = check_reference(reference, accuracy(table), table)
    assert verdict.passed, [c.as_dict() for c in verdict.checks if not c.passed]
    assert all(e.top5 is not None for e in reference.expected_outputs)


def test_pytorch_and_its_onnx_export_compute_the_same_logits(catalog, photos):
    torch_out, _ = run_in_process(catalog.resolve("efficientnet-lite0-pytorch", "model"), photos, 5)
    onnx_out, _ = run_in_process(catalog.resolve("efficientnet-lite0-onnx", "model"), photos, 5)
    assert torch_out["output"].shape == (5, 1000)
    assert np.abs(torch_out["output"] - onnx_out["output"]).max() < 1e-4


def test_the_onnx_export_digest_is_recorded_once_for_all(catalog):
    # The export script checks its bytes against EXPECTED_SHA256 and the runtime checks the
    # file against the manifest's checksum: the two (and the NOTICE) must name one digest.
    import importlib.util

    script = REPO / "tools" / "export_efficientnet_lite0_onnx.py"
    spec = importlib.util.spec_from_file_location("export_efficientnet_lite0_onnx", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (graph,) = catalog.resolve("efficientnet-lite0-onnx", "model").artifacts
    assert graph.checksum == f"sha256:{module.EXPECTED_SHA256}"
    assert module.EXPECTED_SHA256 in (REPO / "assets/efficientnet-lite0/NOTICE.md").read_text()


def test_the_tflite_model_on_ray_passes_its_reference(ray_session, repo_cwd, tmp_path):
    result = dlspec_ray.evaluate(
        "mobilenet-v1-0.25-128-quant-tflite",
        reference="mobilenet-v1-0.25-128-quant-tflite-reference",
        batch_size=2,
        actors=1,
        out=tmp_path / "run",
        progress=False,
    )
    assert result.passed and result.summary["reference"]["verdict"] == "PASS"
    assert result.summary["environment"]["framework"]["name"] == "ai-edge-litert"
    assert result.table.column("output").to_pylist()[0].__len__() == 1000  # background dropped


def folder_dataset(tmp_path: Path, layout: dict[str, list[str]], classes: str | None) -> Path:
    """A copy of imagenet-samples reading ``layout`` (folder -> files copied from a photo)."""
    images = tmp_path / "images"
    photo = next(PHOTOS.rglob("*.jpg"))
    for folder, files in layout.items():
        (images / folder).mkdir(parents=True)
        for name in files:
            (images / folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, images / folder / name)
    text = (MANIFESTS / "datasets" / "imagenet-samples.yaml").read_text()
    text = text.replace("../../assets/imagenet-samples/images", str(images))
    # A folder made here has no checksum: drop the shipped folder's; read() allows that.
    text = "".join(x for x in text.splitlines(True) if "checksum: sha256-tree:" not in x)
    if classes is None:
        start = text.index("  - name: classes")
        text = text[:start] + text[text.index("reader: |") :]
    else:
        (tmp_path / "classes.txt").write_text(classes)
        text = text.replace(
            "../../assets/imagenet-samples/imagenet-classes.txt", str(tmp_path / "classes.txt")
        )
        lines = text.splitlines()
        text = "\n".join(x for x in lines if "checksum: sha256:e697" not in x) + "\n"
    path = tmp_path / "dataset.yaml"
    path.write_text(text)
    return path


def read(path: Path):
    dataset = load_manifest(path)
    return read_samples(dataset, fetch_all(dataset.sources, allow_unverified=True))


@pytest.mark.parametrize(
    ("layout", "classes", "ids", "labels"),
    [
        (
            {"cat": ["a.jpg", "b.JPG"], "dog": ["c.jpg"]},
            None,
            ["cat/a.jpg", "cat/b.JPG", "dog/c.jpg"],
            [0, 0, 1],
        ),
        ({"7-seven": ["a.jpg"], "3": ["b.jpg"]}, None, ["3/b.jpg", "7-seven/a.jpg"], [3, 7]),
        ({"dog": ["a.jpg", "notes.txt", ".hidden.jpg"]}, "cat\ndog\n", ["dog/a.jpg"], [1]),
    ],
)
def test_the_image_folder_reader(tmp_path, layout, classes, ids, labels):
    samples = read(folder_dataset(tmp_path, layout, classes))
    assert samples.ids == ids and samples.labels.tolist() == labels


@pytest.mark.parametrize(
    ("layout", "classes", "message"),
    [
        (
            {"dgo": ["a.jpg"]},
            "cat\ndog\n",
            r"class folder 'dgo' is not a line of the classes file.*did you mean dog\?",
        ),
        ({"crane": ["a.jpg"]}, "crane\nowl\ncrane\n", r"'crane' is on lines \[0, 2\].*'0-crane'"),
        ({"cat": ["notes.txt"]}, None, r"no image files"),
        ({}, None, r"expected one sub-folder per class, got none"),
        ({"cat": ["x/deep.jpg"]}, "cat\n", r"the class folder 'cat' holds sub-folders with images"),
    ],
)
def test_the_image_folder_reader_explains_bad_folders(tmp_path, layout, classes, message):
    path = folder_dataset(tmp_path, layout, classes)
    (tmp_path / "images").mkdir(exist_ok=True)
    with pytest.raises(ReaderError, match=message) as info:
        read(path)
    assert info.value.exit_code == 2 and "reader" in str(info.value)
