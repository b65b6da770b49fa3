"""Fetch and build, while the network is there, what the test suite would otherwise download.

``make test`` runs the suite in a private network namespace (scripts/in-private-net.sh),
where no package registry or Debian mirror can be reached. ``make test-prep`` runs this
first, outside, under scripts/with-dockerd.sh (which installs docker.io and debootstrap
when they are missing and starts the private engine):

- the framework images of the docker-environment software manifests, built with
  ``dlspec-ray images build``: the debootstrap base tarball is kept in the image cache
  (``~/.cache/dlspec-ray/images``), the images in the engine's persistent data root;
- a wheelhouse (the first folder of ``DLSPEC_RAY_WHEELHOUSE``) holding the wheels of
  every process- and docker-environment manifest's packages, with their dependencies,
  for this interpreter's Python and for the base image's, plus pip (image builds install
  with it). Inside the namespace, venvs install from it with ``--no-index``, and an
  image that has to be built again (a fresh engine data root, a changed agent) finds
  its wheels there;
- with ``DLSPEC_RAY_PACKAGE_WHEELS=DIR``, the wheels of dlspec-ray's own dependencies and
  its onnxruntime extra, from which a test installs the built wheel into a fresh venv.

Usage: DLSPEC_RAY_WHEELHOUSE=DIR scripts/with-dockerd.sh .venv/bin/python scripts/test-prep.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOFTWARE = REPO / "manifests" / "software"


PACKAGE_WHEELS_ENV = "DLSPEC_RAY_PACKAGE_WHEELS"


def main() -> int:
    from dlspec_ray.spec.loader import load_manifest

    folders = [p for p in os.environ.get("DLSPEC_RAY_WHEELHOUSE", "").split(os.pathsep) if p]
    if not folders:
        print("test-prep: set DLSPEC_RAY_WHEELHOUSE to the wheelhouse folder", file=sys.stderr)
        return 2
    wheelhouse = Path(folders[0]).expanduser()
    wheelhouse.mkdir(parents=True, exist_ok=True)

    manifests = [load_manifest(path) for path in sorted(SOFTWARE.glob("*.yaml"))]
    offline = [m for m in manifests if m.environment in ("process", "docker") and m.packages]
    packages = sorted({p for m in offline for p in m.packages})
    pythons = {f"{sys.version_info.major}.{sys.version_info.minor}"}

    docker = [m for m in offline if m.environment == "docker"]
    unavailable = os.environ.get("DLSPEC_RAY_DOCKER_UNAVAILABLE")
    if unavailable:
        print(f"test-prep: no images (the Docker tests will skip): {unavailable}", file=sys.stderr)
    elif docker:
        from dlspec_ray.environments.engine import docker_client
        from dlspec_ray.environments.images import ensure_base_image

        _, image_python = ensure_base_image(docker_client())
        pythons.add(".".join(image_python.split(".")[:2]))
        cli = Path(sys.executable).parent / "dlspec-ray"
        paths = [str(m.path) for m in docker]
        print(f"test-prep: dlspec-ray images build {' '.join(paths)}", file=sys.stderr)
        subprocess.run([str(cli), "images", "build", *paths], check=True, cwd=REPO)

    for python in sorted(pythons):
        print(f"test-prep: wheels for Python {python} into {wheelhouse}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--only-binary=:all:", "--python-version", python, "--dest", str(wheelhouse),
             *packages, "pip"],
            check=True,
        )  # fmt: skip
    _package_wheels()
    return 0


def _package_wheels() -> None:
    """The wheels ``pip install 'dlspec-ray[onnxruntime]'`` needs, for the test that installs
    the built wheel into a fresh venv with no index (tests/test_install.py)."""
    import tomllib

    folder = os.environ.get(PACKAGE_WHEELS_ENV)
    if not folder:
        return
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["onnxruntime"]]
    print(f"test-prep: dlspec-ray's own wheels into {folder}", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", "--dest", folder, *wanted, "setuptools", "pip"],
        check=True,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
