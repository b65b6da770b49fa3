"""Whose code may run with the user's own rights: manifests from the trusted roots only.

A model manifest's stages and a dataset manifest's reader are Python. In the
``inline`` environment the stages run in the host actor's process and the reader in the
node's ``NodeData`` actor, both Ray workers with the rights of the user who started Ray:
they can read and write what that user can, and reach the network. So inline code is run
only when its manifest lies in a trusted root, or the user says ``--trust``:

- the project's own ``manifests/`` and the copies a wheel ships (``dlspec_ray.examples``);
- the folders in ``DLSPEC_RAY_TRUSTED_ROOTS`` (separated like ``PATH``);
- manifests built in code (they have no file; the caller wrote them).

A manifest found through ``--manifests`` or ``DLSPEC_RAY_MANIFEST_PATH`` is not trusted
for that alone: a team's shared folder is exactly where a stranger's manifest lands.
The ``process`` and ``docker`` environments run both outside the Ray workers (``docker``
confined), so they are not checked here: ``docker`` is the boundary for untrusted code.
"""

from __future__ import annotations

__all__ = ["TRUSTED_ROOTS_ENV", "UntrustedManifest", "check_trusted", "trusted_roots"]

import os
from pathlib import Path

from dlspec_ray.errors import UsageError
from dlspec_ray.task import Task

TRUSTED_ROOTS_ENV = "DLSPEC_RAY_TRUSTED_ROOTS"
# The manifests dlspec-ray ships, beside the package in the repository.
_PROJECT_MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"


class UntrustedManifest(UsageError):
    """Code from a manifest outside the trusted roots would run with the user's rights."""


def trusted_roots() -> list[Path]:
    from dlspec_ray.spec.catalog import SHIPPED_MANIFESTS

    roots = [_PROJECT_MANIFESTS, SHIPPED_MANIFESTS]
    roots += [Path(p) for p in os.environ.get(TRUSTED_ROOTS_ENV, "").split(os.pathsep) if p]
    return [r.expanduser().resolve() for r in roots]


def check_trusted(task: Task, environment: str, *, trust: bool) -> None:
    """Refuse, before anything starts, code that would run on the host from outside the roots."""
    if trust:
        return
    if environment != "inline":
        return  # process and docker run the stages and the reader outside the Ray workers
    on_host = [(task.model, "its stages run in the host actor's process")]
    if task.dataset.reader is not None:
        on_host.append((task.dataset, "its reader runs in a Ray worker on each node"))
    roots = trusted_roots()
    for manifest, why in on_host:
        if manifest.path is None:
            continue
        path = Path(manifest.path).resolve()
        if any(path.is_relative_to(root) for root in roots):
            continue
        listed = ", ".join(str(r) for r in roots)
        docker = "Run its stages in a container (--environment docker), or, if you trust it, "
        fix = docker if manifest is task.model else "If you trust it, "
        raise UntrustedManifest(
            f"{manifest.path}: this {manifest.kind} manifest is outside the trusted roots "
            f"({listed}), and {why}, with your rights. {fix}add its folder to "
            f"{TRUSTED_ROOTS_ENV}, or pass --trust."
        )
