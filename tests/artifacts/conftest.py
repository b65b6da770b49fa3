"""A real HTTP server on 127.0.0.1 that can be told to misbehave, and Source builders."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dlspec_ray.spec.types import Source

ORIGIN = "manifests/test-dataset.yaml"
FIELD = "sources[0].source"


@dataclass
class FileServer:
    """Serves ``root``; each knob changes how the next requests are answered."""

    root: Path
    port: int = 0
    requests: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with fail_status first
    fail_status: int = 503
    status: int | None = None  # answer every request with this error status
    stall_s: float = 0.0  # wait this long before answering
    stall_after_bytes: int | None = None  # send headers and this many bytes, then stall
    drip_s: float | None = None  # send headers, then one byte every drip_s seconds
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location of a 302
    gate: threading.Barrier | None = None  # hold each request until the gate opens
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        """Publish a file; returns its ``sha256:<hex>`` checksum."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return "sha256:" + hashlib.sha256(data).hexdigest()


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(self.path)
            failing = state.fail_next > 0
            state.fail_next -= int(failing)
        if state.gate is not None:
            # Until every fetcher has arrived: on a loaded machine, interpreters starting
            # can take far more than a few seconds (the fixture aborts the gate at the end).
            state.gate.wait(timeout=300)
        if state.stall_s:
            state.stop.wait(state.stall_s)
        if failing or state.status is not None:
            self.send_error(state.fail_status if failing else state.status or 500)
            return
        if self.path in state.redirects:
            self.send_response(302)
            self.send_header("Location", state.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if state.drip_s is not None:
            data = (state.root / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(len(data)):
                try:
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up
                if state.stop.wait(state.drip_s):
                    return
            return
        if state.stall_after_bytes is not None:
            data = (state.root / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: state.stall_after_bytes])
            self.wfile.flush()
            state.stop.wait(30)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out leave broken pipes behind; that is the point


@pytest.fixture(autouse=True)
def _private_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that forgets to pass a cache folder must still not write to ~/.cache."""
    monkeypatch.setenv("DLSPEC_RAY_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    state = FileServer(root=root)
    server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.state = state
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        if state.gate is not None:
            state.gate.abort()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def make_source(tmp_path: Path) -> Callable[..., Source]:
    def make(
        source: str,
        checksum: str | None = None,
        *,
        unpack: bool = False,
        name: str = "blob",
        base_dir: Path | None = None,
        path: str | None = None,
    ) -> Source:
        return Source(
            name=name,
            source=source,
            checksum=checksum,
            unpack=unpack,
            base_dir=base_dir or tmp_path,
            origin=ORIGIN,
            field=FIELD,
            path=path,
        )

    return make


def files_under(folder: Path) -> list[Path]:
    """Every non-folder entry below ``folder`` (none if it does not exist)."""
    return sorted(p for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


@pytest.fixture
def list_files() -> Callable[[Path], list[Path]]:
    return files_under
