"""``dlspec-ray reproduce``: a run directory, copied elsewhere, is enough to run its task
again, and the rerun is compared with the original sample by sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from uuid import uuid4

import pytest

from dlspec_ray.cli import main

pytestmark = pytest.mark.usefixtures("ray_session", "repo_cwd")

SHIPPED = (
    "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
    "--software", "onnxruntime-cpu@1.0.0", "--hardware", "x86-64-cpu@1.0.0",
    "--reference", "mnist-8-onnxruntime-reference@1.0.0",
)  # fmt: skip


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory, ray_session):
    """The default task on the first 1,000 samples, with its reference log."""
    out = tmp_path_factory.mktemp("original") / "run"
    argv = ["run", *SHIPPED, "--limit", "1000", "--batch-size", "128", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    return out


def test_the_run_directory_describes_itself(shipped_run):
    identity = json.loads((shipped_run / "run.json").read_text())
    for kind in ("model", "dataset", "software", "hardware", "reference"):
        entry = identity["manifests"][kind]
        assert (shipped_run / entry["copy"]).read_bytes() == Path(entry["path"]).read_bytes()
    options = identity["run_options"]
    assert (options["batch_size"], options["limit"]) == (128, 1000)
    environment = json.loads((shipped_run / "environment.json").read_text())
    lock = environment["lock"]
    assert any(p.startswith("onnxruntime==") for p in lock["packages"])
    assert lock["digest"].startswith("sha256:")
    summary = json.loads((shipped_run / "summary.json").read_text())
    assert summary["environment"]["lock_digest"] == lock["digest"]
    (machine,) = environment["machines"].values()
    assert machine["cpu_model"] and machine["cpus"] >= 1 and isinstance(machine["gpus"], list)
    artifacts = json.loads((shipped_run / "artifacts.json").read_text())
    graph = next(a for a in artifacts["model"] if a["name"] == "graph")
    assert graph["checksum"].startswith("sha256:53b122a5") and graph["fetched_at"]
    assert {a["name"] for a in artifacts["dataset"]} == {"images", "labels"}


def test_a_copied_run_directory_reproduces_bit_for_bit(shipped_run, tmp_path, capsys):
    copy = tmp_path / "elsewhere" / "copied-run"
    shutil.copytree(shipped_run, copy)
    assert main(["reproduce", str(copy), "--out", str(tmp_path / "again"), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["passed"] is True and done["reference"] == "PASS"
    # The shipped manifests have the recorded digests: the catalog's trusted files are used.
    assert set(done["sources"].values()) == {"catalog"}
    comparison = done["comparison"]
    assert comparison["compared"] == 1000 and comparison["disagreement_count"] == 0
    assert comparison["divergence"]["max_abs_diff"] == 0.0  # bit-identical outputs
    again = json.loads((tmp_path / "again" / "run.json").read_text())
    assert again["run_options"]["batch_size"] == 128 and again["run_options"]["limit"] == 1000


def test_manifests_outside_the_catalog_come_from_the_run_directorys_copies(
    mnist_manifests, tmp_path, capsys
):
    mnist_manifests.edit("model", "description: >-", "description: >-\n  A local variant.")
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--limit", "256", "--out", str(out))) == 0
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    shutil.rmtree(mnist_manifests.root)  # the files it was run from are gone
    capsys.readouterr()
    assert main(["reproduce", str(moved), "--out", str(tmp_path / "again"), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["sources"]["model"] == "copy" and done["passed"] is True
    assert done["comparison"]["divergence"]["max_abs_diff"] == 0.0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda run: (run / "manifests" / "model.yaml").write_text(
                (run / "manifests" / "model.yaml").read_text().replace("top_k: 5", "top_k: 3")
            ),
            "its content does not match run.json's digest for the model manifest",
        ),
        (lambda run: (run / "summary.json").unlink(), "no summary.json; expected the directory"),
    ],
)
def test_a_run_directory_that_cannot_be_reproduced_is_refused(
    mnist_manifests, tmp_path, capsys, damage, message
):
    mnist_manifests.edit("model", "description: >-", "description: >-\n  A local variant.")
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--limit", "64", "--out", str(out))) == 0
    damage(out)
    capsys.readouterr()
    assert main(["reproduce", str(out), "--out", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "again").exists()


def test_varying_the_software_reruns_the_same_graph_and_reports_how_far_it_moved(
    shipped_run, tmp_path, capsys
):
    argv = ["reproduce", str(shipped_run), "--software", "onnx-reference-cpu@1.0.0"]
    assert main([*argv, "--out", str(tmp_path / "reference"), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    # mnist-8's stages are onnxruntime's: the catalog's model for the ONNX reference
    # evaluator with the same graph (checksum) runs instead, and the reference log, made
    # with mnist-8@1.0.0, does not apply to it.
    assert done["varied"] == {
        "software": "onnx-reference-cpu@1.0.0",
        "model": "mnist-8-onnx-reference@1.0.0",
    }
    assert done["reference"] is None and "compared with the original run only" in done["notes"][0]
    comparison = done["comparison"]
    assert comparison["compared"] == 1000 and comparison["disagreement_count"] == 0
    assert 0 < comparison["divergence"]["max_abs_diff"] < 1e-4  # float rounding, not a bug
    assert done["passed"] is True


@pytest.mark.parametrize("environment", ["inline", "process"])
def test_kept_stage_outputs_are_the_tensors_the_digests_were_taken_of(
    tmp_path, capsys, environment
):
    import numpy as np
    import pyarrow.parquet as pq

    from dlspec_ray.environments.digest import output_digest

    out = tmp_path / "run"
    argv = ["run", *SHIPPED[:8], "--limit", "256", "--batch-size", "64", "--out", str(out),
            "--keep-stage-outputs", "2", "--environment", environment, "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    kept = sorted(p.name for p in (out / "stage_outputs").iterdir())
    assert kept == ["batch-000000.npz", "batch-000001.npz"]
    rows = pq.read_table(out / "samples").to_pylist()
    for batch_id, name in enumerate(kept):
        saved = np.load(out / "stage_outputs" / name)
        assert saved["pre"].shape == (64, 1, 28, 28) and saved["run"].shape == (64, 10)
        row = next(r for r in rows if r["batch_id"] == batch_id)
        assert output_digest(saved["pre"]) == row["pre_digest"]
        assert output_digest(saved["run"]) == row["run_digest"]
        post = {k.split(".", 1)[1]: saved[k] for k in saved.files if k.startswith("post.")}
        assert output_digest(post) == row["post_digest"]
        assert post["top_k"][:, 0].tolist() == [
            r["prediction"] for r in rows if r["batch_id"] == batch_id
        ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stage_outputs"] == {"batches": 2, "folder": "stage_outputs"}


def test_a_run_in_object_storage_reproduces_from_its_uri(mnist_manifests, s3_env, tmp_path, capsys):
    """run.json and the manifest copies are read through the storage layer (the model's
    copy, not in the catalog, is downloaded); the local S3 server stands in for a bucket."""
    mnist_manifests.edit("model", "description: >-", "description: >-\n  A local variant.")
    uri = f"s3://{s3_env.make_bucket()}/runs/original"
    argv = mnist_manifests.run_args("--limit", "256", "--out", uri)
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    again = ["reproduce", uri, "--out", str(tmp_path / "again"), "--json"]
    # A copy from a bucket is someone else's code: inline, it runs only when trusted.
    assert main(again) == 2
    assert "outside the trusted roots" in capsys.readouterr().err
    assert main([*again, "--trust"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["sources"]["model"] == "copy" and done["passed"] is True
    assert done["comparison"]["compared"] == 256
    assert done["comparison"]["divergence"]["max_abs_diff"] == 0.0


def test_a_manifest_with_no_copy_is_found_in_the_roots_given(mnist_manifests, tmp_path, capsys):
    """The refusal says to add the folder that holds the manifest with --roots; it does."""
    # A manifest of its own (id and name), so that it stands beside the shipped mnist-8.
    mnist_manifests.edit("model", "id: e0b800cb-f477-4b52-b88f-57ef5c2f8694", f"id: {uuid4()}")
    mnist_manifests.edit("model", "name: mnist-8\n", "name: mnist-8-local\n")
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--limit", "64", "--out", str(out))) == 0
    (out / "manifests" / "model.yaml").unlink()
    identity = json.loads((out / "run.json").read_text())
    identity["manifests"]["model"]["copy"] = ""
    (out / "run.json").write_text(json.dumps(identity))
    capsys.readouterr()
    again = ["reproduce", str(out), "--out", str(tmp_path / "again"), "--json"]
    assert main(again) == 2
    assert "add the folder that holds it with --roots" in capsys.readouterr().err
    assert main([*again, "--roots", str(mnist_manifests.root / "models")]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["sources"]["model"] == "catalog" and done["passed"] is True
