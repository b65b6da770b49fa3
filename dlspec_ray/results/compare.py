"""Two runs side by side: what changed when one aspect of the task was varied.

Rows are joined on ``sample_id`` (the results schema is one row per sample for
exactly this), so runs with different batch sizes, sharding or actor counts
compare sample by sample. Accuracy is recomputed over the samples both runs
evaluated without an error, so a delta never mixes in samples only one run saw.
Divergence is measured on the raw ``output`` column: max absolute difference,
and KL and Jensen-Shannon divergence of the softmax of the outputs (in nats; JS
is at most ln 2 = 0.693).

Runs are read from local folders or object storage alike (``storage``), and only
the columns a comparison uses (not ``scores``, stage times or node ids).
"""

from __future__ import annotations

__all__ = [
    "Disagreement",
    "IncomparableRuns",
    "RunComparison",
    "compare_run_dirs",
    "compare_tables",
    "stage_lines",
    "stage_view",
]

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.index import read_summary
from dlspec_ray.results.metrics import STAGES, accuracy
from dlspec_ray.results.parquet_io import read_results
from dlspec_ray.results.run_summary import RunSummary, StageLatency
from dlspec_ray.results.storage import Location, as_location

# Disagreeing samples kept in a comparison (all are counted).
MAX_DISAGREEMENTS = 1000
# The result columns a comparison reads.
COMPARED_COLUMNS = (
    "sample_id",
    "label",
    "prediction",
    "top_k",
    "output",
    "error",
    "batch_id",
    "pre_digest",
    "run_digest",
    "post_digest",
)
# The stages of a batch, in order, by the names the results' digest columns use.
_STAGE_NAMES = {"pre": "pre-process", "run": "run", "post": "post-process"}


class IncomparableRuns(DLSpecError):
    """Two runs that cannot be compared sample by sample."""


@dataclass(frozen=True)
class Disagreement:
    sample_id: str
    label: int | None
    a: int | None
    b: int | None


@dataclass
class RunComparison:
    a: dict[str, Any]
    b: dict[str, Any]
    shared: int
    only_a: int
    only_b: int
    compared: int
    accuracy: dict[str, dict[str, float]]
    latency_ratio: dict[str, dict[str, float]]
    throughput: dict[str, float | None]
    agreement: dict[str, float | int]
    divergence: dict[str, float | int | str | None]
    # Per stage (pre, run, post): how many compared batches' outputs are bit-identical, and
    # the first stage where they differ (None: none differs, or no digests to tell).
    stages: dict[str, Any] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    disagreement_count: int = 0
    notes: list[str] = field(default_factory=list)
    a_path: str = ""
    b_path: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["a"] = _run_brief(self.a, self.a_path)
        out["b"] = _run_brief(self.b, self.b_path)
        out.pop("a_path")
        out.pop("b_path")
        return _finite(out)

    def format(self, max_listed: int = 10) -> str:
        return format_comparison(self, max_listed)


def compare_run_dirs(a: Location, b: Location, *, shared_samples: bool = False) -> RunComparison:
    """Compare the runs in directories ``a`` and ``b``, local or URIs (see ``compare_tables``)."""
    run_a, run_b = as_location(a), as_location(b)
    summary_a, summary_b = read_summary(run_a), read_summary(run_b)
    comparison = compare_tables(
        read_results(run_a, COMPARED_COLUMNS),
        read_results(run_b, COMPARED_COLUMNS),
        summary_a,
        summary_b,
        shared_samples=shared_samples,
    )
    comparison.a_path, comparison.b_path = str(run_a), str(run_b)
    return comparison


def compare_tables(
    table_a: pa.Table,
    table_b: pa.Table,
    summary_a: Mapping[str, Any],
    summary_b: Mapping[str, Any],
    *,
    shared_samples: bool = False,
) -> RunComparison:
    """Compare two runs' rows and summaries.

    Runs of different datasets are refused, unless ``shared_samples``: then only
    the samples whose ids both runs have are compared, and the comparison says so.
    """
    notes: list[str] = []
    dataset_a, dataset_b = _dataset(summary_a), _dataset(summary_b)
    if dataset_a != dataset_b:
        if not shared_samples:
            raise IncomparableRuns(
                f"run {summary_a.get('run_id')} evaluated dataset {dataset_a}, run "
                f"{summary_b.get('run_id')} dataset {dataset_b}: their samples are not the "
                "same, so per-sample agreement and divergence would be meaningless. Compare "
                "runs of one dataset, or pass --shared-samples (shared_samples=True) to "
                "compare only the samples whose ids both runs have"
            )
        notes.append(
            f"different datasets ({dataset_a} vs {dataset_b}): only the samples whose ids "
            "both runs have are compared"
        )
    index_a = _index(table_a)
    index_b = _index(table_b)
    shared_ids = [sid for sid in index_a if sid in index_b]
    if not shared_ids:
        raise IncomparableRuns(
            f"runs {summary_a.get('run_id')} and {summary_b.get('run_id')} share no sample id "
            f"({len(index_a)} and {len(index_b)} samples); nothing to compare"
        )
    only_a, only_b = len(index_a) - len(shared_ids), len(index_b) - len(shared_ids)
    if (only_a or only_b) and dataset_a == dataset_b:
        notes.append(
            f"the runs evaluated different samples of the dataset ({only_a} only in A, "
            f"{only_b} only in B, for example a different --limit): the "
            f"{len(shared_ids)} shared samples are compared"
        )
    rows_a = table_a.take(pa.array([index_a[s] for s in shared_ids], pa.int64()))
    rows_b = table_b.take(pa.array([index_b[s] for s in shared_ids], pa.int64()))
    ok = _no_error(rows_a) & _no_error(rows_b)
    failed = int((~ok).sum())
    if failed:
        notes.append(f"{failed} shared sample(s) failed in one run or both and are left out")
    rows_a = rows_a.filter(pa.array(ok))
    rows_b = rows_b.filter(pa.array(ok))
    labels_a = rows_a.column("label").to_numpy(zero_copy_only=False)
    labels_b = rows_b.column("label").to_numpy(zero_copy_only=False)
    if not np.array_equal(labels_a, labels_b, equal_nan=True):
        differ = int(np.sum(~_equal_or_both_nan(labels_a, labels_b)))
        notes.append(f"{differ} shared sample(s) have different labels in the two runs")

    acc_a, acc_b = accuracy(rows_a), accuracy(rows_b)
    acc = {
        name: {"a": acc_a[name], "b": acc_b[name], "delta": acc_b[name] - acc_a[name]}
        for name in sorted(set(acc_a) & set(acc_b))
    }
    agreement, disagreements, count = _agreement(rows_a, rows_b)
    return RunComparison(
        a=dict(summary_a),
        b=dict(summary_b),
        shared=len(shared_ids),
        only_a=only_a,
        only_b=only_b,
        compared=rows_a.num_rows,
        accuracy=acc,
        latency_ratio=_latency_ratio(summary_a, summary_b),
        throughput=_throughput(summary_a, summary_b),
        agreement=agreement,
        divergence=_divergence(rows_a, rows_b),
        stages=stage_view(rows_a, rows_b),
        disagreements=disagreements,
        disagreement_count=count,
        notes=notes,
    )


def stage_view(rows_a: pa.Table, rows_b: pa.Table) -> dict[str, Any]:
    """Where two runs of the same samples part, stage by stage, from each batch's digests.

    A batch of A is compared with B when B holds the same samples in one batch too (the
    same batch size and order); its stage outputs are then bit-identical or not. Returns
    ``{"pre": {"batches", "identical"}, "run": ..., "post": ..., "first_difference"}``;
    a stage with no digests in either run (an older run, a non-array output) is left out.
    """
    names = set(rows_a.schema.names) & set(rows_b.schema.names)
    if "batch_id" not in names or rows_a.num_rows == 0:
        return {}
    batch_a = rows_a.column("batch_id").to_numpy(zero_copy_only=False)
    batch_b = rows_b.column("batch_id").to_numpy(zero_copy_only=False)
    # Rows are aligned by sample; a batch is comparable when B's rows of it are one batch.
    pairs: dict[int, set[int]] = {}
    back: dict[int, set[int]] = {}
    for a, b in zip(batch_a.tolist(), batch_b.tolist(), strict=True):
        pairs.setdefault(a, set()).add(b)
        back.setdefault(b, set()).add(a)
    first_row = {}
    for i, a in enumerate(batch_a.tolist()):
        first_row.setdefault(a, i)
    comparable = [a for a, bs in pairs.items() if len(bs) == 1 and len(back[min(bs)]) == 1]
    view: dict[str, Any] = {"batches": len(pairs), "comparable_batches": len(comparable)}
    first = None
    for short, name in _STAGE_NAMES.items():
        column = f"{short}_digest"
        if column not in names:
            continue
        da, db = rows_a.column(column).to_pylist(), rows_b.column(column).to_pylist()
        rows = [first_row[a] for a in comparable if da[first_row[a]] and db[first_row[a]]]
        if not rows:
            continue
        identical = sum(1 for i in rows if da[i] == db[i])
        view[short] = {"stage": name, "batches": len(rows), "identical": identical}
        if first is None and identical < len(rows):
            first = name
    view["first_difference"] = first
    return view


def _dataset(summary: Mapping[str, Any]) -> str:
    return RunSummary.from_dict(summary).ref("dataset") or "?"


def _index(table: pa.Table) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, sid in enumerate(table.column("sample_id").to_pylist()):
        index.setdefault(sid, i)  # the first row of a repeated id wins, as in reference checks
    return index


def _no_error(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("error").is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _equal_or_both_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(float), b.astype(float)
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _agreement(a: pa.Table, b: pa.Table) -> tuple[dict[str, float | int], list[Disagreement], int]:
    pred_a = a.column("prediction").to_pylist()
    pred_b = b.column("prediction").to_pylist()
    labels = a.column("label").to_pylist()
    ids = a.column("sample_id").to_pylist()
    listed: list[Disagreement] = []
    count = 0
    for sid, label, pa_, pb in zip(ids, labels, pred_a, pred_b, strict=True):
        if pa_ != pb:
            count += 1
            if len(listed) < MAX_DISAGREEMENTS:
                listed.append(Disagreement(sid, label, pa_, pb))
    compared = len(ids)
    rate = (compared - count) / compared if compared else math.nan
    return {"compared": compared, "agree": compared - count, "rate": rate}, listed, count


def _outputs(table: pa.Table) -> np.ndarray | None:
    """The ``output`` column as a [rows, width] array, or None if missing or ragged."""
    column = table.column("output").combine_chunks()
    if column.null_count or len(column) == 0:
        return None
    offsets = column.offsets.to_numpy()
    widths = np.diff(offsets)
    if widths.min() != widths.max() or widths[0] == 0:
        return None
    values = column.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    return values.astype(np.float64).reshape(len(column), int(widths[0]))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _divergence(a: pa.Table, b: pa.Table) -> dict[str, float | int | str | None]:
    out_a, out_b = _outputs(a), _outputs(b)
    empty: dict[str, float | int | str | None] = {
        "compared": 0,
        "max_abs_diff": None,
        "mean_abs_diff": None,
        "kl_mean": None,
        "kl_max": None,
        "js_mean": None,
        "js_max": None,
    }
    if out_a is None or out_b is None:
        which = "A" if out_a is None else "B"
        return {**empty, "reason": f"run {which} has no raw outputs (post-process 'output')"}
    if out_a.shape != out_b.shape:
        return {
            **empty,
            "reason": f"outputs of different widths ({out_a.shape[1]} vs {out_b.shape[1]})",
        }
    diff = np.abs(out_a - out_b)
    log_p, log_q = _log_softmax(out_a), _log_softmax(out_b)
    p, q = np.exp(log_p), np.exp(log_q)
    kl = np.maximum((p * (log_p - log_q)).sum(axis=1), 0.0)
    log_m = np.log(np.maximum((p + q) / 2, np.finfo(np.float64).tiny))
    js = np.maximum(
        0.5 * (p * (log_p - log_m)).sum(axis=1) + 0.5 * (q * (log_q - log_m)).sum(axis=1), 0.0
    )
    return {
        "compared": int(out_a.shape[0]),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "kl_mean": float(kl.mean()),
        "kl_max": float(kl.max()),
        "js_mean": float(js.mean()),
        "js_max": float(js.max()),
        "reason": None,
    }


def _latency_ratio(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """B's stage times over A's: above 1 means B is slower."""
    lat_a = RunSummary.from_dict(a).latency_ms
    lat_b = RunSummary.from_dict(b).latency_ms
    out: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        sa, sb = lat_a.get(stage) or StageLatency(), lat_b.get(stage) or StageLatency()
        ratios = {
            key: sb.get(key) / sa.get(key)
            for key in ("p50", "p90", "p99", "mean_per_sample")
            if sa.get(key) and sb.get(key) is not None
        }
        if ratios:
            out[stage] = ratios
    return out


def _throughput(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, float | None]:
    ta = RunSummary.from_dict(a).throughput_sps
    tb = RunSummary.from_dict(b).throughput_sps
    ratio = tb / ta if ta and tb is not None else None
    return {"a": ta, "b": tb, "ratio": ratio}


def _run_brief(summary: Mapping[str, Any], path: str) -> dict[str, Any]:
    run = RunSummary.from_dict(summary)
    refs = {k: run.ref(k) for k in ("model", "dataset", "software", "hardware")}
    return {
        "run_id": run.run_id or None,
        "path": path,
        **refs,
        "batch_size": run.batch_size,
        "environment": run.environment or None,
    }


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_comparison(c: RunComparison, max_listed: int = 10) -> str:
    """The comparison as a plain-text report for a terminal."""
    a, b = _run_brief(c.a, c.a_path), _run_brief(c.b, c.b_path)
    lines = ["dlspec-ray compare", ""]
    for name, run in (("A", a), ("B", b)):
        lines.append(
            f"  {name}  {run['run_id']}  {run['model']} on {run['dataset']}  "
            f"with {run['software']}  batch {run['batch_size']}"
        )
    lines.append("")
    lines.append(
        f"  samples      {c.compared:,} compared  ({c.shared:,} shared, {c.only_a:,} only in A, "
        f"{c.only_b:,} only in B)"
    )
    for name, acc in c.accuracy.items():
        lines.append(f"  {name:<12} A {acc['a']:.4f}  B {acc['b']:.4f}  delta {acc['delta']:+.4f}")
    rate = c.agreement.get("rate")
    if isinstance(rate, float) and math.isfinite(rate):
        lines.append(
            f"  top-1 agree  {c.agreement['agree']:,} of {c.agreement['compared']:,} "
            f"({rate:.2%}); {c.disagreement_count:,} disagree"
        )
    t = c.throughput
    if t.get("ratio") is not None:
        lines.append(
            f"  throughput   A {t['a']:,.1f}  B {t['b']:,.1f} samples/s  B/A {t['ratio']:.3f}x"
        )
    if c.latency_ratio:
        lines.append(
            "  latency B/A  "
            + "  ".join(
                f"{stage} p50 {r['p50']:.3f}x" for stage, r in c.latency_ratio.items() if "p50" in r
            )
        )
    lines += stage_lines(c)
    d = c.divergence
    if d.get("compared"):
        lines.append(
            f"  outputs      max |A-B| {d['max_abs_diff']:.3g}  mean |A-B| {d['mean_abs_diff']:.3g}"
        )
        lines.append(
            f"  softmax      KL(A||B) mean {d['kl_mean']:.3g} max {d['kl_max']:.3g}  "
            f"JS mean {d['js_mean']:.3g} max {d['js_max']:.3g} (nats)"
        )
    else:
        lines.append(f"  outputs      not compared: {d.get('reason')}")
    if c.disagreements:
        lines += ["", "  samples that disagree (top-1)"]
        rows = [["sample", "label", "A", "B"]]
        for item in c.disagreements[:max_listed]:
            rows.append([item.sample_id, _text(item.label), _text(item.a), _text(item.b)])
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            lines.append(
                "    "
                + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
        more = c.disagreement_count - min(max_listed, len(c.disagreements))
        if more > 0:
            lines.append(f"    and {more:,} more")
    for note in c.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def stage_lines(c: RunComparison) -> list[str]:
    """ "pre-process identical; run differs (max |diff| 1.1e-5); post-process top-1 agrees on
    10,000 of 10,000": where the two runs part, in the order the stages ran."""
    view = c.stages
    parts = []
    for short in _STAGE_NAMES:
        entry = view.get(short)
        if not entry:
            continue
        name, n, same = entry["stage"], entry["batches"], entry["identical"]
        if same == n:
            text = f"{name} identical ({n:,} batches)"
        else:
            text = f"{name} differs in {n - same:,} of {n:,} batches"
            if short == "run" and c.divergence.get("compared"):
                text += f" (max |diff| {c.divergence['max_abs_diff']:.2g})"
            if short == "post":
                text += (
                    f"; top-1 agrees on {c.agreement.get('agree', 0):,} of "
                    f"{c.agreement.get('compared', 0):,}"
                )
        parts.append(text)
    if not parts:
        return []
    first = view.get("first_difference")
    verdict = f"first difference: {first}" if first else "no stage differs"
    return [f"  stages       {'; '.join(parts)}", f"               {verdict}"]
