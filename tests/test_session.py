"""What a session keeps between evaluations: each node's copy of the dataset (the warm host
actors are tested on Ray in test_evaluation.py)."""

from __future__ import annotations

from dataclasses import replace

import ray

import dlspec_ray
from dlspec_ray.runtime import ReadSpec
from dlspec_ray.spec import load_manifest


def _node() -> str:
    return ray.get_runtime_context().get_node_id()


def test_a_checksummed_dataset_is_read_once_per_node_and_session(repo_cwd, ray_session):
    dataset = load_manifest("manifests/datasets/mnist-test.yaml")
    with dlspec_ray.Session() as session:
        node = _node()
        first = session.node_data(ReadSpec(dataset), [node])[node]
        assert ray.get(first.index.remote()).samples == 10_000
        assert session.node_data(ReadSpec(dataset), [node])[node] is first
        # Another reader is another dataset, even under the same name@version.
        other = replace(dataset, reader=replace(dataset.reader, code=dataset.reader.code + "\n"))
        assert session.node_data(ReadSpec(other), [node])[node] is not first


def test_a_dataset_without_checksums_is_read_again_by_the_next_run(
    repo_cwd, ray_session, mnist_manifests, tmp_path
):
    mnist_manifests.edit("dataset", "    checksum: sha256:8d42", "    # checksum: sha256:8d42")
    with dlspec_ray.Session() as session:
        result = session.evaluate(
            mnist_manifests.path("model"),
            mnist_manifests.path("dataset"),
            limit=64,
            progress=False,
            out=tmp_path / "run",
        )
        assert result.summary["unverified_sources"] == ["images"]
        assert session._data == {}


def test_the_datasets_provenance_comes_from_a_node_that_is_still_there(ray_session):
    """artifacts.json is written after the stream; the first node's copy may be gone by
    then (a lost node), so the next node's is asked."""
    from dlspec_ray.session import _dataset_provenance

    @ray.remote(num_cpus=0)
    class Copy:
        def __init__(self, name):
            self.name = name

        def provenance(self):
            return [{"name": self.name}]

    lost, kept = Copy.remote("lost"), Copy.remote("kept")
    ray.get([lost.provenance.remote(), kept.provenance.remote()])
    ray.kill(lost, no_restart=True)
    assert _dataset_provenance({"node-a": lost, "node-b": kept}) == [{"name": "kept"}]
    ray.kill(kept, no_restart=True)
