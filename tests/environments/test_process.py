"""The process environment: stage code in a separate interpreter, reached over the wire."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from dlspec_ray.environments import (
    EnvironmentDied,
    EnvironmentUnavailable,
    InlineEnvironment,
    ProcessEnvironment,
)
from dlspec_ray.spec.types import SoftwareManifest, StageSource
from dlspec_ray.stages import StageChain


def stage(name: str, body: str, line: int = 10) -> StageSource:
    code = "def fn(ctx, data):\n" + "".join(f"    {ln}\n" for ln in body.splitlines())
    return StageSource(name=name, code=code, file="/models/m.yaml", line=line)


def software(**fields) -> SoftwareManifest:
    base = dict(kind="software", id="0", name="sw", version="1.0.0", description="", path=None)
    return SoftwareManifest(**{**base, **fields})


STAGES = {
    "load": stage("load", "return {'scale': data['scale']}"),
    "pre-process": stage("pre-process", "import numpy as np\nreturn np.asarray(data, np.float32)"),
    "run": stage(
        "run",
        "import os, numpy as np\n"
        "if data.size and data.flat[0] < 0:\n"
        "    raise ValueError(f'negative input: {data.flat[0]}')\n"
        "return data * ctx['model']['scale'] + float(os.environ.get('OFFSET', '0'))",
        line=20,
    ),
    "post-process": stage("post-process", "return {'pid': __import__('os').getpid(), 'x': data}"),
}


@pytest.fixture
def env():
    environment = ProcessEnvironment(software(env={"OFFSET": "0.5"}))
    environment.start(STAGES, {"options": {}})
    environment.call("load", {"scale": 3.0})
    yield environment
    environment.close()


def test_stages_run_in_another_interpreter_with_the_manifests_env(env):
    x = np.arange(300_000, dtype=np.float32).reshape(300, 1000)
    out = env.call("run", env.call("pre-process", x).value)
    np.testing.assert_array_equal(out.value, x * 3.0 + 0.5)
    assert out.seconds > 0
    post = env.call("post-process", out.value).value
    assert post["pid"] != os.getpid()
    info = env.describe()
    assert info["kind"] == "process"
    assert info["interpreter"] == sys.executable  # no packages, no python: this interpreter


def test_a_stage_error_reads_the_same_as_inline(env):
    inline = InlineEnvironment(software(env={"OFFSET": "0.5"}))
    inline.start(STAGES, {"options": {}})
    inline.call("load", {"scale": 3.0})
    bad = np.full((2, 2), -1.0, dtype=np.float32)
    remote_error = StageChain(env).run(StageChain(env).pre(bad)).error
    inline_error = StageChain(inline).run(StageChain(inline).pre(bad)).error
    assert remote_error == inline_error
    assert remote_error == "run: ValueError: negative input: -1.0 (at /models/m.yaml:23)"
    # The environment still serves after a stage error.
    assert env.call("run", np.ones(1, np.float32)).value.tolist() == [3.5]


def test_a_fused_chain_equals_three_calls_and_names_a_failing_stage(env):
    """One round trip for all three stages; each timed where it ran, the value of the last."""
    inline = InlineEnvironment(software(env={"OFFSET": "0.5"}))
    inline.start(STAGES, {"options": {}})
    inline.call("load", {"scale": 3.0})
    batch = np.arange(4, dtype=np.float32).reshape(2, 2)
    for environment in (env, inline):
        fused = StageChain(environment).fused(batch)
        chain = StageChain(environment)
        three = chain.post(chain.run(chain.pre(batch)))
        assert fused.done and fused.error is None and set(fused.ms) == {"pre", "run", "post"}
        assert fused.value.keys() == three.value.keys()
        for key in fused.value:
            assert np.asarray(fused.value[key]).tobytes() == np.asarray(three.value[key]).tobytes()
        bad = StageChain(environment).fused(np.full((2, 2), -1.0, dtype=np.float32))
        assert bad.error == "run: ValueError: negative input: -1.0 (at /models/m.yaml:23)"
        assert set(bad.ms) == {"pre"}  # the stages before the failing one are timed


def test_close_ends_the_interpreter_and_removes_its_shared_memory():
    environment = ProcessEnvironment(None)
    environment.start(STAGES, {})
    folder = environment.folder
    proc = environment._proc
    assert folder is not None and folder.exists()
    environment.close()
    environment.close()
    assert proc is not None and proc.poll() is not None
    assert not folder.exists()


@pytest.mark.parametrize("chained", [False, True])
def test_a_crash_mid_call_is_reported_with_the_log_tail(chained):
    """Alone or in a chain (where the agent said which stage it began), the stage is named."""
    crash = dict(STAGES)
    crash["run"] = stage("run", "print('about to crash', flush=True)\nimport os\nos._exit(7)")
    environment = ProcessEnvironment(None)
    environment.start(crash, {})
    try:
        with pytest.raises(EnvironmentDied, match=r"exited with code 7 during 'run'") as died:
            if chained:
                environment.call_chain(("pre-process", "run", "post-process"), 1)
            else:
                environment.call("run", 1)
        assert "about to crash" in str(died.value)
        assert died.value.exit_code == 7
        assert died.value.stage == ("run" if chained else None)
    finally:
        environment.close()


def test_a_crash_while_starting_is_reported_with_the_log_tail(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no agent here' >&2\nexit 3\n")
    fake.chmod(0o755)
    environment = ProcessEnvironment(software(python=str(fake)))
    with pytest.raises(EnvironmentUnavailable, match="not a Python 3 interpreter"):
        environment.start(STAGES, {})


@pytest.mark.parametrize(
    "python, message",
    [
        ("/no/such/python3", r"python: '/no/such/python3' does not exist; give the path"),
        ("{tmp}/plain.txt", r"python: '\S+/plain.txt' is not executable; give the path"),
        ("/bin/true", r"python: '/bin/true' is not a Python 3 interpreter"),
        ("{tmp}/script", r"python: '\S+/script' is not a Python 3 interpreter \(it said: nope\)"),
    ],
)
def test_a_bad_interpreter_path_is_refused_before_anything_starts(python, message, tmp_path):
    (tmp_path / "plain.txt").write_text("print('hi')\n")
    (tmp_path / "script").write_text("#!/bin/sh\necho nope >&2\nexit 1\n")
    (tmp_path / "script").chmod(0o755)
    manifest = software(python=python.format(tmp=tmp_path), path=Path("sw.yaml"))
    with pytest.raises(EnvironmentUnavailable, match="^sw.yaml: " + message):
        ProcessEnvironment.prepare(manifest)


def test_the_hardware_memory_is_the_interpreters_limit():
    """memory: 512MiB in the hardware manifest: 2 GiB for one array is a MemoryError there,
    and the environment goes on serving calls within the limit."""
    from dlspec_ray.environments import Placement, RemoteStageError

    stages = {
        "run": stage("run", "import numpy as np\nreturn int(np.ones(data, dtype=np.uint8).sum())")
    }
    environment = ProcessEnvironment(None, placement=Placement(memory=512 * 2**20))
    environment.start(stages, {})
    try:
        with pytest.raises(RemoteStageError, match=r"MemoryError|Unable to allocate"):
            environment.call("run", 2 * 2**30)
        assert environment.call("run", 2**20).value == 2**20
    finally:
        environment.close()


HOSTILE = stage(
    "run",
    "import os, socket\n"
    "seen = {}\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', data['port']), timeout=2).close()\n"
    "    seen['network'] = 'connected'\n"
    "except OSError as exc:\n"
    "    seen['network'] = type(exc).__name__\n"
    "try:\n"
    "    open(data['host_file'], 'w').write('written by a stage')\n"
    "    seen['host_write'] = 'written'\n"
    "except OSError as exc:\n"
    "    seen['host_write'] = type(exc).__name__\n"
    "open('/tmp/dlspec-ray-sandbox-probe', 'w').write('private')\n"
    "seen['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
    "seen['read'] = open(data['readable']).read()\n"
    "return seen",
)


def test_bubblewrap_sandboxes_the_process_environment(tmp_path):
    """No network (a server on the host's loopback is out of reach), the host read-only, a
    private /tmp, its own process tree; the host's files still readable, as mounted."""
    import shutil
    import socket

    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed (make test-prep installs bubblewrap as root)")
    from dlspec_ray.environments import Placement

    server = socket.create_server(("127.0.0.1", 0))
    data = tmp_path / "data"  # a dataset folder: bound in, read-only
    data.mkdir()
    (data / "data.txt").write_text("the dataset")
    probe = Path("/tmp/dlspec-ray-sandbox-probe")
    probe.unlink(missing_ok=True)
    environment = ProcessEnvironment(
        software(environment="process", sandbox="bubblewrap"),
        placement=Placement(read_only_paths=(str(data),)),
    )
    environment.start({**STAGES, "run": HOSTILE}, {})
    try:
        seen = environment.call("run", {
            "port": server.getsockname()[1], "host_file": str(data / "out.txt"),
            "readable": str(data / "data.txt"),
        }).value  # fmt: skip
        x = np.arange(12, dtype=np.float32)
        assert environment.call("pre-process", x).value.tolist() == x.tolist()  # arenas work
    finally:
        environment.close()
        server.close()
    assert seen["network"] in ("ConnectionRefusedError", "OSError", "TimeoutError")
    assert seen["host_write"] == "OSError" and not (data / "out.txt").exists()
    assert not probe.exists()  # its /tmp is its own
    assert len(seen["pids"]) <= 3 and seen["pids"][0] == 1  # its own process tree
    assert seen["read"] == "the dataset"


def test_a_sandbox_outside_the_process_environment_is_refused(tmp_path):
    from dlspec_ray.errors import ManifestError
    from dlspec_ray.spec.loader import load_manifest

    path = tmp_path / "sw.yaml"
    text = Path(__file__).resolve().parents[2] / "manifests/software/onnxruntime-cpu.yaml"
    path.write_text(text.read_text() + "sandbox: bubblewrap\n")
    with pytest.raises(ManifestError, match=r"sandbox: sandbox applies to the process environment"):
        load_manifest(path)
