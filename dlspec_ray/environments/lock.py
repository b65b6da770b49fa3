"""What is installed where the stage code runs, read there: the run's package lock.

A result is only reproducible with the packages it was made with, so every run records
the whole list (``name==version``, as ``pip freeze`` prints it) and its digest. The
agent reads it inside a ``process`` or ``docker`` environment, ``inline`` in the host
actor's own interpreter. Standard library only: an environment may hold nothing else.
Read once a process (about 60 ms for 150 distributions, 0.5 s cold): a host actor is
asked to describe itself at every warm reuse.
"""

from __future__ import annotations

__all__ = ["installed_lock"]

import functools
import hashlib
from typing import Any


@functools.cache
def installed_lock() -> dict[str, Any]:
    """``{"packages": ["name==version", ...] (sorted), "digest": "sha256:<hex>"}``."""
    from importlib.metadata import distributions

    found = set()
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found.add(f"{name}=={dist.version}")
    packages = sorted(found, key=str.lower)
    digest = hashlib.sha256("\n".join(packages).encode()).hexdigest()
    return {"packages": packages, "digest": f"sha256:{digest}"}
