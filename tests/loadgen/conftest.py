"""The mnist-8 task every LoadGen test drives, resolved once from the repo's manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("mlperf_loadgen", reason="the mlcommons-loadgen wheel is not installed")


@pytest.fixture(scope="session")
def mnist_task():
    from dlspec_ray.spec.catalog import Catalog
    from dlspec_ray.task import resolve_task

    catalog = Catalog([REPO / "manifests"])
    return resolve_task(
        "mnist-8@1.0.0", "mnist-test@1.0.0", "onnxruntime-cpu@1.0.0", catalog=catalog
    )
