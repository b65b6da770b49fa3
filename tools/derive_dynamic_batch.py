"""Derive a variable-batch copy of an ONNX classifier whose batch dimension is fixed at 1.

The ONNX Model Zoo's mnist-8 was exported by CNTK with a batch of exactly 1: the graph
input and output say [1, ...] and a Reshape flattens the features with the constant
shape [1, 256]. Running it one image at a time costs more than batching, so the runtime
uses a derived copy in which the batch dimension is the symbolic ``N``. The weights and
every other node stay untouched, so the outputs are meant to be bit-identical.

The script finds what to change by tracing the graph rather than by node names, refuses
anything it does not understand, prints every change, and writes deterministic bytes (the
same input always gives the same output file) so that the derived file's checksum can be
recorded and re-checked.

Usage (from the repository root)::

    .venv/bin/python tools/derive_dynamic_batch.py \\
        --source assets/mnist/mnist-8.onnx --out assets/mnist/mnist-8-dynbatch.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import onnx
from onnx import ModelProto, TensorProto, TypeProto

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / "assets" / "mnist" / "mnist-8.onnx"
DEFAULT_OUT = REPO_ROOT / "assets" / "mnist" / "mnist-8-dynbatch.onnx"
BATCH_PARAM = "N"


class DeriveError(Exception):
    """The graph is not of the shape this tool knows how to rewrite safely."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _batch_dependent_values(model: ModelProto) -> set[str]:
    """Every tensor computed from a real graph input: these carry the batch dimension.

    Initializers are excluded even though IR version 3 lists them as graph inputs, so
    that the weight-side Reshape (Parameter193 -> [256, 10]) is never mistaken for the
    activation-side one.
    """
    initializers = {t.name for t in model.graph.initializer}
    tainted = {i.name for i in model.graph.input if i.name not in initializers}
    # Nodes are topologically sorted in a valid ONNX graph, so one pass suffices.
    for node in model.graph.node:
        if any(name in tainted for name in node.input):
            tainted.update(node.output)
    return tainted


def _set_batch_dim(value_type: TypeProto, where: str, changes: list[str]) -> None:
    dims = value_type.tensor_type.shape.dim
    if not dims:
        raise DeriveError(f"{where}: has no shape; expected a tensor with a batch dimension")
    first = dims[0]
    if first.HasField("dim_param"):
        return
    if first.dim_value != 1:
        raise DeriveError(f"{where}: expected batch dimension 1, got {first.dim_value}")
    first.dim_param = BATCH_PARAM  # a oneof: this clears dim_value
    changes.append(f"{where}: dim 0 1 -> {BATCH_PARAM!r}")


def _int64_values(tensor: TensorProto) -> list[int]:
    return list(onnx.numpy_helper.to_array(tensor).reshape(-1).tolist())


def _relax_reshapes(model: ModelProto, tainted: set[str], changes: list[str]) -> None:
    """Turn the leading 1 of each activation Reshape's constant shape into -1."""
    initializers = {t.name: t for t in model.graph.initializer}
    found = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[0] not in tainted:
            continue
        shape_name = node.input[1]
        tensor = initializers.get(shape_name)
        if tensor is None:
            raise DeriveError(
                f"Reshape {node.name or node.output[0]!r}: its shape {shape_name!r} is computed, "
                "not a constant initializer; this tool only rewrites constant shapes"
            )
        if tensor.data_type != TensorProto.INT64:
            raise DeriveError(f"initializer {shape_name!r}: expected INT64, got {tensor.data_type}")
        before = _int64_values(tensor)
        if not before or before[0] not in (1, -1):
            raise DeriveError(
                f"initializer {shape_name!r}: expected a leading batch size of 1, got {before}"
            )
        if -1 in before[1:]:
            raise DeriveError(
                f"initializer {shape_name!r}: {before} already infers another dimension; "
                "a second -1 would be invalid"
            )
        found += 1
        if before[0] == -1:
            continue
        if tensor.HasField("raw_data") or len(tensor.int64_data) != len(before):
            # Normalise to int64_data so the edit below is the only difference.
            values = before
            tensor.ClearField("raw_data")
            del tensor.int64_data[:]
            tensor.int64_data.extend(values)
        tensor.int64_data[0] = -1
        after = _int64_values(tensor)
        changes.append(
            f"Reshape {node.output[0]!r}: shape initializer {shape_name!r} {before} -> {after}"
        )
    if found == 0:
        raise DeriveError("no Reshape of a batch-carrying tensor found; nothing to relax")


def derive(model: ModelProto) -> tuple[ModelProto, list[str]]:
    """Return a copy of ``model`` with a symbolic batch dimension, and the changes made."""
    derived = ModelProto()
    derived.CopyFrom(model)
    graph = derived.graph
    initializers = {t.name for t in graph.initializer}
    tainted = _batch_dependent_values(derived)
    changes: list[str] = []

    for value in graph.input:
        if value.name not in initializers:
            _set_batch_dim(value.type, f"graph input {value.name!r}", changes)
    for value in graph.output:
        _set_batch_dim(value.type, f"graph output {value.name!r}", changes)
    # Intermediate shape annotations that still said 1 would contradict a batch of 64.
    for value in graph.value_info:
        if value.name in tainted:
            _set_batch_dim(value.type, f"value_info {value.name!r}", changes)
    _relax_reshapes(derived, tainted, changes)
    return derived, changes


def serialize(model: ModelProto) -> bytes:
    """Protobuf bytes that depend only on the message's content, never on the run."""
    return model.SerializeToString(deterministic=True)


def derive_file(source: Path, out: Path) -> tuple[str, str, list[str]]:
    """Derive ``out`` from ``source``; return (source sha256, out sha256, changes)."""
    source_bytes = source.read_bytes()
    model = onnx.load_model_from_string(source_bytes)
    derived, changes = derive(model)
    derived.metadata_props.add(
        key="derived_from", value=f"{source.name} sha256:{sha256_bytes(source_bytes)}"
    )
    derived.metadata_props.add(
        key="derived_by", value="tools/derive_dynamic_batch.py (dlspec-ray): variable batch size"
    )
    onnx.checker.check_model(derived, full_check=True)
    data = serialize(derived)
    if serialize(onnx.load_model_from_string(data)) != data:
        raise DeriveError("serialisation is not stable across a load/save round trip")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return sha256_bytes(source_bytes), sha256_bytes(data), changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        source_sha, out_sha, changes = derive_file(args.source, args.out)
    except (DeriveError, onnx.checker.ValidationError, OSError) as exc:
        print(f"derive_dynamic_batch: {exc}", file=sys.stderr)
        return 2
    for change in changes:
        print(f"changed: {change}")
    print(f"input:  {args.source} sha256:{source_sha}")
    print(f"output: {args.out} sha256:{out_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
