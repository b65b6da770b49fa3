"""The shipped mnist assets and manifests: checksums, the derived graph, and real accuracy.

The stage code is exec'd by hand from the YAML (not through dlspec_ray's loader), so these
tests pin down what the manifests themselves compute, independently of the runtime.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from onnx import TensorProto, helper

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / "assets" / "mnist"
MANIFESTS = REPO / "manifests"
DERIVE_SCRIPT = REPO / "tools" / "derive_dynamic_batch.py"
ORIGINAL = MNIST / "mnist-8.onnx"
DERIVED = MNIST / "mnist-8-dynbatch.onnx"
ASSET_FILES = (
    "mnist-8.onnx",
    "mnist-8-dynbatch.onnx",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

Stage = Callable[[dict[str, Any], Any], Any]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_yaml(relative: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / relative).read_text())


def compile_stage(doc: dict[str, Any], key: str, origin: str) -> Stage:
    namespace: dict[str, Any] = {}
    exec(compile(doc[key], f"{origin}:{key}", "exec"), namespace)
    return namespace["fn"]


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_derive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_dynamic_batch", DERIVE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dataset_doc() -> dict[str, Any]:
    return load_yaml("datasets/mnist-test.yaml")


@pytest.fixture(scope="module")
def model_doc() -> dict[str, Any]:
    return load_yaml("models/mnist-8.yaml")


@pytest.fixture(scope="module")
def reader(dataset_doc: dict[str, Any]) -> Stage:
    return compile_stage(dataset_doc, "reader", "mnist-test.yaml")


@pytest.fixture(scope="module")
def mnist(dataset_doc: dict[str, Any], reader: Stage) -> dict[str, Any]:
    base = MANIFESTS / "datasets"
    paths = {s["name"]: str(base / s["source"]) for s in dataset_doc["sources"]}
    return reader({}, paths)


@pytest.fixture(scope="module")
def stages(model_doc: dict[str, Any]) -> dict[str, Stage]:
    keys = ("load", "pre-process", "run", "post-process")
    return {k: compile_stage(model_doc, k, "mnist-8.yaml") for k in keys}


@pytest.fixture(scope="module")
def ctx(model_doc: dict[str, Any], stages: dict[str, Stage]) -> dict[str, Any]:
    base = MANIFESTS / "models"
    artifacts = {a["name"]: str((base / a["source"]).resolve()) for a in model_doc["model"]}
    context: dict[str, Any] = {
        "inputs": model_doc["inputs"],
        "outputs": model_doc["outputs"],
        "artifacts": artifacts,
        "options": dict(model_doc["options"]),
        "num_threads": 1,
        "batch_size": 256,
    }
    context["model"] = stages["load"](context, dict(artifacts))
    return context


# --- (a) checksums -------------------------------------------------------------------


def test_notice_checksums_match_the_files() -> None:
    notice = (MNIST / "NOTICE.md").read_text()
    rows = dict(re.findall(r"^\| (\S+) \|.*\| ([0-9a-f]{64}) \|$", notice, flags=re.M))
    assert sorted(rows) == sorted(ASSET_FILES)
    for name, digest in rows.items():
        assert sha256(MNIST / name) == digest, name
    assert f"Input sha256: `{sha256(ORIGINAL)}`" in notice
    assert f"Output sha256: `{sha256(DERIVED)}`" in notice


@pytest.mark.parametrize(
    ("manifest", "key", "expected_names"),
    [
        ("datasets/mnist-test.yaml", "sources", {"images", "labels"}),
        ("models/mnist-8.yaml", "model", {"graph", "original"}),
    ],
)
def test_manifest_checksums_match_the_files(
    manifest: str, key: str, expected_names: set[str]
) -> None:
    doc = load_yaml(manifest)
    base = (MANIFESTS / manifest).parent
    assert {s["name"] for s in doc[key]} == expected_names
    for source in doc[key]:
        path = base / source["source"]
        assert source["checksum"] == f"sha256:{sha256(path)}", source["name"]


def test_model_graph_artifact_is_the_derived_copy(model_doc: dict[str, Any]) -> None:
    by_name = {a["name"]: a["source"] for a in model_doc["model"]}
    assert Path(by_name["graph"]).name == DERIVED.name
    assert Path(by_name["original"]).name == ORIGINAL.name


# --- (b) the derived graph -----------------------------------------------------------


def test_derived_graph_is_bit_identical_to_the_original(mnist: dict[str, Any]) -> None:
    x = (mnist["inputs"][:2000].astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    original = session(ORIGINAL)
    reference = np.concatenate(
        [original.run(None, {"Input3": x[i : i + 1]})[0] for i in range(2000)]
    )
    derived = session(DERIVED)
    # 2000 = 7 * 256 + 208: the last batch is ragged.
    batched = np.concatenate(
        [derived.run(None, {"Input3": x[i : i + 256]})[0] for i in range(0, 2000, 256)]
    )
    assert batched.dtype == np.float32
    assert batched.shape == (2000, 10)
    assert np.array_equal(batched, reference)


def test_derived_graph_declares_a_symbolic_batch() -> None:
    model = onnx.load(str(DERIVED))
    onnx.checker.check_model(model, full_check=True)
    (shape,) = [
        t for t in model.graph.initializer if t.name == "Pooling160_Output_0_reshape0_shape"
    ]
    assert onnx.numpy_helper.to_array(shape).tolist() == [-1, 256]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_derive_script_reproduces_the_shipped_bytes(tmp_path: Path) -> None:
    out = tmp_path / "derived.onnx"
    done = subprocess.run(
        [sys.executable, str(DERIVE_SCRIPT), "--source", str(ORIGINAL), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == DERIVED.read_bytes()
    assert "'Pooling160_Output_0_reshape0_shape' [1, 256] -> [-1, 256]" in done.stdout
    assert "'Parameter193_reshape1_shape'" not in done.stdout  # the weight-side Reshape


def _tiny_model(input_dims: list[int], shape_from: str) -> onnx.ModelProto:
    """A one-Reshape graph whose shape is an initializer, a computed tensor, or absent."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, input_dims)
    initializers = []
    if shape_from == "initializer":
        initializers.append(helper.make_tensor("shape", TensorProto.INT64, [2], input_dims))
        nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    elif shape_from == "computed":
        nodes = [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Reshape", ["x", "shape"], ["y"]),
        ]
    else:
        nodes = [helper.make_node("Relu", ["x"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize(
    ("input_dims", "shape_from", "message"),
    [
        ([2, 4], "initializer", r"graph input 'x': expected batch dimension 1, got 2"),
        ([1, 4], "none", r"no Reshape of a batch-carrying tensor found"),
        ([1, 4], "computed", r"its shape 'shape' is computed, not a constant initializer"),
    ],
)
def test_derive_script_refuses_graphs_it_does_not_understand(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    input_dims: list[int],
    shape_from: str,
    message: str,
) -> None:
    source = tmp_path / "tiny.onnx"
    onnx.save(_tiny_model(input_dims, shape_from), str(source))
    out = tmp_path / "out.onnx"
    rc = load_derive_module().main(["--source", str(source), "--out", str(out)])
    assert rc == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


# --- (c) the manifests' stage code, run by hand ---------------------------------------


def test_dataset_reader_returns_all_test_images(mnist: dict[str, Any]) -> None:
    assert mnist["ids"] == [str(i) for i in range(10000)]
    assert mnist["inputs"].dtype == np.uint8
    assert mnist["inputs"].shape == (10000, 28, 28)
    assert mnist["labels"].dtype == np.int64
    assert np.bincount(mnist["labels"]).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009
    ]  # fmt: skip


def _idx(magic: int, dims: list[int], body: bytes) -> bytes:
    header = np.array([magic, *dims], dtype=">u4").tobytes()
    return gzip.compress(header + body, mtime=0)


IMAGES = _idx(2051, [2, 28, 28], bytes(2 * 28 * 28))
LABELS = _idx(2049, [2], bytes(2))


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (_idx(2049, [2, 28, 28], bytes(1568)), LABELS, r"magic number 2051, got 2049"),
        (IMAGES, _idx(2051, [2], bytes(2)), r"magic number 2049, got 2051"),
        (_idx(2051, [2, 28, 28], bytes(1000)), LABELS, r"got 1000; the file is truncated"),
        (_idx(2051, [2, 27, 27], bytes(1458)), LABELS, r"expected 28x28 images, got 27x27"),
        (IMAGES, _idx(2049, [3], bytes(3)), r"got 3 labels for 2 images"),
        (gzip.compress(b"\x00\x00", mtime=0), LABELS, r"expected an IDX header"),
    ],
)
def test_dataset_reader_rejects_bad_files(
    tmp_path: Path, reader: Stage, images: bytes, labels: bytes, message: str
) -> None:
    (tmp_path / "images.gz").write_bytes(images)
    (tmp_path / "labels.gz").write_bytes(labels)
    paths = {"images": str(tmp_path / "images.gz"), "labels": str(tmp_path / "labels.gz")}
    with pytest.raises(ValueError, match=message):
        reader({}, paths)


def test_stages_reach_the_published_accuracy(
    mnist: dict[str, Any], stages: dict[str, Stage], ctx: dict[str, Any]
) -> None:
    batch = ctx["batch_size"]
    results = []
    for start in range(0, 10000, batch):
        x = stages["pre-process"](ctx, mnist["inputs"][start : start + batch])
        y = stages["run"](ctx, x)
        results.append(stages["post-process"](ctx, y))
    top_k = np.concatenate([r["top_k"] for r in results])
    scores = np.concatenate([r["scores"] for r in results])
    logits = np.concatenate([r["output"] for r in results])
    assert top_k.dtype == np.int64 and top_k.shape == (10000, 5)
    assert scores.dtype == np.float32 and scores.shape == (10000, 5)
    assert logits.dtype == np.float32 and logits.shape == (10000, 10)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    assert np.array_equal(top_k[:, 0], logits.argmax(axis=1))
    top1 = float(np.mean(top_k[:, 0] == mnist["labels"]))
    assert top1 == pytest.approx(0.9890, abs=1e-9)  # 110 errors of 10,000

    reference = load_yaml("references/mnist-8-onnxruntime.yaml")
    expected = reference["accuracy"]["top1"]
    assert abs(top1 - expected["value"]) <= expected["tolerance"]
    for row in reference["expected_outputs"]:
        assert top_k[int(row["sample"]), 0] == row["top1"], row


def test_pre_process_matches_x_over_255_nchw(
    mnist: dict[str, Any], stages: dict[str, Stage], ctx: dict[str, Any]
) -> None:
    batch = mnist["inputs"][:3]
    x = stages["pre-process"](ctx, batch)
    assert x.dtype == np.float32 and x.shape == (3, 1, 28, 28) and x.flags.c_contiguous
    assert np.array_equal(x[:, 0], batch.astype(np.float32) / np.float32(255.0))


def test_pre_process_rejects_a_wrong_shape(stages: dict[str, Stage], ctx: dict[str, Any]) -> None:
    with pytest.raises(
        ValueError, match=r"expected a batch of shape \[B, 28, 28\], got \[2, 32, 32\]"
    ):
        stages["pre-process"](ctx, np.zeros((2, 32, 32), dtype=np.uint8))


@pytest.mark.parametrize(
    ("top_k", "expected"),
    [
        (1, [[1], [0]]),
        (3, [[1, 3, 0], [0, 1, 2]]),
        (12, [[1, 3, 0, 2, 4, 5, 6, 7, 8, 9], list(range(10))]),
    ],
)
def test_post_process_breaks_ties_by_lower_index(
    stages: dict[str, Stage], ctx: dict[str, Any], top_k: int, expected: list[list[int]]
) -> None:
    logits = np.zeros((2, 10), dtype=np.float32)
    logits[0, [1, 3]] = 2.0
    logits[0, [0, 2]] = 1.0
    result = stages["post-process"]({**ctx, "options": {"top_k": top_k}}, logits)
    assert result["top_k"].tolist() == expected
    row = np.exp(logits[1]) / np.exp(logits[1]).sum()
    np.testing.assert_allclose(result["scores"][1], row[: min(top_k, 10)], rtol=1e-6)


def test_load_uses_the_derived_graph_with_the_requested_threads(ctx: dict[str, Any]) -> None:
    sess = ctx["model"]
    assert isinstance(sess, ort.InferenceSession)
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_inputs()[0].shape[0] == "N"
    assert sess.get_session_options().intra_op_num_threads == 1
