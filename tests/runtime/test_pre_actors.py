"""``--pre-actors``: pre-process and post-process on CPU actors of their own.

The placement rules are checked as tables; the data path on the shared Ray, where each
run is compared row by row with the one-actor path; the multi-node placement, by node
id, is in ``test_placement_cluster.py``.
"""

from __future__ import annotations

import json
import threading

import pytest

import dlspec_ray
from dlspec_ray.cli import main
from dlspec_ray.errors import PlacementError, UsageError
from dlspec_ray.hardware.resources import ActorResources
from dlspec_ray.options import RunOptions
from dlspec_ray.plan import ClusterView, plan
from dlspec_ray.runtime.host import PRE_POST, RUN_ONLY
from dlspec_ray.runtime.placement import pre_actor_nodes, pre_actor_request, reserve
from dlspec_ray.task import resolve_task

X86 = {"cpu_arch:x86_64": 1}


def node(node_id: str, cpus: float, gpus: float = 0, **resources: float) -> dict:
    offered = {"CPU": cpus, **resources}
    if gpus:
        offered["GPU"] = gpus
    return {"NodeID": node_id, "Alive": True, "Resources": offered}


def test_a_pre_process_actor_asks_for_one_cpu_of_the_host_actors_architecture():
    arch = {"gpu_arch:sm_90": 1, "cpu_arch:x86_64": 0.001}
    host = ActorResources(num_cpus=4, num_gpus=1, memory=2**34, resources=arch)
    assert pre_actor_request(host) == ActorResources(
        num_cpus=1, resources={"cpu_arch:x86_64": 0.001}
    )


NODES = [
    node("gpu", 4, 1, **X86),
    node("cpu-a", 1, **X86),
    node("cpu-b", 2, **X86),
    node("arm", 8, **{"cpu_arch:aarch64": 1}),
]


@pytest.mark.parametrize(
    ("nodes", "count", "expected"),
    [
        (NODES, 1, ["cpu-a"]),
        (NODES, 3, ["cpu-a", "cpu-b", "cpu-b"]),  # round-robin while they have room
        (NODES, 5, ["cpu-a", "cpu-b", "cpu-b", None, None]),  # the rest: Ray's choice
        ([node("gpu", 4, 1, **X86)], 2, [None, None]),  # no node without a GPU
        ([node("gpu", 4, 1, **X86), node("arm", 8, **{"cpu_arch:aarch64": 1})], 1, [None]),
    ],
)
def test_pre_process_actors_go_to_nodes_without_gpus_first(nodes, count, expected):
    request = ActorResources(num_cpus=1, resources={"cpu_arch:x86_64": 0.001})
    assert pre_actor_nodes(nodes, request, count) == expected


def test_reserving_takes_the_pinned_node_first_then_the_first_that_fits():
    request = ActorResources(num_cpus=1)
    left = reserve([node("a", 1), node("b", 2)], request, ["b", None, "a"])
    # "b" takes b; None takes the first that fits (a); "a" is full, so it falls to b.
    assert [n["Resources"]["CPU"] for n in left] == [0, 0]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"pre_actors": -1}, "pre_actors: expected 0 or more, got -1"),
        ({"pre_actors": True}, "pre_actors: expected 0 or more, got True"),
        ({"pre_actors": "2"}, "pre_actors: expected 0 or more, got '2'"),
    ],
)
def test_bad_pre_actor_counts_are_refused(settings, match):
    with pytest.raises(UsageError, match=match):
        RunOptions(**settings)


def one_node(cpus: int) -> ClusterView:
    return ClusterView((node("n1", cpus),))


def mnist_task():
    return resolve_task("mnist-8@1.0.0", "mnist-test@1.0.0")


def test_the_plan_places_pre_process_actors_first_and_the_host_actors_in_what_is_left():
    made = plan(mnist_task(), RunOptions(pre_actors=1), one_node(3))
    assert made.actors == 2  # 3 CPUs less the pre-process actor's one
    assert made.host.serves == RUN_ONLY
    assert made.pre_actors is not None and made.pre_actors.count == 1
    assert made.pre_actors.host.serves == PRE_POST
    assert made.pre_actors.host.num_threads == 1 and made.pre_actors.host.setup == ()
    text = made.describe()
    assert "host actors: 2 (each runs the model only)" in text
    assert (
        "pre-process and post-process actors: 1, each asking for CPU=1, on nodes without " in text
    )
    assert made.as_dict()["pre_actors"] == {"count": 1, "request": {"CPU": 1}, "nodes": ["n1"]}


def test_without_pre_actors_the_host_actors_serve_every_stage():
    made = plan(mnist_task(), RunOptions(), one_node(3))
    assert made.actors == 3 and made.pre_actors is None
    assert made.host.serves == ("pre-process", "run", "post-process")


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"pre_actors": 3}, r"(?s)3 pre-process actors for .* at most 2 at once.*--pre-actors 2"),
        (
            {"pre_actors": 1, "actors": 2},
            r"(?s)2 host actors \(beside the pre-process actors\) .* at most 1 .*--actors 1",
        ),
    ],
)
def test_more_actors_than_the_nodes_hold_are_refused_before_anything_starts(settings, match):
    with pytest.raises(PlacementError, match=match):
        plan(mnist_task(), RunOptions(**settings), one_node(2))


def test_loadgen_refuses_pre_actors(capsys):
    code = main(
        ["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
         "--scenario", "offline", "--pre-actors", "1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "--pre-actors with --scenario" in err and "Traceback" not in err


# On the shared Ray (2 CPUs): one host actor that runs the model, one pre-process actor.
SHAPE = {"limit": 1024, "batch_size": 64, "batches_per_call": 2, "progress": False}


@pytest.mark.usefixtures("ray_session")
def test_pre_actors_give_bit_identical_rows_and_name_the_node_that_ran_the_model(
    tmp_path, clean_run, faults
):
    import pyarrow.parquet as pq

    with dlspec_ray.Session() as session:
        result = session.evaluate(
            "mnist-8@1.0.0", "mnist-test@1.0.0", software="onnxruntime-cpu@1.0.0",
            out=tmp_path / "run", actors=1, pre_actors=1, trace=True, **SHAPE,
        )  # fmt: skip
    summary = result.summary
    assert summary["status"] == "ok" and summary["errors"]["count"] == 0
    assert summary["pre_actors"]["count"] == 1
    faults.assert_exactly_once_and_equal(tmp_path / "run", clean_run)
    rows = pq.read_table(tmp_path / "run" / "samples", columns=["node_id"])
    assert set(rows.column("node_id").to_pylist()) == set(summary["environment"]["nodes"])
    # The trace puts each hop on the actor that ran it: run on the host actor, the rest
    # on the pre-process actor.
    events = json.loads((tmp_path / "run" / "trace.json").read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    actors_of = {}
    for event in events:
        if event.get("cat") == "batch":
            actors_of.setdefault(event["name"], set()).add(event["args"]["actor"])
    assert len(actors_of["run"]) == 1 and len(actors_of["pre-process"]) == 1
    assert actors_of["run"] != actors_of["pre-process"]
    assert actors_of["post-process"] == actors_of["pre-process"] == actors_of["read"]


@pytest.mark.usefixtures("ray_session")
def test_a_pre_process_actor_killed_mid_run_is_restarted_and_loses_nothing(
    mnist_manifests, tmp_path, clean_run, faults
):
    import ray

    gate = tmp_path / "gate"
    gate.mkdir()
    mnist_manifests.edit("model", faults.RUN_LINE, faults.faulty_run_stage(gate, "hold"))
    paths = {k: mnist_manifests.path(k) for k in ("model", "dataset", "software")}
    out = tmp_path / "run"
    with dlspec_ray.Session() as session:
        done: dict = {}

        def evaluate() -> None:
            done["result"] = session.evaluate(
                paths["model"], paths["dataset"], software=paths["software"], out=out,
                actors=1, pre_actors=1, **SHAPE,
            )  # fmt: skip

        worker = threading.Thread(target=evaluate)
        worker.start()
        faults.wait_for(gate / "waiting", "the held run call")
        (pre_pool,) = [p for key, p in session._pools.items() if pool_serves(key) == PRE_POST]
        ray.kill(pre_pool.actors[0], no_restart=False)  # Ray restarts it; the run re-attaches it
        (gate / "release").touch()
        worker.join()
    summary = done["result"].summary
    assert summary["status"] == "ok" and summary["errors"]["count"] == 0
    assert summary["faults"]["actors_lost"] == 1 and summary["faults"]["actors_recovered"] == 1
    faults.assert_exactly_once_and_equal(out, clean_run)


def pool_serves(key: tuple) -> tuple[str, ...]:
    """The stages a session's pool serves, from its key (session._pool_key)."""
    spec_key = key[0]
    return spec_key[0]
