"""A dataset's samples: its reader's output, checked, or one sample per source file."""

from __future__ import annotations

__all__ = ["Samples", "read_samples"]

from collections.abc import Mapping
from dataclasses import dataclass
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


class ReaderError(DLSpecError):
    """A dataset reader failed or broke its contract."""


def read_samples(dataset: DatasetManifest, paths: Mapping[str, Path]) -> Samples:
    if dataset.reader is None:
        names = [s.name for s in dataset.sources]
        return Samples(names, [str(paths[n]) for n in names], None)
    where = f"{dataset.path}: reader"
    try:
        out = dataset.reader.compile()(
            {"dataset": dataset.ref}, {k: str(v) for k, v in paths.items()}
        )
    except Exception as exc:
        raise ReaderError(f"{where}: the reader raised {type(exc).__name__}: {exc}") from exc
    return _checked(out, where)


def _checked(out: Any, where: str) -> Samples:
    if not isinstance(out, Mapping) or "ids" not in out or "inputs" not in out:
        raise ReaderError(
            f"{where}: expected a dict with 'ids' and 'inputs' (and optionally 'labels'), "
            f"got {type(out).__name__}. Return {{'ids': ..., 'inputs': ..., 'labels': ...}}."
        )
    ids = [str(i) for i in out["ids"]]
    inputs = out["inputs"]
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
