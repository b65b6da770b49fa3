"""Scoring LoadGen's accuracy log with the model's own post-process, and TEST01's check.

``mlperf_log_accuracy.json`` holds, per logged response, the sample's QSL index
and the bytes the SUT returned: here the ``run`` stage's raw output. Scoring
decodes them, runs the model's ``post-process`` on them in batches, and compares
its ``top_k`` with the dataset's labels, so the accuracy of a LoadGen run is the
model's, computed the way an ordinary dlspec-ray run computes it.

The compliance check follows MLPerf's TEST01 in spirit: a performance run logs
(a share of) its responses, and each must agree with accuracy mode's response
for the same sample, so a SUT cannot be fast in performance mode by answering
differently from when it is scored.
"""

from __future__ import annotations

__all__ = ["AccuracyScore", "ComplianceCheck", "check_compliance", "read_accuracy_log", "score"]

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlspec_ray.loadgen.sut import ModelStages


@dataclass(frozen=True)
class AccuracyScore:
    """Accuracy over the responses of one accuracy log (every response counts once)."""

    responses: int
    samples: int  # distinct QSL indices
    top1: float | None
    top5: float | None
    # Per response, in log order: the QSL index, the top-1 class, the raw bytes.
    indices: np.ndarray
    predictions: np.ndarray
    payloads: tuple[bytes, ...]

    def as_dict(self) -> dict[str, Any]:
        out = {"responses": self.responses, "samples": self.samples}
        out.update({k: v for k, v in (("top1", self.top1), ("top5", self.top5)) if v is not None})
        return out


@dataclass(frozen=True)
class ComplianceCheck:
    """A performance run's logged responses against accuracy mode's, sample by sample."""

    checked: int
    identical: int  # responses whose bytes equal accuracy mode's for that sample
    same_prediction: int
    performance_top1: float | None
    accuracy_top1: float | None  # accuracy mode's, over the same responses' samples
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_accuracy_log(path: Path) -> list[tuple[int, bytes]]:
    """``(qsl_idx, data)`` of each response LoadGen logged, in log order."""
    entries = json.loads(path.read_text() or "[]")
    return [(int(e["qsl_idx"]), bytes.fromhex(e["data"])) for e in entries]


def score(
    path: Path,
    stages: ModelStages,
    labels: np.ndarray | None,
    response_format: dict[str, Any] | None,
    *,
    batch_size: int,
) -> AccuracyScore:
    """Decode ``path``'s responses, post-process them, and score ``top_k`` against ``labels``."""
    logged = read_accuracy_log(path)
    indices = np.asarray([i for i, _ in logged], dtype=np.int64)
    payloads = tuple(d for _, d in logged)
    if not logged or response_format is None:
        empty = np.zeros(0, dtype=np.int64)
        return AccuracyScore(len(logged), 0, None, None, indices, empty, payloads)
    dtype = np.dtype(response_format["dtype"])
    shape = tuple(response_format["shape"])
    raw = np.frombuffer(b"".join(payloads), dtype=dtype).reshape((len(logged), *shape))
    top_k = []
    for start in range(0, len(raw), batch_size):
        value = stages.post(raw[start : start + batch_size])
        top_k.append(np.asarray(value["top_k"]).reshape(len(raw[start : start + batch_size]), -1))
    ranked = np.concatenate(top_k)
    top1 = top5 = None
    if labels is not None:
        truth = labels[indices]
        top1 = float((ranked[:, 0] == truth).mean())
        if ranked.shape[1] >= 5:
            top5 = float((ranked[:, :5] == truth[:, None]).any(axis=1).mean())
    return AccuracyScore(
        responses=len(logged),
        samples=len(set(indices.tolist())),
        top1=top1,
        top5=top5,
        indices=indices,
        predictions=ranked[:, 0],
        payloads=payloads,
    )


def check_compliance(
    performance: AccuracyScore, accuracy: AccuracyScore, labels: np.ndarray | None
) -> ComplianceCheck:
    """Passed when every checked response is byte-identical to accuracy mode's for its
    sample or, failing that, gives the same top-1 class (TEST01 falls back to accuracy)."""
    payload_of = dict(zip(accuracy.indices.tolist(), accuracy.payloads, strict=True))
    prediction_of = dict(zip(accuracy.indices.tolist(), accuracy.predictions.tolist(), strict=True))
    checked = identical = same = 0
    reference = []
    for i, data, predicted in zip(
        performance.indices.tolist(),
        performance.payloads,
        performance.predictions.tolist(),
        strict=True,
    ):
        if i not in payload_of:
            continue
        checked += 1
        identical += data == payload_of[i]
        same += predicted == prediction_of[i]
        reference.append((i, prediction_of[i]))
    accuracy_top1 = None
    if labels is not None and reference:
        accuracy_top1 = float(np.mean([p == labels[i] for i, p in reference]))
    return ComplianceCheck(
        checked=checked,
        identical=identical,
        same_prediction=same,
        performance_top1=performance.top1,
        accuracy_top1=accuracy_top1,
        passed=checked > 0 and same == checked,
    )
