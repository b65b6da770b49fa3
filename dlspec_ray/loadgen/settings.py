"""What one LoadGen test is asked to do, checked when built, converted once at the boundary.

``LoadGenSettings`` is plain, frozen data so that it can be printed, compared,
written into ``summary.json`` and sent to a Ray actor; only ``to_test_settings``
touches ``mlperf_loadgen`` (imported there, lazily), so reading or validating
settings never needs the LoadGen wheel.
"""

from __future__ import annotations

__all__ = [
    "MLPERF_SEEDS",
    "MODES",
    "SCENARIOS",
    "LoadGenSettings",
]

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from dlspec_ray.errors import UsageError

# dlspec-ray's scenario names (the CLI's) -> LoadGen's.
SCENARIOS: dict[str, str] = {
    "offline": "Offline",
    "single-stream": "SingleStream",
    "multi-stream": "MultiStream",
    "server": "Server",
}
# ``both`` is two LoadGen tests, accuracy first; it is not a LoadGen mode of its own.
MODES: tuple[str, ...] = ("accuracy", "performance", "both")

# The seeds of the mlperf.conf embedded in LoadGen 6.0: the defaults, so that a run
# draws the same sample order and schedule as a submission would.
MLPERF_SEEDS: dict[str, int] = {
    "qsl_rng_seed": 2085463073848966840,
    "sample_index_rng_seed": 2747215439041700203,
    "schedule_rng_seed": 16159082839903944936,
}
_SEED_MAX = 2**64 - 1


@dataclass(frozen=True)
class LoadGenSettings:
    """One LoadGen test. Durations are seconds and latencies milliseconds, as people write
    them; ``to_test_settings`` converts to LoadGen's ms and ns.

    ``target_qps`` is the offline expected QPS (it sizes the single offline query) or the
    server's scheduled QPS. ``expected_latency_ms`` sizes single- and multi-stream runs
    (LoadGen pre-generates ``min_duration / expected latency`` queries). Either left at
    ``None`` is measured by the runner from a short warm-up before the timed run: a
    convenience, not an MLPerf rule (a submission states them in user.conf).
    """

    scenario: str = "offline"
    mode: str = "performance"
    # LoadGen's own defaults (10 s, 100 queries); mlperf.conf asks 600 s for a submission.
    min_duration_s: float = 10.0
    min_query_count: int = 100
    # 0: no upper bound.
    max_duration_s: float = 0.0
    max_query_count: int = 0
    target_qps: float | None = None
    expected_latency_ms: float | None = None
    # mlperf.conf's defaults for every model.
    single_stream_target_latency_percentile: float = 0.90
    multi_stream_target_latency_percentile: float = 0.99
    server_target_latency_ms: float = 10.0
    server_target_latency_percentile: float = 0.99
    samples_per_query: int = 8
    qsl_rng_seed: int = MLPERF_SEEDS["qsl_rng_seed"]
    sample_index_rng_seed: int = MLPERF_SEEDS["sample_index_rng_seed"]
    schedule_rng_seed: int = MLPERF_SEEDS["schedule_rng_seed"]
    # How many samples LoadGen keeps loaded (pre-processed in RAM) for a performance
    # run; None: the whole (limited) dataset, which mnist-size data affords.
    performance_sample_count: int | None = None
    # In mode ``both``: the share of the performance run's responses LoadGen logs, to be
    # checked against accuracy mode (TEST01's spirit); 0 turns the check off.
    compliance_log_probability: float = 1.0
    # Whether each query also runs the model's post-process before its response. Off, as
    # in MLPerf: the response is the run stage's output, and the accuracy log is scored
    # with the post-process afterwards. Not a LoadGen setting: it shapes the SUT.
    timed_post_process: bool = False

    def __post_init__(self) -> None:
        _check_choice("scenario", self.scenario, tuple(SCENARIOS))
        _check_choice("mode", self.mode, MODES)
        _check_number("min_duration_s", self.min_duration_s, low=0.0)
        _check_int("min_query_count", self.min_query_count, low=1)
        _check_number("max_duration_s", self.max_duration_s, low=0.0)
        _check_int("max_query_count", self.max_query_count, low=0)
        if self.target_qps is not None:
            _check_number("target_qps", self.target_qps, low=0.0, strict=True)
        if self.expected_latency_ms is not None:
            _check_number("expected_latency_ms", self.expected_latency_ms, low=0.0, strict=True)
        for name in (
            "single_stream_target_latency_percentile",
            "multi_stream_target_latency_percentile",
            "server_target_latency_percentile",
        ):
            value = getattr(self, name)
            _check_number(name, value, low=0.0, strict=True)
            if value >= 1.0:
                raise UsageError(
                    f"{name}: expected a fraction in (0, 1) such as 0.9, got {value!r}"
                    + (f" (did you mean {value / 100:g}?)" if 1 < value < 100 else "")
                )
        _check_number(
            "server_target_latency_ms", self.server_target_latency_ms, low=0.0, strict=True
        )
        _check_int("samples_per_query", self.samples_per_query, low=1)
        for name in MLPERF_SEEDS:
            _check_int(name, getattr(self, name), low=0, high=_SEED_MAX)
        if self.performance_sample_count is not None:
            _check_int("performance_sample_count", self.performance_sample_count, low=1)
        _check_number("compliance_log_probability", self.compliance_log_probability, low=0.0)
        if self.compliance_log_probability > 1.0:
            raise UsageError(
                "compliance_log_probability: expected a probability in [0, 1], "
                f"got {self.compliance_log_probability!r}"
            )
        if not isinstance(self.timed_post_process, bool):
            raise UsageError(
                f"timed_post_process: expected true or false, got {self.timed_post_process!r}"
            )
        if self.max_duration_s and self.max_duration_s < self.min_duration_s:
            raise UsageError(
                f"max_duration_s: expected 0 (no bound) or at least min_duration_s "
                f"({self.min_duration_s:g}), got {self.max_duration_s:g}"
            )

    # -- conversions -----------------------------------------------------------------

    @property
    def loadgen_scenario(self) -> str:
        """LoadGen's name of the scenario (``Offline``, ``SingleStream``, ...)."""
        return SCENARIOS[self.scenario]

    def replace(self, **changes: Any) -> LoadGenSettings:
        """A copy with ``changes``, validated again."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise UsageError(f"unknown LoadGen setting(s) {unknown}; expected one of {_names()}")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_conf(
        cls,
        path: str | Path,
        *,
        scenario: str = "offline",
        mode: str = "performance",
        model: str = "*",
        base: LoadGenSettings | None = None,
    ) -> LoadGenSettings:
        """Settings from an ``mlperf.conf``/``user.conf``-style file (``*.Offline.target_qps =
        100``): the lines for ``model`` (or ``*``) and ``scenario`` (or ``*``), over ``base``.

        A line for a named model or scenario wins over a wildcard one, and among equals
        the later line wins, as in LoadGen. A key this module does not know, or a value
        that is not a number, is an error naming the file and the line.
        """
        from dlspec_ray.loadgen.conf import read_conf

        start = (base or cls()).replace(scenario=scenario, mode=mode)
        return start.replace(**read_conf(Path(path), start.loadgen_scenario, model))

    def to_test_settings(self, mode: str | None = None) -> Any:
        """This test as an ``mlperf_loadgen.TestSettings``; ``mode`` (``accuracy`` or
        ``performance``) overrides ``self.mode``, which must then not be ``both``."""
        import mlperf_loadgen as lg

        mode = mode or self.mode
        if mode not in ("accuracy", "performance"):
            raise UsageError(
                f"mode: LoadGen runs one mode at a time, expected 'accuracy' or "
                f"'performance', got {mode!r}"
            )
        ts = lg.TestSettings()
        ts.scenario = getattr(lg.TestScenario, self.loadgen_scenario)
        ts.mode = lg.TestMode.AccuracyOnly if mode == "accuracy" else lg.TestMode.PerformanceOnly
        ts.min_duration_ms = round(self.min_duration_s * 1000)
        ts.max_duration_ms = round(self.max_duration_s * 1000)
        ts.min_query_count = self.min_query_count
        ts.max_query_count = self.max_query_count
        if self.target_qps is not None:
            ts.offline_expected_qps = float(self.target_qps)
            ts.server_target_qps = float(self.target_qps)
        if self.expected_latency_ms is not None:
            ts.single_stream_expected_latency_ns = int(self.expected_latency_ms * 1e6)
            ts.multi_stream_expected_latency_ns = int(self.expected_latency_ms * 1e6)
        ts.single_stream_target_latency_percentile = self.single_stream_target_latency_percentile
        ts.multi_stream_target_latency_percentile = self.multi_stream_target_latency_percentile
        ts.multi_stream_samples_per_query = self.samples_per_query
        ts.server_target_latency_ns = int(self.server_target_latency_ms * 1e6)
        ts.server_target_latency_percentile = self.server_target_latency_percentile
        ts.qsl_rng_seed = self.qsl_rng_seed
        ts.sample_index_rng_seed = self.sample_index_rng_seed
        ts.schedule_rng_seed = self.schedule_rng_seed
        if self.performance_sample_count is not None:
            ts.performance_sample_count_override = self.performance_sample_count
        return ts


def _names() -> list[str]:
    return [f.name for f in fields(LoadGenSettings)]


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


def _check_number(name: str, value: Any, *, low: float, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(
            f"{name}: expected a finite number, got {value!r} ({type(value).__name__})"
        )
    if value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise UsageError(f"{name}: expected a number {bound}, got {value!r}")


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise UsageError(f"{name}: expected an integer {bound}, got {value!r}")
