"""Framework images built offline: no image registry is needed, here or on an air-gapped cluster.

Three layers, each cached:
1. A base root filesystem with Python, made by debootstrap from the Debian mirror
   this machine's apt sources already name, loaded with ``docker import``. Its
   tarball is kept in ``image_cache_dir()`` (keyed by a hash of the recipe), so a
   fresh Docker engine gets it back in seconds.
2. The software manifest's ``packages``: wheels fetched on the host with ``pip
   download``, installed in a build stage with ``pip install --no-index``, the
   build running with ``--network none``. Only the installed files are copied
   into the final image, not the wheels.
3. The dlspec-ray agent (``bundle``).
The image is tagged with the manifest's ``container`` and labelled with a hash
of all three, so building it again is free until something changes.
"""

from __future__ import annotations

__all__ = [
    "BaseRecipe",
    "BuiltImage",
    "base_recipe",
    "build_image",
    "debian_source",
    "ensure_base_image",
]

import glob
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlspec_ray.environments.bundle import agent_bundle, agent_digest
from dlspec_ray.environments.container import CONTAINER_AGENT, image_name
from dlspec_ray.environments.engine import LABEL, docker_client
from dlspec_ray.environments.errors import EnvironmentUnavailable
from dlspec_ray.environments.paths import env_cache_dir, image_cache_dir
from dlspec_ray.environments.venvs import WHEELHOUSE_VAR
from dlspec_ray.spec.types import SoftwareManifest

Log = Callable[[str], None]
# Bump when a layer's recipe changes meaning, so cached images are rebuilt: the base's,
# and the framework image's (2: /root opened for an unprivileged user).
_RECIPE = 1
_IMAGE_RECIPE = 2
_PACKAGES_DIR = "/opt/dlspec-ray/packages"
# Left out of the base: documentation, translations and apt's caches (about 140 MB).
_TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
)
_APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _entries(paths: Iterable[Path]) -> list[tuple[str, list[str], list[str]]]:
    """``(uri, suites, components)`` of every ``deb`` entry, one-line and deb822 style."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".list", ".sources"))
        elif path.is_file():
            files.append(path)
    found: list[tuple[str, list[str], list[str]]] = []
    for file in files:
        try:
            text = file.read_text()
        except OSError:
            continue
        if file.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.strip().startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                comps = fields.get("components", "").split()
                for uri in fields.get("uris", "").split():
                    found.append((uri, fields.get("suites", "").split(), comps))
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 3 and words[0] == "deb":
                    words = [w for w in words[1:] if not w.startswith("[")]
                    words = [w for w in words if not w.endswith("]")]
                    if len(words) >= 2:
                        found.append((words[0], [words[1]], words[2:]))
    return found


def debian_source(paths: Iterable[Path] = _APT_SOURCES) -> tuple[str, str]:
    """``(mirror, suite)``: the first main-archive entry of this machine's apt sources.

    Security and update suites (``bookworm-security``) are not whole archives;
    debootstrap needs the release suite itself.
    """
    for uri, suites, components in _entries(paths):
        if not uri.startswith(("http://", "https://", "file:/")) or "main" not in components:
            continue
        for suite in suites:
            if "-" not in suite and "/" not in suite:
                return uri, suite
    raise EnvironmentUnavailable(
        "no Debian mirror in this machine's apt sources (/etc/apt/sources.list, "
        "/etc/apt/sources.list.d/): debootstrap needs a `deb` entry of a release suite with "
        "the main component. Add one, or build on a Debian or Ubuntu machine."
    )


@dataclass(frozen=True)
class BaseRecipe:
    suite: str
    mirror: str
    arch: str
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3",)

    @property
    def digest(self) -> str:
        # The mirror is not part of the identity: any mirror of a suite gives the same system.
        key = {"suite": self.suite, "arch": self.arch, "variant": self.variant,
               "include": list(self.include), "trim": list(_TRIM), "recipe": _RECIPE}  # fmt: skip
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"dlspec-ray/base:{self.suite}-{self.digest}"


def base_recipe() -> BaseRecipe:
    mirror, suite = debian_source()
    return BaseRecipe(suite=suite, mirror=mirror, arch=_deb_arch())


def _deb_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def ensure_base_image(client: Any, log: Log = _stderr) -> tuple[str, str]:
    """``(tag, python version)`` of the base image, made or re-imported if missing."""
    from docker.errors import ImageNotFound

    recipe = base_recipe()
    try:
        image = client.images.get(recipe.tag)
        return recipe.tag, image.labels[f"{LABEL}.python"]
    except (ImageNotFound, KeyError):
        pass
    tarball = image_cache_dir() / f"base-{recipe.suite}-{recipe.digest}.tar"
    meta = tarball.with_suffix(".json")
    if not (tarball.exists() and meta.exists()):
        _make_rootfs_tarball(recipe, tarball, meta, log)
    python = json.loads(meta.read_text())["python"]
    log(f"importing {tarball} as {recipe.tag}")
    repository, _, tag = recipe.tag.partition(":")
    client.api.import_image_from_file(
        str(tarball),
        repository=repository,
        tag=tag,
        changes=[f'LABEL {LABEL}.python="{python}" {LABEL}.base="{recipe.digest}"'],
    )
    return recipe.tag, python


def _make_rootfs_tarball(recipe: BaseRecipe, tarball: Path, meta: Path, log: Log) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise EnvironmentUnavailable(
            "building a base image needs debootstrap, which is not installed: "
            "apt-get install debootstrap (scripts/dockerd.sh start installs it too)"
        )
    if os.geteuid() != 0:
        raise EnvironmentUnavailable(
            "building a base image runs debootstrap, which needs root; run `dlspec-ray images "
            f"build` as root once (the result is cached in {image_cache_dir()})"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".base-", dir=tarball.parent))
    try:
        rootfs = work / "rootfs"
        log(f"debootstrap {recipe.suite} ({recipe.variant}, +{','.join(recipe.include)}): ~1 min")
        done = subprocess.run(
            [debootstrap, f"--variant={recipe.variant}", f"--include={','.join(recipe.include)}",
             f"--arch={recipe.arch}", recipe.suite, str(rootfs), recipe.mirror],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise EnvironmentUnavailable(
                f"debootstrap of {recipe.suite} from the apt sources' mirror failed:\n{tail}"
            )
        for rel in _TRIM:
            target = rootfs / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        python = os.readlink(rootfs / "usr/bin/python3").removeprefix("python")
        partial = work / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True
        )
        meta.write_text(json.dumps({"python": python, "suite": recipe.suite}))
        partial.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class BuiltImage:
    name: str
    id: str
    size: int
    cached: bool
    recipe: str


def build_image(
    software: SoftwareManifest, *, rebuild: bool = False, log: Log = _stderr
) -> BuiltImage:
    """Build ``software.container`` from ``software.packages``, offline; cached by recipe."""
    from docker.errors import BuildError, ImageNotFound

    where = str(software.path or software.ref)
    name = image_name(software)
    if not software.packages:
        raise EnvironmentUnavailable(
            f"{where}: packages: an image is built from the software manifest's package list, "
            "and it is empty; list the framework's pip requirements, e.g. [onnxruntime==1.32.0]"
        )
    client = docker_client()
    base, python = ensure_base_image(client, log)
    recipe = {"base": base, "packages": list(software.packages), "agent": agent_digest(),
              "env": software.env, "recipe": _IMAGE_RECIPE}  # fmt: skip
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    try:
        image = client.images.get(name)
        if image.labels.get(f"{LABEL}.recipe") == digest and not rebuild:
            return BuiltImage(name, image.id, image.attrs.get("Size", 0), True, digest)
    except ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="dlspec-ray-build-") as tmp:
        context = Path(tmp)
        pip_wheel = _fetch_wheels(context / "wheels", software, python, where, log)
        shutil.copytree(agent_bundle(env_cache_dir()), context / "agent")
        (context / "Dockerfile").write_text(_dockerfile(base, pip_wheel, software, digest))
        log(f"building {name} from {base} with {', '.join(software.packages)} (--network none)")
        try:
            image, _ = client.images.build(
                path=str(context), tag=name, network_mode="none", rm=True, forcerm=True, pull=False
            )
        except BuildError as exc:
            lines = [str(c.get("stream") or c.get("error") or "") for c in exc.build_log]
            tail = "\n".join("".join(lines).strip().splitlines()[-12:])
            raise EnvironmentUnavailable(
                f"{where}: packages: installing {list(software.packages)} offline in the image "
                f"failed:\n{tail}\nGive packages that exist as wheels for Python {python} on "
                "this platform."
            ) from exc
    image.reload()
    return BuiltImage(name, image.id, image.attrs.get("Size", 0), False, digest)


def _fetch_wheels(dest: Path, software: SoftwareManifest, python: str, where: str, log: Log) -> str:
    """Wheels for the packages (and pip itself, to install them) into the build context."""
    dest.mkdir(parents=True)
    links = [a for w in os.environ.get(WHEELHOUSE_VAR, "").split(os.pathsep) if w
             for a in ("--find-links", w)]  # fmt: skip
    log(f"pip download {' '.join(software.packages)} (Python {python})")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", "--python-version", python, "--dest", str(dest), *links,
         *software.packages, "pip"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
        said = " ".join(errors[-2:]) or done.stderr.strip()[-300:]
        raise EnvironmentUnavailable(
            f"{where}: packages: {list(software.packages)} cannot be fetched as wheels for "
            f"Python {python}: {said} Pin versions that exist as wheels, or put the wheels in "
            f"a folder named by {WHEELHOUSE_VAR}."
        )
    wheels = sorted(glob.glob(str(dest / "pip-*.whl")))
    return Path(wheels[-1]).name


def _dockerfile(base: str, pip_wheel: str, software: SoftwareManifest, digest: str) -> str:
    install = ["python3", f"/tmp/wheels/{pip_wheel}/pip", "install", "--no-index",
               "--find-links", "/tmp/wheels", "--target", _PACKAGES_DIR, "--no-cache-dir",
               "--disable-pip-version-check", "--no-warn-script-location", "-q",
               *software.packages]  # fmt: skip
    env = {"PYTHONPATH": f"{CONTAINER_AGENT}:{_PACKAGES_DIR}", **software.env}
    labels = {f"{LABEL}.recipe": digest, f"{LABEL}.software": software.ref}
    return "\n".join(
        [
            f"FROM {base} AS install",
            "COPY wheels /tmp/wheels",
            f"RUN {json.dumps(install)}",
            f"FROM {base}",
            f"COPY --from=install {_PACKAGES_DIR} {_PACKAGES_DIR}",
            f"COPY agent {CONTAINER_AGENT}",
            # Stage code runs as nobody when the host runs as root, and the node's cache may
            # be root's ~/.cache: mounted there, behind the base's 0700 /root.
            'RUN ["chmod", "0755", "/root"]',
            *(f"ENV {k}={json.dumps(v)}" for k, v in env.items()),
            *(f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()),
            'CMD ["python3", "-m", "dlspec_ray.environments.agent", "--help"]',
            "",
        ]
    )
