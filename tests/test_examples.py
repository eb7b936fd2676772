"""The consumer stacks in examples/, run offline as `pulumi up` would run them, under mocks."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import components
from components.tools import mocks
from components.tools import plan as planner
from tests.conftest import ROOT, plan_scope

EXAMPLES = ROOT / "examples"
PYTHON_EXAMPLES = ("existing-cluster", "add-node-group")


def project_name(example: str) -> str:
    return yaml.safe_load((EXAMPLES / example / "Pulumi.yaml").read_text())["name"]


def run_example(example: str, config: dict[str, str]) -> planner.Plan:
    """The example's ``__main__.py`` with ``config`` (full keys), under its own project name,
    which ``pulumi.Config()`` reads as its namespace."""
    return planner.run(EXAMPLES / example, "dev", config, project_name(example))


def existing_cluster_config(**extra: str) -> dict[str, str]:
    namespace = project_name("existing-cluster")
    kubeconfig = json.dumps(mocks.kubeconfig("their-cluster", "eu-west-1"))
    return {
        f"{namespace}:kubeconfig": kubeconfig,
        **{f"{namespace}:{key}": value for key, value in extra.items()},
    }


def add_node_group_config() -> dict[str, str]:
    return planner.stack_config(EXAMPLES / "add-node-group", "dev", [])


@pytest.fixture(scope=plan_scope)
def existing() -> planner.Plan:
    return run_example("existing-cluster", existing_cluster_config())


@pytest.fixture(scope=plan_scope)
def added() -> planner.Plan:
    return run_example("add-node-group", add_node_group_config())


def kubernetes_objects(plan: planner.Plan) -> list[dict[str, Any]]:
    return [
        r
        for r in plan.resources
        if r["type"].startswith("kubernetes:") and not r["type"].startswith("pulumi:")
    ]


def assert_every_object_uses(plan: planner.Plan, provider: dict[str, Any]) -> None:
    objects = kubernetes_objects(plan)
    assert objects
    for resource in objects:
        assert resource["provider"], f"{resource['urn']} falls back to the ambient kubeconfig"
        assert resource["provider"].startswith(provider["urn"] + "::"), resource["urn"]


def sharing_data(plan: planner.Plan) -> dict[str, Any]:
    config_map = next(
        r
        for r in plan.by_type("kubernetes:core/v1:ConfigMap")
        if r["inputs"]["metadata"]["name"] == components.conventions.PLUGIN_CONFIGMAP_NAME
    )
    return {key: yaml.safe_load(text) for key, text in config_map["inputs"]["data"].items()}


def time_slicing_replicas(plan: planner.Plan) -> int:
    resources = sharing_data(plan)["default"]["sharing"]["timeSlicing"]["resources"]
    return int(resources[0]["replicas"])


# --- existing-cluster: the plugin and the proof on a cluster given by its kubeconfig ---


def test_existing_cluster_creates_no_cluster_and_no_aws_resource(existing):
    types = {r["type"] for r in existing.resources}
    assert not {t for t in types if t.startswith(("aws:", "eks:"))}
    assert "eks-gpu-sharing:index:GpuCluster" not in types
    assert "eks-gpu-sharing:index:GpuNodeGroup" not in types
    assert {
        "eks-gpu-sharing:index:NvidiaDevicePlugin",
        "eks-gpu-sharing:index:SharingConfig",
        "eks-gpu-sharing:index:VerificationWorkload",
    } <= types


def test_existing_cluster_objects_use_the_provider_from_the_secret_kubeconfig(existing):
    provider = existing.one("pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == planner.SECRET
    assert_every_object_uses(existing, provider)


def test_existing_cluster_shares_each_gpu_and_proves_it_with_as_many_pods(existing):
    assert time_slicing_replicas(existing) == 4
    (deployment,) = [r for r in existing.by_type("kubernetes:apps/v1:Deployment")
                     if r["name"].endswith("-pods")]  # the other: the pod without a slice
    assert deployment["inputs"]["spec"]["replicas"] == 4
    container = deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert existing.one("kubernetes:apps/v1:DaemonSet")["urn"] in deployment["dependencies"]
    assert existing.outputs["resourceName"] == "nvidia.com/gpu"


def test_existing_cluster_config_sets_replicas_and_zero_pods_deploys_none():
    plan = run_example(
        "existing-cluster", existing_cluster_config(timeSlicingReplicas="3", verificationPods="0")
    )
    assert time_slicing_replicas(plan) == 3
    assert not plan.by_type("kubernetes:apps/v1:Deployment")
    assert "verificationNamespace" not in plan.outputs


def test_existing_cluster_without_a_kubeconfig_names_the_missing_key():
    with pytest.raises(Exception, match="gpu-sharing-existing-cluster:kubeconfig"):
        run_example("existing-cluster", {})


# --- add-node-group: a GpuNodeGroup and the plugin joining a pulumi_eks.Cluster ---


def test_add_node_group_joins_the_stack_s_own_cluster(added):
    config = add_node_group_config()
    namespace = project_name("add-node-group")
    cluster = added.one("eks:index:Cluster")
    group = added.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    assert cluster["name"] == "platform"
    assert cluster["inputs"]["name"] == config[f"{namespace}:clusterName"]
    assert group["inputs"]["clusterName"] == cluster["inputs"]["name"]
    assert group["inputs"]["subnetIds"] == json.loads(config[f"{namespace}:subnetIds"])
    assert cluster["urn"] in group["dependencies"], "the group must wait for the cluster"
    # The library adds GPU nodes; the cluster stays the user's.
    assert not added.by_type("eks-gpu-sharing:index:GpuCluster")
    assert added.one("eks-gpu-sharing:index:GpuNodeGroup")["urn"] == group["parent"]


def test_add_node_group_labels_the_nodes_for_the_plugin_config(added):
    labels = added.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")["inputs"]["labels"]
    assert labels[components.conventions.GPU_NODE_LABEL] == "true"
    assert labels[components.conventions.PLUGIN_CONFIG_NODE_LABEL] == "default"
    assert time_slicing_replicas(added) == 4


def test_add_node_group_objects_use_a_provider_from_that_cluster(added):
    provider = added.one("pulumi:providers:kubernetes")
    assert '"--cluster-name", "platform"' in provider["inputs"]["kubeconfig"]
    assert_every_object_uses(added, provider)
    daemonset = added.one("kubernetes:apps/v1:DaemonSet")
    group = added.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    assert group["urn"] in daemonset["dependencies"]


def test_add_node_group_outputs(added):
    assert added.outputs["kubeconfig"] == planner.SECRET
    assert added.outputs["gpuSlicesPerNode"] == 4  # 4 units x 1 T4
    assert added.outputs["gpuNodeGroupName"].startswith("gpu-ng-")


# --- what makes them consumer stacks ---


def _imports(path: Path) -> Iterator[tuple[str, str]]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names)


@pytest.mark.parametrize("example", PYTHON_EXAMPLES)
def test_examples_use_only_the_public_api(example):
    used = [(m, n) for m, n in _imports(EXAMPLES / example / "__main__.py") if "components" in m]
    assert used
    for module, name in used:
        assert module == "components", f"{example} imports {module}: not the public API"
        assert name in components.__all__, f"{example} imports {name}: not in __all__"


@pytest.mark.parametrize("directory", [*(f"examples/{e}" for e in PYTHON_EXAMPLES), "provider"])
def test_requirements_install_the_library_from_this_checkout(directory):
    """Pulumi runs pip in the project directory, so a relative path is resolved from there."""
    lines = (ROOT / directory / "requirements.txt").read_text().splitlines()
    paths = [line for line in lines if line.startswith(".")]
    assert len(paths) == 1, lines
    target = (ROOT / directory / paths[0]).resolve()
    pyproject = (target / "pyproject.toml").read_text()
    assert target == ROOT and 'name = "eks-gpu-sharing"' in pyproject
