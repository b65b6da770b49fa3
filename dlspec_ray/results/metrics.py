"""Accuracy, latency and throughput of a results table.

Latency is a per-batch measure (a batch is one query, as in MLPerf): a stage's
time is recorded once per batch and repeated on its rows, so percentiles are
taken over distinct batches, never over rows, which would weight big batches
more. Failed batches have no meaningful times and are left out.
"""

from __future__ import annotations

__all__ = [
    "STAGES",
    "accuracy",
    "evaluated_samples",
    "labelled_samples",
    "latency_summary",
    "throughput",
]

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STAGES = ("pre", "run", "post")
_PERCENTILES = (50, 90, 99)


def accuracy(table: pa.Table, ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}`` over samples that have a label and no error.

    A ``topK`` is left out when some of those samples have fewer than K entries in
    ``top_k`` (the model reports fewer classes), and the result is empty when no
    sample has a label.
    """
    scored = table.filter(_scored_mask(table))
    if scored.num_rows == 0:
        return {}
    labels = scored.column("label").to_numpy()
    top_k = scored.column("top_k").combine_chunks()
    # Offsets index into the unsliced values, so use both as they are.
    offsets = top_k.offsets.to_numpy()
    values = top_k.values.to_numpy()
    shortest = int(np.diff(offsets).min())
    result: dict[str, float] = {}
    for k in sorted(set(ks)):
        if k < 1 or k > shortest:
            continue
        window = values[offsets[:-1, None] + np.arange(k)]
        hits = (window == labels[:, None]).any(axis=1)
        result[f"top{k}"] = float(hits.mean())
    return result


def labelled_samples(table: pa.Table) -> int:
    """How many samples accuracy is computed over."""
    return int(pc.sum(_scored_mask(table).cast(pa.int64())).as_py() or 0)


def evaluated_samples(table: pa.Table) -> int:
    """Samples that went through all three stages without an error."""
    return table.column("error").null_count


def latency_summary(table: pa.Table) -> dict[str, dict[str, float]]:
    """Per stage, ``p50``/``p90``/``p99``/``mean`` over batches and ``mean_per_sample``, in ms.

    ``mean_per_sample`` is the stage's total time divided by the samples it
    processed: the amortised cost of one sample. Empty when no batch succeeded.
    """
    ok = table.filter(pc.is_null(table.column("error")))
    if ok.num_rows == 0:
        return {}
    keys = np.stack(
        [ok.column("shard_id").to_numpy(), ok.column("batch_id").to_numpy()],
        axis=1,
    )
    _, first = np.unique(keys, axis=0, return_index=True)
    first.sort()
    sizes = ok.column("batch_size").to_numpy()[first].astype(np.float64)
    result: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        times = ok.column(f"{stage}_ms").to_numpy()[first]
        measured = ~np.isnan(times)
        if not measured.any():
            continue
        times = times[measured]
        p50, p90, p99 = np.percentile(times, _PERCENTILES)
        result[stage] = {
            "p50": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "mean": float(times.mean()),
            "mean_per_sample": float(times.sum() / sizes[measured].sum()),
        }
    return result


def throughput(samples: int, wall_s: float) -> float:
    """Samples per second; 0.0 when no time elapsed (nothing to divide by)."""
    return float(samples) / wall_s if wall_s > 0 else 0.0


def _scored_mask(table: pa.Table) -> pa.ChunkedArray:
    return pc.and_(pc.is_valid(table.column("label")), pc.is_null(table.column("error")))
