from __future__ import annotations

import pytest

from dlspec_ray.environments import ENVIRONMENTS, Environment, InlineEnvironment, make_environment
from dlspec_ray.errors import UsageError
from dlspec_ray.spec.types import StageSource


def stage(name: str, body: str, line: int = 1) -> StageSource:
    return StageSource(
        name=name, code=f"def fn(ctx, data):\n    {body}\n", file="m.yaml", line=line
    )


def test_inline_runs_stages_and_keeps_the_loaded_model():
    env = make_environment("inline", None)
    assert isinstance(env, Environment)
    env.start(
        {
            "load": stage("load", "return data['k'] * 10"),
            "run": stage("run", "return ctx['model'] + data"),
        },
        {"options": {}},
    )
    assert env.call("load", {"k": 4}).value == 40
    call = env.call("run", 2)
    assert call.value == 42
    assert call.seconds >= 0
    assert env.describe()["kind"] == "inline"
    env.close()
    env.close()


def test_a_model_without_load_still_loads():
    env = InlineEnvironment()
    env.start({"run": stage("run", "return data")}, {})
    assert env.call("load", {}).value is None


def test_unknown_environment_suggests_a_name():
    with pytest.raises(UsageError, match=r"unknown environment 'inlin'.*Did you mean 'inline'"):
        make_environment("inlin", None)
    assert "inline" in ENVIRONMENTS.names()
