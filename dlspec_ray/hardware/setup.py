"""Running a hardware manifest's ``setup`` commands on the host that holds a host actor.

They run outside the task's environment (no container, no task interpreter),
as the Ray worker's user, before the environment starts: things such as
fixing the CPU frequency governor only make sense on the host itself. That is
why they only run when the user allows it (``--allow-host-setup``): they are
someone else's shell commands on the machine.
"""

from __future__ import annotations

__all__ = [
    "SETUP_TIMEOUT_S",
    "CommandResult",
    "describe_setup",
    "run_setup_commands",
    "setup_failure",
]

import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

SETUP_TIMEOUT_S = 300.0
# Enough of a command's output to see what went wrong, small enough for summary.json.
_OUTPUT_CHARS = 4000


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_setup_commands(
    commands: Sequence[str], *, timeout_s: float = SETUP_TIMEOUT_S
) -> list[CommandResult]:
    """Run each command with ``/bin/sh -c`` in order; stop after the first that fails.

    A command that runs past ``timeout_s`` is killed and counts as failed
    (exit code -9), so a hung command cannot hold the actor forever.
    """
    results = []
    for command in commands:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", command],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, out = -9, _text(exc.stdout)
            err = _text(exc.stderr) + f"\nkilled after {timeout_s:g}s"
        except OSError as exc:
            code, out, err = 127, "", str(exc)
        results.append(
            CommandResult(
                command=command,
                exit_code=code,
                stdout=out[-_OUTPUT_CHARS:],
                stderr=err[-_OUTPUT_CHARS:],
                seconds=round(time.perf_counter() - started, 6),
            )
        )
        if code != 0:
            break
    return results


def describe_setup(commands: Sequence[str]) -> str:
    """The commands as a numbered list, for messages and ``--dry-run``."""
    return "\n".join(f"  {i}. {c}" for i, c in enumerate(commands, 1))


def setup_failure(results: Sequence[CommandResult], total: int) -> str | None:
    """Why host setup failed, naming the command, its exit code and its output; None if it ran."""
    for index, result in enumerate(results, 1):
        if result.ok:
            continue
        output = (result.stderr.strip() or result.stdout.strip())[-1000:] or "(no output)"
        return (
            f"host setup command {index} of {total} failed with exit code {result.exit_code}: "
            f"{result.command}\n{output}"
        )
    return None


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
