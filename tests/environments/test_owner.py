from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dlspec_ray.owner import owner_alive, owner_token


def test_this_process_is_alive():
    assert owner_alive(owner_token())


def test_a_process_that_ended_is_not():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = owner_token(child.pid)
    child.wait()
    assert not owner_alive(token)


def test_a_reused_pid_with_another_start_time_is_not_the_owner():
    pid, _, start = owner_token().partition(".")
    assert not owner_alive(f"{pid}.{int(start) + 1}")


@pytest.mark.parametrize("token", ["", "abc", "-1.0", f"{2**22 + 7}.1"])
def test_garbage_or_unknown_tokens_are_not_alive(token):
    assert not owner_alive(token)


def test_the_token_names_this_pid():
    assert owner_token().split(".")[0] == str(os.getpid())
