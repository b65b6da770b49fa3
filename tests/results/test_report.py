"""The HTML report: every run in a table, three embedded plots, nothing outside the file."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.index import append_to_index, record_of
from dlspec_ray.results.report import write_report

LOGITS = np.eye(4, dtype=np.float32)


def test_the_report_is_self_contained(runs_factory):
    root = runs_factory.root
    for name, run_id in (("a", "aaaa"), ("b", "bbbb")):
        run = runs_factory(name, LOGITS, np.arange(4), run_id=run_id)
        append_to_index(root, record_of(run, root, label=f"label-{name}"))
    path = write_report(root)
    text = path.read_text()
    assert path == root / "report.html"
    assert "<td>label-a</td>" in text and "<td>bbbb</td>" in text
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == 3 and all(len(i) > 1000 for i in images)
    assert not re.search(r"(src|href)=['\"](http|/|\.)", text)  # nothing fetched from elsewhere


def test_runs_without_an_index_are_found_from_their_summaries(runs_factory):
    runs_factory("a", LOGITS, np.arange(4), run_id="aaaa")
    text = write_report(runs_factory.root, runs_factory.root / "out.html").read_text()
    assert "<td>aaaa</td>" in text


def test_an_empty_root_is_refused(tmp_path):
    with pytest.raises(DLSpecError, match="no runs to report"):
        write_report(tmp_path)


def test_the_report_shows_where_runs_of_the_same_samples_part(runs_factory):
    import numpy as np

    from dlspec_ray.results.report import build_report

    logits = np.eye(8, 4, dtype=np.float32)
    same = {"pre": "aaaa", "run": "bbbb", "post": "cccc"}
    runs_factory("first", logits, digests=same, started=0)
    runs_factory("other-framework", logits, digests={**same, "run": "dddd"}, started=1)
    page = build_report(runs_factory.root)
    assert "Where runs of the same samples part (stage view)" in page
    row = page.split("Where runs of the same samples part")[1]
    assert "<td>2 / 2</td><td>0 / 2</td>" in row  # pre-process identical, run not
    assert "<td>run</td><td>8 of 8</td>" in row  # first difference; top-1 still agrees
