from __future__ import annotations

import pytest

from dlspec_ray.hardware import describe_setup, run_setup_commands, setup_failure


def test_commands_run_in_order_on_the_host(tmp_path):
    marker = tmp_path / "marker"
    results = run_setup_commands([f"echo one > {marker}", f"echo two >> {marker}; echo done"])
    assert marker.read_text() == "one\ntwo\n"
    assert [(r.exit_code, r.stdout) for r in results] == [(0, ""), (0, "done\n")]
    assert setup_failure(results, 2) is None


def test_the_first_failure_stops_the_rest(tmp_path):
    results = run_setup_commands(
        ["true", "echo 'no governor here' >&2; exit 3", f"touch {tmp_path / 'never'}"]
    )
    assert [r.exit_code for r in results] == [0, 3]
    assert not (tmp_path / "never").exists()
    message = setup_failure(results, 3)
    assert message is not None
    assert message.startswith("host setup command 2 of 3 failed with exit code 3:")
    assert "no governor here" in message


def test_a_hung_command_is_killed():
    (result,) = run_setup_commands(["sleep 30"], timeout_s=0.5)
    assert result.exit_code == -9  # killed: a sleep that ran its course exits 0
    assert "killed after 0.5s" in result.stderr


@pytest.mark.parametrize(
    ("commands", "text"),
    [(["a"], "  1. a"), (["a", "b c"], "  1. a\n  2. b c"), ([], "")],
)
def test_commands_are_listed_for_people(commands, text):
    assert describe_setup(commands) == text
