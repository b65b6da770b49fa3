"""A dead environment restarts and the call is retried, a bounded number of times."""

from __future__ import annotations

import pytest

from dlspec_ray.environments import EnvironmentDied, make_environment
from dlspec_ray.spec.types import StageSource


def stage(name: str, body: str) -> StageSource:
    code = "def fn(ctx, data):\n" + "".join(f"    {ln}\n" for ln in body.splitlines())
    return StageSource(name=name, code=code, file="m.yaml", line=1)


def stages(marker: str) -> dict[str, StageSource]:
    return {
        "load": stage("load", "return 'loaded'"),
        "run": stage(
            "run",
            "import os, pathlib\n"
            f"marker = pathlib.Path({marker!r})\n"
            "if data == 'crash-once' and not marker.exists():\n"
            "    marker.touch()\n"
            "    print('dying once', flush=True)\n"
            "    os._exit(9)\n"
            "if data == 'crash-always':\n"
            "    print('dying again', flush=True)\n"
            "    os._exit(9)\n"
            "return (ctx['model'], os.getpid())",
        ),
    }


def test_a_call_that_killed_its_environment_once_succeeds_in_a_fresh_one(tmp_path):
    env = make_environment("process", None)
    env.start(stages(str(tmp_path / "crashed")), {})
    env.call("load", None)
    first_pid = env.call("run", "ok").value[1]
    value, pid = env.call("run", "crash-once").value
    assert value == "loaded"  # the fresh environment ran load again
    assert pid != first_pid
    assert env.describe()["restarts"] == 1
    env.close()


def test_a_call_that_always_kills_it_fails_with_the_log_tail_after_the_retries(tmp_path):
    env = make_environment("process", None)
    env.start(stages(str(tmp_path / "crashed")), {})
    env.call("load", None)
    with pytest.raises(EnvironmentDied, match=r"(?s)exited with code 9.*dying again.*3 time"):
        env.call("run", "crash-always")
    assert env.restarts == 2
    assert env.call("run", "ok").value[0] == "loaded"  # and it serves the next batch
    env.close()
