"""The critical path ``plan`` shows: the longest chain of waits of ``pulumi up``, from the
dependencies the engine received (tests/test_destroy_and_update.py reads the same edges)."""

from __future__ import annotations

import copy

import pytest

from components import verification
from components.tools.critical_path import (
    API_CALL,
    AWS_CREATE,
    NODE_JOIN,
    POD_READY,
    critical_path,
    image_gb,
    wait_of,
)
from tests.conftest import plan_scope, run_stack

#: What must be serial in the demo: the control plane, the VPC CNI's Pod Identity (API calls
#: the first node needs done: GpuCluster._aws_node_role), the GPU node joining, the plugin
#: ready on it, the pods ready with their slices. Before them, one API call the cluster
#: needs created first (its log group and KMS key are created side by side).
#: The node group waits for one API call after the cluster: aws-node's Pod Identity
#: association and the agent add-on that serves it (the first node's aws-node pod needs
#: both, components/cluster.py ``_aws_node_role``); the two run side by side.
POD_IDENTITY = ("aws:eks/addon:Addon", "aws:eks/podIdentityAssociation:PodIdentityAssociation")
DEMO_STEPS = [
    ("eks:index:Cluster", AWS_CREATE),
    (POD_IDENTITY, API_CALL),
    ("aws:eks/nodeGroup:NodeGroup", NODE_JOIN),
    ("kubernetes:apps/v1:DaemonSet", POD_READY),
    ("kubernetes:apps/v1:Deployment", POD_READY),
]


@pytest.fixture(scope=plan_scope)
def measure_plan():
    return run_stack("dev", ["verificationMode=measure"])


def test_the_demo_waits_for_cluster_then_node_group_then_plugin_then_pods(demo_plan):
    path = critical_path(demo_plan.resources)
    first, *steps = path
    assert [
        (POD_IDENTITY if step.type in POD_IDENTITY else step.type, step.wait) for step in steps
    ] == DEMO_STEPS
    assert [step.name for step in steps[3:]] == [
        "gpu-sharing-device-plugin-ds", "gpu-sharing-verification-pods"]  # fmt: skip
    cluster = demo_plan.one("eks:index:Cluster")
    assert first.wait == API_CALL and first.urn in cluster["dependencies"]


def test_nothing_that_needs_only_the_api_server_waits_for_the_nodes(demo_plan):
    """The namespaces, RBAC and ConfigMaps are created while EKS builds the node group."""
    path = {step.urn for step in critical_path(demo_plan.resources)}
    kubernetes = [r for r in demo_plan.resources if r["type"].startswith("kubernetes:")]
    assert [r["name"] for r in kubernetes if r["urn"] in path] == [
        "gpu-sharing-device-plugin-ds", "gpu-sharing-verification-pods"]  # fmt: skip


def test_the_path_follows_the_recorded_edges(demo_plan):
    """An edge `up` does not need, as the verification namespace once waited for the
    plugin, puts its object on the path."""
    resources = copy.deepcopy(demo_plan.resources)
    by_name = {r["name"]: r for r in resources}
    namespace = by_name["gpu-sharing-verification-ns"]
    namespace["dependencies"].append(by_name["gpu-sharing-device-plugin-ds"]["urn"])
    names = [step.name for step in critical_path(resources)]
    assert names[-4:] == [
        "gpu-sharing-device-plugin-ds", "gpu-sharing-verification-ns",
        "gpu-sharing-verification-program", "gpu-sharing-verification-pods"]  # fmt: skip


def test_the_small_image_saves_the_pull_of_the_pytorch_one(demo_plan, measure_plan):
    def pods(plan):
        return critical_path(plan.resources)[-1].seconds

    assert pods(demo_plan) < 20 < 100 < pods(measure_plan)


def test_an_unknown_image_is_sized_as_the_largest_we_know():
    largest = max(probe.compressed_gb for probe in verification.PROBE_IMAGES.values())
    assert image_gb("example.com/own/probe:1") == largest
    assert image_gb("python:3.14.7-slim-trixie") < 0.05


def test_components_and_providers_take_no_time():
    for typ in ("pulumi:providers:kubernetes", "eks-gpu-sharing:index:GpuSharing"):
        assert wait_of({"type": typ, "inputs": {}}) == ("none", 0)
    assert wait_of({"type": "command:local:Command", "inputs": {"delete": "x"}}) == ("none", 0)
    assert wait_of({"type": "command:local:Command", "inputs": {"create": "x"}})[0] == API_CALL


def test_a_deployment_up_does_not_await_is_one_api_call(demo_plan):
    """pulumi.com/skipAwait: "true" (pulumi/pulumi-kubernetes, provider/pkg/metadata/
    overrides.go, SkipAwaitLogic): the pod without a slice is created, not waited for."""
    (no_slice,) = [r for r in demo_plan.resources if r["name"].endswith("-no-slice")]
    assert no_slice["type"] == "kubernetes:apps/v1:Deployment"
    assert wait_of(no_slice) == (API_CALL, 2)
    awaited = copy.deepcopy(no_slice)
    del awaited["inputs"]["metadata"]["annotations"]["pulumi.com/skipAwait"]
    assert wait_of(awaited)[0] == POD_READY
