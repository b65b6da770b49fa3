"""What a session keeps between evaluations (the warm host actors are tested on Ray in
test_evaluation.py)."""

from __future__ import annotations

from dataclasses import replace

import dlspec_ray
from dlspec_ray.spec import load_manifest


def test_a_checksummed_dataset_is_read_once_per_session(repo_cwd):
    dataset = load_manifest("manifests/datasets/mnist-test.yaml")
    with dlspec_ray.Session() as session:
        first = session.samples(dataset, None)
        assert len(first) == 10_000
        assert session.samples(dataset, None) is first
        # Another reader is another dataset, even under the same name@version.
        other = replace(dataset, reader=replace(dataset.reader, code=dataset.reader.code + "\n"))
        assert session.samples(other, None) is not first


def test_a_dataset_without_checksums_is_read_every_time(repo_cwd):
    dataset = load_manifest("manifests/datasets/mnist-test.yaml")
    unpinned = replace(dataset, sources=tuple(replace(s, checksum=None) for s in dataset.sources))
    with dlspec_ray.Session() as session:
        assert session.samples(unpinned, None) is not session.samples(unpinned, None)
