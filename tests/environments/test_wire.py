from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from dlspec_ray.environments.shm import Arena
from dlspec_ray.environments.wire import INLINE_LIMIT, Channel


class CountingSocket:
    """A real socket that also counts the bytes sent through it."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sent = 0

    def sendall(self, data: bytes) -> None:
        self.sent += len(data)
        self.sock.sendall(data)

    def recv_into(self, view: memoryview) -> int:
        return self.sock.recv_into(view)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pair(tmp_path):
    a, b = socket.socketpair()
    host = Channel(CountingSocket(a), Arena(tmp_path / "h2a"), Arena(tmp_path / "a2h"),
                   copy_received=True)  # fmt: skip
    agent = Channel(CountingSocket(b), Arena(tmp_path / "a2h"), Arena(tmp_path / "h2a"),
                    copy_received=False)  # fmt: skip
    yield host, agent
    host.close()
    agent.close()


def test_large_arrays_cross_through_shared_memory_not_the_socket(pair):
    host, agent = pair
    big = np.arange(4 * 2**20 // 4, dtype=np.float32).reshape(1024, 1024)
    host.send({"op": "call", "data": {"x": big, "small": np.ones(3), "n": 7}})
    got = agent.recv()
    assert host.sock.sent < 2048  # the 4 MiB went through the arena
    np.testing.assert_array_equal(got["data"]["x"], big)
    assert got["data"]["n"] == 7
    # The agent reads in place: its array is a view of the shared mapping.
    assert not got["data"]["x"].flags.owndata


def test_what_the_host_receives_outlives_the_next_message(pair):
    host, agent = pair
    first = np.full((512, 1024), 1.0, dtype=np.float32)
    agent.send({"value": first})
    kept = host.recv()["value"]
    agent.send({"value": np.full((512, 1024), 2.0, dtype=np.float32)})
    host.recv()
    assert kept.flags.writeable
    assert float(kept.min()) == float(kept.max()) == 1.0


def test_the_arena_grows_for_a_bigger_tensor(pair):
    host, agent = pair
    for size in (1 << 16, 3 << 20, 17 << 20):
        x = np.random.default_rng(size).integers(0, 255, size, dtype=np.uint8)
        host.send(x)
        np.testing.assert_array_equal(agent.recv(), x)
    assert host.outgoing.size >= 17 << 20


def test_small_and_non_contiguous_buffers_stay_in_the_message(pair):
    host, agent = pair
    small = np.arange(INLINE_LIMIT // 16, dtype=np.int64)
    strided = np.arange(4_000, dtype=np.int64)[::2]  # in-band: one socket buffer holds it
    host.send([small, strided, b"bytes", "text"])
    got = agent.recv()
    np.testing.assert_array_equal(got[0], small)
    np.testing.assert_array_equal(got[1], strided)
    assert got[2:] == [b"bytes", "text"]
    assert host.outgoing.size == 0  # nothing needed the arena


def test_a_closed_peer_is_an_eof(pair):
    host, agent = pair
    agent.sock.close()
    with pytest.raises(EOFError, match="closed the connection"):
        host.recv()


def test_both_directions_at_once(pair):
    host, agent = pair

    def echo():
        for _ in range(20):
            agent.send({"back": agent.recv()["x"] * 2})

    thread = threading.Thread(target=echo)
    thread.start()
    for i in range(20):
        x = np.full(100_000, i, dtype=np.float64)
        host.send({"x": x})
        np.testing.assert_array_equal(host.recv()["back"], x * 2)
    thread.join()
