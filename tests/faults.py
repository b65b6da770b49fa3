"""Fault injection for the reliability tests: stage code that misbehaves on cue, and checks
that a run holds every sample exactly once.

A fault fires inside the mnist-8 run stage on its Nth call (counted across every actor
through files in a gate folder), exactly once. "hold" makes that call wait until the test
creates ``release``, so a test acts while the run is provably mid-way, with no clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

# The runs the fault tests compare: 1,024 samples in 8 shards of 2 batches, over 2 actors.
SHAPE = ("--limit", "1024", "--batch-size", "64", "--batches-per-call", "2", "--actors", "2")

RUN_LINE = '      return ctx["model"].run(None, {ctx["inputs"][0]["name"]: data})[0]\n'

_ACTIONS = {
    "hold": (
        '(gate / "waiting").write_text(str(os.getpid()))\n'
        'while not (gate / "release").exists():\n'
        "    time.sleep(0.02)\n"
    ),
    "exit": "os._exit(1)\n",
}
# Every call from the Nth on waits, each leaving a waiting-<node id>-<pid> file, until
# ``release``: the test sees which nodes hold work at that moment.
_HOLD_ALL = (
    "      import os, pathlib, time, uuid\n"
    "      import ray\n"
    "      gate = pathlib.Path({gate!r})\n"
    '      (gate / f"call-{{uuid.uuid4().hex}}").touch()\n'
    '      if len(list(gate.glob("call-*"))) >= {at_call}:\n'
    "        node = ray.get_runtime_context().get_node_id()\n"
    '        (gate / f"waiting-{{node}}-{{os.getpid()}}").touch()\n'
    '        while not (gate / "release").exists():\n'
    "          time.sleep(0.02)\n"
)


def faulty_run_stage(gate: Path, action: str, at_call: int = 3) -> str:
    """The run stage's code with ``action`` done on call ``at_call`` (once, by one actor);
    "hold-all" holds that call and every later one instead."""
    if action == "hold-all":
        return _HOLD_ALL.format(gate=str(gate), at_call=at_call) + RUN_LINE
    body = _ACTIONS[action].splitlines()
    indented = "".join(f"          {line}\n" for line in body)
    return (
        "      import os, pathlib, time, uuid\n"
        f"      gate = pathlib.Path({str(gate)!r})\n"
        '      (gate / f"call-{uuid.uuid4().hex}").touch()\n'
        f'      if len(list(gate.glob("call-*"))) >= {at_call}:\n'
        "        try:\n"
        '          os.close(os.open(gate / "fired", os.O_CREAT | os.O_EXCL))\n'
        "        except FileExistsError:\n"
        "          pass\n"
        "        else:\n"
        f"{indented}" + RUN_LINE
    )


def wait_for(path: Path, what: str, deadline_s: float = 300) -> None:
    """Wait for a file a stage creates; the deadline only bounds a broken test."""
    wait_until(path.exists, f"{what} ({path} never appeared)", deadline_s)


COMPARED = ["sample_id", "label", "prediction", "top_k", "scores", "output", "error"]


def assert_exactly_once_and_equal(run_dir: Path, clean_dir: Path) -> None:
    """Every sample once, and each row's outputs bit-identical to the clean run's."""
    got = pq.read_table(run_dir / "samples", columns=COMPARED).sort_by("sample_id")
    want = pq.read_table(clean_dir / "samples", columns=COMPARED).sort_by("sample_id")
    ids = got.column("sample_id").to_pylist()
    assert len(ids) == len(set(ids)), "a sample appears more than once"
    assert ids == want.column("sample_id").to_pylist()
    for name in COMPARED[1:]:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def wait_until(condition, what: str, deadline_s: float = 300) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {deadline_s:.0f}s")
        time.sleep(0.05)


def inflight_ray_temp() -> str:
    """The temp dir of the embedded Ray a driver on this machine recorded (inflight.py)."""
    import json

    from dlspec_ray.artifacts import default_cache_dir

    records = [json.loads(p.read_text()) for p in (default_cache_dir() / "inflight").glob("*.json")]
    (path,) = [r["path"] for r in records if r["kind"] == "ray-temp"]
    return path
