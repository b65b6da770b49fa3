"""``dlspec-ray reproduce RUN``: run a run directory's task again, from its own copies of
the manifests, and say whether the numbers came back.

A run directory says what it ran (``run.json``: each manifest's digest, the run
options; ``manifests/``: a copy of each file), so it is enough to rerun it on another
machine or years later. Each manifest is taken from the catalog when the catalog holds
one with the recorded digest (the same content, and a trusted file), else from the run
directory's copy, whose digest must match ``run.json``. A copy is someone else's code:
``inline`` runs it only with ``--trust``, as ``run`` would. ``--software``,
``--hardware`` and ``--environment`` vary one aspect; the rest stays as it was.

The rerun is then compared with the original, sample by sample (``results.compare``).
It reproduces when its reference check passes (or it has none) and every sample of
the original is there with the same top-1 prediction; how far the outputs moved
(max |diff|, KL) is reported, not judged, since another framework rounds differently.
"""

from __future__ import annotations

__all__ = ["Reproduction", "reproduce", "task_of"]

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlspec_ray.errors import UsageError
from dlspec_ray.options import RunOptions
from dlspec_ray.results.compare import RunComparison, compare_run_dirs, stage_lines
from dlspec_ray.results.run_identity import RunIdentity, manifest_digest
from dlspec_ray.results.run_summary import RunSummary
from dlspec_ray.results.storage import StorageLocation, as_location
from dlspec_ray.results.summary import SUMMARY_NAME

# The run options a reproduction takes from the original; the others belong to the
# machine it ran on (cache, actors), to the user now (trust, host setup), or to the CLI.
REPRODUCED_OPTIONS = (
    "batch_size",
    "limit",
    "max_errors",
    "options",
    "environment",
    "batches_per_call",
    "warmup",
    "repeats",
    "retries",
    "stage_timeout_s",
    "allow_unverified",
    "pre_actors",
    "trace",
)
_KINDS = ("model", "dataset", "software", "hardware", "reference")


class NotReproducible(UsageError):
    """The run directory cannot be rerun: incomplete, or its copies do not match it."""


@dataclass(frozen=True)
class Reproduction:
    original: str
    out_dir: str
    summary: dict[str, Any]
    comparison: RunComparison
    # kind -> "catalog" (a trusted file with the recorded digest) or "copy" (the run's own)
    sources: dict[str, str]
    # What was varied on purpose: kind -> the new ref (or the environment kind).
    varied: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def reference(self) -> str | None:
        return RunSummary.from_dict(self.summary).reference_verdict

    @property
    def passed(self) -> bool:
        c = self.comparison
        same_samples = c.only_a == 0 and c.only_b == 0 and c.compared > 0
        return self.reference in (None, "PASS") and same_samples and c.disagreement_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "out_dir": self.out_dir,
            "passed": self.passed,
            "reference": self.reference,
            "sources": self.sources,
            "varied": self.varied,
            "notes": list(self.notes),
            "comparison": self.comparison.as_dict(),
        }

    def format(self) -> str:
        c = self.comparison
        lines = [
            f"dlspec-ray reproduce {self.original}",
            f"  rerun:       {self.out_dir}",
            "  manifests:   "
            + ", ".join(f"{kind} from the {where}" for kind, where in self.sources.items()),
        ]
        if self.varied:
            lines.append("  varied:      " + ", ".join(f"{k} {v}" for k, v in self.varied.items()))
        lines.append(f"  reference:   {self.reference or 'none'}")
        lines += [f"  note:        {note}" for note in self.notes]
        agree = c.agreement.get("agree", 0)
        lines.append(
            f"  top-1:       {agree:,} of {c.compared:,} samples agree with the original"
            + (f" ({c.only_a:,} missing)" if c.only_a else "")
        )
        for name, acc in c.accuracy.items():
            lines.append(
                f"  {name}:        original {acc['a']:.4f}  rerun {acc['b']:.4f}  "
                f"delta {acc['delta']:+.4f}"
            )
        lines += [line.replace("  stages      ", "  stages:     ", 1) for line in stage_lines(c)]
        d = c.divergence
        if d.get("compared"):
            identical = d["max_abs_diff"] == 0
            lines.append(
                f"  outputs:     {'bit-identical' if identical else 'differ'} "
                f"(max |diff| {d['max_abs_diff']:.3g}, mean {d['mean_abs_diff']:.3g})"
            )
        lines.append(f"  verdict:     {'REPRODUCED' if self.passed else 'NOT REPRODUCED'}")
        return "\n".join(lines) + "\n"


def task_of(
    run_dir: Any, *, scratch: Path, roots: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, str], RunIdentity]:
    """The manifests the run at ``run_dir`` ran with (kind -> manifest), where each came
    from, and its ``run.json``. The catalog holds the run's own manifest roots and
    ``roots``; copies are read from the run directory (through ``scratch`` when it is in
    object storage)."""
    from dlspec_ray.spec.loader import load_manifest_text

    location = as_location(run_dir) if not isinstance(run_dir, StorageLocation) else run_dir
    if not location.child(SUMMARY_NAME).exists():
        raise NotReproducible(
            f"{location.describe()}: no {SUMMARY_NAME}; expected the directory of a finished "
            "dlspec-ray run (an interrupted one is finished with run --resume)"
        )
    identity = RunIdentity.read(location)
    catalog = _catalog(identity, roots)
    manifests: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for kind in _KINDS:
        entry = identity.manifests.get(kind)
        if not entry:
            continue
        found = _from_catalog(catalog, entry, kind)
        if found is not None:
            manifests[kind], sources[kind] = found, "catalog"
            continue
        if not entry.get("copy"):
            raise NotReproducible(
                f"{location.describe()}: the run keeps no copy of its {kind} manifest "
                f"({entry['ref']}), and no manifest of the catalog has its digest "
                f"{entry['digest'][:12]}; add the folder that holds it with --roots"
            )
        copy = location.child(*entry["copy"].split("/"))
        local = copy.local_path if copy.is_local else _download(copy, scratch, kind)
        base = Path(entry.get("base_dir") or local.parent)
        base = base if base.is_dir() else local.parent
        loaded = load_manifest_text(local.read_text(), file=str(local), base_dir=base)
        loaded = dataclasses.replace(loaded, path=local)  # its trust is judged by where it is
        if manifest_digest(loaded) != entry["digest"]:
            raise NotReproducible(
                f"{copy.describe()}: its content does not match run.json's digest for the "
                f"{kind} manifest ({entry['digest'][:12]}); the run directory was changed"
            )
        manifests[kind], sources[kind] = loaded, "copy"
    return manifests, sources, identity


def reproduce(
    run_dir: Any,
    *,
    software: str | None = None,
    hardware: str | None = None,
    environment: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    trust: bool = False,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    address: str | None = None,
    manifest_roots: tuple[str, ...] = (),
) -> Reproduction:
    """Rerun the task of ``run_dir`` (a folder or a URI) and compare it with the original."""
    from dlspec_ray.evaluation import evaluate

    with tempfile.TemporaryDirectory(prefix="dlspec-ray-reproduce-") as scratch:
        manifests, sources, identity = task_of(run_dir, scratch=Path(scratch), roots=manifest_roots)
        varied: dict[str, str] = {}
        notes: list[str] = []
        for kind, given in (("software", software), ("hardware", hardware)):
            if given is not None:
                manifests[kind], sources[kind], varied[kind] = given, "command line", given
        if software is not None:
            model = _model_for(manifests["model"], software, identity, manifest_roots)
            if model is not manifests["model"]:
                manifests["model"], sources["model"], varied["model"] = model, "catalog", model.ref
                if manifests.pop("reference", None) is not None:
                    sources.pop("reference")
                    notes.append(
                        f"the reference log names {identity.manifests['model']['ref']}, and the "
                        f"rerun runs {model.ref}: it is compared with the original run only"
                    )
        recorded = {k: v for k, v in identity.run_options.items() if k in REPRODUCED_OPTIONS}
        if environment is not None:
            recorded["environment"] = varied["environment"] = environment
        elif software is not None:
            recorded["environment"] = None  # the new software manifest's own
        options = RunOptions(**recorded).with_settings(
            progress=progress,
            trust=trust,
            cache_dir=Path(cache_dir) if cache_dir else None,
        )
        result = evaluate(
            manifests["model"],
            manifests["dataset"],
            software=manifests.get("software"),
            hardware=manifests.get("hardware"),
            reference=manifests.get("reference"),
            run=options,
            out=out,
            overwrite=overwrite,
            manifest_roots=[*identity.roots, *manifest_roots],
            address=address,
        )
    comparison = compare_run_dirs(run_dir, result.out_dir)
    return Reproduction(
        original=str(run_dir),
        out_dir=str(result.out_dir),
        summary=result.summary,
        comparison=comparison,
        sources=sources,
        varied=varied,
        notes=tuple(notes),
    )


def _model_for(model: Any, software: str, identity: RunIdentity, roots: tuple[str, ...]) -> Any:
    """``model``, or, when ``software`` provides another framework, the catalog's model
    manifest for that framework with the same graph (an artifact of the same checksum):
    mnist-8 on onnxruntime becomes mnist-8-onnx-reference for the ONNX reference evaluator.
    The stage code differs by framework; the network is the same bytes."""
    from dlspec_ray.task import software_fits

    catalog = _catalog(identity, roots)
    chosen = catalog.resolve(software, "software")
    if software_fits(model, chosen):
        return model
    graphs = {a.checksum for a in model.artifacts if a.checksum}
    variants = [
        m
        for m in catalog.of_kind("model")
        if software_fits(m, chosen) and graphs & {a.checksum for a in m.artifacts}
    ]
    if not variants:
        raise NotReproducible(
            f"--software {software}: it provides {chosen.framework.name}, but {model.ref} needs "
            f"{model.framework.name}, and no model manifest of the catalog runs the same graph "
            f"on {chosen.framework.name}; add one (a copy of {model.ref} with its stages for "
            "that framework) to a manifest folder"
        )
    return min(variants, key=lambda m: m.ref)


def _catalog(identity: RunIdentity, roots: tuple[str, ...]) -> Any:
    """The catalog of the default roots, the run's own manifest roots and ``roots``."""
    from dlspec_ray.spec.catalog import Catalog

    return Catalog.default(extra_roots=[Path(r) for r in (*identity.roots, *roots)])


def _from_catalog(catalog: Any, entry: dict[str, str], kind: str) -> Any:
    from dlspec_ray.errors import DLSpecError

    try:
        manifest = catalog.resolve(entry["ref"], kind)
    except DLSpecError:
        return None
    return manifest if manifest_digest(manifest) == entry["digest"] else None


def _download(copy: StorageLocation, scratch: Path, kind: str) -> Path:
    path = scratch / f"{kind}.yaml"
    path.write_bytes(copy.read_bytes())
    return path
