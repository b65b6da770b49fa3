"""Real run directories made without Ray: Parquet shards and a summary.json, as a run writes them.

Comparison, index and report code only reads run directories, so tests build
them with the results layer's own writers from chosen predictions and logits,
in a local folder or in object storage (the local S3 server of ``s3_server``,
standing in for a cloud bucket).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from dlspec_ray.results import build_summary, read_results, rows_from_batch, write_shard
from dlspec_ray.results import write_summary as write_summary_file

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def task_entry(name: str, version: str = "1.0.0") -> dict[str, str]:
    return {"id": f"id-{name}", "name": name, "version": version, "ref": f"{name}@{version}"}


def make_run(
    out: Path | str,
    logits: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    run_id: str,
    ids: list[str] | None = None,
    dataset: str = "digits",
    model: str = "net",
    software: str = "rt",
    framework_version: str = "1.0",
    batch_size: int = 4,
    started: int = 0,
    wall_s: float = 1.0,
    error_batches: tuple[int, ...] = (),
    digests: dict[str, str] | None = None,
) -> Path:
    """A run directory whose rows hold ``logits`` (the output) and their top-k predictions."""
    logits = np.asarray(logits, dtype=np.float32)
    n = len(logits)
    ids = ids or [str(i) for i in range(n)]
    labels = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    batches = []
    for b, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        chunk = logits[start:stop]
        top_k = np.argsort(-chunk, axis=1, kind="stable")[:, : min(5, chunk.shape[1])]
        batches.append(
            rows_from_batch(
                ids[start:stop],
                labels[start:stop],
                {"top_k": top_k, "output": chunk},
                batch_id=b,
                shard_id=0,
                node_id="node",
                pre_ms=0.1 * (b + 1),
                run_ms=1.0 + b,
                post_ms=0.05,
                error="boom" if b in error_batches else None,
                digests=digests,
            )
        )
    import pyarrow as pa

    write_shard(pa.Table.from_batches(batches), out, 0)
    summary = build_summary(
        read_results(out),
        run_id=run_id,
        task={
            "model": task_entry(model),
            "dataset": task_entry(dataset),
            "software": task_entry(software),
            "hardware": task_entry("cpu"),
        },
        environment={
            "kind": "inline",
            "interpreter": "/usr/bin/python",
            "framework": {"name": software, "version": framework_version},
            "nodes": ["node"],
        },
        wall_s=wall_s,
        batch_size=batch_size,
        actors=1,
        started_at=T0 + timedelta(seconds=started),
        finished_at=T0 + timedelta(seconds=started + 1),
    )
    summary["status"] = "ok"
    write_summary_file(out, summary)
    return out


@pytest.fixture
def runs_factory(tmp_path):
    """``make(name, logits, ...)``: a run directory under a fresh results root."""
    root = tmp_path / "root"

    def make(name: str, logits, labels=None, **kwargs) -> Path:
        return make_run(root / name, logits, labels, run_id=kwargs.pop("run_id", name), **kwargs)

    make.root = root
    return make


@pytest.fixture
def run_maker():
    """``make_run`` itself, for tests that place run directories anywhere (a path or a URI)."""
    return make_run


@pytest.fixture
def s3_runs_factory(s3_env):
    """As ``runs_factory``, under ``s3://<fresh bucket>/root`` on the local S3 server."""
    root = f"s3://{s3_env.make_bucket()}/root"

    def make(name: str, logits, labels=None, **kwargs) -> str:
        return make_run(
            f"{root}/{name}", logits, labels, run_id=kwargs.pop("run_id", name), **kwargs
        )

    make.root = root
    return make
