"""What a run records of the machine it ran on (hardware/machine.py)."""

from __future__ import annotations

import stat

from dlspec_ray.hardware.machine import describe_machine

# A stand-in for nvidia-smi (no GPU here): it prints what the real one prints for the
# query describe_machine makes, for two H100s.
FAKE_NVIDIA_SMI = """#!/bin/sh
echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, 9.0"
echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, 9.0"
"""


def test_the_machine_names_its_cpu_and_no_gpu_without_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi on it
    describe_machine.cache_clear()
    try:
        machine = describe_machine()
    finally:
        describe_machine.cache_clear()
    assert machine["cpu_model"] and machine["cpus"] >= 1 and machine["gpus"] == []
    assert machine["memory_bytes"] > 0


def test_each_gpu_is_named_with_its_driver_from_nvidia_smi(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_NVIDIA_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    describe_machine.cache_clear()
    try:
        gpus = describe_machine()["gpus"]
    finally:
        describe_machine.cache_clear()
    assert gpus == [
        {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB",
         "compute_cap": "9.0"},
    ] * 2  # fmt: skip
