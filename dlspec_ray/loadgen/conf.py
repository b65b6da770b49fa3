"""Reading ``mlperf.conf``/``user.conf``-style files into ``LoadGenSettings`` fields.

The format is LoadGen's: ``model.scenario.key = value``, ``#`` comments, ``*`` as a
wildcard model or scenario, durations and latencies in milliseconds, percentiles
in percent. It is parsed here rather than by ``TestSettings.FromConfig`` so that a
bad line fails before any model loads, with the file and the line, and so that
what was read is visible in ``summary.json`` as plain settings.
"""

from __future__ import annotations

__all__ = ["CONF_KEYS", "IGNORED_KEYS", "read_conf"]

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlspec_ray.errors import UsageError

_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
# A model name may hold dots (``wan-2.2-t2v-a14b``); a scenario and a key never do.
_LINE = re.compile(
    r"^(?P<model>[^\s=]+)\.(?P<scenario>[^.\s=]+)\.(?P<key>[^.\s=]+)\s*=\s*(?P<value>\S+)$"
)


def _ms_to_s(value: float) -> float:
    return value / 1000.0


def _percent(value: float) -> float:
    return value / 100.0


def _or_none(value: int) -> int | None:
    """mlperf.conf's 0 means "the whole dataset", which is ``None`` here."""
    return int(value) or None


# key -> (kind of value, {scenario or "*": (field, conversion)}); a scenario missing
# from the map means the key is LoadGen's but has no meaning there: it is accepted
# and ignored (mlperf.conf sets ``*.Offline.target_latency_percentile``).
_Field = tuple[str, Callable[[Any], Any]]
CONF_KEYS: dict[str, tuple[type, dict[str, _Field]]] = {
    "min_duration": (float, {"*": ("min_duration_s", _ms_to_s)}),
    "max_duration": (float, {"*": ("max_duration_s", _ms_to_s)}),
    "min_query_count": (int, {"*": ("min_query_count", int)}),
    "max_query_count": (int, {"*": ("max_query_count", int)}),
    "target_qps": (float, {"Offline": ("target_qps", float), "Server": ("target_qps", float)}),
    "target_latency": (
        float,
        {
            "SingleStream": ("expected_latency_ms", float),
            "MultiStream": ("expected_latency_ms", float),
            "Server": ("server_target_latency_ms", float),
        },
    ),
    "target_latency_percentile": (
        float,
        {
            "SingleStream": ("single_stream_target_latency_percentile", _percent),
            "MultiStream": ("multi_stream_target_latency_percentile", _percent),
            "Server": ("server_target_latency_percentile", _percent),
        },
    ),
    "samples_per_query": (int, {"MultiStream": ("samples_per_query", int)}),
    "qsl_rng_seed": (int, {"*": ("qsl_rng_seed", int)}),
    "sample_index_rng_seed": (int, {"*": ("sample_index_rng_seed", int)}),
    "schedule_rng_seed": (int, {"*": ("schedule_rng_seed", int)}),
    "performance_sample_count_override": (int, {"*": ("performance_sample_count", _or_none)}),
}
# LoadGen keys that dlspec-ray does not model (token latencies, TEST05, equal issue,
# ...): accepted so that LoadGen's own mlperf.conf reads, and ignored.
IGNORED_KEYS = frozenset(
    {
        "accuracy_sample_count_override",
        "infer_token_latencies",
        "sample_concatenate_permutation",
        "target_duration",
        "test05",
        "test05_qsl_rng_seed",
        "test05_sample_index_rng_seed",
        "test05_schedule_rng_seed",
        "token_latency_scaling_factor",
        "tpot_latency",
        "ttft_latency",
        "use_token_latencies",
    }
)


def read_conf(path: Path, scenario: str, model: str = "*") -> dict[str, Any]:
    """The ``LoadGenSettings`` fields that ``path``'s lines set for ``model`` in ``scenario``
    (LoadGen's scenario name). Specific lines beat wildcard ones; later lines beat earlier."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the LoadGen config: {exc.strerror or exc}") from exc
    found: dict[str, tuple[int, int, Any]] = {}  # field -> (specificity, line, value)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        match = _LINE.match(line)
        if match is None:
            raise UsageError(
                f"{where}: expected 'model.scenario.key = value' (for example "
                f"'*.Offline.target_qps = 100'), got {raw.strip()!r}"
            )
        line_model, line_scenario, key = match["model"], match["scenario"], match["key"]
        if line_scenario != "*" and line_scenario not in _SCENARIOS:
            raise UsageError(
                f"{where}: expected a scenario among *, {', '.join(_SCENARIOS)}, "
                f"got {line_scenario!r}"
            )
        if line_model not in ("*", model) or line_scenario not in ("*", scenario):
            continue  # another model's or scenario's line
        if key in IGNORED_KEYS:
            continue
        if key not in CONF_KEYS:
            raise UsageError(
                f"{where}: unknown LoadGen key {key!r}; expected one of "
                f"{', '.join(sorted(CONF_KEYS))}"
            )
        kind, targets = CONF_KEYS[key]
        value = _number(match["value"], kind, where, key)
        target = targets.get(scenario) or targets.get("*")
        if target is None:
            continue  # LoadGen's key, meaningless in this scenario
        name, convert = target
        specificity = (line_model != "*") * 2 + (line_scenario != "*")
        if name not in found or specificity >= found[name][0]:
            found[name] = (specificity, number, convert(value))
    return {name: value for name, (_, _, value) in found.items()}


def _number(text: str, kind: type, where: str, key: str) -> int | float:
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise UsageError(f"{where}: {key}: expected {expected}, got {text!r}") from None
