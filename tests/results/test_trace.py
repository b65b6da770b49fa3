"""trace.json is streamed event by event and is valid JSON once closed."""

from __future__ import annotations

import json

from dlspec_ray.results.trace import TraceFile
from dlspec_ray.stages.trace import Where, batch_events


def test_the_trace_file_names_each_node_and_actor_once_and_closes_as_json(tmp_path):
    trace = TraceFile(tmp_path / "trace.json")
    one, two = Where("node-1", "actor-1", "docker"), Where("node-1", "actor-2", "docker")
    trace.add(batch_events(0, [0], [[("pre", 0, 1), ("run", 1, 2)]], one))
    trace.add(batch_events(1, [1], [[("pre", 0, 1)]], two))
    trace.add(batch_events(2, [2], [[("pre", 3, 4)]], one))
    trace.add([])
    text = (tmp_path / "trace.json").read_text()
    assert not text.rstrip().endswith("]")  # a run cut short leaves what viewers accept
    trace.close()
    events = json.loads((tmp_path / "trace.json").read_text())
    names = [e["args"]["name"] for e in events if e["ph"] == "M"]
    assert names == [
        "node node-1", "host actor actor-1 (docker)", "node node-1", "host actor actor-2 (docker)",
    ]  # fmt: skip
    spans = [e for e in events if e["ph"] == "X"]
    assert [e["name"] for e in spans] == ["pre-process", "run", "pre-process", "pre-process"]
    assert trace.events == len(events) == 8
