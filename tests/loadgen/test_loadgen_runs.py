"""Real LoadGen driving mnist-8's real stage code on onnxruntime: every scenario, both modes.

Runs are short (0.2 s, a few hundred samples); nothing here asserts a speed, only
that LoadGen reached a verdict and reported its metric.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from dlspec_ray.loadgen import LoadGenSettings, SUTFailed, run_loadgen

LIMIT = 300
SHORT = {"min_duration_s": 0.2, "min_query_count": 32}


@pytest.mark.parametrize(
    ("scenario", "metric"),
    [
        ("offline", "samples_per_s"),
        ("single-stream", "p90_latency_ms"),
        ("multi-stream", "p99_latency_ms"),
        ("server", "completed_samples_per_s"),
    ],
)
def test_each_scenario_gets_a_verdict_and_its_metric(mnist_task, tmp_path, scenario, metric):
    settings = LoadGenSettings(scenario=scenario, mode="performance", **SHORT)
    result = run_loadgen(mnist_task, settings, tmp_path, batch_size=32, limit=LIMIT, num_threads=1)
    perf = result.performance
    assert perf is not None and result.accuracy is None
    assert perf.result in ("VALID", "INVALID") and perf.valid == (perf.result == "VALID")
    assert perf.valid or perf.reasons, "an INVALID run says why"
    assert perf.metric_name == metric and perf.metric > 0
    assert perf.latency_ms["p50"] > 0 and perf.query_count > 0
    if scenario == "server":
        assert perf.scheduled_qps > 0 and perf.completed_qps > 0
        assert isinstance(perf.latency_bound_met, bool)
    logs = tmp_path / "loadgen"
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"):
        assert (logs / name).is_file()
    section = json.loads((logs / "loadgen.json").read_text())
    assert section == json.loads(json.dumps(result.as_dict(), default=str))
    assert section["result"] == perf.result and section["metric"]["name"] == metric


def test_a_run_too_short_for_its_settings_is_invalid_with_loadgens_reasons(mnist_task, tmp_path):
    # Far fewer queries than multi-stream's early-stopping estimate needs (662).
    settings = LoadGenSettings(
        scenario="multi-stream", min_duration_s=0.05, min_query_count=8, expected_latency_ms=50.0
    )
    result = run_loadgen(mnist_task, settings, tmp_path, batch_size=8, limit=64, num_threads=1)
    assert result.performance.result == "INVALID" and result.valid is False
    assert any("satisfied: NO" in r or "queries" in r for r in result.performance.reasons)
    assert result.as_dict()["reasons"] == list(result.performance.reasons)


def test_accuracy_mode_equals_an_ordinary_evaluation(mnist_task, tmp_path, ray_session):
    import dlspec_ray

    settings = LoadGenSettings(scenario="offline", mode="accuracy")
    result = run_loadgen(mnist_task, settings, tmp_path / "lg", batch_size=64, limit=LIMIT)
    ordinary = dlspec_ray.evaluate(
        mnist_task.model,
        mnist_task.dataset,
        software=mnist_task.software,
        batch_size=64,
        limit=LIMIT,
        progress=False,
        out=tmp_path / "ordinary",  # not the default runs/ of the folder the suite runs in
    )
    assert result.performance is None and result.valid is None
    assert result.accuracy.responses == result.accuracy.samples == LIMIT
    assert result.accuracy.top1 == ordinary.summary["accuracy"]["top1"]
    assert result.accuracy.top5 == ordinary.summary["accuracy"]["top5"]


def test_single_stream_accuracy_mode_matches_offline(mnist_task, tmp_path):
    """Batch 1 queries or big offline batches: the same answers (mnist-8 is bit-stable)."""
    runs = {
        scenario: run_loadgen(
            mnist_task,
            LoadGenSettings(scenario=scenario, mode="accuracy"),
            tmp_path / scenario,
            batch_size=64,
            limit=200,
        )
        for scenario in ("offline", "single-stream")
    }
    assert runs["offline"].accuracy.top1 == runs["single-stream"].accuracy.top1


@pytest.mark.parametrize("scenario", ["offline", "server"])
def test_performance_responses_agree_with_accuracy_mode(mnist_task, tmp_path, scenario):
    settings = LoadGenSettings(scenario=scenario, mode="both", **SHORT)
    result = run_loadgen(mnist_task, settings, tmp_path, batch_size=32, limit=LIMIT, num_threads=1)
    check = result.compliance
    assert check is not None and check.passed
    assert check.checked > 0 and check.identical == check.checked == check.same_prediction
    assert check.performance_top1 == pytest.approx(check.accuracy_top1)
    for mode in ("accuracy", "performance"):
        assert (tmp_path / "loadgen" / mode / "mlperf_log_summary.txt").is_file()
    assert result.as_dict()["compliance"]["passed"] is True


def test_a_sut_whose_responses_change_fails_the_compliance_check(mnist_task, tmp_path):
    """A run stage that answers differently after accuracy mode's 8 queries (as a SUT tuned
    for performance mode might) is caught. The expected latency is given, so no warm-up
    call precedes accuracy mode's."""
    model = mnist_task.model
    run = model.stages["run"]
    cheat = dataclasses.replace(
        run,
        code=(
            "calls = [0]\n"
            "def fn(ctx, data):\n"
            "    calls[0] += 1\n"
            "    out = ctx['model'].run(None, {ctx['inputs'][0]['name']: data})[0]\n"
            "    return out[:, ::-1].copy() if calls[0] > 8 else out\n"
        ),
    )
    task = dataclasses.replace(
        mnist_task, model=dataclasses.replace(model, stages={**model.stages, "run": cheat})
    )
    settings = LoadGenSettings(
        scenario="single-stream", mode="both", expected_latency_ms=0.02, **SHORT
    )
    result = run_loadgen(task, settings, tmp_path, batch_size=1, limit=8, num_threads=1)
    assert result.accuracy.top1 > 0.5
    assert result.compliance is not None and not result.compliance.passed
    assert result.compliance.same_prediction < result.compliance.checked
    assert not result.passed


def _with_stage(task, name: str, body: str):
    """``task`` with its model's stage ``name`` replaced by ``def fn(ctx, data): body``."""
    model = task.model
    broken = dataclasses.replace(model.stages[name], code=f"def fn(ctx, data):\n    {body}\n")
    return dataclasses.replace(
        task, model=dataclasses.replace(model, stages={**model.stages, name: broken})
    )


def test_a_stage_that_raises_fails_the_run_with_its_error(mnist_task, tmp_path):
    task = _with_stage(mnist_task, "run", "raise ValueError('no model today')")
    # With target_qps given there is no warm-up: LoadGen's own queries meet the error.
    settings = LoadGenSettings(scenario="offline", mode="accuracy", target_qps=100.0)
    with pytest.raises(SUTFailed, match=r"16 sample\(s\) failed.*ValueError: no model today"):
        run_loadgen(task, settings, tmp_path, batch_size=8, limit=16, num_threads=1)
    with pytest.raises(SUTFailed, match=r"warm-up.*ValueError: no model today"):
        run_loadgen(task, settings.replace(target_qps=None), tmp_path, batch_size=8, limit=16)


def test_the_post_process_is_timed_only_when_asked(mnist_task, tmp_path):
    """By default a query's response is the run stage's output (MLPerf times the model, and
    the accuracy log is post-processed afterwards): a performance run never calls it."""
    task = _with_stage(mnist_task, "post-process", "raise ValueError('no answers today')")
    settings = LoadGenSettings(scenario="single-stream", expected_latency_ms=1.0, **SHORT)
    result = run_loadgen(task, settings, tmp_path / "untimed", batch_size=1, limit=8)
    assert result.performance is not None
    with pytest.raises(SUTFailed, match=r"ValueError: no answers today"):
        run_loadgen(
            task, settings.replace(timed_post_process=True), tmp_path / "timed",
            batch_size=1, limit=8,
        )  # fmt: skip


def test_a_pre_process_that_raises_fails_the_run(mnist_task, tmp_path):
    task = _with_stage(mnist_task, "pre-process", "raise KeyError('pixels')")
    settings = LoadGenSettings(scenario="single-stream", mode="accuracy", expected_latency_ms=1.0)
    with pytest.raises(SUTFailed, match=r"pre-process: KeyError: 'pixels'"):
        run_loadgen(task, settings, tmp_path, batch_size=8, limit=16, num_threads=1)


def test_run_arguments_are_checked(mnist_task, tmp_path):
    from dlspec_ray.errors import UsageError

    with pytest.raises(UsageError, match="batch_size: expected an integer >= 1, got 0"):
        run_loadgen(mnist_task, LoadGenSettings(), tmp_path, batch_size=0)
    with pytest.raises(UsageError, match="limit: expected None or an integer >= 1, got -2"):
        run_loadgen(mnist_task, LoadGenSettings(), tmp_path, limit=-2)


def test_loadgen_runs_inside_a_ray_actor(mnist_task, tmp_path, ray_session):
    from dlspec_ray.loadgen import run_loadgen_in_actor

    settings = LoadGenSettings(scenario="single-stream", mode="both", **SHORT)
    result = run_loadgen_in_actor(mnist_task, settings, tmp_path, batch_size=1, limit=100)
    assert result.where.startswith("ray-actor:")
    assert result.performance.metric > 0 and result.compliance.passed
    assert result.accuracy.samples == 100
    assert (tmp_path / "loadgen" / "performance" / "mlperf_log_detail.txt").is_file()
