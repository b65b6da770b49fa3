"""One LoadGen run of a task: load the model, fill the QSL, let LoadGen drive the SUT.

Everything happens in the calling process (the ``inline`` environment): the model,
the pre-processed samples, LoadGen and its threads. That is the point: LoadGen
times each query from issue to completion, and a Ray hop per query (about 1 ms)
would measure Ray, not the model. ``run_loadgen_in_actor`` (``actor.py``) runs this
same function inside one Ray actor, next to the model, for a cluster.
"""

from __future__ import annotations

__all__ = ["LoadGenResult", "SUTFailed", "run_loadgen"]

import contextlib
import io
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.environments.runner import capped
from dlspec_ray.errors import EvaluationFailed, UsageError
from dlspec_ray.loadgen.accuracy import AccuracyScore, ComplianceCheck, check_compliance, score
from dlspec_ray.loadgen.logs import PerformanceReport, read_performance
from dlspec_ray.loadgen.settings import LoadGenSettings
from dlspec_ray.loadgen.sut import ModelStages, SampleLibrary, StageSUT
from dlspec_ray.stages import format_stage_error, read_samples
from dlspec_ray.task import Task

# TEST01's seed for choosing which performance responses are logged.
_TEST01_ACCURACY_LOG_SEED = 720381539243781796


class SUTFailed(EvaluationFailed):
    """Stage code raised while LoadGen was driving it; the run's metric would be meaningless."""


@dataclass(frozen=True)
class LoadGenResult:
    """What a LoadGen run found; ``as_dict()`` is the ``loadgen`` section of summary.json.

    ``performance`` is None in accuracy mode, ``accuracy`` None in performance mode,
    and ``compliance`` is set only in mode ``both`` (with a logging probability > 0).
    """

    settings: LoadGenSettings
    task: dict[str, str | None]
    samples: int
    batch_size: int
    num_threads: int
    log_dirs: dict[str, str]
    performance: PerformanceReport | None = None
    accuracy: AccuracyScore | None = None
    compliance: ComplianceCheck | None = None
    # target_qps / expected_latency_ms that were measured because the settings left them out.
    calibrated: dict[str, float] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=dict)
    response_format: dict[str, Any] | None = None
    where: str = "inline"

    @property
    def valid(self) -> bool | None:
        """LoadGen's verdict on the performance run (None without one)."""
        return None if self.performance is None else self.performance.valid

    @property
    def passed(self) -> bool:
        """VALID (when there was a performance run) and compliant (when checked)."""
        return self.valid is not False and (self.compliance is None or self.compliance.passed)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.settings.scenario,
            "mode": self.settings.mode,
            "where": self.where,
            "samples": self.samples,
            "batch_size": self.batch_size,
            "num_threads": self.num_threads,
            "settings": self.settings.as_dict(),
            "task": self.task,
            "log_dirs": self.log_dirs,
            "phases_s": self.phases_s,
        }
        if self.calibrated:
            out["calibrated"] = self.calibrated
        if self.response_format is not None:
            out["response_format"] = self.response_format
        if self.performance is not None:
            perf = self.performance
            out["result"] = perf.result
            out["valid"] = perf.valid
            out["reasons"] = list(perf.reasons)
            out["metric"] = {
                "name": perf.metric_name,
                "value": perf.metric,
                "unit": perf.metric_unit,
            }
            out["performance"] = perf.as_dict()
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy.as_dict()
        if self.compliance is not None:
            out["compliance"] = self.compliance.as_dict()
        return out


def run_loadgen(
    task: Task,
    settings: LoadGenSettings,
    out_dir: str | Path,
    *,
    batch_size: int = 64,
    limit: int | None = None,
    num_threads: int | None = None,
    options: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    allow_unverified: bool = False,
) -> LoadGenResult:
    """Run ``settings`` (one mode, or accuracy then performance for ``both``) on ``task``.

    LoadGen's logs go to ``out_dir/loadgen/`` (with ``both``: ``out_dir/loadgen/accuracy/``
    and ``out_dir/loadgen/performance/``), and ``out_dir/loadgen/loadgen.json`` holds
    ``result.as_dict()``. ``limit`` takes the dataset's first samples; ``num_threads`` is
    the model's ``ctx["num_threads"]`` (default: this process's CPUs).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit: expected None or an integer >= 1, got {limit!r}")
    threads = num_threads or len(os.sched_getaffinity(0))
    phases: dict[str, float] = {}
    root = Path(out_dir) / "loadgen"
    root.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else None

    started = time.perf_counter()
    samples = read_samples(
        task.dataset, fetch_all(task.dataset.sources, cache, allow_unverified=allow_unverified)
    )
    if limit is not None:
        samples = samples.head(limit)
    if len(samples) == 0:
        raise UsageError(f"{task.dataset.ref}: the dataset has no samples to give LoadGen")
    phases["read"] = time.perf_counter() - started

    started = time.perf_counter()
    artifacts = fetch_all(task.model.artifacts, cache, allow_unverified=allow_unverified)
    stages = ModelStages(
        task.model, artifacts, batch_size=batch_size, num_threads=threads, options=options
    )
    phases["load"] = time.perf_counter() - started

    library = SampleLibrary(stages, samples.inputs, batch_size=batch_size)
    try:
        calibrated = _calibrate(settings, stages, samples.inputs, batch_size)
    except Exception as exc:
        raise SUTFailed(
            f"{task.model.path}: the warm-up before LoadGen's run failed: "
            f"{format_stage_error('warm-up', exc)}"
        ) from exc
    effective = settings.replace(**calibrated) if calibrated else settings
    modes = ["accuracy", "performance"] if settings.mode == "both" else [settings.mode]
    log_dirs = {m: str(root / m if len(modes) > 1 else root) for m in modes}
    stage_log = io.StringIO()

    performance: PerformanceReport | None = None
    acc: AccuracyScore | None = None
    perf_logged: AccuracyScore | None = None
    response_format: dict[str, Any] | None = None
    for mode in modes:
        log_dir = Path(log_dirs[mode])
        log_dir.mkdir(parents=True, exist_ok=True)
        test = effective.to_test_settings(mode)
        if mode == "performance" and settings.mode == "both":
            test.accuracy_log_probability = settings.compliance_log_probability
            test.accuracy_log_rng_seed = _TEST01_ACCURACY_LOG_SEED
        started = time.perf_counter()
        sut = StageSUT(
            library,
            batch_size=batch_size,
            server=settings.scenario == "server",
            timed_post_process=settings.timed_post_process,
        )
        try:
            _start_test(sut, library, effective, test, log_dir, stage_log)
        finally:
            sut.close()
        phases[mode] = time.perf_counter() - started
        if sut.error is not None:
            raise SUTFailed(
                f"{task.model.path}: {sut.failed} sample(s) failed while LoadGen ran the "
                f"{settings.scenario} scenario in {mode} mode; the first: {sut.error}"
            )
        response_format = response_format or sut.response_format
        if mode == "performance":
            performance = read_performance(log_dir, settings.loadgen_scenario)
        accuracy_log = log_dir / "mlperf_log_accuracy.json"
        logged = (
            score(accuracy_log, stages, samples.labels, response_format, batch_size=batch_size)
            if mode == "accuracy" or settings.mode == "both"
            else None
        )
        if mode == "accuracy":
            acc = logged
        else:
            perf_logged = logged
    phases["pre"] = library.pre_s

    compliance = None
    if acc is not None and perf_logged is not None and settings.compliance_log_probability > 0:
        compliance = check_compliance(perf_logged, acc, samples.labels)
    if stage_log.getvalue():
        (root / "stage.log").write_text(capped(stage_log.getvalue(), 1 << 20))
    result = LoadGenResult(
        settings=settings,
        task={kind: (m.ref if m is not None else None) for kind, m in task.manifests().items()},
        samples=len(samples),
        batch_size=batch_size,
        num_threads=threads,
        log_dirs=log_dirs,
        performance=performance,
        accuracy=acc,
        compliance=compliance,
        calibrated=calibrated,
        phases_s={k: round(v, 4) for k, v in phases.items()},
        response_format=response_format,
    )
    (root / "loadgen.json").write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    return result


def _start_test(
    sut: StageSUT,
    library: SampleLibrary,
    settings: LoadGenSettings,
    test: Any,
    log_dir: Path,
    stage_log: io.StringIO,
) -> None:
    """One LoadGen test; stage code's prints go to ``stage_log``, never to our stdout."""
    import mlperf_loadgen as lg

    performance_count = min(settings.performance_sample_count or library.total, library.total)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    handle = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    qsl = lg.ConstructQSL(library.total, performance_count, library.load, library.unload)
    try:
        with contextlib.redirect_stdout(stage_log), contextlib.redirect_stderr(stage_log):
            # A path that does not exist: an audit.config in the working directory must
            # not silently change the test (LoadGen reads one by default).
            lg.StartTestWithLogSettings(
                handle, qsl, test, log_settings, str(log_dir / "no-audit.config")
            )
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(handle)


# How much the offline target QPS exceeds the warm-up's measured throughput (see _calibrate).
_OFFLINE_MARGIN = 2.0


def _calibrate(
    settings: LoadGenSettings, stages: ModelStages, inputs: Any, batch_size: int
) -> dict[str, float]:
    """Measure what the settings left to measurement (``target_qps`` for offline and
    server, ``expected_latency_ms`` for single- and multi-stream) with a short warm-up.

    Estimates are made on the safe side: LoadGen sizes a run from them, and a run that
    ends before ``min_duration`` is INVALID, one that runs longer is not.
    """
    scenario = settings.scenario
    if scenario in ("offline", "server") and settings.target_qps is not None:
        return {}
    if scenario in ("single-stream", "multi-stream") and settings.expected_latency_ms is not None:
        return {}
    if scenario == "offline":
        n = batch_size
    elif scenario == "multi-stream":
        n = settings.samples_per_query
    else:
        n = 1
    n = min(n, len(inputs))
    raw = inputs[:n] if isinstance(inputs, np.ndarray) else list(inputs[:n])
    x = stages.pre(raw)
    times = []
    for _ in range(7 if n > 1 else 31):
        begin = time.perf_counter()
        stages.infer(x, post_process=settings.timed_post_process)
        times.append(time.perf_counter() - begin)
    seconds = statistics.median(times[1:])
    if scenario == "offline":
        # The whole run is one query of about target_qps * min_duration samples: too low a
        # guess (a warm-up slowed by other work) makes it end before min_duration, INVALID;
        # too high only makes it longer. So twice what the warm-up measured.
        return {"target_qps": round(_OFFLINE_MARGIN * n / seconds, 3)}
    if scenario == "server":
        return {"target_qps": round(0.5 / seconds, 3)}
    return {"expected_latency_ms": round(max(seconds * 1e3 * 0.5, 1e-3), 6)}
