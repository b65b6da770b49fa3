"""Interrupted runs keep their complete shards, and `run --resume` finishes them exactly once.

Each resumed table is compared, sample by sample and bit for bit, with a clean run's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlspec_ray.cli import main

pytestmark = pytest.mark.usefixtures("ray_session")

REPO = Path(__file__).resolve().parents[1]


def interrupt_after(monkeypatch, shards: int) -> None:
    """Ctrl-C in the driver once ``shards`` shards are recorded (the progress line's update
    follows each shard's ledger line); with 0, before the first shard is sent."""
    from dlspec_ray import progress, runtime

    if shards == 0:

        def no_shards(*args, **kwargs):
            raise KeyboardInterrupt
            yield

        monkeypatch.setattr(runtime, "run_shards", no_shards)
        return
    calls = [0]
    original = progress.Progress.update

    def update(self, n, errors=0):
        calls[0] += 1
        if calls[0] >= shards:
            raise KeyboardInterrupt
        return original(self, n, errors)

    monkeypatch.setattr(progress.Progress, "update", update)


@pytest.fixture
def interrupted(mnist_manifests, tmp_path, monkeypatch, capsys, faults):
    """An mnist run stopped by Ctrl-C after 3 of its 8 shards."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        assert main(mnist_manifests.run_args(*faults.SHAPE, "--out", str(out))) == 130
    err = capsys.readouterr().err
    assert f"3 of 8 shard(s) complete; they are kept in {out}" in err
    assert f"dlspec-ray run --resume {out}" in err and "Traceback" not in err
    return out


def ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]


def test_an_interrupted_run_is_kept_incomplete_and_resume_finishes_it_exactly_once(
    interrupted, clean_run, capsys, faults
):
    out = interrupted
    assert sorted(p.name for p in out.iterdir()) == [
        "ledger.jsonl",
        "manifests",
        "run.json",
        "samples",
    ]
    assert len(ledger(out)) == 3 and len(list((out / "samples").iterdir())) == 3
    assert [p.name for p in out.parent.iterdir() if ".partial-" in p.name] == []

    assert main(["runs", str(out.parent)]) == 0
    listed = capsys.readouterr().out
    assert "incomplete" in listed and "3/8 shards" in listed and f"--resume {out}" in listed

    assert main(["run", "--resume", str(out), "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["resumed"] == {"shards_kept": 3, "shards_run": 5}
    assert summary["samples"] == 1024 and summary["errors"]["count"] == 0
    assert sorted(e["shard"] for e in ledger(out)) == list(range(8))
    faults.assert_exactly_once_and_equal(out, clean_run)


def test_a_crash_mid_append_and_a_damaged_shard_are_run_again(interrupted, clean_run, faults):
    out = interrupted
    kept = sorted(e["shard"] for e in ledger(out))
    with open(out / "ledger.jsonl", "a") as f:
        f.write('{"shard": 7, "start": 896, "sto')  # the append a crash cut short
    stray = out / "samples" / "shard-00007.parquet"  # written, but never recorded
    shutil.copy(out / "samples" / f"shard-{kept[0]:05d}.parquet", stray)
    damaged = out / "samples" / f"shard-{kept[1]:05d}.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")

    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == {"shards_kept": 2, "shards_run": 6}
    faults.assert_exactly_once_and_equal(out, clean_run)


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (("model", "options: {top_k: 5}", "options: {top_k: 3}"), (),
         r"model mnist-8@1.0.0: its content changed \(digest \w+ -> \w+\)"),
        (None, ("--batch-size", "128"), r"setting batch_size: 64 -> 128"),
        (None, ("--limit", "512"), r"setting limit: 1024 -> 512"),
        (None, ("--option", "top_k=3"), r"setting options: \{\} -> \{'top_k': 3\}"),
    ],
)  # fmt: skip
def test_a_resume_that_is_not_the_same_run_is_refused_naming_the_change(
    interrupted, mnist_manifests, capsys, change, extra, message
):
    if change:
        mnist_manifests.edit(*change)
    args = ["run", "--resume", str(interrupted), "--no-progress", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "this would not be the same run" in err and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (interrupted / "summary.json").exists() and len(ledger(interrupted)) == 3


def test_what_cannot_be_resumed_is_refused(clean_run, tmp_path, capsys):
    cases = {
        (str(clean_run),): "the run there is complete",
        (str(tmp_path / "nothing"),): "does not exist, so it is not an interrupted dlspec-ray run",
        (str(tmp_path),): "holds no run.json",
        (str(tmp_path), "--dry-run"): "--resume and --dry-run: a resumed run's plan is",
        (str(tmp_path), "--overwrite"): "a resumed run keeps its shards; it cannot also",
    }
    for args, message in cases.items():
        assert main(["run", "--resume", *args]) == 2
        assert message in capsys.readouterr().err


def test_a_damaged_ledger_line_is_refused_not_guessed(interrupted, capsys):
    lines = (interrupted / "ledger.jsonl").read_text().splitlines(keepends=True)
    lines[1] = "garbage\n"
    (interrupted / "ledger.jsonl").write_text("".join(lines))
    assert main(["run", "--resume", str(interrupted)]) == 2
    assert "ledger.jsonl: line 2: not a ledger entry" in capsys.readouterr().err


def test_ctrl_c_before_any_shard_keeps_nothing(
    mnist_manifests, tmp_path, monkeypatch, capsys, faults
):
    interrupt_after(monkeypatch, 0)
    assert main(mnist_manifests.run_args(*faults.SHAPE, "--out", str(tmp_path / "run"))) == 130
    assert "no shard was complete, so nothing was kept" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifests"]


def start_held_driver(mnist_manifests, tmp_path, faults):
    """A `dlspec-ray run` in its own process, on its own embedded Ray, held mid-run: one run
    call waits on the gate, and at least one shard is recorded in its staging folder."""
    import os
    import subprocess
    import sys

    gate = tmp_path / "gate"
    gate.mkdir()
    mnist_manifests.edit("model", faults.RUN_LINE, faults.faulty_run_stage(gate, "hold", 5))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "dlspec_ray.cli",
            *mnist_manifests.run_args(*faults.SHAPE, "--out", str(out))]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    faults.wait_for(gate / "waiting", "the held run call")

    def recorded() -> bool:
        staged = list(tmp_path.glob(".run.partial-*/ledger.jsonl"))
        return bool(staged) and bool(staged[0].read_text().strip())

    faults.wait_until(recorded, "a recorded shard")
    return driver, out, gate


def test_sigint_to_the_driver_keeps_the_shards_and_resume_finishes(
    mnist_manifests, tmp_path, clean_run, faults
):
    import signal

    driver, out, _ = start_held_driver(mnist_manifests, tmp_path, faults)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 130, err
    assert f"dlspec-ray run --resume {out}" in err and "Traceback" not in err
    assert (out / "run.json").is_file() and not (out / "summary.json").exists()
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    faults.assert_exactly_once_and_equal(out, clean_run)


def test_after_sigkill_to_the_driver_gc_ends_its_ray_and_keeps_its_shards_for_resume(
    mnist_manifests, tmp_path, clean_run, faults, capsys
):
    import signal

    from dlspec_ray.owner import processes_naming

    driver, out, _ = start_held_driver(mnist_manifests, tmp_path, faults)
    ray_temp = faults.inflight_ray_temp()
    assert processes_naming(ray_temp)
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=60)
    assert not out.exists()  # SIGKILL ran nothing: the shards are in the staging folder

    assert main(["env", "gc"]) == 0
    printed = capsys.readouterr().out
    assert f"kept the interrupted run {out}" in printed, printed
    assert f"removed {ray_temp}" in printed, printed
    assert processes_naming(ray_temp) == []  # no raylet, worker or agent of that Ray is left
    assert list(tmp_path.glob(".run.partial-*")) == []
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"]["shards_kept"] >= 1
    faults.assert_exactly_once_and_equal(out, clean_run)
