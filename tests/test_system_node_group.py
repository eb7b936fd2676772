"""The system node group: where CoreDNS and the Cluster Autoscaler run, so that every GPU
group can scale to zero."""

from __future__ import annotations

import json

import pytest

from components import (
    ConfigError,
    GpuSharingArgs,
    SystemNodeGroup,
    SystemNodeGroupArgs,
    args_from_config,
    catalog,
    conventions,
)
from components.tools import cost
from components.tools.plan import kubernetes_objects
from tests.conftest import OWN_CIDRS, PINNED_TODAY, by_name, plan_scope, run_program, run_stack

SYSTEM = "eks-gpu-sharing:index:SystemNodeGroup"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def dev(**overrides: str) -> GpuSharingArgs:
    values = {"eks-gpu-sharing:publicAccessCidrs": json.dumps(list(OWN_CIDRS))}
    values |= {f"eks-gpu-sharing:{k}": v for k, v in overrides.items()}
    return args_from_config(values, "dev", today=PINNED_TODAY)


@pytest.fixture(scope=plan_scope)
def no_system_plan():
    return run_stack("dev", ["eks-gpu-sharing:systemNodes=0"])


def children(plan, typ: str) -> list[dict]:
    return [r for r in plan.by_type(typ) if r["parent"] and SYSTEM in r["parent"]]


# --- What it creates ---------------------------------------------------------------------


def test_the_demo_has_one_untainted_t3_small_of_fixed_size(demo_plan):
    (group,) = children(demo_plan, NODE_GROUP)
    inputs = group["inputs"]
    assert inputs["instanceTypes"] == ["t3.small"]
    assert inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert inputs["capacityType"] == "ON_DEMAND"
    # min = desired = max: the autoscaler never resizes it, and it never scales to zero.
    assert inputs["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 1}
    # No taint, so CoreDNS, which tolerates no GPU taint, runs here.
    assert "taints" not in inputs
    labels = inputs["labels"]
    assert labels[conventions.SYSTEM_NODE_LABEL] == conventions.SYSTEM_NODE_LABEL_VALUE
    assert conventions.GPU_NODE_LABEL not in labels
    assert conventions.ACCELERATOR_NODE_LABEL not in labels
    # No node-template tags: the autoscaler has nothing to scale here.
    assert not [k for k in inputs.get("tags", {}) if k.startswith("k8s.io/cluster-autoscaler")]


def test_its_nodes_are_hardened_like_the_gpu_nodes(demo_plan):
    (template,) = children(demo_plan, "aws:ec2/launchTemplate:LaunchTemplate")
    inputs = template["inputs"]
    assert inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    (volume,) = inputs["blockDeviceMappings"]
    assert volume["deviceName"] == "/dev/xvda"
    assert volume["ebs"] == {
        "volumeSize": 24,
        "volumeType": "gp3",
        "encrypted": "true",
        "deleteOnTermination": "true",
    }
    assert "keyName" not in inputs
    assert "userData" not in inputs  # EKS's own bootstrap alone: no GPU toolkit to set


def test_its_role_has_the_worker_policies_and_not_the_cni_policy(demo_plan):
    attached = {
        a["inputs"]["policyArn"]
        for a in children(demo_plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached == {f"arn:aws:iam::aws:policy/{p}" for p in catalog.WORKER_NODE_POLICIES}
    assert not children(demo_plan, "aws:iam/rolePolicy:RolePolicy")


def test_it_waits_for_the_cluster_and_its_pod_identity_agent(demo_plan):
    """Like the GPU groups: its aws-node pod needs its Pod Identity association and agent."""
    (group,) = children(demo_plan, NODE_GROUP)
    gpu = by_name(demo_plan, "gpu-sharing-gpu-ng")
    assert group["inputs"]["clusterName"] == gpu["inputs"]["clusterName"]
    assert set(gpu["dependencies"]) & set(group["dependencies"]) - {group["parent"]}


# --- The autoscaler runs on it ----------------------------------------------------------


def autoscaler_pod(plan) -> dict:
    (deployment,) = [
        o
        for o in kubernetes_objects(plan)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "cluster-autoscaler"
    ]
    return deployment["spec"]["template"]["spec"]


def test_the_autoscaler_runs_only_on_the_system_nodes(demo_plan):
    pod = autoscaler_pod(demo_plan)
    assert pod["nodeSelector"] == {
        conventions.SYSTEM_NODE_LABEL: conventions.SYSTEM_NODE_LABEL_VALUE
    }
    # It neither tolerates the GPU taint nor may it fall back to a GPU node, which it would
    # then never remove.
    assert "tolerations" not in pod
    assert "affinity" not in pod


def test_the_autoscaler_waits_for_the_system_nodes(demo_plan):
    """So `up` does not wait on a Deployment with no node to run on, and `destroy` removes
    it before its nodes."""
    (group,) = children(demo_plan, NODE_GROUP)
    deployment = by_name(demo_plan, "gpu-sharing-autoscaler-deployment")
    assert group["urn"] in deployment["dependencies"]


def test_without_system_nodes_the_autoscaler_may_run_on_a_gpu_node(no_system_plan):
    assert not children(no_system_plan, NODE_GROUP)
    pod = autoscaler_pod(no_system_plan)
    assert "nodeSelector" not in pod
    assert {"key": conventions.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"]
    )


def test_without_system_nodes_the_gpu_volume_has_room_for_the_autoscaler(monkeypatch):
    """Its image (0.1 GB) moves the demo's volume by under a GiB, so a 2 GB one shows it:
    counted on the GPU nodes only when it may run there."""
    from components import autoscaler, stack

    monkeypatch.setattr(autoscaler, "IMAGE_COMPRESSED_GB", 2.0)
    with_system = dev(gpuNodeMin="0", gpuNodeMax="2")
    without = dev(gpuNodeMin="0", gpuNodeMax="2", systemNodes="0")
    images = [0.2, 0.0434, 0.1]  # the plugin, the probe and the no-slice pod
    assert stack._volume_gib(with_system, "gpu") == catalog.al2023_root_volume_gib(images)
    assert stack._volume_gib(without, "gpu") == catalog.al2023_root_volume_gib([*images, 2.0])


# --- What it costs, and what the idle stack costs ----------------------------------------


def test_the_idle_demo_bills_the_control_plane_the_system_node_and_no_gpu(demo_plan):
    idle = {line.item: line.usd_per_hour for line in cost.estimate(demo_plan.resources, "minSize")}
    assert idle["gpu-sharing-system: 1 x t3.small"] == 0.0208
    assert not [item for item in idle if "g4dn" in item]
    assert cost.autoscaler_host(demo_plan.resources) is None
    assert idle["gpu-sharing-system: 1 public IPv4"] == 0.005  # default VPC subnets
    total = 0.10 + 0.0208 + 0.005 + 24 * 0.08 / 730 + 1 / 730
    assert round(sum(idle.values()), 4) == round(total, 4)


def test_without_system_nodes_the_autoscaler_keeps_a_gpu_node(no_system_plan):
    host = cost.autoscaler_host(no_system_plan.resources)
    assert host is not None
    assert host.item == "1 x g4dn.xlarge the autoscaler runs on, with its volume and address"


# --- Validation -----------------------------------------------------------------------------


def test_config_keys_reach_the_args():
    args = dev(systemNodes="2", systemNodeType="t3.medium")
    assert args.system_nodes == SystemNodeGroupArgs(instance_type="t3.medium", nodes=2)
    assert dev(systemNodes="0").system_nodes is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"systemNodeType": "g4dn.xlarge"},
            "systemNodeType 'g4dn.xlarge' is not a system instance type this library knows "
            "(x86_64, no GPU); use one of t3.micro, t3.small, t3.medium, t3a.small, "
            "t3a.medium, m5.large, m6i.large, c5.large",
        ),
        ({"systemNodes": "-1"}, "eks-gpu-sharing:systemNodes must be between 0 and 10, got -1"),
        ({"systemNodes": "11"}, "eks-gpu-sharing:systemNodes must be between 0 and 10, got 11"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        dev(**overrides)
    assert str(error.value) == message


def test_a_node_too_small_for_its_pods_is_refused_saying_what_does_not_fit():
    """t3.micro: maxPods 2 x (2 - 1) + 2 = 4 and 1024 - (11 x 4 + 255) - 100 = 625 MiB, for
    6 pods (3 DaemonSets, 2 CoreDNS, the autoscaler) and 70 + 70 + 600 MiB."""
    with pytest.raises(ConfigError) as error:
        dev(systemNodeType="t3.micro", gpuNodeMin="0", gpuNodeMax="2")
    assert str(error.value) == (
        "systemNodeType 't3.micro' holds 4 pods and 625 MiB of pod memory (maxPods and "
        "allocatable memory as the EKS AMI sets them): too little for the 6 pods it must "
        "run (EKS's 3 DaemonSet pods, CoreDNS's 2 and the Cluster Autoscaler when it runs) "
        "and their 740 MiB; use t3.small or larger"
    )


def test_memory_alone_can_refuse_a_node():
    """Enough pods (11 on a t3.small) but 2048 - (11 x 11 + 255) - 100 = 1572 MiB."""
    SystemNodeGroupArgs(pod_memory_mib=(1572,)).validate_settings()
    with pytest.raises(ConfigError, match="1572 MiB of pod memory"):
        SystemNodeGroupArgs(pod_memory_mib=(1573,)).validate_settings()


def test_pods_alone_can_refuse_a_node():
    """t3a.small holds 2 x (4 - 1) + 2 = 8 pods: 3 DaemonSet pods and 5 more fit, 6 do not."""
    SystemNodeGroupArgs(instance_type="t3a.small", pod_memory_mib=(1,) * 5).validate_settings()
    with pytest.raises(ConfigError, match="holds 8 pods"):
        SystemNodeGroupArgs(instance_type="t3a.small", pod_memory_mib=(1,) * 6).validate_settings()


def test_the_autoscaler_pod_is_counted_only_when_it_runs():
    assert dev().system_node_args().pod_memory_mib == (70, 70)
    autoscaled = dev(gpuNodeMin="0", gpuNodeMax="2").system_node_args()
    assert autoscaled.pod_memory_mib == (70, 70, 600)


def test_the_component_needs_its_cluster():
    with pytest.raises(ConfigError, match="needs cluster_name and subnet_ids"):
        SystemNodeGroup("s", SystemNodeGroupArgs())


def test_the_component_alone_registers_its_children_under_it():
    def program():
        SystemNodeGroup("sys", SystemNodeGroupArgs(cluster_name="c", subnet_ids=["s-1", "s-2"]))

    plan = run_program(program)
    for resource in plan.resources:
        if resource["type"] != SYSTEM:
            assert resource["parent"].endswith("SystemNodeGroup::sys"), resource["urn"]


def test_idling_and_waking_the_demo_leaves_the_gpu_nodes_alone():
    """`verificationPods: 0` then 5 again (README, "Scale to zero") must change no input of
    the GPU node group or its launch template: a new template version would roll the running
    node (EKS managed-node-update-behavior) before the autoscaler could remove it."""
    awake, idle = run_stack("dev"), run_stack("dev", ["eks-gpu-sharing:verificationPods=0"])
    for typ in (NODE_GROUP, "aws:ec2/launchTemplate:LaunchTemplate"):
        assert idle.one(typ, "GpuNodeGroup")["inputs"] == awake.one(typ, "GpuNodeGroup")["inputs"]
    assert not [o for o in kubernetes_objects(idle) if o["kind"] == "Deployment"
                and o["metadata"]["namespace"] == conventions.VERIFICATION_NAMESPACE]
