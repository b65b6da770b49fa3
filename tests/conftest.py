"""Shared fixtures: one real local Ray for the whole test session, and the repo's paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray (2 CPUs, own temp dir) that every Ray test shares.

    Started through dlspec-ray's own embedded path, so the tests exercise the
    resources it advertises. ``evaluate`` reuses it instead of starting another.

    Ray allows one driver connection per process, and this one stays connected
    for the whole session. Tests that need another Ray (a multi-node
    ``ray.cluster_utils.Cluster``, a ``ray start --head`` head for job
    submission, the autoscaler) never connect this process to it: they start it
    with ``tools/ray_clusters.py`` (the ``ray_clusters`` fixture) in child
    processes of their own session, with their own temp dir and ports from
    their issue's range, stop it by PID, and drive it from subprocesses
    (``dlspec-ray run --address ...``) or over HTTP (the job server).
    """
    from dlspec_ray.runtime import connect

    connection = connect(num_cpus=2)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def ray_clusters():
    """``tools/ray_clusters.py``: real Ray heads and clusters in child processes (see above)."""
    import importlib.util
    import sys

    path = REPO / "tools" / "ray_clusters.py"
    spec = importlib.util.spec_from_file_location("dlspec_ray_tools_ray_clusters", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tmp_path(tmp_path):
    """pytest makes each test's folder 0700. Run as root, the docker environment runs stage
    code as nobody, which must read the folders a test mounts, as a user's data folders are
    readable by others; so a test's folder is opened for reading. The refusal of a mount
    that its user cannot read has its own tests (environments/test_container.py)."""
    tmp_path.chmod(0o755)
    return tmp_path


@pytest.fixture(autouse=True)
def _summaries_keep_their_schema(tmp_path):
    """Every summary.json a test's run writes validates against the shipped JSON Schema
    (dlspec_ray/results/schemas/summary.schema.json), whatever kind of run wrote it. A run
    is a folder with its run.json (a Ray run) or its loadgen/ logs (a LoadGen run); files
    a test writes by hand, or breaks on purpose, are not runs and are not checked."""
    yield
    import json

    from dlspec_ray.results.summary_schema import check_summary

    for summary in tmp_path.rglob("summary.json"):
        folder = summary.parent
        if not ((folder / "run.json").is_file() or (folder / "loadgen").is_dir()):
            continue
        try:
            data = json.loads(summary.read_text())
        except (OSError, ValueError):
            continue
        problems = check_summary(data, str(summary))
        assert not problems, f"{summary} breaks the summary schema: {problems}"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "artifact-cache"
    monkeypatch.setenv("DLSPEC_RAY_CACHE", str(cache))


@pytest.fixture(scope="session", autouse=True)
def _trusted_test_folders(tmp_path_factory):
    """The tests' own manifest copies (under pytest's temp folder) are trusted, as a user's
    own folders are once listed; the trust tests take this away to see the refusal. Set
    for the whole session, so module fixtures and driver subprocesses see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLSPEC_RAY_TRUSTED_ROOTS", str(tmp_path_factory.getbasetemp()))
        yield


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server on 127.0.0.1 (moto's), standing in for cloud storage.

    One per test session, on a free port, stopped at the end. Tests reach it the
    way users reach S3: through the ``AWS_*`` variables of ``s3_server.env`` (the
    ``s3_env`` fixture sets them), and make their own buckets with ``make_bucket``.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Server(endpoint=f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The environment pointing at ``s3_server``, as a user's shell would for a cloud bucket."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


class S3Server:
    """Where the local S3 server listens, its (accepted) credentials, and bucket creation."""

    access_key = "dlspec-test"
    secret_key = "dlspec-test-secret"
    region = "us-east-1"

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._buckets = 0

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh name by default); returns its name."""
        import pyarrow.fs as pafs

        self._buckets += 1
        name = name or f"bucket-{os.getpid()}-{self._buckets}"
        fs = pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            endpoint_override=self.endpoint,
            allow_bucket_creation=True,
        )
        fs.create_dir(name)
        return name


@pytest.fixture
def repo_cwd(monkeypatch):
    """Run with the repo as the working directory, so ./manifests is the default catalog."""
    monkeypatch.chdir(REPO)
    return REPO


def pytest_configure(config):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def mnist_manifests(tmp_path):
    """Editable copies of the mnist manifests (sources made absolute), by kind.

    Tests break one field at a time with ``edit(kind, old, new)``; each copy keeps
    its name@version, so refs between them still resolve.
    """
    return ManifestCopies(tmp_path / "manifests")


class ManifestCopies:
    FILES = {
        "model": "models/mnist-8.yaml",
        "dataset": "datasets/mnist-test.yaml",
        "software": "software/onnxruntime-cpu.yaml",
        "hardware": "hardware/x86-64-cpu.yaml",
        "reference": "references/mnist-8-onnxruntime.yaml",
    }

    def __init__(self, root: Path):
        self.root = root
        for rel in self.FILES.values():
            src = MANIFESTS / rel
            text = src.read_text().replace("../../assets/", f"{REPO}/assets/")
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)

    def path(self, kind: str) -> str:
        return str(self.root / self.FILES[kind])

    def edit(self, kind: str, old: str, new: str) -> str:
        path = self.root / self.FILES[kind]
        text = path.read_text()
        if old not in text:
            raise AssertionError(f"{old!r} is not in {path}")
        path.write_text(text.replace(old, new, 1))
        return str(path)

    def run_args(self, *extra: str) -> list[str]:
        return [
            "run",
            "--model", self.path("model"),
            "--dataset", self.path("dataset"),
            "--software", self.path("software"),
            "--hardware", self.path("hardware"),
            "--no-progress",
            *extra,
        ]  # fmt: skip


@pytest.fixture(scope="session")
def photo_archive():
    """``make(folder, source_of)``: the sample photos packed as ``folder/photos.tar.gz``
    (``test/<class>/<file>``, the layout the image-folder reader refuses on its own), and a
    copy of the imagenet-samples manifest that reads it with ``unpack: true, path: test``
    from ``source_of(archive)`` (the path itself, or a URL it is served at)."""
    import hashlib
    import tarfile

    def make(folder: Path, source_of=str, name: str = "imagenet-samples-archive") -> Path:
        archive = folder / "photos.tar.gz"
        if not archive.exists():
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(REPO / "assets" / "imagenet-samples" / "images", arcname="test")
        checksum = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
        lines = (MANIFESTS / "datasets" / "imagenet-samples.yaml").read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip() == "- name: images")
        lines[start + 1 : start + 3] = [
            f"    source: {source_of(archive)}",
            f"    checksum: {checksum}",
            "    unpack: true",
            "    path: test",
        ]
        text = "\n".join(lines).replace("name: imagenet-samples", f"name: {name}")
        manifest = folder / f"{name}.yaml"
        manifest.write_text(text.replace("../../assets/", f"{REPO}/assets/") + "\n")
        return manifest

    return make


@pytest.fixture(scope="session")
def tmpfs():
    """``with tmpfs(where, *options) as mount:``: a fresh 4 MiB tmpfs mounted on ``where``
    (made if missing), unmounted after; skips the test where it cannot mount (not root)."""
    import contextlib
    import subprocess

    @contextlib.contextmanager
    def mount(where: Path, *options: str):
        where.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
        flags = ",".join(["size=4m", *options])
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", flags, "tmpfs", str(where)])
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (mount exited {done.returncode})")
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True)

    return mount


@pytest.fixture(scope="session")
def faults():
    """``tests/faults.py``: stage code that fails on cue, and the exactly-once check."""
    import importlib.util
    import sys

    path = Path(__file__).with_name("faults.py")
    spec = importlib.util.spec_from_file_location("dlspec_ray_tests_faults", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory, ray_session, faults) -> Path:
    """The fault tests' reference: the shipped mnist-8 on ``faults.SHAPE``, run once."""
    from dlspec_ray.cli import main

    out = tmp_path_factory.mktemp("clean") / "run"
    args = [
        "run", "--model", str(MANIFESTS / "models/mnist-8.yaml"),
        "--dataset", str(MANIFESTS / "datasets/mnist-test.yaml"),
        "--software", str(MANIFESTS / "software/onnxruntime-cpu.yaml"),
        "--no-progress", *faults.SHAPE, "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    return out
