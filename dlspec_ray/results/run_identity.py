"""``run.json``: what a run is, written before its first shard, so that it can be resumed.

A resumed run must be the same run: the same manifests (by the digest of their
content, not their names), the same artifacts, the same settings that change
results, and the same shard layout over the same sample ids. Anything else
could mix two different evaluations in one table. ``differences`` names each
change, so a refused resume says exactly what changed.

The settings that only change how a run goes (how many actors, progress,
timeouts, retries, the error budget) are not part of it: a resume may use
another cluster.
"""

from __future__ import annotations

__all__ = ["RUN_IDENTITY_NAME", "RunIdentity", "manifest_digest"]

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.errors import UsageError
from dlspec_ray.results.storage import Location, as_location

RUN_IDENTITY_NAME = "run.json"
_VERSION = 1


def manifest_digest(manifest: Any) -> str:
    """SHA-256 of a manifest's content as loaded, not of where it was loaded from: a copy
    of the same manifest in another folder has the same digest (the checksums of the
    artifacts it names are what tie it to their bytes)."""
    data = dataclasses.asdict(manifest) if dataclasses.is_dataclass(manifest) else manifest
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "path"}
    text = json.dumps(_without_locations(data), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# Where a manifest and its sources were declared (for error messages), not what they say.
_LOCATION_KEYS = frozenset({"base_dir", "origin", "field", "file", "line"})


def _without_locations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_locations(v) for k, v in value.items() if k not in _LOCATION_KEYS}
    if isinstance(value, (list, tuple)):
        return [_without_locations(v) for v in value]
    return value


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    # Where the run directory lands (a folder's absolute path, or a URI).
    out: str
    # The driver that started it (``owner.owner_token``): a live one means "still running".
    driver: str
    created_at: str
    # kind -> {"ref": name@version, "digest": manifest_digest, "path": the file it came from,
    # "copy": its copy in the run directory ("manifests/<kind>.yaml"), "base_dir": the folder
    # its relative sources were resolved against}
    manifests: dict[str, dict[str, str]]
    # "model:NAME" / "dataset:NAME" -> the artifact's or source's checksum ("" when none)
    artifacts: dict[str, str]
    # The run settings that change results: batch size, limit, model options, environment.
    settings: dict[str, Any]
    # samples, batch_size, batches_per_call, shards and the digest of the sample ids.
    layout: dict[str, Any]
    # Extra manifest roots the run was given, so `run --resume DIR` alone finds them again.
    roots: tuple[str, ...] = ()
    # Every run option as given (RunOptions), so `reproduce` runs the task the same way.
    run_options: dict[str, Any] = field(default_factory=dict)
    version: int = field(default=_VERSION)

    def differences(self, other: RunIdentity) -> list[str]:
        """What ``other`` (the resume) changes, one line each; empty when it is the same run."""
        changes = []
        for kind in sorted(set(self.manifests) | set(other.manifests)):
            a, b = _content(self.manifests.get(kind)), _content(other.manifests.get(kind))
            if a == b:
                continue
            if a is None or b is None:
                changes.append(f"{kind}: {_ref(a)} -> {_ref(b)}")
            elif a["ref"] != b["ref"]:
                changes.append(f"{kind}: {a['ref']} -> {b['ref']}")
            else:
                changes.append(
                    f"{kind} {a['ref']}: its content changed (digest {a['digest'][:12]} -> "
                    f"{b['digest'][:12]})"
                )
        changes += _changed("artifact", self.artifacts, other.artifacts)
        changes += _changed("setting", self.settings, other.settings)
        changes += _changed("layout", self.layout, other.layout)
        return changes

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["roots"] = list(self.roots)
        return data

    def write(self, run_dir: Location) -> None:
        text = json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"
        as_location(run_dir).child(RUN_IDENTITY_NAME).write_text(text)

    @classmethod
    def read(cls, run_dir: Location) -> RunIdentity:
        location = as_location(run_dir).child(RUN_IDENTITY_NAME)
        try:
            data = json.loads(location.read_text())
            data["roots"] = tuple(data.get("roots") or ())
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except FileNotFoundError:
            raise UsageError(
                f"{location.describe()}: not found; only a run started by dlspec-ray 0.9 or "
                "later can be resumed"
            ) from None
        except (ValueError, TypeError) as exc:
            raise UsageError(
                f"{location.describe()}: cannot be read ({exc}); the run cannot be resumed. "
                "Start it again with --overwrite."
            ) from None


def _content(entry: dict[str, str] | None) -> dict[str, str] | None:
    return None if entry is None else {"ref": entry["ref"], "digest": entry["digest"]}


def _ref(entry: dict[str, str] | None) -> str:
    return "none" if entry is None else entry["ref"]


def _changed(what: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [
        f"{what} {key}: {before.get(key)!r} -> {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
