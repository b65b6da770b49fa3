"""What a run would do, said before anything runs: ``dlspec-ray run --dry-run``.

A hardware manifest's host setup commands run on someone's machine; a user
should be able to read them, and the resources the task will ask Ray for,
without starting Ray or touching a node.
"""

from __future__ import annotations

__all__ = ["describe_plan"]

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlspec_ray.hardware import candidate_requests, describe_setup
from dlspec_ray.task import resolve_task


def describe_plan(
    model: Any,
    dataset: Any = None,
    *,
    software: Any = None,
    hardware: Any = None,
    reference: Any = None,
    environment: str | None = None,
    allow_host_setup: bool = False,
    manifest_roots: Sequence[str | Path] = (),
    **_ignored: Any,
) -> str:
    """The task, the resource request of each host actor, and the host setup commands.

    Takes ``evaluate()``'s keyword arguments and ignores those that do not
    change the plan, so a caller can pass the same set to both.
    """
    task = resolve_task(model, dataset, software, hardware, reference, extra_roots=manifest_roots)
    kind = environment or (task.software.environment if task.software else "inline")
    lines = [f"task: {task.describe()}", f"environment: {kind}"]
    lines.append("each host actor asks Ray for (the first that a node can host):")
    lines += [f"  - {r.describe()}" for r in candidate_requests(task.hardware)]
    setup = task.hardware.setup if task.hardware else ()
    if setup:
        when = "will run" if allow_host_setup else "would run only with --allow-host-setup"
        lines.append(
            f"host setup commands ({when}, on each node that holds a host actor, as the Ray "
            "worker's user, before the environment starts):"
        )
        lines.append(describe_setup(setup))
    else:
        lines.append("host setup commands: none")
    lines.append("dry run: nothing was started or run.")
    return "\n".join(lines)
