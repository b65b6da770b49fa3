"""The one wire protocol between a host actor and the agent inside its environment.

A message is a pickle (protocol 5) sent over a Unix socket; the large buffers
it holds (numpy arrays, bytearrays) travel out of band through the sender's
shared-memory arena, so the socket only carries a few hundred bytes per call.
Frame: ``<u64 pickle length><u32 buffer count>``, then ``<u64 offset><u64
length>`` per buffer, then the pickle. Buffers under ``INLINE_LIMIT`` stay in
the pickle: for them a copy costs less than the bookkeeping.

The same code runs on both sides, and needs only the standard library.
"""

from __future__ import annotations

__all__ = ["INLINE_LIMIT", "PROTOCOL", "Channel"]

import pickle
import socket
import struct
from typing import Any

from dlspec_ray.environments.shm import Arena

PROTOCOL = 2  # 2: the chain request
INLINE_LIMIT = 1 << 16
_HEAD = struct.Struct("<QI")
_SLOT = struct.Struct("<QQ")
_ALIGN = 64


def _copy(view: memoryview) -> Any:
    """A private copy of ``view``; numpy's allocator where there is one (the host side).

    numpy backs large arrays with transparent huge pages, so a 64 MiB copy costs
    about a memcpy; a ``bytearray`` pays a page fault per 4 KiB page (5x slower here).
    """
    try:
        import numpy as np
    except ImportError:
        return bytearray(view)
    copy = np.empty(view.nbytes, dtype=np.uint8)
    copy[:] = np.frombuffer(view, dtype=np.uint8)
    return copy


class Channel:
    """Send and receive messages; ``copy_received`` detaches received buffers from the arena.

    The host copies what it receives (a stage's result must outlive the next
    call, which reuses the arena); the agent reads its inputs in place, since
    a stage only sees them for the length of the call.
    """

    def __init__(
        self, sock: socket.socket, outgoing: Arena, incoming: Arena, *, copy_received: bool
    ):
        self.sock = sock
        self.outgoing = outgoing
        self.incoming = incoming
        self.copy_received = copy_received

    def send(self, message: Any) -> None:
        buffers: list[memoryview] = []

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            raw = buffer.raw()
            if raw.nbytes < INLINE_LIMIT:
                return True
            buffers.append(raw)
            return False

        data = pickle.dumps(message, protocol=5, buffer_callback=out_of_band)
        slots: list[tuple[int, int]] = []
        end = 0
        for raw in buffers:
            slots.append((end, raw.nbytes))
            end += -(-raw.nbytes // _ALIGN) * _ALIGN
        if buffers:
            self.outgoing.ensure(end)
            for (offset, _), raw in zip(slots, buffers, strict=True):
                self.outgoing.write(offset, raw)
        head = _HEAD.pack(len(data), len(slots)) + b"".join(_SLOT.pack(*s) for s in slots)
        self.sock.sendall(head + data)

    def recv(self) -> Any:
        size, count = _HEAD.unpack(self._read(_HEAD.size))
        table = self._read(_SLOT.size * count)
        slots = [_SLOT.unpack_from(table, i * _SLOT.size) for i in range(count)]
        data = self._read(size)
        views = [self.incoming.view(offset, length) for offset, length in slots]
        if not self.copy_received:
            return pickle.loads(data, buffers=views)
        copies = [_copy(v) for v in views]
        for v in views:
            v.release()
        return pickle.loads(data, buffers=copies)

    def _read(self, n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise EOFError("the other side closed the connection")
            got += k
        return buf

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.outgoing.close()
            self.incoming.close()
