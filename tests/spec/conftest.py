"""Valid manifests of every kind, as YAML text, for tests to load or break."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CHECKSUM = "sha256:" + "ab" * 32

HARDWARE = """\
kind: hardware
id: 5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21
name: test-gpu-box
version: "1.2.0"
description: A test machine.
cpu:
  arch: [amd64, arm64]
  ncpu: 2
gpu:
  - arch: nvidia/sm70
    count: 2
    memory: 16GiB
    driver: "535.0"
    interconnect: nvlink
memory: 512MB
setup: [echo hello]
"""

SOFTWARE = """\
kind: software
id: 6c1d7b6f-2a3e-4d4c-8b9f-8e7d6c5b4a32
name: test-ort
version: "1.0.0"
framework:
  name: onnxruntime
  version: "1.32.0"
environment: process
python: /usr/bin/python3
packages: [onnxruntime==1.32.0]
env: {OMP_NUM_THREADS: "1"}
"""

DATASET = f"""\
kind: dataset
id: 7d2e8c70-3b4f-4e5d-9ca0-9f8e7d6c5b43
name: test-digits
version: "2.0.0-rc.1"
license: CC0
sources:
  - name: images
    source: data/images.bin
    checksum: {CHECKSUM}
  - name: labels
    source: http://127.0.0.1:1/labels.bin
    checksum: {CHECKSUM}
    unpack: true
reader: |
  def fn(ctx, data):
      return {{"ids": ["0"], "inputs": [data["images"]]}}
"""

MODEL = f"""\
kind: model
id: 8e3f9d81-4c50-4f6e-8db1-a09f8e7d6c54
name: test-net
version: "1.0.0"
license: MIT
author: Tests
task: image_classification
framework: {{name: onnxruntime, version: ">=1.16"}}
job_type: inference
inputs:
  - {{name: x, modality: image, element_type: float32, shape: [-1, 1, 28, 28]}}
outputs:
  - {{name: y, element_type: float32, shape: [-1, 10]}}
model:
  - {{name: graph, source: net.onnx, checksum: "{CHECKSUM}"}}
options: {{top_k: 5, nested: {{a: [1, 2]}}}}
system_requirements: [avx2]
load: |
  def fn(ctx, data):
      return "model"
pre-process: |
  def fn(ctx, data):
      return data
run: |
  def fn(ctx, data):
      return ctx["model"], data
post-process: |
  def fn(ctx, data, /):
      return {{"top_k": data}}
"""

REFERENCE = """\
kind: reference
id: 9f40ae92-5d61-4a7f-9ec2-b1a09f8e7d65
name: test-net-reference
version: "1.0.0"
task:
  model: test-net@1.0.0
  dataset: test-digits@2.0.0-rc.1
  software: 6C1D7B6F-2A3E-4D4C-8B9F-8E7D6C5B4A32
accuracy:
  top1: {value: 0.989, tolerance: 0.0005}
  top5: {value: 1, tolerance: 0}
performance: {throughput_sps: 50000}
expected_outputs:
  - {sample: "0", top1: 7}
  - {sample: 1, top1: 2}
notes: made by tests
"""

VALID = {
    "hardware": HARDWARE,
    "software": SOFTWARE,
    "dataset": DATASET,
    "model": MODEL,
    "reference": REFERENCE,
}


@pytest.fixture
def valid_texts() -> dict[str, str]:
    return dict(VALID)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path/relative`` (creating folders) and return the path."""

    def write_file(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write_file
