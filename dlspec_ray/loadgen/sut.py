"""The system under test and the query sample library, next to the loaded model.

LoadGen calls ``issue_queries`` from its own threads, once per query. A Ray round
trip costs about a millisecond here, twenty times mnist-8's run stage, so the
SUT never leaves the process that holds the model: it calls the model's ``run``
and ``post-process`` stage functions directly, and the samples it gathers were
pre-processed into one array before the timed run (LoadGen's
``load_samples_to_ram``), as MLPerf's rules put pre-processing outside the timing.

Each response carries the ``run`` stage's raw output for its sample (its bytes,
in one dtype and per-sample shape, ``response_format``). That is what LoadGen
writes to its accuracy log, so the log is scored afterwards with the model's own
``post-process``, as MLPerf's accuracy scripts score theirs; so by default a query
times what MLPerf times: the model, not the harness's top-k. With
``timed_post_process`` each query runs the post-process too (for mnist-8 about 37 µs
a sample, most of a single-stream query).
"""

from __future__ import annotations

__all__ = ["ModelStages", "SampleLibrary", "StageSUT"]

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlspec_ray.environments.runner import StageRunner
from dlspec_ray.errors import UsageError
from dlspec_ray.spec.types import ModelManifest
from dlspec_ray.stages import build_context, format_stage_error


class ModelStages:
    """The model's stages compiled in this process and its ``load`` run once.

    ``load`` and ``pre-process`` go through dlspec-ray's ``StageRunner`` (same ``ctx``
    and prints captured as in an ordinary run); ``run`` and ``post-process`` are the
    compiled functions themselves, called with the same ``ctx``, so a query pays no
    per-call bookkeeping beyond the stage code.
    """

    def __init__(
        self,
        model: ModelManifest,
        artifacts: Mapping[str, Path],
        *,
        batch_size: int,
        num_threads: int,
        options: Mapping[str, Any] | None = None,
    ):
        missing = [s for s in ("pre-process", "run", "post-process") if s not in model.stages]
        if missing:
            raise UsageError(f"{model.path}: the LoadGen SUT needs the stages {missing}")
        self.model = model
        ctx = build_context(
            model, artifacts, batch_size=batch_size, num_threads=num_threads, options=options
        )
        self._runner = StageRunner(model.stages, ctx)
        self.load_s = self._runner.call("load", self._runner.ctx["artifacts"]).seconds
        self.ctx = self._runner.ctx
        self._run = model.stages["run"].compile()
        self._post = model.stages["post-process"].compile()

    def pre(self, batch: Any) -> np.ndarray:
        value = self._runner.call("pre-process", batch).value
        if not isinstance(value, np.ndarray):
            raise UsageError(
                f"{self.model.path}: pre-process: the LoadGen SUT expected an array whose "
                f"first axis is the sample, got {type(value).__name__}"
            )
        return value

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.ctx, x)

    def post(self, raw: Any) -> Any:
        return self._post(self.ctx, raw)

    def infer(self, x: np.ndarray, *, post_process: bool = False) -> np.ndarray:
        """``run``, and ``post-process`` when asked; returns the raw output (what a response
        carries)."""
        raw = self._run(self.ctx, x)
        if post_process:
            self._post(self.ctx, raw)
        return raw


class SampleLibrary:
    """The QSL: the dataset's inputs, and those LoadGen asked for, pre-processed in RAM.

    Loaded samples sit in one contiguous array in the order LoadGen gave them, with a
    position index, so a query's batch is one gather (a zero-copy slice for one sample).
    """

    def __init__(self, stages: ModelStages, inputs: Any, *, batch_size: int):
        self.stages = stages
        self.inputs = inputs
        self.batch_size = batch_size
        self.total = len(inputs)
        self._positions = np.full(self.total, -1, dtype=np.int64)
        self._loaded: np.ndarray | None = None
        self.pre_s = 0.0
        # load() runs on LoadGen's thread, where an exception must not unwind: it is kept.
        self.error: str | None = None

    def load(self, indices: Sequence[int]) -> None:
        """LoadGen's ``load_samples_to_ram``: pre-process ``indices``, batch by batch."""
        order = np.asarray(indices, dtype=np.int64)
        started = time.perf_counter()
        self._positions[:] = -1
        self._loaded = None
        try:
            parts = []
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                raw = (
                    self.inputs[chunk]
                    if isinstance(self.inputs, np.ndarray)
                    else [self.inputs[i] for i in chunk]
                )
                parts.append(self.stages.pre(raw))
            self._loaded = np.ascontiguousarray(np.concatenate(parts)) if parts else None
        except Exception as exc:
            self.error = self.error or format_stage_error("pre-process", exc)
            return
        self._positions[order] = np.arange(len(order))
        self.pre_s += time.perf_counter() - started

    def unload(self, indices: Sequence[int]) -> None:
        self._positions[np.asarray(indices, dtype=np.int64)] = -1

    def gather(self, indices: Sequence[int]) -> np.ndarray:
        if self._loaded is None:
            raise RuntimeError(self.error or "LoadGen issued a query before loading any sample")
        if len(indices) == 1:
            at = int(self._positions[indices[0]])
            return self._loaded[at : at + 1]
        return self._loaded[self._positions[np.asarray(indices, dtype=np.int64)]]


class StageSUT:
    """LoadGen's SUT callbacks over ``ModelStages`` and a ``SampleLibrary``.

    Offline, single- and multi-stream queries are answered on LoadGen's issuing
    thread, in batches of at most ``batch_size`` (no hand-off: the lowest latency).
    The server's queries arrive one by one on a Poisson schedule, so there one worker
    thread answers them and batches whatever has queued up, up to ``batch_size``.

    A stage that raises must not unwind into LoadGen's C++ thread: the query is
    completed with an empty response, and the first error is kept in ``error``
    (``failed`` counts the samples) for the runner to raise after the test.
    """

    def __init__(
        self,
        library: SampleLibrary,
        *,
        batch_size: int,
        server: bool = False,
        timed_post_process: bool = False,
    ):
        import mlperf_loadgen as lg

        self._lg = lg
        self.timed_post_process = timed_post_process
        self.library = library
        self.stages = library.stages
        self.batch_size = batch_size
        self.response_format: dict[str, Any] | None = None
        self.error: str | None = None
        self.failed = 0
        self._queue: queue.SimpleQueue[list[Any] | None] | None = None
        self._worker: threading.Thread | None = None
        if server:
            self._queue = queue.SimpleQueue()
            self._worker = threading.Thread(target=self._serve, name="loadgen-sut", daemon=True)
            self._worker.start()

    # LoadGen's callbacks --------------------------------------------------------------

    def issue_queries(self, samples: list[Any]) -> None:
        if self._queue is not None:
            self._queue.put(samples)
            return
        for start in range(0, len(samples), self.batch_size):
            self._answer(samples[start : start + self.batch_size])

    def flush_queries(self) -> None:
        pass

    def close(self) -> None:
        if self._queue is not None and self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._queue = None

    # ----------------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._queue is not None
        pending: list[Any] = []
        stopping = False
        while True:
            if not pending:
                item = None if stopping else self._queue.get()
                if item is None:
                    return
                pending.extend(item)
            while len(pending) < self.batch_size and not stopping:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True  # answer what is pending, then stop
                else:
                    pending.extend(more)
            batch, pending = pending[: self.batch_size], pending[self.batch_size :]
            self._answer(batch)

    def _answer(self, samples: list[Any]) -> None:
        lg = self._lg
        try:
            x = self.library.gather([s.index for s in samples])
            raw = np.ascontiguousarray(self.stages.infer(x, post_process=self.timed_post_process))
            if raw.ndim == 0 or raw.shape[0] != len(samples):
                raise ValueError(
                    f"run: expected an array whose first axis is the {len(samples)} samples "
                    f"of the batch, got shape {list(raw.shape)}"
                )
        except Exception as exc:
            self.failed += len(samples)
            if self.error is None:
                self.error = self.library.error or format_stage_error("run", exc)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])
            return
        if self.response_format is None:
            self.response_format = {"dtype": raw.dtype.str, "shape": list(raw.shape[1:])}
        row = raw.nbytes // len(samples)
        base = raw.ctypes.data
        lg.QuerySamplesComplete(
            [lg.QuerySampleResponse(s.id, base + i * row, row) for i, s in enumerate(samples)]
        )
