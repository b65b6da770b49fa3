from __future__ import annotations

import numpy as np

from dlspec_ray.environments import InlineEnvironment
from dlspec_ray.spec.types import StageSource
from dlspec_ray.stages import StageChain


def chain(pre: str, run: str = "return data * 2", post: str = "return data") -> StageChain:
    def src(name: str, body: str, line: int) -> StageSource:
        return StageSource(name, f"def fn(ctx, data):\n    {body}\n", "/m/model.yaml", line)

    env = InlineEnvironment()
    env.start(
        {
            "pre-process": src("pre-process", pre, 10),
            "run": src("run", run, 20),
            "post-process": src("post-process", post, 30),
        },
        {},
    )
    return StageChain(env)


def test_each_hop_adds_its_own_time():
    c = chain("return data + 1")
    out = c.post(c.run(c.pre(np.arange(3))))
    assert out.error is None
    assert out.value.tolist() == [2, 4, 6]
    assert set(out.ms) == {"pre", "run", "post"}
    assert all(v >= 0 for v in out.ms.values())


def test_a_failing_stage_travels_down_the_chain_with_its_manifest_line():
    c = chain("return data + 1", run="raise ValueError('bad batch')")
    out = c.post(c.run(c.pre(np.arange(3))))
    assert out.value is None
    assert out.error == "run: ValueError: bad batch (at /m/model.yaml:21)"
    assert set(out.ms) == {"pre"}
