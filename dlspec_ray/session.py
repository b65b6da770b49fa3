"""A Ray connection that keeps host actors warm between evaluations.

Starting a host actor costs a worker process, the framework's import and the
model's load: most of a second on a small machine, more than evaluating all
of MNIST. A notebook that evaluates the same model again (another dataset, a
re-run, a benchmark) should not pay it each time, so a session keeps the host
actors of its latest evaluation until the next one needs different ones, or
until it is closed. It keeps one pool only: the actors hold CPUs (and GPUs)
that a different evaluation may need.
"""

from __future__ import annotations

__all__ = ["Session"]

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from dlspec_ray.evaluation import EvaluationResult
    from dlspec_ray.hardware import ActorResources
    from dlspec_ray.runtime import HostPool, HostSpec, RayConnection
    from dlspec_ray.spec.types import DatasetManifest
    from dlspec_ray.stages import Samples


class Session:
    """Connects on first use: to ``address``, ``RAY_ADDRESS``, a Ray this process
    already joined, or else an embedded local Ray that ``close()`` shuts down.

    The latest evaluation's host actors are reused by the next one if its model,
    software, environment, batch size, options, actor count and resource
    request are all the same.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self._connection: RayConnection | None = None
        self._pools: dict[tuple[Any, ...], HostPool] = {}
        self._samples: tuple[Any, Samples] | None = None

    def evaluate(self, model: Any, dataset: Any, **kwargs: Any) -> EvaluationResult:
        """``dlspec_ray.evaluate`` on this session's Ray, with its warm host actors."""
        from dlspec_ray.evaluation import evaluate

        return evaluate(model, dataset, session=self, **kwargs)

    def samples(self, dataset: DatasetManifest, cache_dir: Path | None) -> Samples:
        """The dataset's samples, read again only when the dataset changed.

        Only a dataset whose every source has a checksum is kept: the manifest
        then fixes its bytes, so a second read could only give the same samples.
        """
        from dlspec_ray.artifacts import fetch_all
        from dlspec_ray.stages import read_samples

        key = (dataset, cache_dir)
        if self._samples is not None and self._samples[0] == key:
            return self._samples[1]
        samples = read_samples(dataset, fetch_all(dataset.sources, cache_dir))
        if all(source.checksum for source in dataset.sources):
            self._samples = (key, samples)
        return samples

    @property
    def connection(self) -> RayConnection:
        if self._connection is None:
            from dlspec_ray.runtime import connect

            self._connection = connect(self.address, num_cpus=self.num_cpus)
        return self._connection

    def pool(
        self,
        spec: HostSpec,
        requests: Sequence[ActorResources],
        count: int,
        *,
        what: str,
        ready_timeout_s: float,
    ) -> HostPool:
        """A ready pool for ``spec``: the warm one if it is still whole, else a new one."""
        from dlspec_ray.runtime import start_pool

        self.connection  # noqa: B018 - connect before placing actors
        key = (_spec_key(spec), tuple(r.describe() for r in requests), count)
        pool = self._pools.get(key)
        if pool is not None and pool.alive():
            return pool
        self.release_pools()
        pool = start_pool(spec, requests, count, what=what, ready_timeout_s=ready_timeout_s)
        self._pools[key] = pool
        return pool

    def release_pools(self) -> None:
        """End every warm host actor; the next evaluation starts new ones."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def close(self) -> None:
        self.release_pools()
        self._samples = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spec_key(spec: HostSpec) -> tuple[Any, ...]:
    return (
        spec.model.id,
        spec.model.path,
        spec.software.id if spec.software else None,
        spec.environment,
        spec.batch_size,
        spec.num_threads,
        repr(sorted(spec.options.items())),
        spec.cache_dir,
        spec.setup,
    )
