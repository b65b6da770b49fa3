"""Turning a manifest's artifact sources into verified local paths.

The checksum is the artifact's identity: bytes are hashed while they stream in,
and only a file whose digest matches is renamed into the cache, so a file that
does not match is never cached and never used. A cached blob is used without
downloading (or re-hashing) it again: it was verified before it was published.
Remote sources must carry a checksum; a local file without one is used in place.

A local folder is checked against its tree digest (``sha256-tree:<hex>``, see
``checksum.tree_digest``) and used in place, not copied: datasets can be large.
A folder without a checksum is refused unless the caller allows unverified
sources, because nothing else pins what the folder held. A source's ``path``
names the folder (or file) inside an unpacked archive or a folder to use.

Network failures that may pass (connection errors, timeouts, 5xx, 429) are
retried a bounded number of times with exponential backoff; answers that will
not change (404, 403, ...), redirect loops and malformed URLs fail at once. A
redirect is followed only to another http(s) URL, never to ``file://``.

Each artifact's download has an overall deadline (``deadline_s``, default
``$DLSPEC_RAY_DOWNLOAD_DEADLINE_S`` or 30 minutes) shared by all its attempts and
waits, on top of the connect and read timeouts: a server that trickles a byte
every few seconds never trips the read timeout, but the deadline ends it (within
at most one read timeout). A failed or interrupted download leaves no partial
file; what killed processes left is swept at the start of the next fetch (see
``cache.sweep_partial``).
"""

from __future__ import annotations

__all__ = ["Progress", "fetch", "fetch_all", "local_path", "unverified_sources"]

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar
from urllib.parse import unquote, urljoin, urlparse

import requests
import urllib3

from dlspec_ray.artifacts.cache import (
    cached_blob,
    default_cache_dir,
    publish_blob,
    staged_file,
    sweep_partial,
    unpacked_dir,
)
from dlspec_ray.artifacts.checksum import (
    CHUNK_SIZE,
    TREE_PREFIX,
    Checksum,
    format_tree_checksum,
    parse_any_checksum,
    sha256_file,
    tree_digest,
)
from dlspec_ray.artifacts.limits import DEADLINE_ENV, download_deadline_s
from dlspec_ray.artifacts.unpack import SUPPORTED_ARCHIVES, archive_format, safe_unpack
from dlspec_ray.errors import ArtifactError, UsageError
from dlspec_ray.spec.types import Source

# Called as progress(bytes so far, total bytes or None when the server does not say).
Progress = Callable[[int, int | None], None]

_T = TypeVar("_T")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\[\]]+)")
_MAX_RETRY_AFTER_S = 30.0
_GIVE_UP = "download the file yourself and point source: at the local copy (keeping the checksum)."


def fetch(
    source: Source,
    cache_dir: Path | None = None,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    retries: int = 3,
    backoff: float = 0.5,
    progress: Progress | None = None,
    allow_unverified: bool = False,
    deadline_s: float | None = None,
) -> Path:
    """The local path to use for ``source``: a file, or a folder when ``source.unpack``.

    With ``source.path`` it is that entry inside the unpacked archive or folder.
    ``retries`` is the number of extra attempts after the first; the waits between
    attempts are ``backoff``, ``2 * backoff``, ``4 * backoff``, ...
    ``allow_unverified`` lets a local folder without a checksum be used (see
    :func:`unverified_sources` for what that covers); otherwise it is refused.
    ``deadline_s`` bounds the whole download, retries included (default
    ``$DLSPEC_RAY_DOWNLOAD_DEADLINE_S``, else 1800 s).
    """
    with _Fetcher.create(
        cache_dir,
        connect_timeout,
        read_timeout,
        retries,
        backoff,
        progress,
        allow_unverified,
        deadline_s,
    ) as fetcher:
        return fetcher.fetch(source)


def fetch_all(
    sources: Iterable[Source],
    cache_dir: Path | None = None,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    retries: int = 3,
    backoff: float = 0.5,
    progress: Progress | None = None,
    allow_unverified: bool = False,
    deadline_s: float | None = None,
) -> dict[str, Path]:
    """``{source.name: local path}``; stops at the first source that fails.

    ``allow_unverified`` and ``deadline_s`` are :func:`fetch`'s, for every source
    (the deadline applies to each download on its own).
    """
    paths: dict[str, Path] = {}
    with _Fetcher.create(
        cache_dir,
        connect_timeout,
        read_timeout,
        retries,
        backoff,
        progress,
        allow_unverified,
        deadline_s,
    ) as fetcher:
        for source in sources:
            if source.name in paths:
                raise ArtifactError(
                    f"{_where(source)}: the artifact name {source.name!r} is used twice; "
                    "give each source a unique name."
                )
            paths[source.name] = fetcher.fetch(source)
    return paths


def unverified_sources(sources: Iterable[Source]) -> list[str]:
    """Names of the sources that are used without any check of their bytes, in order.

    Those are local sources without a checksum: a file is used as it is, and a
    folder only with ``allow_unverified=True``. A remote source always has a
    checksum (one without is refused), so it is never listed. Needs no filesystem.
    """
    return [s.name for s in sources if not s.checksum and not s.is_remote]


class _Session(requests.Session):
    """Follows a redirect only to another http(s) URL."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is not None:
            url = urljoin(resp.url, target)
            scheme = urlparse(url).scheme.lower()
            if scheme not in ("http", "https"):
                raise ArtifactError(
                    f"{resp.url} redirects to {url}, a {scheme or 'scheme-less'} URL, which "
                    "was refused (not retried): a download follows only http:// and https:// "
                    f"redirects. Point source: at the file's real URL; or {_GIVE_UP}"
                )
        return target


# Failures of the request itself that asking again cannot fix.
_NOT_TRANSIENT = (
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


class _Transient(Exception):
    """A failed attempt worth repeating."""

    def __init__(self, reason: str, retry_after: float = 0.0):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Deadline(Exception):
    """The download's deadline passed; ``reason`` says how far it got."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Fetcher:
    cache: Path
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float
    progress: Progress | None
    allow_unverified: bool = False
    deadline_s: float = 1800.0
    session: requests.Session | None = None
    swept: bool = False

    @classmethod
    def create(
        cls,
        cache_dir: Path | None,
        connect_timeout: float,
        read_timeout: float,
        retries: int,
        backoff: float,
        progress: Progress | None,
        allow_unverified: bool = False,
        deadline_s: float | None = None,
    ) -> _Fetcher:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise UsageError(
                f"fetch timeouts must be positive seconds, got connect_timeout="
                f"{connect_timeout!r}, read_timeout={read_timeout!r}."
            )
        if retries < 0 or backoff < 0:
            raise UsageError(
                f"fetch retries and backoff must be >= 0, got retries={retries!r}, "
                f"backoff={backoff!r}."
            )
        deadline = download_deadline_s(deadline_s)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        return cls(
            cache,
            connect_timeout,
            read_timeout,
            retries,
            backoff,
            progress,
            allow_unverified,
            deadline,
        )

    def __enter__(self) -> _Fetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.session is not None:
            self.session.close()

    def fetch(self, source: Source) -> Path:
        if not self.swept:
            self.swept = True
            # What killed fetchers left; best effort, never a reason to fail.
            with suppress(OSError):
                sweep_partial(self.cache)
        try:
            return self._fetch(source)
        except ArtifactError as exc:
            raise ArtifactError(f"{_where(source)}: {exc}") from exc
        except OSError as exc:
            raise ArtifactError(
                f"{_where(source)}: cannot write {source.source} into the artifact cache "
                f"{self.cache}: {exc}. Free some disk space or fix the folder's permissions, "
                "or set DLSPEC_RAY_CACHE to a writable folder."
            ) from exc

    def _fetch(self, source: Source) -> Path:
        checksum = parse_any_checksum(source.checksum) if source.checksum else None
        if source.is_remote:
            if checksum is None:
                raise ArtifactError(
                    f"the remote source {source.source} has no checksum, and a download is "
                    "only used once its bytes are verified; add checksum: sha256:<digest> "
                    "(run `sha256sum FILE` on a copy you trust)."
                )
            if checksum.is_tree:
                raise ArtifactError(
                    f"checksum: {checksum} is a folder's tree digest, but the remote source "
                    f"{source.source} is one file; write its file checksum, sha256:<digest> "
                    "(`sha256sum FILE` or `dlspec-ray checksum FILE` on a copy you trust)."
                )
            return _select(source, self._remote(source, checksum.hex))
        path = local_path(source)
        if not source.unpack and path.is_dir():
            return _select(source, self._local_folder(source, path, checksum))
        if checksum is None:
            return _select(source, self._local_in_place(source, path))
        if checksum.is_tree:
            _refuse_tree_checksum_on_file(source, path, checksum)
        return _select(source, self._local_verified(source, path, checksum.hex))

    def _remote(self, source: Source, expected: str) -> Path:
        name = _url_basename(source)
        _require_archive(source, name)
        if source.unpack and unpacked_dir(self.cache, expected).is_dir():
            return unpacked_dir(self.cache, expected)
        blob = cached_blob(self.cache, expected, name)
        if blob is None:
            with staged_file(self.cache, name) as staged:
                _verify(source.source, expected, self._download(source.source, staged))
                blob = publish_blob(self.cache, expected, staged)
        return self._finish(source, blob, expected)

    def _local_folder(self, source: Source, path: Path, checksum: Checksum | None) -> Path:
        """A folder, used in place once its tree digest matches (or when allowed unverified)."""
        if checksum is None:
            if self.allow_unverified:
                return path
            raise ArtifactError(
                f"{path} is a folder without a checksum: a folder source needs a checksum so "
                f"the dataset can be reproduced; add `checksum: {_tree_checksum(path)}` "
                f"(printed by `dlspec-ray checksum {path}`), or pass --allow-unverified "
                "(allow_unverified=True from Python) to use it unchecked."
            )
        actual = _tree_checksum(path)
        if not checksum.is_tree:
            raise ArtifactError(
                f"{path} is a folder, but checksum: {checksum} is a file's checksum; a folder's "
                f"checksum is its tree digest: set checksum: {actual} (printed by "
                f"`dlspec-ray checksum {path}`). The folder was not used."
            )
        if actual != str(checksum):
            raise ArtifactError(
                f"checksum mismatch for the folder {path}: expected {checksum}, got {actual}. "
                "A file in it was added, removed, renamed or changed, or the manifest is wrong; "
                f"if you trust the folder as it is, set checksum: {actual} (printed by "
                f"`dlspec-ray checksum {path}`). The folder was not used."
            )
        return path

    def _local_in_place(self, source: Source, path: Path) -> Path:
        if not path.exists():
            raise ArtifactError(_missing(source, path))
        if not source.unpack:
            return path
        _require_archive(source, path.name)
        if not path.is_file():
            raise ArtifactError(f"{path} is a folder, but unpack: true needs an archive file.")
        # Keyed by the bytes, so an edited archive is unpacked afresh.
        return safe_unpack(path, unpacked_dir(self.cache, _read(sha256_file, path)))

    def _local_verified(self, source: Source, path: Path, expected: str) -> Path:
        _require_archive(source, path.name)
        if source.unpack and unpacked_dir(self.cache, expected).is_dir():
            return unpacked_dir(self.cache, expected)
        blob = cached_blob(self.cache, expected, path.name)
        if blob is None:
            if not path.exists():
                raise ArtifactError(_missing(source, path))
            if not path.is_file():
                raise ArtifactError(
                    f"{path} is a folder, but unpack: true needs an archive file; set "
                    "unpack: false to use the folder (with its sha256-tree: checksum), or "
                    "point source: at an archive of it."
                )
            with staged_file(self.cache, path.name) as staged:
                _verify(str(path), expected, self._copy(path, staged))
                blob = publish_blob(self.cache, expected, staged)
        return self._finish(source, blob, expected)

    def _finish(self, source: Source, blob: Path, digest: str) -> Path:
        if not source.unpack:
            return blob
        return safe_unpack(blob, unpacked_dir(self.cache, digest))

    def _copy(self, path: Path, staged: Path) -> str:
        """Copy while hashing, so the bytes cached are exactly the bytes verified."""
        digest = hashlib.sha256()
        total = _read(lambda p: p.stat().st_size, path)
        done = 0
        source_file: BinaryIO = _read(lambda p: open(p, "rb"), path)  # noqa: SIM115 - closed below
        with source_file, open(staged, "wb") as sink:
            while chunk := source_file.read(CHUNK_SIZE):
                sink.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if self.progress is not None:
                    self.progress(done, total)
        return digest.hexdigest()

    def _download(self, url: str, staged: Path) -> str:
        attempts = self.retries + 1
        deadline = time.monotonic() + self.deadline_s
        reason = ""
        for attempt in range(attempts):
            try:
                return self._download_once(url, staged, deadline)
            except _Deadline as exc:
                raise self._past_deadline(url, attempt + 1, exc.reason) from exc
            except _Transient as exc:
                reason = exc.reason
                if time.monotonic() >= deadline:
                    raise self._past_deadline(url, attempt + 1, reason) from exc
                if attempt + 1 < attempts:
                    wait = max(self.backoff * 2**attempt, min(exc.retry_after, _MAX_RETRY_AFTER_S))
                    if time.monotonic() + wait >= deadline:
                        raise self._past_deadline(url, attempt + 1, reason) from exc
                    time.sleep(wait)
        raise ArtifactError(
            f"could not download {url}: {reason} (tried {attempts} time(s), with "
            f"{self.connect_timeout:g} s connect and {self.read_timeout:g} s read timeouts). "
            "Check the URL and that its host is reachable from this machine; if the server "
            f"is just slow, raise the timeouts or retries; or {_GIVE_UP}"
        )

    def _past_deadline(self, url: str, attempts: int, reason: str) -> ArtifactError:
        return ArtifactError(
            f"could not download {url} within its deadline of {self.deadline_s:g} s "
            f"(tried {attempts} time(s); last: {reason}). The server is too slow or stalls; "
            f"if the file is just big, raise {DEADLINE_ENV} (deadline_s= from Python); "
            f"or {_GIVE_UP}"
        )

    def _download_once(self, url: str, staged: Path, deadline: float) -> str:
        if self.session is None:
            self.session = _Session()
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Deadline("the deadline passed before the attempt")
        try:
            response = self.session.get(
                url,
                stream=True,
                # Neither waits past the deadline; reads later in the body are bounded
                # by the read timeout, and the deadline is checked after each.
                timeout=(min(self.connect_timeout, left), min(self.read_timeout, left)),
                # The checksum is of the file as published, not of a decoded body.
                headers={"Accept-Encoding": "identity"},
            )
        except requests.TooManyRedirects as exc:
            raise ArtifactError(
                f"{url} redirects in a loop (more than {self.session.max_redirects} redirects; "
                f"not retried). Point source: at the file's real URL; or {_GIVE_UP}"
            ) from exc
        except _NOT_TRANSIENT as exc:
            raise ArtifactError(
                f"cannot download {url}: {type(exc).__name__}: {str(exc)[:200]} (not retried). "
                f"Fix the URL in source:; or {_GIVE_UP}"
            ) from exc
        except requests.RequestException as exc:
            raise _Transient(self._reason(exc)) from exc
        with response:
            status = response.status_code
            if status >= 500 or status == 429:
                raise _Transient(f"HTTP {status} {response.reason}", _retry_after(response))
            if status >= 400:
                raise ArtifactError(
                    f"HTTP {status} {response.reason} for {url} (not retried: this answer "
                    "will not change by asking again). Check the URL, and whether the server "
                    f"needs credentials or the file moved; or {_GIVE_UP}"
                )
            total = _content_length(response)
            digest = hashlib.sha256()
            done = 0
            # read1 (urllib3 >= 2) returns whatever has arrived, so a trickle cannot hold
            # off the deadline check; urllib3 1.x's read waits for a whole chunk.
            read_some = getattr(response.raw, "read1", None) or response.raw.read
            with open(staged, "wb") as sink:
                while True:
                    if time.monotonic() >= deadline:
                        raise _Deadline(f"{done} of {total or 'unknown'} bytes had arrived")
                    try:
                        chunk = read_some(CHUNK_SIZE, decode_content=False)
                    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
                        raise _Transient(self._reason(e)) from e
                    if not chunk:
                        break
                    sink.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if self.progress is not None:
                        self.progress(done, total)
        return digest.hexdigest()

    def _reason(self, exc: BaseException) -> str:
        """One readable line instead of urllib3's nested exception text."""
        if isinstance(exc, requests.ConnectTimeout):
            return f"no connection within {self.connect_timeout:g} s (connect timeout)"
        timeouts = (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)
        if isinstance(exc, timeouts) or "Read timed out" in str(exc):
            return f"the server sent nothing for {self.read_timeout:g} s (read timeout)"
        text = str(exc)
        match = _ERRNO.search(text)
        if match:
            return match.group(1).strip().lower()
        return f"{type(exc).__name__}: {text[:200]}"


def _where(source: Source) -> str:
    parts = [part for part in (source.origin, source.field) if part]
    return ": ".join(parts) if parts else f"artifact {source.name!r}"


def local_path(source: Source) -> Path:
    """Where a local source is: a file URL, an absolute path, or one relative to its manifest."""
    text = source.source
    if text.startswith("file:"):
        parsed = urlparse(text)
        path = Path(unquote(parsed.path))
        if parsed.netloc not in ("", "localhost") or not path.is_absolute():
            raise ArtifactError(
                f"{text!r} is not an absolute file URL; write file:///absolute/path "
                "(three slashes), or a path relative to the manifest's folder."
            )
        return path
    if _SCHEME.match(text):
        scheme = text.split("://", 1)[0]
        raise ArtifactError(
            f"unsupported source scheme {scheme!r} in {text!r}; expected file:///absolute/path, "
            "a path relative to the manifest's folder, http:// or https://."
        )
    path = Path(text)
    if path.is_absolute():
        return path
    return Path(os.path.abspath(Path(source.base_dir) / path))


def _missing(source: Source, path: Path) -> str:
    relative = not source.source.startswith("file:") and not Path(source.source).is_absolute()
    how = (
        f" ({source.source!r} is resolved against the manifest's folder {source.base_dir})"
        if relative
        else ""
    )
    return f"the local file {path} does not exist{how}; fix source:, or put the file there."


def _url_basename(source: Source) -> str:
    """The file name the URL ends in, so the cached blob keeps its extension."""
    name = unquote(urlparse(source.source).path).rsplit("/", 1)[-1]
    name = "".join("_" if c in "\\\x00" else c for c in name)[-200:]
    if name in ("", ".", ".."):
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in source.name) or "blob"
    return name


def _require_archive(source: Source, name: str) -> None:
    if source.unpack and archive_format(name) is None:
        raise ArtifactError(
            f"unpack: true, but {name!r} does not end in one of {', '.join(SUPPORTED_ARCHIVES)}, "
            "so its archive format is unknown; set unpack: false, or use a file name or URL "
            "with the archive's extension."
        )


def _verify(what: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactError(
            f"checksum mismatch for {what}: expected sha256:{expected}, got "
            f"sha256:{actual}. The file changed or the manifest is wrong; if you trust the "
            f"new file, set checksum: sha256:{actual}. The file was neither cached nor used."
        )


def _tree_checksum(path: Path) -> str:
    return format_tree_checksum(tree_digest(path))


def _refuse_tree_checksum_on_file(source: Source, path: Path, checksum: Checksum) -> None:
    """A ``sha256-tree:`` checksum on a source that is not a folder used as it is."""
    if source.unpack:
        raise ArtifactError(
            f"checksum: {checksum} is a folder's tree digest ({TREE_PREFIX}:), but unpack: true "
            "unpacks an archive, a file, which is checked by its own checksum; write the "
            "archive's sha256: (printed by `dlspec-ray checksum ARCHIVE`), or set unpack: false "
            "for a folder."
        )
    if not path.exists():
        raise ArtifactError(
            f"checksum: {checksum} is a folder's tree digest, but {_missing(source, path)}"
        )
    raise ArtifactError(
        f"checksum: {checksum} is a folder's tree digest ({TREE_PREFIX}:), but {path} is a "
        f"file; set checksum: sha256:{_read(sha256_file, path)} (printed by "
        f"`dlspec-ray checksum {path}`). The file was not used."
    )


def _select(source: Source, root: Path) -> Path:
    """``root``, or the entry ``source.path`` names inside it."""
    if not source.path:
        return root
    if not root.is_dir():
        raise ArtifactError(
            f"path: {source.path!r} names an entry inside a folder, but {root} is a file; set "
            "unpack: true if it is an archive, or remove path:."
        )
    target = root.joinpath(*source.path.split("/"))
    if not os.path.lexists(target):
        deepest = root
        for part in source.path.split("/"):
            if not (deepest / part).is_dir():
                break
            deepest = deepest / part
        where = "its top level" if deepest == root else f"{deepest.relative_to(root)}/"
        what = "the unpacked archive" if source.unpack else "the folder"
        raise ArtifactError(
            f"path: {source.path!r} is not in {what} {root}; {where} holds "
            f"{_entries(deepest)}. Fix path: (it is relative to the top of {what})."
        )
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ArtifactError(
            f"path: {source.path!r} resolves to {real}, outside {root}, through a symlink; "
            "name the entry it points to inside the folder instead."
        )
    return target


def _entries(folder: Path, limit: int = 20) -> str:
    try:
        names = sorted(f"{p.name}/" if p.is_dir() else p.name for p in folder.iterdir())
    except OSError:
        return "nothing that can be listed"
    if not names:
        return "nothing (it is empty)"
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return shown + more


def _read(action: Callable[[Path], _T], path: Path) -> _T:
    try:
        return action(path)
    except OSError as exc:
        raise ArtifactError(f"cannot read the local file {path}: {exc.strerror}.") from exc


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else 0.0
