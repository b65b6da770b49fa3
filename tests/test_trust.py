"""Code from manifests outside the trusted roots does not run with the user's rights unasked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlspec_ray.cli import main
from dlspec_ray.task import resolve_task
from dlspec_ray.trust import TRUSTED_ROOTS_ENV, UntrustedManifest, check_trusted

REPO = Path(__file__).resolve().parents[1]
PROCESS = str(REPO / "manifests/software/onnxruntime-cpu-process.yaml")


@pytest.fixture
def untrusted(monkeypatch):
    """The tests' temp folders are no longer a trusted root."""
    monkeypatch.delenv(TRUSTED_ROOTS_ENV, raising=False)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), r"models/mnist-8.yaml: this model manifest is outside the trusted roots \(.*\), "
             r"and its stages run in the host actor's process, with your rights. Run its stages "
             r"in a container \(--environment docker\), or, if you trust it, add its folder to "
             r"DLSPEC_RAY_TRUSTED_ROOTS, or pass --trust."),
        (("--model", "mnist-8@1.0.0"), r"datasets/mnist-test.yaml: this dataset manifest is "
             r"outside the trusted roots .*, and its reader runs in a Ray worker on each node, "
             r"with your rights. If you trust it, add its folder"),
    ],
)  # fmt: skip
def test_inline_code_from_an_untrusted_folder_is_refused_before_anything_starts(
    untrusted, repo_cwd, mnist_manifests, tmp_path, capsys, extra, message
):
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--limit", "64", *extra, "--out", str(out))) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and not out.exists()
    assert main(mnist_manifests.run_args("--limit", "64", *extra, "--dry-run")) == 2


@pytest.mark.parametrize("extra", [("--trust",), ("--software", PROCESS)])
def test_trust_or_another_environment_runs_it(untrusted, mnist_manifests, tmp_path, extra):
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--limit", "64", *extra, "--out", str(out))) == 0
    assert (out / "summary.json").is_file()


def test_the_shipped_manifests_and_the_listed_roots_are_trusted(
    untrusted, repo_cwd, mnist_manifests, monkeypatch
):
    check_trusted(resolve_task("mnist-8@1.0.0", "mnist-test@1.0.0"), "inline", trust=False)
    copies = resolve_task(mnist_manifests.path("model"), mnist_manifests.path("dataset"))
    with pytest.raises(UntrustedManifest):
        check_trusted(copies, "inline", trust=False)
    monkeypatch.setenv(TRUSTED_ROOTS_ENV, f"/elsewhere:{mnist_manifests.root}")
    check_trusted(copies, "inline", trust=False)


@pytest.mark.parametrize(
    ("software", "indexed"),
    [(PROCESS, False), (None, True)],
)
def test_a_dry_run_runs_a_reader_in_the_driver_only_when_it_would_run_inline(
    mnist_manifests, tmp_path, capsys, software, indexed
):
    """A process or docker task's reader runs inside its environment; a dry run starts none."""
    marker = tmp_path / "the reader ran"
    mnist_manifests.edit(
        "dataset", "      import gzip\n", f"      import gzip\n      open({str(marker)!r}, 'w')\n"
    )
    extra = ("--software", software) if software else ()
    assert main(mnist_manifests.run_args("--limit", "64", *extra, "--dry-run")) == 0
    printed = capsys.readouterr().out
    assert marker.exists() is indexed
    if indexed:
        assert "samples: 64 (--limit 64)" in printed
    else:
        assert (
            "shards: planned when the dataset is indexed on the first node (its reader is "
            "manifest code, which runs only inside the process environment: a dry run starts "
            "none)" in printed
        )
