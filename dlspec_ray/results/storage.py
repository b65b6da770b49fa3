"""Where run directories live: a local folder, or a prefix in object storage.

A ``StorageLocation`` names one folder or file, either on the local file system
(a path, or a ``file://`` URI) or in any store ``pyarrow.fs`` understands
(``s3://bucket/prefix``, ``gs://bucket/prefix``, ...). The results layer reads and
writes run directories through it, so ``dlspec-ray runs``, ``compare``, ``report``
and the Python API work the same on ``runs/`` and on ``s3://bucket/runs``.

A location is a small frozen value: its URI and its storage options, nothing
else. The ``pyarrow.fs`` filesystem behind it is created on first use, once per
process and set of options, so a location is cheap to pickle and send to a Ray
actor on another node, which then writes to the same place the driver named.

Options of an ``s3://`` location come from the environment, read once when the
location is made (so an actor on another node uses what the driver saw), and
from an explicit mapping, which wins (``--storage-option KEY=VALUE``):

======================  ================================  ==========================
option                  environment variable              meaning
======================  ================================  ==========================
``endpoint_url``        ``AWS_ENDPOINT_URL_S3``, then     an S3-compatible server,
                        ``AWS_ENDPOINT_URL``              e.g. ``http://127.0.0.1:9000``
``access_key``          ``AWS_ACCESS_KEY_ID``             credentials; without them
``secret_key``          ``AWS_SECRET_ACCESS_KEY``         the AWS default chain
``session_token``       ``AWS_SESSION_TOKEN``             (config files, instance
                                                          role) of each node is used
``region``              ``AWS_REGION``, then              the bucket's region
                        ``AWS_DEFAULT_REGION``
``anonymous``           -                                 ``true``: unsigned requests
``connect_timeout``     -                                 seconds
``request_timeout``     -                                 seconds
``max_attempts``        -                                 tries per request (3)
======================  ================================  ==========================

``gs://`` locations take ``endpoint_url``, ``anonymous`` and ``project_id``, and
otherwise Google's default credentials (``GOOGLE_APPLICATION_CREDENTIALS``).
Secrets are never shown by ``repr`` or ``describe``.

Writes are atomic: a local file is written under a hidden temporary name and
renamed into place; an object is uploaded whole and appears only when the upload
completes. A reader never sees half a file.
"""

from __future__ import annotations

__all__ = [
    "ENV_OPTIONS",
    "PROBE_PREFIX",
    "Location",
    "StorageError",
    "StorageLocation",
    "as_location",
    "explain_storage_error",
    "is_uri",
    "parse_storage_options",
]

import contextlib
import functools
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from dlspec_ray.errors import UsageError

# Options of s3:// locations read from the environment, in order of precedence.
ENV_OPTIONS: dict[str, tuple[str, ...]] = {
    "endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "access_key": ("AWS_ACCESS_KEY_ID",),
    "secret_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}
_OPTIONS_OF: dict[str, frozenset[str]] = {
    "s3": frozenset(
        {*ENV_OPTIONS, "anonymous", "connect_timeout", "request_timeout", "max_attempts"}
    ),
    "gs": frozenset({"endpoint_url", "anonymous", "project_id"}),
}
_SECRET = frozenset({"secret_key", "session_token"})
_SCHEME_ALIASES = {"gcs": "gs", "s3a": "s3"}
# Objects ``check_writable`` writes and deletes again; readers skip them.
PROBE_PREFIX = ".dlspec-ray-probe-"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageError(UsageError):
    """Object storage refused or could not be reached (exit code 2, with the URI and the fix)."""


def is_uri(text: str) -> bool:
    """Whether ``text`` is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(text))


def parse_storage_options(items: Iterable[str] | None) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (repeated ``--storage-option`` flags) as a mapping.

    Keys are checked against the options of a scheme when a location is made,
    where the scheme is known; here only the form is checked.
    """
    options: dict[str, str] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(
                f"--storage-option {item!r}: expected KEY=VALUE, for example "
                "endpoint_url=http://127.0.0.1:9000 or region=eu-west-1"
            )
        options[key] = value.strip()
    return options


@dataclass(frozen=True)
class StorageLocation:
    """A folder or file, local or in object storage; see the module's docstring.

    ``uri`` is the location as given, normalised: a local path (``runs/a``), or
    ``scheme://bucket/key`` without a trailing slash. ``options`` are the
    resolved storage options, sorted; secrets among them are kept out of ``repr``.
    """

    uri: str
    options: tuple[tuple[str, str], ...] = ()

    # -- making and naming ---------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        location: str | os.PathLike[str] | StorageLocation,
        options: Mapping[str, str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> StorageLocation:
        """A location from a path or URI; ``env`` defaults to ``os.environ`` (s3:// only)."""
        if isinstance(location, StorageLocation):
            if not options:
                return location
            return location.with_options(options)
        if isinstance(location, os.PathLike) or not is_uri(str(location)):
            if options:
                raise UsageError(
                    f"{location}: storage options ({', '.join(sorted(options))}) apply only to "
                    "object storage URIs such as s3://bucket/prefix; drop them for a local path"
                )
            return cls(uri=str(Path(location)))
        text = str(location)
        parts = urlsplit(text)
        scheme = _SCHEME_ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
        if parts.query or parts.fragment:
            raise UsageError(
                f"{text}: a storage URI takes no '?' or '#' part; give endpoint, region and "
                "credentials as environment variables (AWS_ENDPOINT_URL, AWS_REGION, "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or storage options"
            )
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise UsageError(
                    f"{text}: a file:// URI names a local path (file:///abs/path); "
                    f"host {parts.netloc!r} is not this machine"
                )
            if options:
                raise UsageError(f"{text}: storage options apply only to object storage URIs")
            return cls(uri=str(Path(parts.path or "/")))
        if not parts.netloc:
            raise UsageError(
                f"{text}: no bucket; expected {scheme}://BUCKET/PREFIX, e.g. {scheme}://my-bucket/runs"
            )
        key = "/".join(p for p in parts.path.split("/") if p)
        _check_key(text, key)
        uri = f"{scheme}://{parts.netloc}" + (f"/{key}" if key else "")
        resolved: dict[str, str] = {}
        if scheme == "s3":
            environ = os.environ if env is None else env
            for name, variables in ENV_OPTIONS.items():
                value = next((environ[v] for v in variables if environ.get(v)), None)
                if value:
                    resolved[name] = value
        explicit = {str(k).replace("-", "_"): str(v) for k, v in (options or {}).items()}
        known = _OPTIONS_OF.get(scheme)
        if known is not None:
            unknown = sorted(set(explicit) - known)
            if unknown:
                raise UsageError(
                    f"{uri}: unknown storage option(s) {', '.join(unknown)}; {scheme}:// "
                    f"takes {', '.join(sorted(known))}"
                )
        elif explicit:
            raise UsageError(
                f"{uri}: storage options are supported for s3:// and gs:// only; "
                f"{scheme}:// takes its settings from the URI itself"
            )
        resolved.update(explicit)
        location_ = cls(uri=uri, options=tuple(sorted(resolved.items())))
        location_._validate_options()
        return location_

    def with_options(self, options: Mapping[str, str]) -> StorageLocation:
        """The same place with ``options`` added (they win over the ones it had)."""
        if self.is_local:
            return StorageLocation.parse(self.uri, options)
        merged = {**dict(self.options), **{str(k): str(v) for k, v in options.items()}}
        return StorageLocation.parse(self.uri, merged, env={})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}=***" if k in _SECRET else f"{k}={v!r}" for k, v in self.options)
        return f"StorageLocation({self.uri!r}" + (f", {shown}" if shown else "") + ")"

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, part: str) -> StorageLocation:
        return self.child(part)

    @property
    def scheme(self) -> str:
        """``file`` for a local path, else the URI's scheme (``s3``, ``gs``, ...)."""
        return self.uri.split("://", 1)[0] if is_uri(self.uri) else "file"

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def local_path(self) -> Path:
        """The local path; only for a local location."""
        if not self.is_local:
            raise ValueError(f"{self.uri} is not a local path")
        return Path(self.uri)

    @property
    def name(self) -> str:
        if self.is_local:
            return Path(self.uri).name
        return posixpath.basename(self._key) if self._key else self._root.split("://", 1)[1]

    @property
    def parent(self) -> StorageLocation:
        if self.is_local:
            return StorageLocation(str(Path(self.uri).parent))
        key = posixpath.dirname(self._key)
        return StorageLocation(f"{self._root}/{key}" if key else self._root, self.options)

    def child(self, *parts: str) -> StorageLocation:
        """The location ``parts`` below this one (``a/b`` parts are split).

        In object storage ``.`` and ``..`` are refused (keys have no such thing);
        a local path joins them as ``Path`` does.
        """
        if self.is_local:
            return StorageLocation(str(Path(self.uri).joinpath(*map(str, parts))))
        pieces = [p for part in parts for p in str(part).split("/") if p]
        for piece in pieces:
            if piece in (".", ".."):
                raise ValueError(f"{self.uri}: child {'/'.join(parts)!r} leaves the folder")
        if not pieces:
            return self
        return StorageLocation(f"{self.uri}/{'/'.join(pieces)}", self.options)

    join = child

    def relative_to(self, other: StorageLocation) -> str:
        """This location's path below ``other``, with ``/`` separators."""
        if self.is_local and other.is_local:
            return os.path.relpath(Path(self.uri).resolve(), Path(other.uri).resolve())
        if self.uri == other.uri:
            return "."
        prefix = other.uri.rstrip("/") + "/"
        if not self.uri.startswith(prefix):
            raise ValueError(f"{self.uri} is not below {other.uri}")
        return self.uri[len(prefix) :]

    def describe(self) -> str:
        """The location for a message: its URI, and the endpoint when one was given."""
        endpoint = dict(self.options).get("endpoint_url")
        return f"{self.uri} (endpoint {endpoint})" if endpoint else self.uri

    # -- reading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self._kind() is not None

    def is_file(self) -> bool:
        return self._kind() == "file"

    def is_dir(self) -> bool:
        """A local folder; in object storage, a bucket or a prefix with objects under it."""
        return self._kind() == "dir"

    def read_bytes(self) -> bytes:
        """The file's bytes; ``FileNotFoundError`` when there is none."""
        if self.is_local:
            return Path(self.uri).read_bytes()
        fs, path = self._fs()
        try:
            with fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.uri}: no such object") from None
        except OSError as exc:
            raise self._error("reading", exc) from None

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def open_input_file(self) -> Any:
        """A random-access ``pyarrow`` file (Parquet reads only the column chunks it needs)."""
        import pyarrow as pa

        if self.is_local:
            return pa.OSFile(self.uri, "r")
        fs, path = self._fs()
        try:
            return fs.open_input_file(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.uri}: no such object") from None
        except OSError as exc:
            raise self._error("reading", exc) from None

    def list_files(self, *, recursive: bool = False) -> list[str]:
        """Names of the files in this folder (``a/b`` paths when ``recursive``), sorted.

        A folder that does not exist has no files (object storage has no empty
        folders to tell the two apart). Hidden temporary files and probe objects
        are included; callers filter by name.
        """
        if self.is_local:
            root = Path(self.uri)
            if not root.is_dir():
                return []
            if not recursive:
                return sorted(p.name for p in root.iterdir() if p.is_file())
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        import pyarrow.fs as pafs

        fs, path = self._fs()
        try:
            infos = fs.get_file_info(
                pafs.FileSelector(path, allow_not_found=True, recursive=recursive)
            )
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("listing", exc) from None
        base = path.rstrip("/") + "/"
        return sorted(
            info.path[len(base) :]
            for info in infos
            if info.type == pafs.FileType.File and info.path.startswith(base)
        )

    def list_dirs(self) -> list[str]:
        """Names of the folders directly in this folder (prefixes, in object storage), sorted."""
        if self.is_local:
            root = Path(self.uri)
            if not root.is_dir():
                return []
            return sorted(p.name for p in root.iterdir() if p.is_dir())
        import pyarrow.fs as pafs

        fs, path = self._fs()
        try:
            infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("listing", exc) from None
        base = path.rstrip("/") + "/"
        return sorted(
            info.path[len(base) :].strip("/")
            for info in infos
            if info.type == pafs.FileType.Directory and info.path.startswith(base)
        )

    # -- writing ---------------------------------------------------------------------------

    def write_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Write the whole file atomically, replacing any file there."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write_bytes expects bytes, got {type(data).__name__}")
        if self.is_local:
            with _atomic_local_file(Path(self.uri)) as f:
                f.write(data)
            return
        fs, path = self._fs()
        try:
            with fs.open_output_stream(path) as f:
                f.write(data)
        except OSError as exc:
            raise self._error("writing", exc) from None

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        if not isinstance(text, str):
            raise TypeError(f"write_text expects str, got {type(text).__name__}")
        self.write_bytes(text.encode(encoding))

    def remove(self) -> None:
        """Delete this one file, if it is there."""
        if self.is_local:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.uri)
            return
        fs, path = self._fs()
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._error("deleting", exc) from None

    def remove_tree(self) -> None:
        """Delete this folder and everything under it (nothing happens if it is not there).

        Only for folders dlspec-ray created (a staging folder, a run it replaces);
        a bucket itself is never removed.
        """
        if self.is_local:
            if Path(self.uri).is_dir():
                shutil.rmtree(self.uri)
            return
        if not self._key:
            raise UsageError(f"{self.uri}: refusing to delete a whole bucket")
        fs, path = self._fs()
        try:
            fs.delete_dir(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._error("deleting", exc) from None

    def check_writable(self) -> None:
        """Fail fast, before any work, if files cannot be written here.

        Local: the nearest existing folder above must be a writable folder.
        Object storage: the bucket must exist, and a probe object is written and
        deleted, which proves the endpoint, the credentials and the permission.
        Raises ``StorageError`` (a ``UsageError``: exit code 2) naming the URI, what
        is wrong and the fix.
        """
        if self.is_local:
            self._check_local_writable()
            return
        self.check_bucket()
        probe = self.child(f"{PROBE_PREFIX}{uuid.uuid4().hex}")
        probe.write_bytes(b"dlspec-ray write check\n")
        probe.remove()

    def check_bucket(self) -> None:
        """Raise ``StorageError`` unless the bucket (object storage) can be reached and exists.

        Nothing to check for a local path. Tells a missing bucket, an unreachable
        endpoint and refused credentials apart, each with its fix.
        """
        if self.is_local:
            return
        import pyarrow.fs as pafs

        fs, path = self._fs()
        bucket = path.split("/", 1)[0]
        try:
            info = fs.get_file_info(bucket)
        except OSError as exc:
            raise self._error("reaching the bucket of", exc) from None
        if info.type == pafs.FileType.NotFound:
            raise StorageError(
                f"{self.describe()}: bucket {bucket!r} does not exist; create it (for example "
                f"`aws s3 mb {self.scheme}://{bucket}`) or correct the URI"
            )

    # -- internals -------------------------------------------------------------------------

    @property
    def _root(self) -> str:
        scheme, rest = self.uri.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"

    @property
    def _key(self) -> str:
        if self.is_local:
            return self.uri
        rest = self.uri.split("://", 1)[1]
        return rest.split("/", 1)[1] if "/" in rest else ""

    def _fs(self) -> tuple[Any, str]:
        """The ``pyarrow.fs`` filesystem (made once per process and options) and the path in it."""
        scheme = self.scheme
        if scheme in _OPTIONS_OF:
            rest = self.uri.split("://", 1)[1]
            bucket = rest.split("/", 1)[0]
            return _filesystem(scheme, bucket, self.options), rest
        return _filesystem_from_uri(self.uri)

    def _kind(self) -> str | None:
        if self.is_local:
            path = Path(self.uri)
            return "dir" if path.is_dir() else "file" if path.exists() else None
        import pyarrow.fs as pafs

        fs, path = self._fs()
        try:
            info = fs.get_file_info(path)
        except OSError as exc:
            raise self._error("looking up", exc) from None
        if info.type == pafs.FileType.File:
            return "file"
        if info.type == pafs.FileType.Directory:
            return "dir"
        return None

    def _check_local_writable(self) -> None:
        path = Path(self.uri).absolute()
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise StorageError(
                f"{self.uri}: cannot create a folder there ({existing} is a file, not a folder); "
                "choose another path"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise StorageError(
                f"{self.uri}: cannot write there ({existing} is not writable by this user); "
                "choose another folder or fix its permissions"
            )

    def _validate_options(self) -> None:
        options = dict(self.options)
        for name in ("connect_timeout", "request_timeout"):
            if name in options:
                _number(self.uri, name, options[name], float)
        if "max_attempts" in options:
            _number(self.uri, "max_attempts", options["max_attempts"], int)
        if "anonymous" in options:
            _flag(self.uri, options["anonymous"])
        if "endpoint_url" in options:
            _split_endpoint(self.uri, options["endpoint_url"])
        if ("access_key" in options) != ("secret_key" in options):
            have = "access_key" if "access_key" in options else "secret_key"
            missing = "secret_key" if have == "access_key" else "access_key"
            raise UsageError(
                f"{self.uri}: storage option {have} is set but {missing} is not; give both "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or neither to use the "
                "default credential chain"
            )

    def _error(self, action: str, exc: BaseException) -> StorageError:
        return StorageError(f"{self.describe()}: {action} failed: {explain_storage_error(exc)}")


# What the results layer's functions take: a local path, a URI, or a location.
Location = str | os.PathLike | StorageLocation


def as_location(
    location: str | os.PathLike[str] | StorageLocation,
    options: Mapping[str, str] | None = None,
    *,
    local_ok: bool = False,
) -> StorageLocation:
    """``location`` as a ``StorageLocation`` (see ``StorageLocation.parse``).

    Storage options given with a local path are refused, unless ``local_ok``: then
    they apply to object storage URIs only, and a local path ignores them (for
    arguments that may be either, such as a run id next to an ``s3://`` root).
    """
    if options and local_ok:
        if isinstance(location, StorageLocation):
            local = location.is_local
        else:
            local = isinstance(location, os.PathLike) or not is_uri(str(location))
        if local:
            options = None
    return StorageLocation.parse(location, options)


def explain_storage_error(exc: BaseException) -> str:
    """An object store's error as what is wrong and what to do about it."""
    text = str(exc)
    upper = text.upper()
    if "NO_SUCH_BUCKET" in upper or "NOSUCHBUCKET" in upper or "BUCKET DOES NOT EXIST" in upper:
        return f"the bucket does not exist; create it or correct the URI ({_last(text)})"
    if any(
        s in upper
        for s in (
            "NETWORK_CONNECTION",
            "COULD NOT CONNECT",
            "COULDN'T CONNECT",
            "RESOLVE HOST",
            "CURLCODE",
            "TIMED OUT",
            "TIMEOUT",
        )
    ):
        return (
            "the storage endpoint cannot be reached; check the endpoint "
            "(AWS_ENDPOINT_URL, or the endpoint_url storage option) and that the server is "
            f"running and reachable from here ({_last(text)})"
        )
    if any(
        s in upper
        for s in (
            "ACCESS_DENIED",
            "ACCESSDENIED",
            "INVALID_ACCESS_KEY_ID",
            "INVALIDACCESSKEYID",
            "SIGNATURE_DOES_NOT_MATCH",
            "SIGNATUREDOESNOTMATCH",
            "MISSING_AUTHENTICATION",
            "CREDENTIAL",
            "FORBIDDEN",
            "HTTP STATUS 403",
        )
    ):
        return (
            "the store refused the credentials or the permission; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or the access_key and secret_key storage options) to keys "
            f"allowed to read, write and delete under this prefix ({_last(text)})"
        )
    return text


def _last(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_key(uri: str, key: str) -> None:
    for piece in key.split("/"):
        if piece in (".", ".."):
            raise UsageError(f"{uri}: '.' and '..' are not allowed in an object storage path")


def _number(uri: str, name: str, value: str, kind: type) -> Any:
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise UsageError(f"{uri}: storage option {name}={value!r}: expected a number > 0")
    return number


def _flag(uri: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{uri}: storage option anonymous={value!r}: expected true or false")


def _split_endpoint(uri: str, endpoint: str) -> tuple[str | None, str]:
    """``http://host:port`` as (scheme, ``host:port``); a bare ``host:port`` keeps the default."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if not parts.netloc or parts.scheme not in ("", "http", "https"):
        raise UsageError(
            f"{uri}: endpoint {endpoint!r}: expected http(s)://HOST[:PORT], for example "
            "http://127.0.0.1:9000"
        )
    return (parts.scheme or None), parts.netloc + parts.path.rstrip("/")


@functools.lru_cache(maxsize=32)
def _filesystem(scheme: str, bucket: str, options: tuple[tuple[str, str], ...]) -> Any:
    import pyarrow.fs as pafs

    opts = dict(options)
    uri = f"{scheme}://{bucket}"
    kwargs: dict[str, Any] = {}
    if "endpoint_url" in opts:
        endpoint_scheme, host = _split_endpoint(uri, opts["endpoint_url"])
        kwargs["endpoint_override"] = host
        if endpoint_scheme:
            kwargs["scheme"] = endpoint_scheme
    if "anonymous" in opts:
        kwargs["anonymous"] = _flag(uri, opts["anonymous"])
    if scheme == "gs":
        if "project_id" in opts:
            kwargs["project_id"] = opts["project_id"]
        return pafs.GcsFileSystem(**kwargs)
    for name in ("access_key", "secret_key", "session_token"):
        if name in opts:
            kwargs[name] = opts[name]
    for name in ("connect_timeout", "request_timeout"):
        if name in opts:
            kwargs[name] = float(opts[name])
    if "max_attempts" in opts:
        kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(
            max_attempts=int(opts["max_attempts"])
        )
    region = opts.get("region")
    if region is None and "endpoint_url" not in opts:
        # Real S3 wants the bucket's own region; ask once, fall back to the default chain.
        with contextlib.suppress(OSError, ValueError):
            region = pafs.resolve_s3_region(bucket)
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


@functools.lru_cache(maxsize=64)
def _filesystem_from_uri(uri: str) -> tuple[Any, str]:
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(
            f"{uri}: not a storage URI this dlspec-ray can use ({exc}); use a local path, "
            "s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"
        ) from None


@contextlib.contextmanager
def _atomic_local_file(path: Path) -> Iterator[IO[bytes]]:
    """A file opened under a hidden temporary name, renamed to ``path`` on success only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
