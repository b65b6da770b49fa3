"""The three plots draw real figures from run tables and summaries, with no display."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results import read_results
from dlspec_ray.results.index import read_summary
from dlspec_ray.results.plots import (
    batch_times,
    figure_png,
    plot_accuracy_throughput,
    plot_latency,
    plot_stage_breakdown,
)

LOGITS = np.eye(8, dtype=np.float32)


@pytest.fixture
def two_runs(runs_factory):
    a = runs_factory("a", LOGITS, np.arange(8), batch_size=2, wall_s=1.0)
    b = runs_factory("b", LOGITS, np.zeros(8, dtype=np.int64), batch_size=4, wall_s=2.0)
    return {"a": a, "b": b}


def test_batch_times_count_each_batch_once(two_runs):
    table = read_results(two_runs["a"])
    assert batch_times(table, "run").tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(DLSpecError, match="expected one of pre, run, post, got 'infer'"):
        batch_times(table, "infer")


def test_latency_plot_has_one_box_per_configuration(two_runs):
    figure = plot_latency({k: read_results(v) for k, v in two_runs.items()}, "run")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert figure_png(figure)[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_throughput_plot_places_each_run(two_runs):
    summaries = {k: read_summary(v) for k, v in two_runs.items()}
    figure = plot_accuracy_throughput(summaries, "top1")
    points = [c.get_offsets()[0].tolist() for c in figure.axes[0].collections]
    assert points == [[8.0, 1.0], [4.0, 0.125]]


def test_stage_breakdown_stacks_pre_run_post(two_runs):
    summaries = {k: read_summary(v) for k, v in two_runs.items()}
    figure = plot_stage_breakdown(summaries)
    ax = figure.axes[0]
    assert len(ax.patches) == 6  # 2 configurations x 3 stages
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pre", "run", "post"]
