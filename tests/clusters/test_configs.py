"""The cluster configurations in clusters/: every hardware manifest has a node type to run
on in each cloud config, and every node advertises resources under the names the code asks
for. The check uses dlspec-ray's own placement functions, as the autoscaler-aware
placement does at run time."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from dlspec_ray.hardware import candidate_requests, node_types_from_config, resource_name_problems
from dlspec_ray.hardware.labels import cpu_only_selector
from dlspec_ray.hardware.node_types import advertisement_problems
from dlspec_ray.runtime.placement import place
from dlspec_ray.spec.loader import load_manifest

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
CLOUD = ["aws.yaml", "gcp.yaml", "kuberay.yaml"]
KUBERAY = ["kuberay.yaml", "kuberay-rayjob.yaml"]
LAUNCHED = ["aws.yaml", "gcp.yaml", "local.yaml"]
HARDWARE = sorted((REPO / "manifests" / "hardware").glob("*.yaml"))
NODE_RESOURCES = '--resources="$(dlspec-ray node-resources)"'
NODE_LABELS = '--labels="$(dlspec-ray node-resources --labels)"'


def config(name: str) -> dict:
    return yaml.safe_load((CLUSTERS / name).read_text())


def test_every_config_parses_and_is_documented():
    names = sorted(p.name for p in CLUSTERS.glob("*.yaml"))
    assert names == [
        "aws.yaml",
        "fake-multinode.yaml",
        "gcp.yaml",
        "kuberay-rayjob.yaml",
        "kuberay.yaml",
        "local.yaml",
    ]
    for name in names:
        assert isinstance(config(name), dict)
        assert (
            f"clusters/{name}"
            in (CLUSTERS / name).read_text().split("\n")[0] + (CLUSTERS / "README.md").read_text()
        )


@pytest.mark.parametrize("cloud", CLOUD)
@pytest.mark.parametrize("hardware", HARDWARE, ids=lambda p: p.stem)
def test_every_hardware_manifest_fits_a_node_type_of_each_cloud_config(cloud, hardware):
    manifest = load_manifest(hardware)
    types = node_types_from_config(config(cloud))
    placement = place(candidate_requests(manifest), [], what=manifest.ref, node_types=types)
    assert placement.needs_scale_up and placement.node_type.min_workers == 0


@pytest.mark.parametrize("name", [*CLOUD, "kuberay-rayjob.yaml", "fake-multinode.yaml"])
def test_node_types_advertise_the_resource_names_the_code_asks_for(name):
    types = node_types_from_config(config(name))
    for node_type in types:
        assert resource_name_problems(node_type.resources) == [], node_type.name
        # Labels that match the resources: gpu-arch none exactly on the CPU types, and
        # Ray's accelerator_type on the GPU types.
        problems = advertisement_problems(node_type.resources, node_type.labels)
        assert problems == [], node_type.name
    workers = [t for t in types if not t.head]
    assert all(t.min_workers == 0 and t.max_workers > 0 for t in workers)
    gpu_archs = {k for t in workers for k in t.resources if k.startswith("gpu_arch:")}
    cpu_only = [t for t in workers if not t.resources.get("GPU")]
    # Every cluster offers a V100 type beside its CPU types; the full ones an H100 too.
    full = name != "kuberay-rayjob.yaml"
    assert gpu_archs >= {"gpu_arch:sm_70", *(["gpu_arch:sm_90"] if full else [])} and cpu_only
    (head,) = [t for t in types if t.head]
    assert not head.resources.get("GPU")


@pytest.mark.parametrize("name", LAUNCHED)
def test_nodes_start_with_the_resources_node_resources_detects(name):
    cfg = config(name)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (command,) = [c for c in cfg[key] if "ray start" in c]
        assert NODE_RESOURCES in command and NODE_LABELS in command, (name, key)
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in cfg["head_start_ray_commands"][0]
    assert all("ray stop" not in c for c in cfg["head_start_ray_commands"])


def test_the_on_premises_config_lists_fixed_hosts():
    cfg = config("local.yaml")
    assert cfg["provider"]["type"] == "local"
    assert cfg["min_workers"] == cfg["max_workers"] == len(cfg["provider"]["worker_ips"])


def test_the_fake_provider_config_is_a_real_autoscaling_config():
    cfg = config("fake-multinode.yaml")
    assert cfg["provider"]["type"] == "fake_multinode"
    assert cfg["head_node_type"] in cfg["available_node_types"]


@pytest.mark.parametrize("name", [*CLOUD, "kuberay-rayjob.yaml", "fake-multinode.yaml"])
def test_a_cpu_task_scales_a_cpu_node_type_never_a_gpu_one(name):
    manifest = load_manifest(REPO / "manifests" / "hardware" / "x86-64-cpu.yaml")
    types = node_types_from_config(config(name))
    placement = place(candidate_requests(manifest), [], what=manifest.ref, node_types=types)
    assert placement.node_type is not None and not placement.node_type.resources.get("GPU")
    assert placement.request.as_actor_options()["label_selector"] == cpu_only_selector()
    gpu_types = [t for t in types if t.resources.get("GPU")]
    assert gpu_types and all(not t.labels.items() >= cpu_only_selector().items() for t in gpu_types)


def rayjob() -> dict:
    return config("kuberay-rayjob.yaml")


def test_the_rayjob_runs_a_task_its_cluster_can_host():
    job = rayjob()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    words = shlex.split(job["spec"]["entrypoint"])
    run = words[words.index("dlspec-ray") :]
    assert run[1] == "run"
    flags = dict(zip(run[2::2], run[3::2], strict=False))
    # The task named by the entrypoint resolves from the repository's manifests (the image
    # holds them) and fits a node type of the RayJob's own cluster.
    from dlspec_ray.task import resolve_task

    task = resolve_task(
        flags["--model"],
        flags["--dataset"],
        flags["--software"],
        flags["--hardware"],
        flags.get("--reference"),
        extra_roots=[REPO / "manifests"],
    )
    types = node_types_from_config(job)
    placement = place(candidate_requests(task.hardware), [], what="t", node_types=types)
    assert placement.needs_scale_up and placement.node_type.labels["dlspec/gpu-arch"] == "none"
    assert [t.name for t in types if t.can_start] == ["cpu-x86-64", "gpu-v100"]


def test_the_rayjobs_cluster_is_the_rayclusters_version_and_image():
    spec = rayjob()["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == config("kuberay.yaml")["spec"]["rayVersion"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    images = {c["image"] for g in groups for c in g["template"]["spec"]["containers"]}
    # The image clusters/Dockerfile builds: a CPU one, and a GPU one from the -gpu base.
    assert images == {"dlspec-ray:0.1.0", "dlspec-ray:0.1.0-gpu"}
    dockerfile = (CLUSTERS / "Dockerfile").read_text()
    assert "-t dlspec-ray:0.1.0 ." in dockerfile and "-t dlspec-ray:0.1.0-gpu ." in dockerfile
    base = re.search(r"^ARG RAY_IMAGE=rayproject/ray:(\S+)-py311$", dockerfile, re.M)
    assert base is not None and base.group(1) == spec["rayVersion"]


def test_the_image_installs_every_in_process_software_manifests_packages():
    dockerfile = (CLUSTERS / "Dockerfile").read_text()
    install = re.search(r"^RUN python -m pip install --no-cache-dir \\\n((?:    \S+ ?\\?\n)+)",
                        dockerfile, re.M)  # fmt: skip
    assert install is not None
    listed = {line.strip(" \\") for line in install.group(1).splitlines()}
    wanted = set()
    for path in sorted((REPO / "manifests" / "software").glob("*.yaml")):
        manifest = load_manifest(path)
        if manifest.environment in ("inline", "process"):
            wanted |= set(manifest.packages)
    assert listed == wanted
    for copied in ("dlspec_ray", "manifests", "assets"):
        assert f"COPY --chown=ray:users {copied} ./{copied}" in dockerfile
