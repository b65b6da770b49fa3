"""The environments end to end on a real local Ray: same answers everywhere, clean failures,
nothing left behind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import dlspec_ray
import dlspec_ray.runtime
from dlspec_ray.cli import main
from dlspec_ray.environments.shm import env_dir_owner, shm_root

pytestmark = pytest.mark.usefixtures("ray_session")

REPO = Path(__file__).resolve().parents[2]
SOFTWARE = REPO / "manifests" / "software"
RUN_STAGE = 'return ctx["model"].run(None, {ctx["inputs"][0]["name"]: data})[0]'


def by_sample(result) -> dict[str, dict]:
    return {r["sample_id"]: r for r in result.table.to_pylist()}


def ours() -> set[str]:
    return {p.name for p in shm_root().iterdir() if env_dir_owner(p.name)}


def test_mnist_is_bit_identical_and_0_9890_inline_in_a_process_and_in_docker(
    repo_cwd, tmp_path, docker_engine, onnxruntime_image
):
    before = ours()
    results = {}
    for software in ("onnxruntime-cpu", "onnxruntime-cpu-process", "onnxruntime-cpu-docker"):
        results[software] = dlspec_ray.evaluate(
            "mnist-8@1.0.0",
            "mnist-test@1.0.0",
            software=f"{software}@1.0.0",
            reference="mnist-8-onnxruntime-reference@1.0.0",
            batch_size=256,
            out=tmp_path / software,
            progress=False,
        )
    kinds = {s: r.summary["environment"]["kind"] for s, r in results.items()}
    assert kinds == {"onnxruntime-cpu": "inline", "onnxruntime-cpu-process": "process",
                     "onnxruntime-cpu-docker": "docker"}  # fmt: skip
    inline = by_sample(results["onnxruntime-cpu"])
    assert len(inline) == 10_000
    for software, result in results.items():
        summary = result.summary
        assert summary["accuracy"]["top1"] == pytest.approx(0.9890, abs=1e-12), software
        assert summary["status"] == "ok" and summary["reference"]["verdict"] == "PASS"
        assert summary["environment"]["framework"] == {"name": "onnxruntime", "version": "1.32.0"}
        rows = by_sample(result)
        assert rows.keys() == inline.keys()
        for key in ("output", "scores", "top_k"):
            got = np.array([rows[i][key] for i in inline], dtype=np.float64)
            want = np.array([inline[i][key] for i in inline], dtype=np.float64)
            assert got.tobytes() == want.tobytes(), (software, key)
    docker = results["onnxruntime-cpu-docker"].summary["environment"]
    assert docker["image_id"] == onnxruntime_image.id and docker["python"].startswith("3.")
    process = results["onnxruntime-cpu-process"].summary["environment"]
    assert "/venvs/" in process["interpreter"]
    # Nothing is left behind by a run: no container, no shared memory.
    assert docker_engine.containers.list(all=True, filters={"label": "dlspec-ray.managed=1"}) == []
    assert ours() - before == set()


def test_two_software_stacks_side_by_side_on_the_same_model_and_dataset(repo_cwd, tmp_path):
    runs = {
        "onnxruntime": dlspec_ray.evaluate(
            "mnist-8@1.0.0", "mnist-test@1.0.0", software="onnxruntime-cpu-process@1.0.0",
            batch_size=256, limit=512, out=tmp_path / "ort", progress=False,
        ),
        "onnx-reference": dlspec_ray.evaluate(
            "mnist-8-onnx-reference@1.0.0", "mnist-test@1.0.0", software="onnx-reference-cpu",
            batch_size=256, limit=512, out=tmp_path / "ref", progress=False,
        ),
    }  # fmt: skip
    envs = {name: r.summary["environment"] for name, r in runs.items()}
    assert envs["onnxruntime"]["framework"] == {"name": "onnxruntime", "version": "1.32.0"}
    assert envs["onnx-reference"]["framework"] == {"name": "onnx-reference", "version": "1.23.2"}
    assert envs["onnx-reference"]["packages"] == {"onnx": "1.23.2", "numpy": "2.4.6"}
    assert envs["onnx-reference"]["interpreter"] != envs["onnxruntime"]["interpreter"]
    ort, ref = by_sample(runs["onnxruntime"]), by_sample(runs["onnx-reference"])
    assert ort.keys() == ref.keys() and len(ort) == 512
    logits = {name: np.array([rows[i]["output"] for i in ort]) for name, rows in
              (("ort", ort), ("ref", ref))}  # fmt: skip
    assert np.abs(logits["ort"] - logits["ref"]).max() < 1e-3
    agree = np.mean([ort[i]["prediction"] == ref[i]["prediction"] for i in ort])
    assert agree == 1.0
    assert runs["onnx-reference"].summary["accuracy"]["top1"] == pytest.approx(
        runs["onnxruntime"].summary["accuracy"]["top1"]
    )


def test_the_command_line_picks_the_environment(repo_cwd, tmp_path, capsys):
    code = main(["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
                 "--software", str(SOFTWARE / "onnxruntime-cpu-docker.yaml"),
                 "--environment", "process", "--limit", "300", "--no-progress", "--json",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["environment"]["kind"] == "process"


def test_a_batch_that_kills_its_environment_once_is_retried_in_a_fresh_one(
    repo_cwd, mnist_manifests, tmp_path
):
    marker = tmp_path / "crashed-once"
    mnist_manifests.edit(
        "model",
        RUN_STAGE,
        f"import os, pathlib\n      m = pathlib.Path({str(marker)!r})\n"
        "      if data.shape[0] == 44 and not m.exists():\n"
        "          m.touch()\n          os._exit(3)\n      " + RUN_STAGE,
    )
    result = dlspec_ray.evaluate(
        mnist_manifests.path("model"), "mnist-test@1.0.0",
        software=str(SOFTWARE / "onnxruntime-cpu-process.yaml"),
        batch_size=256, limit=300, out=tmp_path / "run", progress=False,
    )  # fmt: skip
    assert marker.exists()  # it did die once
    assert result.summary["errors"]["count"] == 0
    assert result.summary["samples"] == 300


def test_a_container_dying_mid_run_fails_its_batch_with_the_log_tail(
    repo_cwd, mnist_manifests, tmp_path, capsys, docker_engine, onnxruntime_image
):
    mnist_manifests.edit(
        "model",
        RUN_STAGE,
        "import os, sys\n      if data.shape[0] == 44:\n"
        "          print('simulated segfault in the framework', file=sys.stderr, flush=True)\n"
        "          os._exit(139)\n      " + RUN_STAGE,
    )
    out = tmp_path / "run"
    code = main(mnist_manifests.run_args(
        "--software", str(SOFTWARE / "onnxruntime-cpu-docker.yaml"),
        "--batch-size", "256", "--limit", "300", "--out", str(out)))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    message = summary["errors"]["messages"][0]["message"]
    assert message.startswith("run: EnvironmentDied: the docker environment (image ")
    assert "exited with code 139" in message and "simulated segfault in the framework" in message
    assert "tried 3 time(s)" in message
    assert summary["errors"]["count"] == 44  # the other batch went through
    assert docker_engine.containers.list(all=True, filters={"label": "dlspec-ray.managed=1"}) == []


def test_a_crash_while_loading_is_bad_input_with_the_log_tail(
    repo_cwd, mnist_manifests, tmp_path, capsys, docker_engine, onnxruntime_image
):
    mnist_manifests.edit(
        "model",
        "import onnxruntime as ort\n",
        "import os, sys\n      print('cannot load this graph', file=sys.stderr, flush=True)\n"
        "      os._exit(134)\n",
    )
    code = main(mnist_manifests.run_args(
        "--software", str(SOFTWARE / "onnxruntime-cpu-docker.yaml"), "--limit", "64",
        "--out", str(tmp_path / "run")))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "could not start" in err and "exited with code 134" in err
    assert "cannot load this graph" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_killed_actor_leaves_an_orphan_that_gc_removes(
    repo_cwd, tmp_path, capsys, docker_engine, onnxruntime_image
):
    import ray

    with dlspec_ray.Session() as session:
        result = session.evaluate(
            "mnist-8@1.0.0", "mnist-test@1.0.0", software="onnxruntime-cpu-docker@1.0.0",
            batch_size=256, limit=512, actors=2, out=tmp_path / "run", progress=False,
        )  # fmt: skip
        run_id = result.summary["run_id"]
        labelled = {"label": f"dlspec-ray.run={run_id}"}
        running = docker_engine.containers.list(filters=labelled)
        pool = next(iter(session._pools.values()))
        actor_ids = {a._actor_id.hex() for a in pool.actors}
        assert {c.labels["dlspec-ray.actor"] for c in running} == actor_ids
        folders = {c.name for c in running}
        assert folders <= ours()
        # What a crash does to an actor Ray will not restart: ray.kill runs no
        # __ray_shutdown__. The handles stay referenced until the end: Ray 2.60 ends an
        # actor whose handles go out of scope gracefully, which may stop the container first.
        killed = list(pool.actors)
        for actor in killed:
            ray.kill(actor, no_restart=True)
        pool.actors = []
        owners = [int(c.labels["dlspec-ray.owner"].split(".")[0]) for c in running]

        # gc removes only the containers of dead owners: poll until the killed actors'
        # processes are gone (a generous deadline: a loaded machine reaps them slowly).
        def owners_alive() -> bool:
            return any(os.path.exists(f"/proc/{pid}") for pid in owners)

        deadline = time.monotonic() + 120
        while owners_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not owners_alive(), "the killed host actors' processes did not exit"
    assert len(docker_engine.containers.list(all=True, filters=labelled)) == 2  # orphans
    assert main(["env", "gc"]) == 0
    assert "2 container(s)" in capsys.readouterr().out
    assert docker_engine.containers.list(all=True, filters=labelled) == []
    assert folders & ours() == set()


def test_the_dataset_reader_runs_in_the_container_confined(
    repo_cwd, mnist_manifests, tmp_path, docker_engine, onnxruntime_image
):
    """With docker, the reader is manifest code like the stages: it runs in the container,
    as an unprivileged user, under the hardware manifest's limits, sees the dataset's
    files, and not the rest of the host."""
    host_file = REPO / "pyproject.toml"
    mnist_manifests.edit("hardware", "  ncpu: 1\n", "  ncpu: 1\nmemory: 768MiB\n")
    mnist_manifests.edit(
        "dataset",
        "  def fn(ctx, data):\n",
        "  def fn(ctx, data):\n"
        "      import os, pathlib\n"
        "      if not os.path.exists('/.dockerenv'):\n"
        "          raise RuntimeError('the reader is not in a container')\n"
        f"      if os.path.exists({str(host_file)!r}):\n"
        "          raise RuntimeError('the reader sees a host file outside its mounts')\n"
        "      if os.getuid() == 0:\n"
        "          raise RuntimeError('the reader runs as root')\n"
        "      cg = pathlib.Path('/sys/fs/cgroup/memory/memory.limit_in_bytes')\n"
        "      cg = cg if cg.exists() else pathlib.Path('/sys/fs/cgroup/memory.max')\n"
        "      limit = cg.read_text().strip()\n"
        "      if limit != str(768 * 2**20):\n"
        "          raise RuntimeError(f'the reader has the memory limit {limit}')\n",
    )
    result = dlspec_ray.evaluate(
        mnist_manifests.path("model"), mnist_manifests.path("dataset"),
        software=str(SOFTWARE / "onnxruntime-cpu-docker.yaml"), limit=256, progress=False,
        hardware=mnist_manifests.path("hardware"), out=tmp_path / "run",
    )  # fmt: skip
    assert result.summary["errors"]["count"] == 0 and result.summary["samples"] == 256
    inline = mnist_manifests.run_args("--limit", "256", "--out", str(tmp_path / "inline"))
    assert main(inline) == 2  # the same reader, inline: it runs on the host, and says so


def test_docker_kill_of_a_container_mid_batch_is_retried_in_a_fresh_one(
    repo_cwd, mnist_manifests, tmp_path, docker_engine, onnxruntime_image, faults
):
    """The held batch waits in the container until the test has killed it with `docker kill`;
    the host actor starts a fresh container and runs the batch again there."""
    import threading

    cache = tmp_path / "cache"  # mounted read-only in the container: the gate is seen there
    gate = cache / "gate"
    gate.mkdir(parents=True)
    hold = (
        "      import pathlib, time\n"
        f"      gate = pathlib.Path({str(gate)!r})\n"
        '      if not (gate / "release").exists():\n'
        '          pathlib.Path("waiting").write_text("held")  # the container\'s own folder\n'
        '          while not (gate / "release").exists():\n'
        "              time.sleep(0.02)\n"
    )
    mnist_manifests.edit("model", faults.RUN_LINE, hold + faults.RUN_LINE)
    model, dataset = mnist_manifests.path("model"), mnist_manifests.path("dataset")
    shape = {"limit": 512, "batch_size": 64, "batches_per_call": 2, "progress": False}
    clean = dlspec_ray.evaluate(
        "mnist-8@1.0.0", "mnist-test@1.0.0", out=tmp_path / "clean", **shape
    )
    done: dict = {}

    def evaluate() -> None:
        done["result"] = dlspec_ray.evaluate(
            model, dataset, software=str(SOFTWARE / "onnxruntime-cpu-docker.yaml"),
            out=tmp_path / "run", cache_dir=cache, actors=1, **shape,
        )  # fmt: skip

    worker = threading.Thread(target=evaluate)
    worker.start()

    def held() -> list:
        found = []
        for c in docker_engine.containers.list(filters={"label": "dlspec-ray.managed=1"}):
            io = [m["Source"] for m in c.attrs["Mounts"] if m["Destination"] == "/dlspec-ray/io"]
            if io and (Path(io[0]) / "waiting").exists():
                found.append(c)
        return found

    faults.wait_until(held, "a batch held in its container")
    (container,) = held()
    container.kill()  # `docker kill`: SIGKILL to the agent, mid-batch
    (gate / "release").touch()
    worker.join()
    summary = done["result"].summary
    assert summary["errors"]["count"] == 0
    # The killed container was replaced (and removed), not reused.
    assert container.id not in {c.id for c in docker_engine.containers.list(all=True)}
    faults.assert_exactly_once_and_equal(tmp_path / "run", clean.out_dir)


@pytest.mark.parametrize(
    "software, replace, message",
    [
        ("onnxruntime-cpu-docker.yaml", ("dlspec-ray/onnxruntime-cpu:1.32.0", "dlspec-ray/no:1"),
         r"container: the image 'dlspec-ray/no:1' is not in the Docker engine .* "
         r"dlspec-ray images build "),
        ("onnxruntime-cpu-process.yaml", ("environment: process", "environment: process\npython:"
                                          " /no/python3"),
         r"python: '/no/python3' does not exist; give the path of a python3 executable"),
        ("onnxruntime-cpu-process.yaml", ("numpy==2.4.6", "numpy==0.0.0"),
         r"packages: \['onnxruntime==1.32.0', 'numpy==0.0.0'\] cannot be installed offline"),
        ("onnxruntime-cpu.yaml", ("environment: inline", "environment: docker\n"
                                  "container: dlspec-ray/onnxruntime-cpu:1.32.0"),
         r"DOCKER_HOST=unix://\S+/down.sock does not answer .*scripts/dockerd.sh start DIR"),
    ],
)  # fmt: skip
def test_bad_environments_fail_before_ray_with_exit_2(
    repo_cwd, tmp_path, capsys, monkeypatch, software, replace, message
):
    if "down" in message:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/down.sock")
    if "dlspec-ray/no:1" in replace[1]:
        pytest.importorskip("docker")
        if os.environ.get("DLSPEC_RAY_DOCKER_UNAVAILABLE"):
            pytest.skip(os.environ["DLSPEC_RAY_DOCKER_UNAVAILABLE"])
    path = tmp_path / software
    path.write_text((SOFTWARE / software).read_text().replace(*replace))

    def no_ray(*args, **kwargs):
        raise AssertionError("a bad environment must be refused before Ray is used")

    monkeypatch.setattr(dlspec_ray.runtime, "connect", no_ray)
    args = ["--software", str(path), "--no-progress", "--out", str(tmp_path / "run")]
    code = main(["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"dlspec-ray: error: {path}: " in err
    assert __import__("re").search(message, err), err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
