from __future__ import annotations

import io

from dlspec_ray.progress import Progress


def test_progress_logs_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress(100, "mnist-8", stream=stream, log_every_s=1000)
    bar.update(40)
    bar.update(60, errors=2)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("mnist-8 [#########---------------] 40/100 samples")
    assert "100/100 samples" in lines[-1] and "2 errors" in lines[-1]


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    bar = Progress(10, "x", stream=stream, enabled=False)
    bar.update(10)
    bar.close()
    assert stream.getvalue() == ""
