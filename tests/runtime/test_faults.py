"""Faults in the middle of a run: each final table is compared, sample by sample, with a
clean run's, so a lost or doubled sample, or a changed output, fails the test.

The faults fire inside stage code on cue (tests/faults.py), so "mid-run" is a fact the
test waits for, not a moment it guesses.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import dlspec_ray
from dlspec_ray.cli import main

pytestmark = pytest.mark.usefixtures("ray_session")

REPO = Path(__file__).resolve().parents[2]


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_ray_kill_of_a_host_actor_mid_run_loses_and_doubles_nothing(
    mnist_manifests, tmp_path, clean_run, faults
):
    import ray

    gate = tmp_path / "gate"
    gate.mkdir()
    mnist_manifests.edit("model", faults.RUN_LINE, faults.faulty_run_stage(gate, "hold"))
    out = tmp_path / "run"
    paths = {k: mnist_manifests.path(k) for k in ("model", "dataset", "software")}
    with dlspec_ray.Session() as session:
        done: dict = {}

        def evaluate() -> None:
            done["result"] = session.evaluate(
                paths["model"], paths["dataset"], software=paths["software"], out=out,
                progress=False, limit=1024, batch_size=64, batches_per_call=2, actors=2,
            )  # fmt: skip

        worker = threading.Thread(target=evaluate)
        worker.start()
        faults.wait_for(gate / "waiting", "the held run call")
        (pool,) = session._pools.values()
        ray.kill(pool.actors[0], no_restart=False)  # Ray restarts it; the run re-attaches it
        (gate / "release").touch()
        worker.join()
    summary = done["result"].summary
    assert summary["status"] == "ok" and summary["errors"]["count"] == 0
    faults.assert_exactly_once_and_equal(out, clean_run)


def test_os_exit_in_stage_code_once_is_retried_on_a_restarted_actor(
    mnist_manifests, tmp_path, clean_run, faults, capsys
):
    gate = tmp_path / "gate"
    gate.mkdir()
    mnist_manifests.edit("model", faults.RUN_LINE, faults.faulty_run_stage(gate, "exit"))
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args(*faults.SHAPE, "--out", str(out))) == 0, (
        capsys.readouterr().err
    )
    assert (gate / "fired").exists()  # the actor did die under a shard
    summary = summary_of(out)
    assert summary["errors"]["count"] == 0
    assert summary["faults"]["actors_lost"] == 1 and summary["faults"]["shard_retries"] == 1
    faults.assert_exactly_once_and_equal(out, clean_run)


def first_images(batch: int) -> list[int]:
    """The pixel sums of each batch's first image: a stage can tell batches apart by them."""
    from dlspec_ray.artifacts import fetch_all
    from dlspec_ray.spec import load_manifest
    from dlspec_ray.stages import read_samples

    dataset = load_manifest(REPO / "manifests/datasets/mnist-test.yaml")
    samples = read_samples(dataset, fetch_all(dataset.sources))
    return [int(np.asarray(samples.inputs[i]).sum()) for i in range(0, 1024, batch)]


def test_a_batch_that_always_hangs_is_retried_then_quarantined(
    mnist_manifests, tmp_path, clean_run, capsys
):
    sums = first_images(64)
    target = 5  # the sixth batch, samples 320-383
    assert sums.count(sums[target]) == 1
    mnist_manifests.edit(
        "model",
        "      batch = np.asarray(data)\n",
        "      batch = np.asarray(data)\n"
        f"      if int(batch[0].sum()) == {sums[target]}:\n"
        "          __import__('time').sleep(100000)\n",
    )
    out = tmp_path / "run"
    args = mnist_manifests.run_args(
        "--limit", "1024", "--batch-size", "64", "--batches-per-call", "1", "--actors", "2",
        "--stage-timeout", "10", "--retries", "1", "--max-errors", "64", "--out", str(out),
    )  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    summary = summary_of(out)
    assert summary["errors"]["count"] == 64
    quarantine = summary["quarantine"]
    assert quarantine["samples"] == 64 and quarantine["table"] == "quarantine.parquet"
    table = pq.read_table(out / "quarantine.parquet")
    assert table.column("attempts").to_pylist() == [2] * 64  # the first try and one retry
    clean = pq.read_table(clean_run / "samples").sort_by("sample_id")
    in_target = pc.equal(clean["batch_id"], target)
    held = clean.filter(in_target)["sample_id"].to_pylist()
    assert sorted(table.column("sample_id").to_pylist()) == sorted(held)
    assert "--stage-timeout 10s" in table.column("error")[0].as_py()
    rows = pq.read_table(out / "samples").sort_by("sample_id")
    ok = rows.filter(pc.is_null(rows["error"]))["prediction"].to_pylist()
    want = clean.filter(pc.invert(in_target))["prediction"].to_pylist()
    assert ok == want  # every other sample as in the clean run


def test_when_every_actor_is_lost_for_good_the_run_stops_and_resumes_later(
    mnist_manifests, tmp_path, clean_run, faults, capsys
):
    """Restarts are bounded: actors that die and cannot load again end the run (exit 1), its
    complete shards kept; once the cause is gone, --resume finishes it."""
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "armed").touch()
    mnist_manifests.edit(
        "model",
        faults.RUN_LINE,
        "      import os, pathlib, uuid\n"
        f"      gate = pathlib.Path({str(gate)!r})\n"
        '      (gate / f"call-{uuid.uuid4().hex}").touch()\n'
        '      if (gate / "armed").exists() and len(list(gate.glob("call-*"))) > 6:\n'
        '          (gate / "fired").touch()\n'
        "          os._exit(1)\n" + faults.RUN_LINE,
    )
    mnist_manifests.edit(
        "model",
        "      import onnxruntime as ort\n",
        "      import onnxruntime as ort, pathlib\n"
        f"      gate = pathlib.Path({str(gate)!r})\n"
        '      if (gate / "armed").exists() and (gate / "fired").exists():\n'
        '          raise RuntimeError("this model cannot load again")\n',
    )
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args(*faults.SHAPE, "--out", str(out))) == 1
    err = capsys.readouterr().err
    assert "every host actor died and none came back" in err and "Traceback" not in err
    assert f"dlspec-ray run --resume {out}" in err
    assert (out / "run.json").is_file() and not (out / "summary.json").exists()

    (gate / "armed").unlink()  # the cause is gone: the same manifests now run
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    faults.assert_exactly_once_and_equal(out, clean_run)
