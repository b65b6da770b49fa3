"""A dead environment is restarted and the call retried, a bounded number of times.

A container or interpreter can die under a batch (a segfault in the framework,
the kernel's OOM killer). The batch's inputs are still in the host actor, so
the fresh environment (started and loaded again) can run the same call again.
A call that keeps killing its environment fails with the last log tail, and an
actor whose environment died too often stops restarting it.
"""

from __future__ import annotations

__all__ = ["RestartingEnvironment"]

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from dlspec_ray.environments.base import ChainCall, Environment, StageCall
from dlspec_ray.environments.errors import EnvironmentDied
from dlspec_ray.spec.types import StageSource

RETRIES_PER_CALL = 2
T = TypeVar("T")
RESTARTS_PER_ACTOR = 5


class RestartingEnvironment:
    def __init__(
        self,
        make: Callable[[], Environment],
        *,
        retries: int = RETRIES_PER_CALL,
        max_restarts: int = RESTARTS_PER_ACTOR,
    ):
        self._make = make
        self.inner = make()
        self.retries = retries
        self.max_restarts = max_restarts
        self.restarts = 0
        self._stages: Mapping[str, StageSource] = {}
        self._ctx: Mapping[str, Any] = {}
        self._load: tuple[Any] | None = None

    @property
    def kind(self) -> str:
        return self.inner.kind

    def start(self, stages: Mapping[str, StageSource], ctx: Mapping[str, Any]) -> None:
        self._stages, self._ctx = stages, ctx
        self.inner.start(stages, ctx)

    def call(self, stage: str, data: Any) -> StageCall:
        if stage == "load":
            self._load = (data,)
            return self.inner.call(stage, data)  # a load that kills it is bad input: no retry
        return self._retrying(lambda: self.inner.call(stage, data))

    def call_chain(self, stages: Sequence[str], data: Any) -> ChainCall:
        return self._retrying(lambda: self.inner.call_chain(stages, data))

    def _retrying(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except EnvironmentDied as died:
                if attempt >= self.retries or self.restarts >= self.max_restarts:
                    tried = f"tried {attempt + 1} time(s)"
                    if self.restarts >= self.max_restarts:
                        tried += f"; this actor's environment already restarted {self.restarts}x"
                    raise EnvironmentDied(
                        f"{died} ({tried})",
                        exit_code=died.exit_code,
                        log_tail=died.log_tail,
                        stage=died.stage,
                    ) from died
                attempt += 1
                self._restart(died)

    def _restart(self, died: EnvironmentDied) -> None:
        self.restarts += 1
        print(f"dlspec-ray: restarting the environment: {died}", file=sys.stderr)
        self.inner.close()
        self.inner = self._make()
        try:
            self.inner.start(self._stages, self._ctx)
            if self._load is not None:
                self.inner.call("load", self._load[0])
        except Exception as exc:
            raise EnvironmentDied(
                f"{died}\nRestarting it failed too: {exc}",
                exit_code=died.exit_code,
                log_tail=died.log_tail,
            ) from exc

    def describe(self) -> dict[str, Any]:
        info = self.inner.describe()
        if self.restarts:
            info["restarts"] = self.restarts
        return info

    def close(self) -> None:
        self.inner.close()
