"""LoadGenSettings: checked when built, read from conf files, converted once for LoadGen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlspec_ray.errors import UsageError
from dlspec_ray.loadgen import LoadGenSettings
from dlspec_ray.loadgen.settings import MLPERF_SEEDS

BAD = [
    (
        {"scenario": "offfline"},
        r"scenario: expected one of offline, single-stream, .*got 'offfline'",
    ),
    ({"scenario": "Offline"}, r"scenario: expected one of .*got 'Offline'"),
    ({"mode": "perf"}, r"mode: expected one of accuracy, performance, both, got 'perf'"),
    ({"min_duration_s": -1}, r"min_duration_s: expected a number >= 0, got -1"),
    ({"min_duration_s": "10"}, r"min_duration_s: expected a finite number, got '10' \(str\)"),
    ({"min_duration_s": float("nan")}, r"min_duration_s: expected a finite number, got nan"),
    ({"min_query_count": 0}, r"min_query_count: expected an integer >= 1, got 0"),
    ({"min_query_count": 2.5}, r"min_query_count: expected an integer, got 2.5 \(float\)"),
    ({"min_query_count": True}, r"min_query_count: expected an integer, got True \(bool\)"),
    ({"max_query_count": -1}, r"max_query_count: expected an integer >= 0, got -1"),
    ({"target_qps": 0}, r"target_qps: expected a number > 0, got 0"),
    ({"target_qps": -5.0}, r"target_qps: expected a number > 0, got -5.0"),
    ({"expected_latency_ms": 0.0}, r"expected_latency_ms: expected a number > 0, got 0.0"),
    (
        {"single_stream_target_latency_percentile": 90},
        r"single_stream_target_latency_percentile: expected a fraction in \(0, 1\).*got 90 "
        r"\(did you mean 0.9\?\)",
    ),
    (
        {"multi_stream_target_latency_percentile": 1.0},
        r"multi_stream_target_latency_percentile: expected a fraction in \(0, 1\)",
    ),
    (
        {"server_target_latency_percentile": 0},
        r"server_target_latency_percentile: expected a number > 0",
    ),
    ({"server_target_latency_ms": 0}, r"server_target_latency_ms: expected a number > 0, got 0"),
    ({"samples_per_query": 0}, r"samples_per_query: expected an integer >= 1, got 0"),
    ({"qsl_rng_seed": -1}, r"qsl_rng_seed: expected an integer in \[0, 18446744073709551615\]"),
    ({"schedule_rng_seed": 2**64}, r"schedule_rng_seed: expected an integer in \[0, "),
    ({"sample_index_rng_seed": "1"}, r"sample_index_rng_seed: expected an integer, got '1'"),
    ({"performance_sample_count": 0}, r"performance_sample_count: expected an integer >= 1, got 0"),
    ({"compliance_log_probability": 1.5}, r"compliance_log_probability: expected a probability"),
    ({"compliance_log_probability": -0.1}, r"compliance_log_probability: expected a number >= 0"),
    ({"timed_post_process": 1}, r"timed_post_process: expected true or false, got 1"),
    (
        {"min_duration_s": 5, "max_duration_s": 1},
        r"max_duration_s: expected 0 \(no bound\) or at least min_duration_s \(5\), got 1",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD, ids=[str(c) for c, _ in BAD])
def test_bad_settings_say_what_was_expected_and_what_came(changes, message):
    with pytest.raises(UsageError, match=message):
        LoadGenSettings(**changes)


def test_defaults_are_valid_and_use_mlperf_conf_seeds():
    settings = LoadGenSettings()
    assert (settings.scenario, settings.mode) == ("offline", "performance")
    assert settings.min_duration_s == 10.0 and settings.min_query_count == 100
    assert {k: getattr(settings, k) for k in MLPERF_SEEDS} == MLPERF_SEEDS
    assert settings.single_stream_target_latency_percentile == 0.9
    assert settings.multi_stream_target_latency_percentile == 0.99


def test_replace_validates_and_refuses_unknown_names():
    with pytest.raises(UsageError, match=r"unknown LoadGen setting\(s\) \['min_duraton_s'\]"):
        LoadGenSettings().replace(min_duraton_s=1)
    with pytest.raises(UsageError, match="target_qps: expected a number > 0"):
        LoadGenSettings().replace(target_qps=0)


def test_to_test_settings_converts_units_once():
    import mlperf_loadgen as lg

    settings = LoadGenSettings(
        scenario="server",
        mode="performance",
        min_duration_s=0.25,
        min_query_count=7,
        target_qps=123.5,
        server_target_latency_ms=2.5,
        server_target_latency_percentile=0.95,
        performance_sample_count=42,
        qsl_rng_seed=1,
        sample_index_rng_seed=2,
        schedule_rng_seed=3,
    )
    ts = settings.to_test_settings()
    assert ts.scenario == lg.TestScenario.Server
    assert ts.mode == lg.TestMode.PerformanceOnly
    assert ts.min_duration_ms == 250 and ts.min_query_count == 7
    assert ts.server_target_qps == 123.5
    assert ts.server_target_latency_ns == 2_500_000
    assert ts.server_target_latency_percentile == pytest.approx(0.95)
    assert ts.performance_sample_count_override == 42
    assert (ts.qsl_rng_seed, ts.sample_index_rng_seed, ts.schedule_rng_seed) == (1, 2, 3)
    assert settings.to_test_settings("accuracy").mode == lg.TestMode.AccuracyOnly
    multi = LoadGenSettings(scenario="multi-stream", samples_per_query=4, expected_latency_ms=0.5)
    ts = multi.to_test_settings()
    assert ts.scenario == lg.TestScenario.MultiStream
    assert ts.multi_stream_samples_per_query == 4
    assert ts.multi_stream_expected_latency_ns == 500_000


def test_both_is_two_tests_not_a_loadgen_mode():
    with pytest.raises(UsageError, match=r"LoadGen runs one mode at a time.*got 'both'"):
        LoadGenSettings(mode="both").to_test_settings()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.conf"
    path.write_text(text)
    return path


def test_conf_lines_for_this_model_and_scenario_apply_specific_over_wildcard(tmp_path):
    path = write(
        tmp_path,
        "# a comment\n"
        "mnist-8.Offline.target_qps = 5000   # specific, first\n"
        "*.Offline.target_qps = 100\n"
        "*.*.min_duration = 250\n"
        "*.Offline.min_query_count = 12\n"
        "*.Server.target_qps = 7\n"
        "resnet50.Offline.target_qps = 9\n"
        "*.*.performance_sample_count_override = 0\n"
        "*.Offline.target_latency_percentile = 90\n"
        "\n",
    )
    settings = LoadGenSettings.from_conf(path, scenario="offline", model="mnist-8")
    assert settings.target_qps == 5000
    assert settings.min_duration_s == 0.25
    assert settings.min_query_count == 12
    assert settings.performance_sample_count is None
    assert LoadGenSettings.from_conf(path, scenario="offline").target_qps == 100
    assert LoadGenSettings.from_conf(path, scenario="server").target_qps == 7


def test_conf_latencies_are_ms_and_percentiles_percent(tmp_path):
    path = write(
        tmp_path,
        "*.SingleStream.target_latency = 0.5\n"
        "*.SingleStream.target_latency_percentile = 95\n"
        "*.MultiStream.samples_per_query = 4\n"
        "*.Server.target_latency = 3\n"
        "*.Server.target_latency_percentile = 99.9\n",
    )
    single = LoadGenSettings.from_conf(path, scenario="single-stream", mode="both")
    assert single.mode == "both"
    assert single.expected_latency_ms == 0.5
    assert single.single_stream_target_latency_percentile == pytest.approx(0.95)
    assert LoadGenSettings.from_conf(path, scenario="multi-stream").samples_per_query == 4
    server = LoadGenSettings.from_conf(path, scenario="server")
    assert server.server_target_latency_ms == 3
    assert server.server_target_latency_percentile == pytest.approx(0.999)


BAD_CONF = [
    ("*.Offline.target_qps 100\n", r"user.conf:1: expected 'model.scenario.key = value'"),
    ("\n\n*.Offline.taget_qps = 100\n", r"user.conf:3: unknown LoadGen key 'taget_qps'; expected"),
    ("*.Offline.target_qps = fast\n", r"user.conf:1: target_qps: expected a number, got 'fast'"),
    (
        "*.*.min_query_count = 1.5\n",
        r"user.conf:1: min_query_count: expected an integer, got '1.5'",
    ),
    ("*.Ofline.target_qps = 1\n", r"user.conf:1: expected a scenario among \*, SingleStream"),
    ("*.Offline.target_qps = -3\n", r"target_qps: expected a number > 0, got -3.0"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONF, ids=[m for _, m in BAD_CONF])
def test_a_bad_conf_line_names_the_file_and_the_line(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        LoadGenSettings.from_conf(write(tmp_path, text), scenario="offline")


def test_a_missing_conf_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read the LoadGen config"):
        LoadGenSettings.from_conf(tmp_path / "absent.conf")


def test_loadgens_own_mlperf_conf_reads(tmp_path):
    """The mlperf.conf LoadGen embeds (model names with dots, keys not modelled here)."""
    import mlperf_loadgen

    blob = Path(mlperf_loadgen.__file__).read_bytes()
    start = blob.find(b"# The format of this config file")
    assert start >= 0, "this LoadGen build embeds no mlperf.conf"
    path = tmp_path / "mlperf.conf"
    path.write_bytes(blob[start : blob.find(b"\0", start)])
    offline = LoadGenSettings.from_conf(path, scenario="offline", model="resnet50")
    assert offline.performance_sample_count == 1024
    assert offline.min_duration_s == 600
    assert {k: getattr(offline, k) for k in MLPERF_SEEDS} == MLPERF_SEEDS
    multi = LoadGenSettings.from_conf(path, scenario="multi-stream", model="resnet50")
    assert multi.samples_per_query == 8 and multi.min_query_count == 662


def test_importing_the_package_loads_neither_loadgen_nor_ray():
    code = (
        "import sys, dlspec_ray, dlspec_ray.loadgen\n"
        "print(sorted(m for m in ('ray', 'mlperf_loadgen') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
