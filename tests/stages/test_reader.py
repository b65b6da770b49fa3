from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlspec_ray.spec.types import DatasetManifest, Source, StageSource
from dlspec_ray.stages import ReaderError, read_samples


def dataset(body: str | None) -> DatasetManifest:
    reader = None
    if body is not None:
        reader = StageSource("reader", f"def fn(ctx, data):\n    {body}\n", "/d/data.yaml", 5)
    sources = (
        Source("a", "a.bin", None, False, Path("/d")),
        Source("b", "b.bin", None, False, Path("/d")),
    )
    return DatasetManifest(
        kind="dataset",
        id="x",
        name="d",
        version="1.0.0",
        description="",
        path=Path("/d/data.yaml"),
        sources=sources,
        reader=reader,
    )


def test_without_a_reader_each_source_is_a_sample():
    samples = read_samples(dataset(None), {"a": Path("/c/a.bin"), "b": Path("/c/b.bin")})
    assert samples.ids == ["a", "b"]
    assert samples.inputs == ["/c/a.bin", "/c/b.bin"]
    assert samples.labels is None


def test_reader_output_is_kept_and_ids_become_strings():
    samples = read_samples(
        dataset(
            "return {'ids': [0, 1, 2], 'inputs': __import__('numpy').zeros((3, 2)), "
            "'labels': [1, 0, 1]}"
        ),
        {},
    )
    assert samples.ids == ["0", "1", "2"]
    assert samples.labels.dtype == np.int64
    assert len(samples.head(2)) == 2


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("return [1, 2]", r"data.yaml: reader: expected a dict with 'ids' and either 'inputs'"),
        ("return {'ids': [1, 1], 'inputs': [0, 0]}", r"sample ids must be unique; 1 repeat"),
        ("return {'ids': [1, 2], 'inputs': [0]}", r"expected 2 inputs \(one per id\), got 1"),
        ("return {'ids': [1], 'inputs': [0], 'labels': [0.5]}", r"expected 'labels' as 1 integers"),
        ("raise OSError('truncated file')", r"the reader raised OSError: truncated file"),
    ],
)
def test_reader_contract_violations_are_clear(body, match):
    with pytest.raises(ReaderError, match=match):
        read_samples(dataset(body), {})


def test_locators_are_resolved_against_this_nodes_copy_of_each_source(tmp_path):
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    body = "return {'ids': ['x', 'y'], 'locators': ['a/cat/x.png', 'b'], 'labels': [1, 2]}"
    samples = read_samples(dataset(body), {"a": tmp_path / "imgs", "b": tmp_path / "b.bin"})
    assert samples.inputs == [str(tmp_path / "imgs" / "cat" / "x.png"), str(tmp_path / "b.bin")]


@pytest.mark.parametrize(
    ("locators", "match"),
    [
        (["c/x.png"], r"the locator 'c/x.png' names no source; .* among \['a', 'b'\]"),
        (["a/../../etc/passwd"], r"the locator 'a/../../etc/passwd' points outside its source"),
    ],
)
def test_a_locator_never_leaves_its_source(tmp_path, locators, match):
    body = f"return {{'ids': ['x'], 'locators': {locators!r}}}"
    with pytest.raises(ReaderError, match=match):
        read_samples(dataset(body), {"a": tmp_path / "a", "b": tmp_path / "b.bin"})


def test_the_index_is_what_the_driver_needs_and_nothing_that_grows(tmp_path):
    body = "return {'ids': [0, 1, 2], 'inputs': __import__('numpy').zeros((3, 4), 'uint8')}"
    index = read_samples(dataset(body), {}).index()
    assert (index.samples, index.bytes_per_sample, index.labelled) == (3, 4, False)
    assert index.batch_bytes(64) == 256
    assert index.limited(2).samples == 2 and index.limited(2).ids_digest == index.ids_digest
    other = read_samples(dataset(body.replace("[0, 1, 2]", "[0, 2, 1]")), {}).index()
    assert other.ids_digest != index.ids_digest
