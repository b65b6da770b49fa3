"""The plan: what a run will do, checked and said before anything runs."""

from __future__ import annotations

import json

import pytest

from dlspec_ray.cli import main
from dlspec_ray.errors import PlacementError, UsageError
from dlspec_ray.evaluation import dry_run
from dlspec_ray.options import RunOptions
from dlspec_ray.plan import ClusterView, plan
from dlspec_ray.task import resolve_task


def _node(cpus: float, **extra: float) -> dict:
    return {
        "NodeID": "n1",
        "Alive": True,
        "Resources": {"CPU": cpus, "cpu_arch:x86_64": 1, **extra},
    }


def test_a_dry_run_plans_shards_of_sample_ranges_without_starting_ray(mnist_manifests):
    p = dry_run(
        mnist_manifests.path("model"),
        mnist_manifests.path("dataset"),
        hardware=mnist_manifests.path("hardware"),
        run=RunOptions(batch_size=100, limit=1000, actors=2, batches_per_call=3),
    )
    assert p.samples == 1000
    assert [(s.start, s.stop) for s in p.shards] == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert p.actors == 2 and p.batches_per_call == 3
    assert p.environment == "inline"
    text = p.describe()
    assert "shards: 4 (sample ranges [0, 300), [300, 600), [600, 900), ... [900, 1000))" in text
    assert text.endswith("dry run: nothing was started or run.")


def test_dry_run_json_is_the_plan_as_data(mnist_manifests, capsys):
    args = mnist_manifests.run_args("--dry-run", "--json", "--limit", "128", "--actors", "1")
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    # Two shards per actor, so the actor's queue stays full.
    assert out["samples"] == 128 and out["shards"] == [[0, 64], [64, 128]]
    assert out["request"]["CPU"] == 1


def test_the_plan_refuses_more_actors_than_the_nodes_hold(mnist_manifests):
    task = resolve_task(mnist_manifests.path("model"), mnist_manifests.path("dataset"),
                        hardware=mnist_manifests.path("hardware"))  # fmt: skip
    with pytest.raises(PlacementError, match=r"3 host actors .* at most 2 at once"):
        plan(task, RunOptions(actors=3), ClusterView((_node(2),), live=False))


def test_the_plan_refuses_hardware_no_node_has(mnist_manifests):
    mnist_manifests.edit("hardware", "arch: x86_64", "arch: riscv64")
    task = resolve_task(mnist_manifests.path("model"), mnist_manifests.path("dataset"),
                        hardware=mnist_manifests.path("hardware"))  # fmt: skip
    with pytest.raises(PlacementError, match="no node of the Ray cluster can host"):
        plan(task, RunOptions(), ClusterView((_node(2),), live=False))


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"batch_sise": 4}, r"batch_sise: not a run setting; did you mean 'batch_size'\?"),
        ({"batch_size": 0}, r"batch_size: expected a positive integer, got 0"),
        ({"batch_size": True}, r"batch_size: expected a positive integer, got True"),
        ({"ready_timeout_s": 0}, r"ready_timeout_s: expected seconds > 0"),
        ({"options": [1]}, r"options: expected a mapping of model options, got list"),
        ({"environment": "inlin"}, r"did you mean 'inline'\?"),
        ({"warmup": -1}, r"warmup: expected 0 or more, got -1"),
        ({"warmup": 1.5}, r"warmup: expected 0 or more, got 1.5"),
    ],
)
def test_run_options_refuse_bad_settings_when_built(settings, match):
    with pytest.raises(UsageError, match=match):
        RunOptions().with_settings(**settings)
