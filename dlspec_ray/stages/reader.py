"""A dataset's samples: its reader's output, checked, or one sample per source file.

Readers run on the node that evaluates the samples, next to that node's copy of
the sources, so what they return is only ever used there. A reader returns
either ``inputs`` (an array whose first axis is the sample, or paths on this
node) or ``locators``: paths relative to a source, ``"<source name>/<path>"``,
which are resolved against this node's copy. The driver sees only a
``DatasetIndex``: how many samples, and a digest that every node must match.
"""

from __future__ import annotations

__all__ = ["DatasetIndex", "ReaderError", "Samples", "read_samples"]

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dlspec_ray.errors import DLSpecError
from dlspec_ray.spec.types import DatasetManifest


@dataclass(frozen=True)
class Samples:
    ids: list[str]
    inputs: Any  # an array whose first axis is the sample, or a list
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ids)

    def head(self, n: int) -> Samples:
        labels = None if self.labels is None else self.labels[:n]
        return Samples(self.ids[:n], self.inputs[:n], labels)

    def index(self, unverified: tuple[str, ...] = ()) -> DatasetIndex:
        per_sample = None
        if isinstance(self.inputs, np.ndarray) and len(self.inputs):
            per_sample = self.inputs.nbytes // len(self.inputs)
        digest = hashlib.sha256()
        for i in range(0, len(self.ids), 65536):
            digest.update("\n".join(self.ids[i : i + 65536]).encode())
            digest.update(b"\n")
        return DatasetIndex(
            samples=len(self.ids),
            labelled=self.labels is not None,
            bytes_per_sample=per_sample,
            ids_digest=digest.hexdigest(),
            unverified=unverified,
        )


@dataclass(frozen=True)
class DatasetIndex:
    """What the driver knows of a dataset: enough to plan shards, nothing that grows with it."""

    samples: int
    labelled: bool
    # Bytes of one sample's raw input when the inputs are an array; None for files.
    bytes_per_sample: int | None
    # sha256 over the sample ids in order: every node must have read the same dataset.
    ids_digest: str
    # Sources used without a checksum (--allow-unverified).
    unverified: tuple[str, ...] = ()
    # The whole dataset's sample count when ``--limit`` keeps fewer (``limited``): such a
    # run measures a subset, whose accuracy is not the reference's.
    subset_of: int | None = None

    def batch_bytes(self, batch_size: int) -> int | None:
        return None if self.bytes_per_sample is None else self.bytes_per_sample * batch_size

    def limited(self, limit: int | None) -> DatasetIndex:
        """The first ``limit`` samples (the digest stays the whole dataset's)."""
        if limit is None or limit >= self.samples:
            return self
        return replace(self, samples=limit, subset_of=self.subset_of or self.samples)


class ReaderError(DLSpecError):
    """A dataset reader failed or broke its contract."""


def read_samples(
    dataset: DatasetManifest,
    paths: Mapping[str, Path],
    run: Callable[[dict[str, Any], dict[str, str]], Any] | None = None,
) -> Samples:
    """The dataset's samples, from its reader (here, or through ``run``, which calls it in an
    environment); what it returns is checked here either way."""
    if dataset.reader is None:
        names = [s.name for s in dataset.sources]
        return Samples(names, [str(paths[n]) for n in names], None)
    where = f"{dataset.path}: reader"
    reader = run or dataset.reader.compile()
    try:
        out = reader({"dataset": dataset.ref}, {k: str(v) for k, v in paths.items()})
    except Exception as exc:
        raise ReaderError(f"{where}: the reader raised {type(exc).__name__}: {exc}") from exc
    return _checked(out, where, paths)


def _checked(out: Any, where: str, paths: Mapping[str, Path]) -> Samples:
    if not isinstance(out, Mapping) or "ids" not in out or ("inputs" in out) == ("locators" in out):
        raise ReaderError(
            f"{where}: expected a dict with 'ids' and either 'inputs' or 'locators' (and "
            f"optionally 'labels'), got {_shape_of(out)}. Return {{'ids': ..., 'inputs': ..., "
            "'labels': ...}, or 'locators' as '<source name>/<path inside it>'."
        )
    ids = [str(i) for i in out["ids"]]
    inputs = out["inputs"] if "inputs" in out else _resolve(out["locators"], paths, where)
    if len(set(ids)) != len(ids):
        raise ReaderError(f"{where}: sample ids must be unique; {len(ids) - len(set(ids))} repeat")
    if len(inputs) != len(ids):
        raise ReaderError(f"{where}: expected {len(ids)} inputs (one per id), got {len(inputs)}")
    labels = out.get("labels")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(ids),) or not np.issubdtype(labels.dtype, np.integer):
            raise ReaderError(
                f"{where}: expected 'labels' as {len(ids)} integers, "
                f"got {labels.dtype} of shape {list(labels.shape)}"
            )
        labels = labels.astype(np.int64, copy=False)
    return Samples(ids, inputs if isinstance(inputs, np.ndarray) else list(inputs), labels)


def _shape_of(out: Any) -> str:
    if isinstance(out, Mapping):
        return f"a dict with keys {sorted(map(str, out))}"
    return type(out).__name__


def _resolve(locators: Any, paths: Mapping[str, Path], where: str) -> list[str]:
    """``"<source>/<path>"`` -> the path on this node; a locator never leaves its source."""
    resolved = []
    for locator in locators:
        text = str(locator)
        name, _, rest = text.partition("/")
        if name not in paths:
            raise ReaderError(
                f"{where}: the locator {text!r} names no source; expected "
                f"'<source name>/<path>' with a source among {sorted(paths)}"
            )
        root = Path(paths[name]).resolve()
        path = (root / rest).resolve() if rest else root
        if path != root and root not in path.parents:
            raise ReaderError(f"{where}: the locator {text!r} points outside its source {name!r}")
        resolved.append(str(path))
    return resolved
