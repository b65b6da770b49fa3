"""Actors kept warm on the local head of ``dlspec-ray up``, for the next driver to find.

A driver's actors end with it; on a local head, the host actors of the latest task and
each node's copy of the latest dataset are instead detached and named in one namespace,
so the next run on this machine finds them by name and skips their start (the model's
load, the dataset's read). Names carry a digest of what the actors were built for, so a
different task never gets them; one pool and one dataset are kept, as a ``Session`` does.
"""

from __future__ import annotations

__all__ = ["WARM_NAMESPACE", "detached", "end_warm_actors", "warm_name"]

import hashlib
from typing import Any

WARM_NAMESPACE = "dlspec-ray"


def warm_name(kind: str, key: Any, suffix: str) -> str:
    """``dlspec-ray-<kind>-<digest of key>-<suffix>``; ``key`` is a repr-stable tuple."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    return f"dlspec-ray-{kind}-{digest}-{suffix}"


def detached(name: str) -> dict[str, Any]:
    """Actor options that make it outlive its driver, under ``name``."""
    return {"name": name, "namespace": WARM_NAMESPACE, "lifetime": "detached"}


def end_warm_actors(kind: str, keep: tuple[str, ...] = ()) -> int:
    """Kill the warm actors of ``kind`` whose names are not in ``keep``; returns how many."""
    import ray

    prefix = f"dlspec-ray-{kind}-"
    ended = 0
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"]
        if entry["namespace"] != WARM_NAMESPACE or not name.startswith(prefix) or name in keep:
            continue
        try:
            ray.kill(ray.get_actor(name, namespace=WARM_NAMESPACE), no_restart=True)
        except ValueError:
            continue  # gone meanwhile
        ended += 1
    return ended
