from __future__ import annotations

import numpy as np
import pytest

from dlspec_ray.environments.shm import SHM_PREFIX, Arena, env_dir_owner, make_env_dir
from dlspec_ray.owner import owner_token


def test_an_env_dir_is_private_and_named_after_its_owner():
    path = make_env_dir()
    try:
        assert path.name.startswith(SHM_PREFIX)
        assert env_dir_owner(path.name) == owner_token()
        assert path.stat().st_mode & 0o777 == 0o700
    finally:
        path.rmdir()


@pytest.mark.parametrize(
    "name, owner",
    [
        ("dlspec-ray-123.456-0a1b2c3d", "123.456"),
        ("dlspec-ray-123.456-short", None),
        ("other-123.456-0a1b2c3d", None),
        ("dlspec-ray--0a1b2c3d", None),
    ],
)
def test_env_dir_owner_reads_only_our_names(name, owner):
    assert env_dir_owner(name) == owner


def test_a_receiver_sees_what_the_sender_wrote_after_it_grew(tmp_path):
    sender, receiver = Arena(tmp_path / "a"), Arena(tmp_path / "a")
    sender.ensure(10)
    sender.write(0, memoryview(b"hello"))
    assert bytes(receiver.view(0, 5)) == b"hello"
    data = np.arange(5 << 20, dtype=np.uint8)
    sender.ensure(data.nbytes + 64)
    sender.write(64, memoryview(data))
    assert bytes(receiver.view(64, 16)) == bytes(data[:16])
    assert bytes(receiver.view(64 + data.nbytes - 16, 16)) == bytes(data[-16:])
    assert receiver.size == sender.size >= data.nbytes
    sender.close()
    receiver.close()


def test_a_message_past_the_end_is_refused(tmp_path):
    arena = Arena(tmp_path / "a")
    with pytest.raises(EOFError, match="past the end"):
        arena.view(0, 10)
    arena.close()
