"""Host setup commands: run on the host that holds the actor, before its environment
starts, only when allowed; their output and exit code land in summary.json.

The commands are harmless: they write into the test's temp dir.
"""

from __future__ import annotations

import json
import shlex

import pytest

from dlspec_ray.cli import main
from dlspec_ray.errors import DLSpecError
from dlspec_ray.evaluation import evaluate
from dlspec_ray.runtime import HostActor, HostSpec
from dlspec_ray.runtime.pool import HostSetupError
from dlspec_ray.spec.loader import load_manifest


def with_setup(mnist_manifests, *commands: str) -> str:
    lines = "".join(f"  - {json.dumps(c)}\n" for c in commands)
    return mnist_manifests.edit("hardware", "  ncpu: 1\n", f"  ncpu: 1\nsetup:\n{lines}")


def host_spec(mnist_manifests, setup: tuple[str, ...]) -> HostSpec:
    return HostSpec(
        model=load_manifest(mnist_manifests.path("model")),
        software=load_manifest(mnist_manifests.path("software")),
        environment="inline",
        batch_size=64,
        num_threads=1,
        setup=setup,
    )


def test_the_host_actor_runs_setup_before_its_environment(mnist_manifests, tmp_path):
    marker = tmp_path / "marker"
    actor = HostActor(host_spec(mnist_manifests, (f"echo governor=performance > {marker}",)))
    info = actor.ready()
    assert info["error"] is None and marker.read_text() == "governor=performance\n"
    assert [(c["exit_code"], c["stdout"]) for c in info["host_setup"]] == [(0, "")]
    actor.close()


def test_a_failing_setup_command_keeps_the_environment_from_starting(mnist_manifests, tmp_path):
    spec = host_spec(mnist_manifests, ("echo 'cpupower: not permitted' >&2; exit 7", "true"))
    info = HostActor(spec).ready()
    assert info["failed_in"] == "host setup"
    assert info["environment"] is None
    assert info["error"].startswith("host setup command 1 of 2 failed with exit code 7:")
    assert "cpupower: not permitted" in info["error"]
    assert len(info["host_setup"]) == 1


@pytest.mark.usefixtures("ray_session")
def test_setup_output_and_exit_codes_go_into_the_summary(mnist_manifests, tmp_path):
    marker = tmp_path / "marker"
    hardware = with_setup(mnist_manifests, f"echo setting up; touch {marker}", "uname -m")
    result = evaluate(
        mnist_manifests.path("model"),
        mnist_manifests.path("dataset"),
        software=mnist_manifests.path("software"),
        hardware=hardware,
        limit=256,
        actors=1,
        out=tmp_path / "run",
        progress=False,
        allow_host_setup=True,
    )
    assert marker.exists()
    setup = json.loads((tmp_path / "run" / "summary.json").read_text())["host_setup"]
    assert setup["commands"] == [f"echo setting up; touch {marker}", "uname -m"]
    (actor,) = setup["actors"]
    assert actor["node_id"] == result.summary["environment"]["nodes"][0]
    first, second = actor["commands"]
    assert (first["exit_code"], first["stdout"], first["stderr"]) == (0, "setting up\n", "")
    assert second["exit_code"] == 0 and second["stdout"].strip() in ("x86_64", "aarch64")


@pytest.mark.usefixtures("ray_session")
def test_a_failing_setup_stops_the_task_with_a_clear_error(mnist_manifests, tmp_path):
    hardware = with_setup(mnist_manifests, "echo 'no such governor' >&2; exit 3")
    with pytest.raises(HostSetupError) as raised:
        evaluate(
            mnist_manifests.path("model"),
            mnist_manifests.path("dataset"),
            software=mnist_manifests.path("software"),
            hardware=hardware,
            limit=64,
            actors=1,
            out=tmp_path / "run",
            progress=False,
            allow_host_setup=True,
        )
    message = str(raised.value)
    assert "host setup command 1 of 1 failed with exit code 3" in message
    assert "no such governor" in message and "Fix the hardware manifest's setup commands" in message
    assert raised.value.exit_code == 2 and isinstance(raised.value, DLSpecError)
    assert not (tmp_path / "run").exists()


def test_without_the_flag_a_task_with_setup_is_refused_and_the_commands_printed(
    mnist_manifests, tmp_path, capsys
):
    marker = tmp_path / "marker"
    with_setup(mnist_manifests, f"touch {shlex.quote(str(marker))}")
    assert main(mnist_manifests.run_args("--out", str(tmp_path / "run"))) == 2
    err = capsys.readouterr().err
    assert "x86-64-cpu.yaml: setup: the hardware manifest x86-64-cpu@1.0.0 has host setup" in err
    assert f"  1. touch {marker}" in err
    assert "Pass --allow-host-setup" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("allow", [[], ["--allow-host-setup"]], ids=["refused", "allowed"])
def test_a_dry_run_prints_the_commands_and_runs_nothing(mnist_manifests, tmp_path, capsys, allow):
    marker = tmp_path / "marker"
    with_setup(mnist_manifests, f"touch {marker}", "echo second")
    assert main(mnist_manifests.run_args("--dry-run", *allow)) == 0
    out = capsys.readouterr().out
    assert "CPU=1, cpu_arch:x86_64=0.001" in out
    assert f"  1. touch {marker}\n  2. echo second" in out
    assert ("will run" in out) == bool(allow)
    assert "dry run: nothing was started or run." in out
    assert not marker.exists()
