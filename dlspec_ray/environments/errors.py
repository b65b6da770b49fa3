"""What can go wrong with an environment, apart from the stage code itself."""

from __future__ import annotations

__all__ = ["EnvironmentDied", "EnvironmentUnavailable", "RemoteStageError"]

from dlspec_ray.errors import DLSpecError


class EnvironmentUnavailable(DLSpecError):
    """An environment cannot be set up: a missing image, an unreachable Docker engine,
    a bad interpreter path, or packages that cannot be installed offline (exit code 2)."""


class EnvironmentDied(RuntimeError):
    """The interpreter or container running the stage code exited; the message holds
    the tail of its log. Not bad input: the batch fails, and the environment restarts."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        log_tail: str = "",
        stage: str | None = None,
    ):
        super().__init__(message)
        self.exit_code = exit_code
        self.log_tail = log_tail
        # The stage it died in, when known (a chain of stages says which one was running).
        self.stage = stage


class RemoteStageError(Exception):
    """A stage raised inside an environment; subclasses carry the original type's name,
    so the batch's error reads the same as it would ``inline``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
