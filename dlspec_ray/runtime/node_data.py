"""A dataset on one node: fetched into that node's cache, read once, shared by its host actors.

The driver never downloads or reads the dataset. One ``NodeData`` actor per
node fetches the sources into the node's own cache (checksums verified), runs
the dataset's reader there, and puts the samples in the node's object store, so
every host actor on the node maps the same array without a copy. The driver
asks one of them for the ``DatasetIndex`` (a sample count and a digest), which
is all it needs to plan shards; every other node's digest must match it.

The reader is manifest code. With the ``process`` or ``docker`` environment it runs
there, as the stages do (in ``docker`` confined: no network, a read-only root, only
the node's cache and the dataset's folders mounted, read-only); only ``inline`` runs
it in this actor's own process.
"""

from __future__ import annotations

__all__ = [
    "NodeData",
    "ReadSpec",
    "current_node_id",
    "hardware_limits",
    "local_values",
    "node_read_paths",
    "start_node_data",
]

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlspec_ray.artifacts import default_cache_dir, fetch_all
from dlspec_ray.artifacts.provenance import provenance
from dlspec_ray.errors import DLSpecError
from dlspec_ray.spec.types import DatasetManifest, HardwareManifest, SoftwareManifest
from dlspec_ray.stages import DatasetIndex, Samples, read_samples


@dataclass(frozen=True)
class ReadSpec:
    """How each node gets the dataset: which one, from which cache, and where its reader runs."""

    dataset: DatasetManifest
    cache_dir: str | None = None
    allow_unverified: bool = False
    # The task's environment kind, and its software manifest: the reader runs there.
    environment: str = "inline"
    software: SoftwareManifest | None = None
    # The dataset's local folders, which a container must see at the same paths.
    data_roots: tuple[str, ...] = ()
    # Its CPU and memory limit the reader's environment, as they limit the stages'.
    hardware: HardwareManifest | None = None

    def key(self) -> tuple[Any, ...]:
        """What makes two reads the same (a node's copy is reused for an equal key)."""
        software = (self.software.id, self.software.path) if self.software else None
        return (self.dataset, self.cache_dir, self.allow_unverified, self.environment, software)


class NodeData:
    """Wrapped with ``ray.remote`` by ``start_node_data``; a plain class, testable without Ray.

    A failure (a bad checksum, an unreachable server, a reader that raises) is
    kept and returned by ``index()`` as the error itself, so the driver raises
    the same error with its exit code, not a Ray traceback.
    """

    def __init__(self, spec: ReadSpec):
        dataset = spec.dataset
        self.node_id = current_node_id()
        self.error: DLSpecError | None = None
        self._refs: dict[str, Any] = {}
        self._index: DatasetIndex | None = None
        self._provenance: list[dict[str, Any]] = []
        try:
            cache = Path(spec.cache_dir) if spec.cache_dir else None
            paths = fetch_all(dataset.sources, cache, allow_unverified=spec.allow_unverified)
            if dataset.reader is not None and spec.environment != "inline":
                samples = _read_in_environment(spec, paths)
            else:
                samples = read_samples(dataset, paths)
        except DLSpecError as exc:
            self.error = exc
            return
        unverified = tuple(s.name for s in dataset.sources if not s.checksum)
        self._index = samples.index(unverified)
        self.paths = {name: str(path) for name, path in paths.items()}
        self._provenance = provenance(dataset.sources, paths)
        self._refs = _share(
            {
                "ids": np.asarray(samples.ids, dtype=str),
                "inputs": samples.inputs,
                "labels": samples.labels,
            }
        )

    def index(self) -> DatasetIndex | DLSpecError:
        return self.error if self.error is not None else self._index  # type: ignore[return-value]

    def provenance(self) -> list[dict[str, Any]]:
        """The dataset's sources as this node fetched them (``artifacts.provenance``)."""
        return self._provenance

    def refs(self) -> dict[str, Any]:
        """Object references to ``ids``, ``inputs`` and ``labels`` on this node."""
        return self._refs

    def failed_shard(self, sink: Any, shard: Any, message: str) -> Any:
        """The rows of a shard no host actor could evaluate, each carrying ``message``."""
        data = local_values(self._refs)
        return sink.failed(shard, data["ids"], data["labels"], message, "")


def _read_in_environment(spec: ReadSpec, paths: dict[str, Path]) -> Samples:
    """Run the reader in the task's environment; its output is checked here, as inline."""
    from dlspec_ray.environments import Placement, make_environment

    placement = Placement(
        **hardware_limits(spec.hardware),
        labels={"role": "reader"},
        read_only_paths=node_read_paths(spec.cache_dir, spec.data_roots),
    )
    environment = make_environment(spec.environment, spec.software, placement=placement)
    try:
        environment.start({"reader": spec.dataset.reader}, {"dataset": spec.dataset.ref})
        return read_samples(
            spec.dataset, paths, run=lambda ctx, data: environment.call("reader", data).value
        )
    finally:
        environment.close()


def hardware_limits(hardware: HardwareManifest | None) -> dict[str, Any]:
    """The hardware manifest's CPUs and memory, as ``Placement`` fields: what an environment
    on this node may use, whether it runs the stages or the reader."""
    if hardware is None:
        return {}
    return {"cpus": hardware.cpu.ncpu, "memory": hardware.memory}


def node_read_paths(cache_dir: str | None, data_roots: tuple[str, ...]) -> tuple[str, ...]:
    """The host folders an environment on this node reads: the node's artifact cache (made
    now, so that a container can mount it before any fetch) and the dataset's folders."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return (str(cache.resolve()), *data_roots)


def start_node_data(spec: ReadSpec, node_id: str, *, name: str | None = None) -> Any:
    """A ``NodeData`` actor pinned to ``node_id``; it holds no CPU, only the dataset. With
    ``name``, a detached one (``warm.py``): the one of that name when it is already there."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from dlspec_ray.runtime.warm import detached

    return (
        ray.remote(NodeData)
        .options(
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            max_concurrency=4,
            **({**detached(name), "get_if_exists": True} if name else {}),
        )
        .remote(spec)
    )


def _share(values: dict[str, Any]) -> dict[str, Any]:
    try:
        import ray

        if ray.is_initialized():
            return {k: None if v is None else ray.put(v) for k, v in values.items()}
    except ImportError:
        pass
    return values


def local_values(refs: dict[str, Any]) -> dict[str, Any]:
    """The values behind ``refs`` (zero-copy for arrays in this node's object store)."""
    import ray

    return {k: ray.get(v) if isinstance(v, ray.ObjectRef) else v for k, v in refs.items()}


def current_node_id() -> str:
    """This process's Ray node, or 'local' outside Ray (a plain-class test)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:
        pass
    return "local"
