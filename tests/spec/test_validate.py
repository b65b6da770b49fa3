from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

from dlspec_ray.errors import ManifestError
from dlspec_ray.spec.loader import load_manifest_text
from dlspec_ray.spec.types import (
    AccuracyExpectation,
    CpuSpec,
    DatasetManifest,
    ExpectedOutput,
    FrameworkSpec,
    GpuSpec,
    HardwareManifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
    Source,
    TaskRefs,
    TensorSpec,
)
from dlspec_ray.spec.validate import accepted_keys, validate_data

FILE = "m.yaml"
BASE = Path("/manifests/here")

DEF_PRE = "def fn(ctx, data):\n      return data\n"

# (kind, text to replace, replacement, field, message regex, line or None).
# line: a number, "edit" (where the replacement starts), another string (the line holding
# it in the edited text), or None (not checked).
BAD_INPUT = [
    ("hardware", "name: test-gpu-box\n", "", "name", r"missing required key 'name'", 1),
    ("hardware", "kind: hardware\n", "", "kind", r"missing required key 'kind'", 1),
    (
        "hardware",
        "kind: hardware",
        "kind: hardwear",
        "kind",
        r"expected one of hardware, .*, got 'hardwear' \(str\); did you mean 'hardware'\?",
        "edit",
    ),
    (
        "hardware",
        "version:",
        "verison:",
        "verison",
        r"unknown key 'verison'; did you mean 'version'\?",
        "edit",
    ),
    (
        "hardware",
        "ncpu: 2",
        "ncpus: 2",
        "cpu.ncpus",
        r"unknown key 'ncpus'; did you mean 'ncpu'\?",
        "edit",
    ),
    (
        "hardware",
        "setup: [echo hello]",
        "colour: red",
        "colour",
        r"unknown key 'colour'; expected one of: kind, id, name, version, description, cpu",
        "edit",
    ),
    (
        "hardware",
        'version: "1.2.0"',
        "version: 1.2",
        "version",
        r'expected a string like "1\.0\.0" \(quote it\), got 1\.2 \(float\)',
        "edit",
    ),
    (
        "hardware",
        'version: "1.2.0"',
        'version: "1.2"',
        "version",
        r"expected a semantic version MAJOR\.MINOR\.PATCH\[-pre\]\[\+build\] .*got '1\.2'",
        "edit",
    ),
    (
        "hardware",
        "id: 5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21",
        "id: not-a-uuid",
        "id",
        r"expected a UUID in canonical 8-4-4-4-12 form .*got 'not-a-uuid'",
        "edit",
    ),
    (
        "hardware",
        "id: 5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21",
        "id: 5b0c6a5e1f2d4c3b9a8e7d6c5b4a3f21",
        "id",
        r"expected a UUID in canonical 8-4-4-4-12 form",
        "edit",
    ),
    (
        "hardware",
        "name: test-gpu-box",
        'name: "-test gpu"',
        "name",
        r"expected a name of letters, digits, .*got '-test gpu'",
        "edit",
    ),
    (
        "hardware",
        "arch: [amd64, arm64]",
        "arch: [amd64, sparc]",
        "cpu.arch[1]",
        r"unknown CPU architecture 'sparc'; expected one of x86_64",
        "edit",
    ),
    ("hardware", "arch: [amd64, arm64]", "arch: []", "cpu.arch", r"expected at least 1 item", 7),
    (
        "hardware",
        "arch: nvidia/sm70",
        "arch: nvidia/volta",
        "gpu[0].arch",
        r"unknown GPU architecture 'nvidia/volta'",
        "edit",
    ),
    (
        "hardware",
        "memory: 16GiB",
        "memory: 16 gigs",
        "gpu[0].memory",
        r"expected a size in bytes.*got '16 gigs'",
        "edit",
    ),
    (
        "hardware",
        "count: 2",
        "count: 0",
        "gpu[0].count",
        r"expected an integer >= 1, got 0",
        "edit",
    ),
    (
        "hardware",
        "count: 2",
        "count: true",
        "gpu[0].count",
        r"expected an integer >= 1, got True \(bool\)",
        "edit",
    ),
    ("hardware", "ncpu: 2", "ncpu: -1", "cpu.ncpu", r"expected a number > 0, got -1", "edit"),
    (
        "hardware",
        'driver: "535.0"',
        "driver: 535.0",
        "gpu[0].driver",
        r"expected a string \(quote it\), got 535\.0 \(float\)",
        "edit",
    ),
    (
        "hardware",
        "setup: [echo hello]",
        "setup: echo hello",
        "setup",
        r"expected a list of strings, got 'echo hello' \(str\)",
        "edit",
    ),
    (
        "hardware",
        "setup: [echo hello]\n",
        "setup: [echo hello]\nname: again\n",
        "name",
        r"duplicate key 'name' \(first at line 3\); YAML would keep only the last",
        "name: again",
    ),
    (
        "software",
        "environment: process",
        "environment: podman",
        "environment",
        r"expected one of inline, process, docker, got 'podman' \(str\)",
        "edit",
    ),
    (
        "software",
        "environment: process",
        "environment: docker",
        "container",
        r"the docker environment needs an image: add container: <image>",
        1,
    ),
    (
        "software",
        '{OMP_NUM_THREADS: "1"}',
        "{OMP_NUM_THREADS: 1}",
        "env.OMP_NUM_THREADS",
        r"expected a string \(quote it\), got 1 \(int\)",
        "edit",
    ),
    (
        "software",
        "{OMP_NUM_THREADS:",
        "{1BAD:",
        "env.1BAD",
        r"expected an environment variable name",
        "edit",
    ),
    (
        "software",
        'version: "1.32.0"',
        'version: "latest"',
        "framework.version",
        r"expected a PEP 440 version like '1\.32\.0'.*got 'latest'",
        "edit",
    ),
    (
        "software",
        "  name: onnxruntime\n",
        "",
        "framework.name",
        r"missing required key 'name'",
        6,
    ),
    (
        "dataset",
        "    checksum: sha256:abab",
        "    checksum: md5:abab",
        "sources[0].checksum",
        r"expected 'sha256:' \(a file\) or 'sha256-tree:' \(a folder\) and 64 lowercase hex "
        r"digits, got 'md5:abab",
        "edit",
    ),
    (
        "dataset",
        "    checksum: sha256:abab",
        "    checksum: sha256-tre:abab",
        "sources[0].checksum",
        r"expected 'sha256:' \(a file\) or 'sha256-tree:' \(a folder\)",
        "edit",
    ),
    (
        "dataset",
        "labels.bin\n    checksum: sha256:",
        "labels.bin\n    checksum: sha256-tree:",
        "sources[1].checksum",
        r"a remote source is one file, so its checksum is sha256:<hex> of its bytes; "
        r"sha256-tree: is for a local folder",
        "name: labels",
    ),
    (
        "dataset",
        "source: data/images.bin\n    checksum: sha256:",
        "source: data/images.tar.gz\n    unpack: true\n    checksum: sha256-tree:",
        "sources[0].checksum",
        r"unpack: true unpacks an archive, a file checked by sha256:<hex> of its bytes; "
        r"sha256-tree: is for a local folder used as it is \(unpack: false\)",
        "name: images",
    ),
    *[
        (
            "dataset",
            "source: data/images.bin\n",
            f"source: data/images.bin\n    path: {path}\n",
            "sources[0].path",
            message,
            f"path: {path}",
        )
        for path, message in [
            ("/data/test", r"expected a relative path, got the absolute path '/data/test'"),
            ("../test", r"expected a path inside the source, got '\.\./test' with '\.\.'"),
            (
                "test/../../x",
                r"expected a path inside the source, got 'test/\.\./\.\./x' with '\.\.'; write a "
                r"path relative",
            ),
            ("'test\\cat'", r"expected '/' between folder names, got 'test\\\\cat'"),
            ("'C:/data'", r"expected a relative path, got the absolute path 'C:/data'"),
            ("./", r"'\./' names the source itself; remove path:"),
            ("''", r"expected a relative path like 'test' or 'data/val', got an empty string"),
            ("2024", r"expected a relative path like 'test' or 'data/val' \(quote it\), got 2024"),
            ("[test]", r"expected a relative path like 'test' or 'data/val', got \['test'\]"),
        ]
    ],
    (
        "dataset",
        "    unpack: true\n",
        "    path: test\n",
        "sources[1].path",
        r"names an entry inside an unpacked archive, but this remote source is used as one "
        r"file; set unpack: true \(the source must be an archive\), or remove path:",
        "name: labels",
    ),
    (
        "dataset",
        "http://127.0.0.1:1/labels.bin\n    checksum: sha256:" + "ab" * 32 + "\n",
        "http://127.0.0.1:1/labels.bin\n",
        "sources[1].checksum",
        r"remote source needs a checksum: add checksum: sha256:<hex>",
        "name: labels",
    ),
    (
        "dataset",
        "name: labels",
        "name: images",
        "sources[1].name",
        r"duplicate source name 'images'; sources\[0\] has it already",
        10,
    ),
    (
        "dataset",
        "source: data/images.bin",
        "source: s3://bucket/images.bin",
        "sources[0].source",
        r"unsupported URL scheme 's3' in 's3://bucket/images\.bin'; expected http://",
        "edit",
    ),
    (
        "dataset",
        "source: data/images.bin",
        "source: file://relative/images.bin",
        "sources[0].source",
        r"expected file:///absolute/path",
        "edit",
    ),
    (
        "dataset",
        "unpack: true",
        'unpack: "yes"',
        "sources[1].unpack",
        r"expected true or false, got 'yes' \(str\)",
        "edit",
    ),
    (
        "dataset",
        "  def fn(ctx, data):\n      return {",
        "  def fn(ctx, data):\n      return {{",
        "reader",
        r"Python syntax error: '\{' was never closed",
        "return {{",
    ),
    (
        "model",
        'run: |\n  def fn(ctx, data):\n      return ctx["model"], data\n',
        "",
        "run",
        r"missing required key 'run'",
        1,
    ),
    (
        "model",
        "element_type: float32, shape: [-1, 10]",
        "element_type: float, shape: [-1, 10]",
        "outputs[0].element_type",
        r"expected one of float16, .*, got 'float' \(str\); "
        r"did you mean 'float\d\d', 'float\d\d' or 'float\d\d'\?",
        "edit",
    ),
    (
        "model",
        "shape: [-1, 10]",
        "shape: abc",
        "outputs[0].shape",
        r"expected a list of integers, got 'abc' \(str\)",
        "edit",
    ),
    (
        "model",
        "shape: [-1, 10]",
        "shape: [-2, 10]",
        "outputs[0].shape[0]",
        r"expected an integer >= -1, got -2",
        "edit",
    ),
    (
        "model",
        "shape: [-1, 10]",
        "shape: [-1, 10.5]",
        "outputs[0].shape[1]",
        r"expected an integer >= -1, got 10\.5 \(float\)",
        "edit",
    ),
    (
        "model",
        "job_type: inference",
        "job_type: train",
        "job_type",
        r"expected one of inference, training, got 'train' \(str\); did you mean 'training'\?",
        "edit",
    ),
    (
        "model",
        'version: ">=1.16"',
        'version: ">=one"',
        "framework.version",
        r"expected a version constraint like '>=1\.16'",
        "edit",
    ),
    (
        "model",
        'version: ">=1.16"',
        "version: 1.16",
        "framework.version",
        r'expected a version constraint like ">=1\.16" \(quote it\), got 1\.16 \(float\)',
        "edit",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: |\n  def fn(ctx, data, extra):\n      return data\n",
        "pre-process",
        r"fn must take exactly two positional parameters, as in 'def fn\(ctx, data\)', "
        r"got 'def fn\(ctx, data, extra\)'",
        "def fn(ctx, data, extra)",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: |\n  def fn(ctx, data, *rest):\n      return data\n",
        "pre-process",
        r"fn must take .*, got 'def fn\(ctx, data, \*rest\)'",
        "def fn(ctx, data, *rest)",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: |\n  def fn(ctx, data, *, must):\n      return data\n",
        "pre-process",
        r"fn must take exactly two positional parameters",
        "def fn(ctx, data, *, must)",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: |\n  def process(ctx, data):\n      return data\n",
        "pre-process",
        r"the code must define a top-level function 'def fn\(ctx, data\)'",
        "def process(ctx, data)",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: |\n  import os\n  async def fn(ctx, data):\n      return data\n",
        "pre-process",
        r"fn must be a plain 'def fn\(ctx, data\)', not 'async def'",
        "async def fn",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: |\n  return data  # outside\n",
        "pre-process",
        r"Python syntax error: 'return' outside function",
        "# outside",
    ),
    (
        "model",
        "pre-process: |\n  " + DEF_PRE,
        "pre-process: ''\n",
        "pre-process",
        r"expected Python source code defining fn\(ctx, data\), got an empty string",
        "edit",
    ),
    (
        "model",
        "  - {name: x, modality: image, element_type: float32, shape: [-1, 1, 28, 28]}\n",
        " []\n",
        "inputs",
        r"expected at least 1 item, got an empty list",
        None,
    ),
    (
        "model",
        "options: {top_k: 5, nested: {a: [1, 2]}}",
        "options: [top_k]",
        "options",
        r"expected a mapping of options, got \['top_k'\] \(list\)",
        "edit",
    ),
    (
        "model",
        'source: net.onnx, checksum: "sha256:' + "ab" * 32 + '"',
        "source: https://127.0.0.1/net.onnx",
        "model[0].checksum",
        r"remote source needs a checksum",
        "edit",
    ),
    ("reference", "  model: test-net@1.0.0\n", "", "task.model", r"missing required key", 6),
    (
        "reference",
        "  dataset: test-digits@2.0.0-rc.1\n",
        "",
        "task.dataset",
        r"missing required",
        6,
    ),
    (
        "reference",
        "model: test-net@1.0.0",
        "model: test-net",
        "task.model",
        r"expected name@version \(like 'mnist-8@1\.0\.0'\) or a UUID, got 'test-net'",
        "edit",
    ),
    (
        "reference",
        "value: 0.989",
        "value: 98.9",
        "accuracy.top1.value",
        r"expected a number in \[0, 1\], got 98\.9",
        "edit",
    ),
    (
        "reference",
        "tolerance: 0.0005",
        "tolerance: -0.1",
        "accuracy.top1.tolerance",
        r"expected a number >= 0, got -0\.1",
        "edit",
    ),
    (
        "reference",
        "top1: {value: 0.989, tolerance: 0.0005}",
        "top1: {value: 0.989}",
        "accuracy.top1.tolerance",
        r"missing required key 'tolerance'",
        "edit",
    ),
    (
        "reference",
        "top1: 7",
        "top1: seven",
        "expected_outputs[0].top1",
        r"expected an integer >= 0, got 'seven' \(str\)",
        "edit",
    ),
    (
        "reference",
        "performance: {throughput_sps: 50000}",
        "performance: {1: 50000}",
        "performance.1",
        r"expected string keys, got 1 \(int\) \(quote it\)",
        "edit",
    ),
]


def _row_id(row: tuple) -> str:
    kind, _old, _new, field, _message, _line = row
    return f"{kind}-{field}"


@pytest.mark.parametrize(
    ("kind", "old", "new", "field", "message", "line"), BAD_INPUT, ids=map(_row_id, BAD_INPUT)
)
def test_bad_input_is_reported_at_its_field_and_line(
    valid_texts: dict[str, str], kind: str, old: str, new: str, field: str, message: str, line
) -> None:
    text = valid_texts[kind]
    assert old in text, f"the table's text to replace is not in the {kind} fixture"
    text = text.replace(old, new, 1)
    if line == "edit":
        line = text[: text.index(new)].count("\n") + 1
    elif isinstance(line, str):
        line = _line_of(text, line)
    where = rf"{FILE}:{line}" if line else rf"{FILE}(:\d+)?"
    pattern = rf"(^|\n){where}: {re.escape(field)}: {message}"
    with pytest.raises(ManifestError, match=pattern):
        load_manifest_text(text, FILE, BASE)


SEVERAL = """\
kind: model
id: not-a-uuid
name: my model
verison: "1.0.0"
version: 1.0
framework: {name: onnxruntime, version: ">=abc"}
inputs:
  - {name: x, element_type: float, shape: abc}
outputs: []
model:
  - {name: g, source: https://127.0.0.1/y.onnx}
pre-process: |
  def fn(ctx, data):
      return data +
run: |
  def fn(ctx):
      return 1
post-process: |
  import numpy
"""


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest_text(SEVERAL, FILE, BASE)
    found = [(p.line, p.field) for p in caught.value.problems]
    assert found == [
        (2, "id"),
        (3, "name"),
        (4, "verison"),
        (5, "version"),
        (6, "framework.version"),
        (8, "inputs[0].element_type"),
        (8, "inputs[0].shape"),
        (9, "outputs"),
        (11, "model[0].checksum"),
        (14, "pre-process"),
        (16, "run"),
        (19, "post-process"),
    ]
    message = str(caught.value)
    assert message.count("\n") == len(found) - 1
    assert message.startswith("m.yaml:2: id: expected a UUID")


def _line_of(text: str, marker: str) -> int:
    [line] = [i for i, row in enumerate(text.splitlines(), 1) if marker in row]
    return line


@pytest.mark.parametrize(
    ("kind", "old", "new", "marker"),
    [
        ("model", '      return ctx["model"], data', "      return ctx[", "return ctx["),
        ("model", "      return data\n", "      return data\n    bad_indent = 1\n", "bad_indent"),
        ("model", "  def fn(ctx, data, /):", "  def fn(ctx, data, /)", "def fn(ctx, data, /)"),
        ("model", '      return "model"', '      return "model" "', 'return "model" "'),
        ("dataset", '      return {"ids"', '      return {"ids" ::', "::"),
    ],
    ids=["unclosed-bracket", "indentation", "missing-colon", "unclosed-string", "reader"],
)
def test_syntax_error_line_is_the_line_in_the_yaml_file(
    valid_texts: dict[str, str], kind: str, old: str, new: str, marker: str
) -> None:
    text = valid_texts[kind].replace(old, new, 1)
    with pytest.raises(ManifestError) as caught:
        load_manifest_text(text, FILE, BASE)
    [problem] = caught.value.problems
    assert problem.message.startswith("Python syntax error: ")
    assert problem.line == _line_of(text, marker)


def test_stage_lines_point_at_the_first_code_line(valid_texts: dict[str, str]) -> None:
    text = valid_texts["model"]
    model = load_manifest_text(text, FILE, BASE)
    assert isinstance(model, ModelManifest)
    lines = text.splitlines()
    for name, stage in model.stages.items():
        assert stage.name == name
        assert stage.file == FILE
        assert lines[stage.line - 1].strip() == stage.code.splitlines()[0].strip()


def test_a_runtime_error_in_stage_code_is_traced_to_its_yaml_line(
    valid_texts: dict[str, str],
) -> None:
    text = valid_texts["model"].replace('      return "model"', "      return 1 / 0", 1)
    model = load_manifest_text(text, FILE, BASE)
    assert isinstance(model, ModelManifest)
    stage = model.stages["load"]
    namespace: dict = {}
    exec(compile(stage.padded(), stage.file, "exec"), namespace)
    with pytest.raises(ZeroDivisionError) as caught:
        namespace["fn"]({}, None)
    [frame] = traceback.extract_tb(caught.tb)[-1:]
    assert (frame.filename, frame.lineno) == (FILE, _line_of(text, "return 1 / 0"))


def test_hardware_round_trip(valid_texts: dict[str, str]) -> None:
    manifest = load_manifest_text(valid_texts["hardware"], FILE, BASE)
    assert manifest == HardwareManifest(
        kind="hardware",
        id="5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21",
        name="test-gpu-box",
        version="1.2.0",
        description="A test machine.",
        path=None,
        cpu=CpuSpec(arch=("x86_64", "aarch64"), ncpu=2),
        gpu=(
            GpuSpec(
                arch="sm_70", count=2, memory=16 * 2**30, driver="535.0", interconnect="nvlink"
            ),
        ),
        memory=512 * 10**6,
        setup=("echo hello",),
    )
    assert manifest.ref == "test-gpu-box@1.2.0"


def test_hardware_defaults_mean_any_cpu_and_no_gpu() -> None:
    text = "kind: hardware\nid: 5B0C6A5E-1F2D-4C3B-9A8E-7D6C5B4A3F21\nname: any\nversion: '0.1.0'\n"
    manifest = load_manifest_text(text)
    assert isinstance(manifest, HardwareManifest)
    assert manifest.id == "5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21"
    assert (manifest.cpu, manifest.gpu, manifest.memory, manifest.description) == (
        CpuSpec(arch=()),
        (),
        None,
        "",
    )
    single = load_manifest_text(text + "cpu: {arch: X86-64}\ngpu: [{arch: sm90a, memory: null}]\n")
    assert single.cpu.arch == ("x86_64",)
    assert single.gpu == (GpuSpec(arch="sm_90a"),)


def test_software_round_trip(valid_texts: dict[str, str]) -> None:
    manifest = load_manifest_text(valid_texts["software"], FILE, BASE)
    assert manifest == SoftwareManifest(
        kind="software",
        id="6c1d7b6f-2a3e-4d4c-8b9f-8e7d6c5b4a32",
        name="test-ort",
        version="1.0.0",
        description="",
        path=None,
        framework=FrameworkSpec("onnxruntime", "1.32.0"),
        environment="process",
        container=None,
        python="/usr/bin/python3",
        packages=("onnxruntime==1.32.0",),
        env={"OMP_NUM_THREADS": "1"},
    )
    docker = valid_texts["software"].replace(
        "environment: process", "environment: docker\ncontainer: ort:1.32\n"
    )
    assert load_manifest_text(docker).container == "ort:1.32"


def test_dataset_round_trip(valid_texts: dict[str, str]) -> None:
    manifest = load_manifest_text(valid_texts["dataset"], FILE, BASE)
    assert isinstance(manifest, DatasetManifest)
    checksum = "sha256:" + "ab" * 32
    assert manifest.sources == (
        Source("images", "data/images.bin", checksum, False, BASE, FILE, "sources[0]"),
        Source("labels", "http://127.0.0.1:1/labels.bin", checksum, True, BASE, FILE, "sources[1]"),
    )
    assert [s.is_remote for s in manifest.sources] == [False, True]
    assert (manifest.license, manifest.version) == ("CC0", "2.0.0-rc.1")
    assert manifest.reader is not None
    assert manifest.reader.name == "reader"
    assert manifest.reader.line == 15
    assert manifest.reader.code.startswith("def fn(ctx, data):\n")


@pytest.mark.parametrize(
    ("written", "kept"),
    [("test", "test"), ("data/val", "data/val"), ("./data//val/", "data/val"), ("..a", "..a")],
)
def test_a_source_path_is_kept_normalised(
    valid_texts: dict[str, str], written: str, kept: str
) -> None:
    text = valid_texts["dataset"].replace(
        "    unpack: true\n", f"    unpack: true\n    path: {written}\n"
    )
    manifest = load_manifest_text(text, FILE, BASE)
    assert [s.path for s in manifest.sources] == [None, kept]


def test_a_local_source_accepts_a_folder_checksum_and_a_path(valid_texts: dict[str, str]) -> None:
    tree = "sha256-tree:" + "cd" * 32
    text = valid_texts["dataset"].replace(
        "source: data/images.bin\n    checksum: sha256:" + "ab" * 32,
        f"source: data/images\n    checksum: {tree}\n    path: test",
    )
    images = load_manifest_text(text, FILE, BASE).sources[0]
    assert (images.source, images.checksum, images.unpack, images.path) == (
        "data/images",
        tree,
        False,
        "test",
    )


def test_model_round_trip(valid_texts: dict[str, str]) -> None:
    manifest = load_manifest_text(valid_texts["model"], FILE, BASE)
    assert isinstance(manifest, ModelManifest)
    assert (manifest.license, manifest.author, manifest.task, manifest.job_type) == (
        "MIT",
        "Tests",
        "image_classification",
        "inference",
    )
    assert manifest.framework == FrameworkSpec("onnxruntime", ">=1.16")
    assert manifest.inputs == (TensorSpec("x", "float32", (-1, 1, 28, 28), "image"),)
    assert manifest.outputs == (TensorSpec("y", "float32", (-1, 10), ""),)
    assert [(a.name, a.source, a.field) for a in manifest.artifacts] == [
        ("graph", "net.onnx", "model[0]")
    ]
    assert manifest.options == {"top_k": 5, "nested": {"a": [1, 2]}}
    assert type(manifest.options["nested"]) is dict
    assert type(manifest.options["nested"]["a"]) is list
    assert manifest.system_requirements == ("avx2",)
    assert list(manifest.stages) == ["load", "pre-process", "run", "post-process"]
    assert [s.line for s in manifest.stages.values()] == [19, 22, 25, 28]


def test_model_without_load_has_three_stages(valid_texts: dict[str, str]) -> None:
    text = valid_texts["model"].replace('load: |\n  def fn(ctx, data):\n      return "model"\n', "")
    manifest = load_manifest_text(text)
    assert list(manifest.stages) == ["pre-process", "run", "post-process"]


def test_reference_round_trip(valid_texts: dict[str, str]) -> None:
    manifest = load_manifest_text(valid_texts["reference"], FILE, BASE)
    assert isinstance(manifest, ReferenceLog)
    assert manifest.task == TaskRefs(
        model="test-net@1.0.0",
        dataset="test-digits@2.0.0-rc.1",
        software="6c1d7b6f-2a3e-4d4c-8b9f-8e7d6c5b4a32",
        hardware=None,
    )
    assert manifest.accuracy == {
        "top1": AccuracyExpectation(0.989, 0.0005),
        "top5": AccuracyExpectation(1.0, 0.0),
    }
    assert type(manifest.accuracy["top5"].value) is float
    assert manifest.performance == {"throughput_sps": 50000}
    assert manifest.expected_outputs == (ExpectedOutput("0", 7), ExpectedOutput("1", 2))
    assert manifest.notes == "made by tests"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"^<string>: the file is empty; expected a mapping with kind, id, name, version"),
        ("# only a comment\n", r"the file is empty"),
        (
            "- a\n- b\n",
            r"<string>:1: expected a mapping at the top level, got \['a', 'b'\] \(list\)",
        ),
        ("just text\n", r"expected a mapping at the top level, got 'just text' \(str\)"),
        ("kind: [model]\n", r"kind: expected one of hardware, .*got \['model'\] \(list\)"),
    ],
)
def test_files_that_are_not_a_manifest_mapping(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifest_text(text)


def test_an_unknown_kind_still_reports_the_common_fields() -> None:
    text = "kind: modle\nid: nope\nname: ok\nversion: '1.0.0'\nanything: goes\n"
    with pytest.raises(ManifestError) as caught:
        load_manifest_text(text)
    assert [(p.line, p.field) for p in caught.value.problems] == [(1, "kind"), (2, "id")]
    assert "did you mean 'model'?" in caught.value.problems[0].message


def test_validate_data_accepts_plain_dicts_without_lines() -> None:
    data = {"kind": "hardware", "id": "5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21", "name": "x"}
    manifest, problems = validate_data(data, file="api", base_dir=BASE)
    assert manifest is None
    assert [(p.file, p.field, p.line) for p in problems] == [("api", "version", None)]
    manifest, problems = validate_data({**data, "version": "1.0.0"}, file="api", base_dir=BASE)
    assert problems == []
    assert isinstance(manifest, HardwareManifest)


def test_accepted_keys_cover_the_documented_fields() -> None:
    assert accepted_keys("model") >= {"kind", "pre-process", "run", "post-process", "model"}
    assert "artifacts" not in accepted_keys("model")
    assert accepted_keys("reference") == {
        "kind",
        "id",
        "name",
        "version",
        "description",
        "task",
        "accuracy",
        "performance",
        "expected_outputs",
        "notes",
    }
