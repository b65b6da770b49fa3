"""What a valid manifest of each kind looks like, as one table of rules per kind.

``docs/manifests.md`` is the prose form of these tables and the JSON Schemas in
``schemas/`` are generated from them, so a change of format is made here.
"""

from __future__ import annotations

__all__ = [
    "ELEMENT_TYPES",
    "ENVIRONMENTS",
    "JOB_TYPES",
    "accepted_keys",
    "check_stage_code",
    "validate_data",
]

import ast
import re
import warnings
from pathlib import Path
from typing import Any

from dlspec_ray.errors import Problem
from dlspec_ray.spec.arch import normalize_cpu_arch, normalize_gpu_arch
from dlspec_ray.spec.rules import (
    INVALID,
    Boolean,
    Checker,
    Choice,
    Const,
    Field,
    FreeMapping,
    Integer,
    ListOf,
    MapOf,
    Node,
    Number,
    OneOrList,
    Record,
    Rule,
    Text,
    construct,
    describe,
)
from dlspec_ray.spec.sizes import BYTE_SIZE_PATTERN, parse_byte_size
from dlspec_ray.spec.types import (
    KINDS,
    STAGE_NAMES,
    AccuracyExpectation,
    CpuSpec,
    DatasetManifest,
    ExpectedOutput,
    FrameworkSpec,
    GpuSpec,
    HardwareManifest,
    Manifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
    Source,
    StageSource,
    TaskRefs,
    TensorSpec,
)
from dlspec_ray.spec.versions import (
    SEMVER_PATTERN,
    check_constraint,
    check_framework_version,
    is_semver,
)

ELEMENT_TYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
    "string",
)
ENVIRONMENTS = ("inline", "process", "docker")
SANDBOXES = ("bubblewrap",)
JOB_TYPES = ("inference", "training")

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_CHECKSUM = r"sha256(-tree)?:[0-9a-f]{64}"
# A relative POSIX path below the source: no leading '/', no '..' part, no '\\', no NUL.
_SUB_PATH = r"(?!/)(?!(.*/)?\.\.(/|$))[^\\\x00]+"
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def _anchored(pattern: str) -> dict[str, str]:
    return {"pattern": f"^{pattern.removeprefix('^').removesuffix('$')}$"}


def _matching(pattern: str, message: str) -> Any:
    """A converter that accepts strings matching ``pattern`` and explains the rest."""
    compiled = re.compile(pattern)

    def convert(text: str) -> str:
        if compiled.fullmatch(text) is None:
            raise ValueError(f"{message}, got {text!r}")
        return text

    return convert


def _uuid(text: str) -> str:
    if re.fullmatch(_UUID, text) is None:
        raise ValueError(
            "expected a UUID in canonical 8-4-4-4-12 form such as "
            "'5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21' (make one with "
            f"python -c 'import uuid; print(uuid.uuid4())'), got {text!r}"
        )
    return text.lower()


def _semver(text: str) -> str:
    if not is_semver(text):
        raise ValueError(
            f'expected a semantic version MAJOR.MINOR.PATCH[-pre][+build] like "1.0.0", '
            f"got {text!r}"
        )
    return text


def _location(text: str) -> str:
    scheme = _SCHEME.match(text)
    if scheme and scheme.group(1).lower() not in ("file", "http", "https"):
        raise ValueError(
            f"unsupported URL scheme {scheme.group(1)!r} in {text!r}; expected http://, "
            "https://, file:///absolute/path or a path relative to the manifest's folder"
        )
    if scheme and scheme.group(1).lower() == "file" and not text[len("file://") :].startswith("/"):
        raise ValueError(f"expected file:///absolute/path, got {text!r}")
    return text


def _sub_path(text: str) -> str:
    """A relative path inside an unpacked archive or a folder, normalised (``a//b/`` -> ``a/b``)."""
    fix = "write a path relative to the top of the archive or folder, such as 'test' or 'data/val'"
    if "\x00" in text:
        raise ValueError(f"expected a relative path, got {text!r} with a NUL byte; {fix}")
    if "\\" in text:
        raise ValueError(f"expected '/' between folder names, got {text!r}; {fix}")
    if text.startswith("/") or re.match(r"[A-Za-z]:", text):
        raise ValueError(f"expected a relative path, got the absolute path {text!r}; {fix}")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"expected a path inside the source, got {text!r} with '..'; {fix}")
    if not parts:
        raise ValueError(f"{text!r} names the source itself; remove path:, or {fix}")
    return "/".join(parts)


def _task_ref(text: str) -> str:
    name, at, version = text.partition("@")
    if re.fullmatch(_UUID, text) or (at and re.fullmatch(_NAME, name) and is_semver(version)):
        return text.lower() if not at else text
    raise ValueError(f"expected name@version (like 'mnist-8@1.0.0') or a UUID, got {text!r}")


def check_stage_code(stage: StageSource) -> list[Problem]:
    """Problems that keep ``stage`` from compiling into ``fn(ctx, data)``.

    The code is compiled padded to its YAML line, so a SyntaxError's line is the
    line of the manifest file that holds the mistake.
    """
    where = stage.name
    try:
        with warnings.catch_warnings():
            # SyntaxWarnings (such as invalid escapes) are the stage compiler's to show.
            warnings.simplefilter("ignore")
            compile(stage.padded(), stage.file, "exec")
    except SyntaxError as error:
        text = (error.text or "").strip()
        message = f"Python syntax error: {error.msg}" + (f": {text}" if text else "")
        return [Problem(stage.file, where, message, error.lineno)]
    except ValueError as error:
        return [Problem(stage.file, where, f"cannot compile the Python code: {error}", stage.line)]
    tree = ast.parse(stage.padded())
    functions = [
        node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "fn"
    ]
    if not functions:
        return [
            Problem(
                stage.file,
                where,
                "the code must define a top-level function 'def fn(ctx, data)'",
                stage.line,
            )
        ]
    fn = functions[-1]
    if isinstance(fn, ast.AsyncFunctionDef):
        message = "fn must be a plain 'def fn(ctx, data)', not 'async def'"
        return [Problem(stage.file, where, message, fn.lineno)]
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    required_keywords = [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]
    if len(positional) != 2 or args.vararg or required_keywords:
        message = (
            "fn must take exactly two positional parameters, as in 'def fn(ctx, data)', "
            f"got 'def fn({ast.unparse(args)})'"
        )
        return [Problem(stage.file, where, message, fn.lineno)]
    return []


class StageCode(Rule):
    """Python source defining ``fn(ctx, data)``, compiled when the manifest loads."""

    _text = Text("Python source code defining fn(ctx, data)", non_empty=True)

    def check(self, checker: Checker, node: Node) -> Any:
        code = self._text.check(checker, node)
        if code is INVALID:
            return INVALID
        stage = StageSource(name=node.key, code=code, file=checker.file, line=node.line or 1)
        problems = check_stage_code(stage)
        checker.problems.extend(problems)
        return INVALID if problems else stage

    def schema(self) -> dict[str, Any]:
        return self._text.schema()


class ByteSize(Rule):
    def check(self, checker: Checker, node: Node) -> Any:
        try:
            return parse_byte_size(node.value)
        except ValueError as error:
            return checker.report(node, str(error))

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": BYTE_SIZE_PATTERN},
            ]
        }


class SampleId(Rule):
    """A dataset sample id: written as a string or an int, kept as a string."""

    def check(self, checker: Checker, node: Node) -> Any:
        value = node.value
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return str(value)
        message = f"expected a sample id (a string or int), got {describe(value)}"
        return checker.report(node, message)

    def schema(self) -> dict[str, Any]:
        return {"type": ["string", "integer"]}


def _source(checker: Checker, node: Node, values: dict[str, Any]) -> Any:
    source = Source(base_dir=checker.base_dir, origin=checker.file, field=node.path, **values)
    found: list[tuple[str, str]] = []  # (field, message): rules across the source's fields
    tree = (source.checksum or "").startswith("sha256-tree:")
    if source.is_remote and source.checksum is None:
        found.append(("checksum", "remote source needs a checksum: add checksum: sha256:<hex>"))
    elif source.is_remote and tree:
        found.append(
            (
                "checksum",
                "a remote source is one file, so its checksum is sha256:<hex> of its bytes; "
                "sha256-tree: is for a local folder",
            )
        )
    elif source.unpack and tree:
        found.append(
            (
                "checksum",
                "unpack: true unpacks an archive, a file checked by sha256:<hex> of its bytes; "
                "sha256-tree: is for a local folder used as it is (unpack: false)",
            )
        )
    if source.path is not None and source.is_remote and not source.unpack:
        found.append(
            (
                "path",
                "names an entry inside an unpacked archive, but this remote source is used as "
                "one file; set unpack: true (the source must be an archive), or remove path:",
            )
        )
    for at, message in found:
        checker.report(node, message, at=at)
    return INVALID if found else source


def _software(checker: Checker, node: Node, values: dict[str, Any]) -> Any:
    if values.get("environment") == "docker" and not values.get("container"):
        return checker.report(
            node,
            "the docker environment needs an image: add container: <image>",
            at="container",
        )
    if values.get("sandbox") and values.get("environment") != "process":
        return checker.report(
            node,
            f"sandbox applies to the process environment, got environment "
            f"{values.get('environment', 'inline')!r}; use environment: process, or drop sandbox",
            at="sandbox",
        )
    return SoftwareManifest(path=checker.path, **values)


def _model(checker: Checker, node: Node, values: dict[str, Any]) -> Any:
    stages = {name: values.pop(name) for name in STAGE_NAMES if name in values}
    return ModelManifest(path=checker.path, stages=stages, **values)


def _manifest(cls: type[Manifest]) -> Any:
    return lambda checker, _node, values: cls(path=checker.path, **values)


# Shared value rules.
NAME = Text(
    "a name",
    _matching(
        _NAME,
        "expected a name of letters, digits, '.', '_' and '-' that starts with a letter or digit",
    ),
    _anchored(_NAME),
)
STRING = Text()
STRINGS = ListOf(Text(non_empty=True), "a list of strings")
SOURCES = ListOf(
    Record(
        [
            Field("name", NAME, required=True, doc="Key of ctx['artifacts'] for this file."),
            Field(
                "source",
                Text("a path or URL", _location, non_empty=True),
                required=True,
                doc="http(s) URL, file:///absolute/path, or a path relative to this file.",
            ),
            Field(
                "checksum",
                Text(
                    'a checksum like "sha256:<64 hex digits>"',
                    _matching(
                        _CHECKSUM,
                        "expected 'sha256:' (a file) or 'sha256-tree:' (a folder) and 64 "
                        "lowercase hex digits",
                    ),
                    _anchored(_CHECKSUM),
                ),
                nullable=True,
                default=None,
                doc=(
                    "sha256:<64 lowercase hex> of a file, or sha256-tree:<64 lowercase hex> of a "
                    "folder (`dlspec-ray checksum PATH` prints it); required for http(s) "
                    "sources, and for a local folder unless the run allows unverified sources."
                ),
            ),
            Field("unpack", Boolean(), default=False, doc="Unpack an archive (default false)."),
            Field(
                "path",
                Text(
                    "a relative path like 'test' or 'data/val'",
                    _sub_path,
                    _anchored(_SUB_PATH),
                    non_empty=True,
                ),
                nullable=True,
                default=None,
                doc=(
                    "The folder (or file) to use inside the unpacked archive or the folder: "
                    "relative, with '/' between names and no '..'."
                ),
            ),
        ],
        "a source mapping {name, source, checksum}",
        build=_source,
    ),
    "a list of sources, each {name, source, checksum}",
    unique="name",
    unique_what="source name",
)

COMMON = (
    Field("kind", Choice(KINDS), required=True, doc="Which manifest this is."),
    Field(
        "id",
        Text("a UUID", _uuid, _anchored(_UUID)),
        required=True,
        doc="A UUID in canonical 8-4-4-4-12 form.",
    ),
    Field("name", NAME, required=True, doc="Letters, digits, '.', '_', '-'."),
    Field(
        "version",
        Text('a string like "1.0.0"', _semver, _anchored(SEMVER_PATTERN)),
        required=True,
        doc='Semantic version MAJOR.MINOR.PATCH[-pre][+build]; quote it: "1.0.0".',
    ),
    Field("description", STRING, default="", doc="What this manifest describes."),
)


def _kind(kind: str, fields: list[Field], build: Any) -> Record:
    common = [Field("kind", Const(kind), required=True, doc=COMMON[0].doc), *COMMON[1:]]
    return Record([*common, *fields], f"a {kind} manifest (a mapping)", build=build)


def _framework(version_rule: Text, version_doc: str) -> Field:
    return Field(
        "framework",
        Record(
            [
                Field("name", Text(non_empty=True), required=True, doc="Framework name."),
                Field("version", version_rule, required=True, doc=version_doc),
            ],
            "a mapping {name, version}",
            build=construct(FrameworkSpec),
        ),
        required=True,
    )


_TENSORS = ListOf(
    Record(
        [
            Field("name", Text(non_empty=True), required=True, doc="Layer (tensor) name."),
            Field("element_type", Choice(ELEMENT_TYPES), required=True),
            Field(
                "shape",
                ListOf(Integer(minimum=-1), "a list of integers"),
                required=True,
                doc="Dimensions; -1 for any size.",
            ),
            Field("modality", STRING, doc="image, text, classification, ..."),
        ],
        "a tensor mapping {name, element_type, shape}",
        build=construct(TensorSpec),
    ),
    "a list of tensors, each {name, element_type, shape}",
    min_items=1,
    unique="name",
    unique_what="tensor name",
)


def _expected_output(checker: Checker, node: Node, values: dict[str, Any]) -> Any:
    top5 = values.get("top5")
    if top5 is not None and (len(top5) != 5 or len(set(top5)) != 5):
        return checker.report(
            node, f"expected 5 distinct class indices, got {list(top5)}", at="top5"
        )
    if top5 is not None and values["top1"] not in top5:
        return checker.report(
            node, f"expected top1 {values['top1']} to be one of top5 {list(top5)}", at="top5"
        )
    return ExpectedOutput(**values)


KIND_RULES: dict[str, Record] = {
    "hardware": _kind(
        "hardware",
        [
            Field(
                "cpu",
                Record(
                    [
                        Field(
                            "arch",
                            OneOrList(
                                Text("a CPU architecture", normalize_cpu_arch, non_empty=True),
                                "a CPU architecture or a list of them",
                            ),
                            doc="x86_64, aarch64, ...; or a list of acceptable ones. Absent: any.",
                            default=(),
                        ),
                        Field("ncpu", Number(positive=True), doc="CPUs per host actor."),
                    ],
                    "a mapping {arch, ncpu}",
                    build=construct(CpuSpec),
                ),
                doc="The CPU each host actor needs.",
            ),
            Field(
                "gpu",
                ListOf(
                    Record(
                        [
                            Field(
                                "arch",
                                Text("a GPU architecture", normalize_gpu_arch, non_empty=True),
                                required=True,
                                doc="nvidia/sm70, sm_90a, gfx90a, ...",
                            ),
                            Field("count", Integer(minimum=1), doc="GPUs of this arch."),
                            Field("memory", ByteSize(), nullable=True, doc="Memory per GPU."),
                            Field("driver", STRING, nullable=True, doc="Driver version."),
                            Field("interconnect", STRING, nullable=True, doc="nvlink, pcie, ..."),
                        ],
                        "a GPU mapping {arch, count, memory, ...}",
                        build=construct(GpuSpec),
                    ),
                    "a list of GPU mappings",
                ),
                doc="The GPUs each host actor needs.",
            ),
            Field(
                "memory",
                ByteSize(),
                nullable=True,
                doc="Memory per host actor: bytes or '2GiB'.",
            ),
            Field("setup", STRINGS, doc="Host commands, run only with --allow-host-setup."),
        ],
        _manifest(HardwareManifest),
    ),
    "software": _kind(
        "software",
        [
            _framework(
                Text('a version like "1.32.0"', check_framework_version, non_empty=True),
                "The framework's PEP 440 version.",
            ),
            Field("environment", Choice(ENVIRONMENTS), doc="Where stage code runs."),
            Field("container", STRING, nullable=True, doc="Image for the docker environment."),
            Field("python", STRING, nullable=True, doc="Interpreter for the process environment."),
            Field(
                "sandbox",
                Choice(SANDBOXES),
                doc="Sandbox for the process environment: bubblewrap (no network, a read-only "
                "host, a private /tmp, its own process tree).",
            ),
            Field("packages", STRINGS, doc="Requirements a container-less environment installs."),
            Field(
                "env",
                MapOf(
                    Text("a string"),
                    "a mapping of environment variable names to strings",
                    key=Text(
                        "an environment variable name",
                        _matching(
                            _ENV_NAME,
                            "expected an environment variable name (letters, digits, '_')",
                        ),
                        _anchored(_ENV_NAME),
                    ),
                ),
                doc="Environment variables for stage code.",
            ),
        ],
        _software,
    ),
    "dataset": _kind(
        "dataset",
        [
            Field("license", STRING),
            Field("sources", SOURCES, required=True, doc="The dataset's files."),
            Field("reader", StageCode(), doc="def fn(ctx, data) returning ids, inputs, labels."),
        ],
        _manifest(DatasetManifest),
    ),
    "model": _kind(
        "model",
        [
            Field("license", STRING),
            Field("author", STRING),
            Field("task", STRING, doc="image_classification, ..."),
            _framework(
                Text('a version constraint like ">=1.16"', check_constraint, non_empty=True),
                "A PEP 440 constraint: '>=1.16', '==1.32.0', '1.32.0' or '*'.",
            ),
            Field("job_type", Choice(JOB_TYPES)),
            Field("inputs", _TENSORS, required=True),
            Field("outputs", _TENSORS, required=True),
            Field("model", SOURCES, attr="artifacts", doc="The model's files."),
            Field("options", FreeMapping("a mapping of options"), doc="ctx['options'] defaults."),
            Field("system_requirements", STRINGS),
            Field("load", StageCode(), doc="Runs once per host actor; result is ctx['model']."),
            Field("pre-process", StageCode(), required=True),
            Field("run", StageCode(), required=True, doc="The timed stage."),
            Field("post-process", StageCode(), required=True, doc="Returns {'top_k': ...}."),
        ],
        _model,
    ),
    "reference": _kind(
        "reference",
        [
            Field(
                "task",
                Record(
                    [
                        Field(
                            "model",
                            Text("a manifest ref", _task_ref),
                            required=True,
                            doc="name@version or id.",
                        ),
                        Field(
                            "dataset",
                            Text("a manifest ref", _task_ref),
                            required=True,
                            doc="name@version or id.",
                        ),
                        Field("software", Text("a manifest ref", _task_ref), nullable=True),
                        Field("hardware", Text("a manifest ref", _task_ref), nullable=True),
                    ],
                    "a mapping {model, dataset, software, hardware}",
                    build=construct(TaskRefs),
                ),
                required=True,
                doc="The manifests this log was made with.",
            ),
            Field(
                "accuracy",
                MapOf(
                    Record(
                        [
                            Field("value", Number(minimum=0, maximum=1), required=True),
                            Field("tolerance", Number(minimum=0), required=True),
                        ],
                        "a mapping {value, tolerance}",
                        build=lambda _c, _n, v: AccuracyExpectation(
                            float(v["value"]), float(v["tolerance"])
                        ),
                    ),
                    "a mapping of metric names to {value, tolerance}",
                ),
                doc="Expected accuracy per metric, such as top1.",
            ),
            Field("performance", FreeMapping("a mapping"), doc="Recorded, not checked."),
            Field(
                "expected_outputs",
                ListOf(
                    Record(
                        [
                            Field("sample", SampleId(), required=True),
                            Field("top1", Integer(minimum=0), required=True),
                            Field(
                                "top5",
                                ListOf(Integer(minimum=0), "a list of 5 class indices"),
                                doc="The five best classes, in any order.",
                            ),
                        ],
                        "a mapping {sample, top1, top5}",
                        build=_expected_output,
                    ),
                    "a list of {sample, top1, top5} mappings",
                ),
            ),
            Field("notes", STRING),
        ],
        _manifest(ReferenceLog),
    ),
}

# With an unknown kind the other keys cannot be judged; the common ones still can.
_COMMON_ONLY = Record(COMMON, allow_unknown=True)


def accepted_keys(kind: str) -> frozenset[str]:
    """The top-level keys a manifest of ``kind`` may have."""
    return frozenset(KIND_RULES[kind].by_name)


def validate_data(
    data: Any, *, file: str, base_dir: Path, path: Path | None = None
) -> tuple[Manifest | None, list[Problem]]:
    """The typed manifest for parsed YAML ``data``, or None and every problem found."""
    checker = Checker(file, base_dir, path)
    root = Node(data, "", getattr(data, "line", None))
    if data is None:
        checker.report(root, "the file is empty; expected a mapping with kind, id, name, version")
        return None, checker.problems
    if not isinstance(data, dict):
        checker.report(root, f"expected a mapping at the top level, got {describe(data)}")
        return None, checker.problems
    kind = data.get("kind")
    rule = KIND_RULES.get(kind) if isinstance(kind, str) else None
    if rule is None:
        _COMMON_ONLY.check(checker, root)  # reports the missing or unknown kind
        return None, sorted(checker.problems, key=lambda p: p.line or 0)
    manifest = rule.check(checker, root)
    if checker.problems or manifest is INVALID:
        return None, sorted(checker.problems, key=lambda p: p.line or 0)
    return manifest, []
