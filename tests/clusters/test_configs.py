"""The cluster configurations in clusters/: every hardware manifest has a node type to run
on in each cloud config, and every node advertises resources under the names the code asks
for. The check uses dlspec-ray's own placement functions, as the autoscaler-aware
placement does at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dlspec_ray.hardware import candidate_requests, node_types_from_config, resource_name_problems
from dlspec_ray.runtime.placement import place
from dlspec_ray.spec.loader import load_manifest

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
CLOUD = ["aws.yaml", "gcp.yaml", "kuberay.yaml"]
LAUNCHED = ["aws.yaml", "gcp.yaml", "local.yaml"]
HARDWARE = sorted((REPO / "manifests" / "hardware").glob("*.yaml"))
NODE_RESOURCES = '--resources="$(dlspec-ray node-resources)"'


def config(name: str) -> dict:
    return yaml.safe_load((CLUSTERS / name).read_text())


def test_every_config_parses_and_is_documented():
    names = sorted(p.name for p in CLUSTERS.glob("*.yaml"))
    assert names == ["aws.yaml", "fake-multinode.yaml", "gcp.yaml", "kuberay.yaml", "local.yaml"]
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


@pytest.mark.parametrize("name", [*CLOUD, "fake-multinode.yaml"])
def test_node_types_advertise_the_resource_names_the_code_asks_for(name):
    types = node_types_from_config(config(name))
    for node_type in types:
        assert resource_name_problems(node_type.resources) == [], node_type.name
    workers = [t for t in types if not t.head]
    assert all(t.min_workers == 0 and t.max_workers > 0 for t in workers)
    gpu_archs = {k for t in workers for k in t.resources if k.startswith("gpu_arch:")}
    cpu_only = [t for t in workers if not t.resources.get("GPU")]
    assert gpu_archs >= {"gpu_arch:sm_70", "gpu_arch:sm_90"} and cpu_only
    (head,) = [t for t in types if t.head]
    assert not head.resources.get("GPU")


@pytest.mark.parametrize("name", LAUNCHED)
def test_nodes_start_with_the_resources_node_resources_detects(name):
    cfg = config(name)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (command,) = [c for c in cfg[key] if "ray start" in c]
        assert NODE_RESOURCES in command, (name, key)
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
