"""Layer 1: manifest types, YAML loading and validation, JSON Schemas, and the catalog.

Nothing here imports ray or docker, so every other layer (and editors' tooling)
can use it cheaply.
"""

from __future__ import annotations

__all__ = [
    "BYTE_SIZE_PATTERN",
    "CPU_ARCHS",
    "DEFAULT_MAX_MANIFEST_BYTES",
    "ELEMENT_TYPES",
    "ENVIRONMENTS",
    "JOB_TYPES",
    "KINDS",
    "MANIFEST_PATH_ENV",
    "MANIFEST_SUFFIXES",
    "MAX_MANIFEST_BYTES_ENV",
    "SEMVER_PATTERN",
    "SHIPPED_MANIFESTS",
    "STAGE_NAMES",
    "AccuracyExpectation",
    "Catalog",
    "CpuSpec",
    "DatasetManifest",
    "ExpectedOutput",
    "FrameworkSpec",
    "GpuSpec",
    "HardwareManifest",
    "Manifest",
    "ModelManifest",
    "Ref",
    "ReferenceLog",
    "SoftwareManifest",
    "Source",
    "StageSource",
    "TaskRefs",
    "TensorSpec",
    "UnknownManifest",
    "accepted_keys",
    "build_schema",
    "check_constraint",
    "check_framework_version",
    "check_refs",
    "check_stage_code",
    "cpu_arch_resource",
    "find_manifest_files",
    "gpu_arch_resource",
    "is_semver",
    "load_manifest",
    "load_manifest_text",
    "load_schema",
    "max_manifest_bytes",
    "normalize_cpu_arch",
    "normalize_gpu_arch",
    "parse_byte_size",
    "pattern_refs",
    "reference_refs",
    "schema_path",
    "semver_key",
    "unresolved",
    "validate_data",
    "validate_paths",
    "version_satisfies",
    "write_schemas",
]

from dlspec_ray.spec.arch import (
    CPU_ARCHS,
    cpu_arch_resource,
    gpu_arch_resource,
    normalize_cpu_arch,
    normalize_gpu_arch,
)
from dlspec_ray.spec.catalog import MANIFEST_PATH_ENV, SHIPPED_MANIFESTS, Catalog, UnknownManifest
from dlspec_ray.spec.crossrefs import Ref, check_refs, pattern_refs, reference_refs, unresolved
from dlspec_ray.spec.loader import (
    DEFAULT_MAX_MANIFEST_BYTES,
    MANIFEST_SUFFIXES,
    MAX_MANIFEST_BYTES_ENV,
    find_manifest_files,
    load_manifest,
    load_manifest_text,
    max_manifest_bytes,
    validate_paths,
)
from dlspec_ray.spec.schemas import build_schema, load_schema, schema_path, write_schemas
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
from dlspec_ray.spec.validate import (
    ELEMENT_TYPES,
    ENVIRONMENTS,
    JOB_TYPES,
    accepted_keys,
    check_stage_code,
    validate_data,
)
from dlspec_ray.spec.versions import (
    SEMVER_PATTERN,
    check_constraint,
    check_framework_version,
    is_semver,
    semver_key,
    version_satisfies,
)
