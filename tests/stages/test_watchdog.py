"""The stage watchdog: a stage past its deadline ends its process, with the reason."""

from __future__ import annotations

import subprocess
import sys

from dlspec_ray.stages import STAGE_TIMEOUT_EXIT, Watchdog


def test_a_hung_stage_ends_its_process_with_the_timeout_exit_code():
    code = (
        "import time\n"
        "from dlspec_ray.stages import Watchdog\n"
        "with Watchdog(0.5).watch('run'):\n"
        "    time.sleep(100000)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == STAGE_TIMEOUT_EXIT
    assert "the run stage ran past --stage-timeout 0.5s" in done.stderr


def test_no_timeout_watches_nothing():
    watchdog = Watchdog(None)
    with watchdog.watch("run"):
        pass
    assert watchdog._thread is None
