"""``dlspec-ray completion bash|zsh``: scripts shtab makes from the parser itself."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from dlspec_ray.cli import main
from dlspec_ray.commands import COMMANDS


def subcommand_names() -> list[str]:
    from importlib import import_module

    return [import_module(path).NAME for path in COMMANDS]


def test_the_bash_script_parses_and_knows_every_subcommand(tmp_path, capsys):
    pytest.importorskip("shtab")
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    path = tmp_path / "dlspec-ray.bash"
    path.write_text(script)
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "complete" in script and "dlspec-ray" in script
    for name in subcommand_names():
        assert name in script, name
    assert "offline" in script and "single-stream" in script  # run --scenario's choices


def test_the_zsh_script_names_every_subcommand(tmp_path, capsys):
    pytest.importorskip("shtab")
    assert main(["completion", "zsh"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#compdef dlspec-ray")
    for name in subcommand_names():
        assert name in script, name
    if shutil.which("zsh"):
        path = tmp_path / "_dlspec-ray"
        path.write_text(script)
        assert subprocess.run(["zsh", "-n", str(path)], check=False).returncode == 0


def test_without_shtab_the_message_names_the_pip_install(capsys):
    code = (
        "import sys; sys.modules['shtab'] = None; from dlspec_ray.cli import main; "
        "sys.exit(main(['completion', 'bash']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("dlspec-ray: error: completion: the shtab package")
    assert "pip install shtab" in done.stderr and "Traceback" not in done.stderr
