"""The demo stack end to end under mocks: what `pulumi up` would register."""

from __future__ import annotations

import functools
import json

import pytest

from components import ConfigError, conventions
from components.tools.plan import config_error, kubernetes_objects, stack_config
from tests.conftest import PLAN_CIDRS, ROOT, by_name, cluster_args
from tests.test_destroy_and_update import transitive

COMPONENT_TYPES = {
    "eks-gpu-sharing:index:GpuSharing",
    "eks-gpu-sharing:index:GpuCluster",
    "eks-gpu-sharing:index:GpuNodeGroup",
    "eks-gpu-sharing:index:NvidiaDevicePlugin",
    "eks-gpu-sharing:index:SharingConfig",
    "eks-gpu-sharing:index:VerificationWorkload",
    "eks-gpu-sharing:index:ClusterAutoscaler",
}


def test_every_component_is_registered_under_the_top_level_one(demo_plan):
    types = {r["type"] for r in demo_plan.resources}
    assert types >= COMPONENT_TYPES
    top = demo_plan.one("eks-gpu-sharing:index:GpuSharing")
    by_urn = {r["urn"]: r for r in demo_plan.resources}
    for resource in demo_plan.resources:
        chain = resource
        while chain["parent"] in by_urn:
            chain = by_urn[chain["parent"]]
        assert chain is top, f"{resource['urn']} is not under the GpuSharing component"


def test_children_are_parented_to_the_component_that_owns_them(demo_plan):
    owners = {
        "aws:kms/key:Key": "GpuCluster",
        "eks:index:Cluster": "GpuCluster",
        "pulumi:providers:kubernetes": "GpuCluster",
        "aws:eks/nodeGroup:NodeGroup": ("GpuNodeGroup", "SystemNodeGroup"),
        "aws:eks/accessEntry:AccessEntry": "GpuCluster",
        "aws:ec2/launchTemplate:LaunchTemplate": ("GpuNodeGroup", "SystemNodeGroup"),
        "aws:autoscaling/tag:Tag": "GpuNodeGroup",
        "aws:eks/addon:Addon": "GpuCluster",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
            "GpuCluster", "ClusterAutoscaler"),
        "kubernetes:apps/v1:DaemonSet": "NvidiaDevicePlugin",
        "kubernetes:apps/v1:Deployment": ("VerificationWorkload", "ClusterAutoscaler"),
    }
    for typ, owner in owners.items():
        allowed = tuple(f"index:{o}" for o in ((owner,) if isinstance(owner, str) else owner))
        for resource in demo_plan.by_type(typ):
            assert resource["parent"].split("::")[2].endswith(allowed), resource["urn"]
    assert by_name(demo_plan, "gpu-sharing-gpu-role")["parent"].endswith("::gpu-sharing-gpu")
    system = by_name(demo_plan, "gpu-sharing-system-role")
    assert system["parent"].endswith("SystemNodeGroup::gpu-sharing-system")
    aws_node = by_name(demo_plan, "gpu-sharing-cluster-aws-node-role")
    assert aws_node["parent"].endswith("::gpu-sharing-cluster")
    autoscaler = by_name(demo_plan, "gpu-sharing-autoscaler-aws-role")
    assert autoscaler["parent"].endswith("::gpu-sharing-autoscaler")


def test_every_kubernetes_object_uses_the_cluster_provider_explicitly(demo_plan):
    provider = demo_plan.one("pulumi:providers:kubernetes")
    k8s = [r for r in demo_plan.resources if r["type"].startswith("kubernetes:")]
    # 13 of the device plugin, admission policy and verification, 7 of the autoscaler
    assert len(k8s) == 20
    for resource in k8s:
        assert resource["provider"] and resource["provider"].startswith(provider["urn"] + "::")


def test_kubernetes_provider_is_built_from_the_cluster_kubeconfig(demo_plan):
    provider = demo_plan.one("pulumi:providers:kubernetes")
    assert '"get-token"' in provider["inputs"]["kubeconfig"]
    assert "deleteUnreachable" not in provider["inputs"]  # only for teardown: docs/security.md


def test_verification_pods_are_created_after_the_device_plugin(demo_plan):
    daemonset = demo_plan.one("kubernetes:apps/v1:DaemonSet")
    deployment = by_name(demo_plan, "gpu-sharing-verification-pods")
    assert daemonset["urn"] in deployment["dependencies"]


def test_the_autoscaler_is_off_the_path_to_the_pods(demo_plan):
    """It waits for its Pod Identity association (and so for the agent) and for the system
    node it runs on (tests/test_system_node_group.py), not for the GPU nodes;
    neither the plugin nor the pods wait for it, which adds nodes whenever pods are pending,
    nor for the Auto Scaling group tags that only it reads."""
    closure = transitive(demo_plan)
    autoscaler = by_name(demo_plan, "gpu-sharing-autoscaler-deployment")["urn"]
    association = by_name(demo_plan, "gpu-sharing-autoscaler-aws-association")["urn"]
    agent = by_name(demo_plan, "gpu-sharing-cluster-pod-identity-agent")["urn"]
    assert {association, agent} <= closure[autoscaler]
    gpu_group = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    assert gpu_group["urn"] not in closure[autoscaler]
    tags = {r["urn"] for r in demo_plan.by_type("aws:autoscaling/tag:Tag")}
    assert tags
    for waiter in ("gpu-sharing-device-plugin-ds", "gpu-sharing-verification-pods"):
        urn = by_name(demo_plan, waiter)["urn"]
        assert autoscaler not in closure[urn] and not tags & closure[urn], waiter


def test_device_plugin_waits_for_the_gpu_nodes_and_they_for_the_cluster(demo_plan):
    group = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    cluster = demo_plan.one("eks:index:Cluster")
    daemonset = demo_plan.one("kubernetes:apps/v1:DaemonSet")
    assert group["urn"] in daemonset["dependencies"]
    assert cluster["urn"] in group["dependencies"]


def test_stack_outputs(demo_plan):
    outputs = demo_plan.outputs
    assert outputs["clusterName"] == "eks-gpu-sharing-dev"
    assert outputs["kubeconfig"] == "[secret]"
    assert outputs["nodeGroupName"].startswith("gpu-sharing-gpu-ng-")
    assert outputs["gpuSlicesPerNode"] == 5  # 5 replicas x 1 T4 in a g4dn.xlarge
    assert outputs["verificationNamespace"] == conventions.VERIFICATION_NAMESPACE


def test_slices_per_node_follow_gpus_per_instance():
    from tests.conftest import run_stack

    plan = run_stack("dev", ["gpuInstanceType=g4dn.12xlarge", "timeSlicingReplicas=3"])
    assert plan.outputs["gpuSlicesPerNode"] == 12  # 3 replicas x 4 T4s


def test_the_demo_plan_opens_the_endpoint_to_no_one(demo_plan):
    """A fresh clone's stack sets no CIDRs; its plan gets make plan's documentation address."""
    assert "eks-gpu-sharing:publicAccessCidrs" not in stack_config(ROOT, "dev", [])
    cidrs = demo_plan.one("eks:index:Cluster")["inputs"]["publicAccessCidrs"]
    assert cidrs == json.loads(PLAN_CIDRS.split("=", 1)[1]) == ["192.0.2.1/32"]
    assert not any("0.0.0.0/0" in w for w in demo_plan.warnings)


def test_the_whole_internet_is_an_explicit_choice():
    from tests.conftest import run_stack

    with pytest.raises(Exception) as error:
        run_stack("dev", ['publicAccessCidrs=["0.0.0.0/0"]'])
    assert "allowPublicAccessFromAnywhere" in str(config_error(error.value))
    plan = run_stack(
        "dev", ['publicAccessCidrs=["0.0.0.0/0"]', "allowPublicAccessFromAnywhere=true"]
    )
    assert any("0.0.0.0/0" in w for w in plan.warnings)
    assert plan.one("eks:index:Cluster")["inputs"]["publicAccessCidrs"] == ["0.0.0.0/0"]


def test_cluster_name_and_version_reach_eks(demo_plan):
    cluster = by_name(demo_plan, "gpu-sharing-cluster-eks")
    assert cluster["inputs"]["name"] == "eks-gpu-sharing-dev"
    assert cluster["inputs"]["version"] == "1.35"


def test_renamed_shared_resource_flows_to_the_pods_and_slices():
    import pulumi

    from components import GpuSharing, GpuSharingArgs, time_slicing
    from components.tools.plan import kubernetes_objects
    from tests.conftest import run_program

    def program():
        gpu = GpuSharing(
            "g",
            GpuSharingArgs(
                cluster=cluster_args(),
                plugin_configs={"default": time_slicing(4, rename_by_default=True)},
                verification_pods=4,
            ),
        )
        pulumi.export("slices", gpu.gpu_slices_per_node["gpu"])

    plan = run_program(program)
    (deployment,) = [o for o in kubernetes_objects(plan) if o["kind"] == "Deployment"
                     and o["metadata"]["name"] == conventions.VERIFICATION_APP]
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu.shared"] == "1" and "nvidia.com/gpu" not in limits
    assert plan.outputs["slices"] == 4


# --- Verification pods vs the nodes that run -----------------------------------------------


def sharing_args(**groups):
    """GpuSharingArgs over g4dn.xlarge groups given as name=(config key, desired, max)."""
    from components import GpuNodeGroupArgs, GpuSharingArgs, time_slicing, unshared

    return functools.partial(
        GpuSharingArgs,
        cluster=cluster_args(),
        node_groups={
            name: GpuNodeGroupArgs(
                plugin_config_key=key, desired_size=desired, min_size=desired, max_size=most
            )
            for name, (key, desired, most) in groups.items()
        },
        plugin_configs={"default": time_slicing(5), "whole": unshared()},
    )


def test_pods_are_counted_on_the_nodes_that_run_not_on_max_size():
    """Without the autoscaler nothing scales a group beyond desired_size, so max_size slices
    never appear: desired 1, replicas 5 has 5 slices, and 10 pods would wait 900 s and
    fail `up`."""
    args = functools.partial(sharing_args(gpu=("default", 1, 1)), cluster_autoscaler=None)
    args(verification_pods=5).validate()
    with pytest.raises(ConfigError) as error:
        args(verification_pods=10).validate()
    assert str(error.value) == (
        "verificationPods 10 is more than the 5 GPU slices the nodes can advertise "
        "(gpuNodeDesired x GPUs per instance x timeSlicingReplicas, over the groups the pods "
        "run on; nothing scales a group beyond gpuNodeDesired without the Cluster Autoscaler, "
        "so gpuNodeMax adds none); lower verificationPods or raise gpuNodeDesired or "
        "timeSlicingReplicas (in nodeGroups: desired, sharing.replicas)"
    )
    sharing_args(gpu=("default", 2, 2))(verification_pods=10).validate()
    sharing_args(gpu=("default", 1, 2))(verification_pods=10).validate()  # autoscaled to 2
    with pytest.raises(ConfigError) as error:
        sharing_args(gpu=("default", 1, 2))(verification_pods=11).validate()
    assert str(error.value) == (
        "verificationPods 11 is more than the 10 GPU slices the nodes can advertise "
        "(gpuNodeMax x GPUs per instance x timeSlicingReplicas, over the groups the pods run "
        "on; the Cluster Autoscaler adds nodes up to gpuNodeMax); lower verificationPods or "
        "raise gpuNodeMax or timeSlicingReplicas (in nodeGroups: max, sharing.replicas)"
    )


def test_only_the_groups_the_pods_run_on_count():
    """The pods select nodes by config key: another group's GPUs are not theirs."""
    args = sharing_args(gpu=("default", 1, 1), other=("whole", 3, 3))
    assert args(verification_pods=5).advertised_slices("default") == 5
    with pytest.raises(ConfigError, match="verificationPods 6 is more than the 5 GPU slices"):
        args(verification_pods=6).validate()


@pytest.mark.parametrize(
    ("groups", "changes", "message"),
    [
        ({}, {}, "node_groups needs at least one GPU node group"),
        (
            {"gpu": ("missing", 1, 1)},
            {},
            "node_groups['gpu'].plugin_config_key 'missing' is not a key of plugin_configs; "
            "use one of default, whole",
        ),
        (
            {"gpu": ("default", 1, 1)},
            {"verification_config_key": "missing"},
            "verification_config_key 'missing' is not a key of plugin_configs; "
            "use one of default, whole",
        ),
        (
            {"gpu": ("default", 1, 1)},
            {"verification_pods": -1},
            "verificationPods must be between 0 and 1000, got -1",
        ),
    ],
)
def test_cross_field_errors_name_the_field_and_what_it_takes(groups, changes, message):
    with pytest.raises(ConfigError) as error:
        sharing_args(**groups)(**{"verification_pods": 1, **changes}).validate()
    assert str(error.value) == message


def test_one_node_at_a_time_is_updated():
    """``update_config.max_unavailable`` 1 (the EKS default): during a node group update
    EKS drains at most that many nodes at once, so only one node's GPU slices are lost at a
    time and the others keep advertising theirs (docs.aws.amazon.com/eks/latest/userguide/
    managed-node-update-behavior.html, "Setup" and "Upgrade" phases). The new nodes it
    launches first are the larger of up to 2 x AZs and max_unavailable ("Scale up phase"),
    so for most values the drain side, not the instance count, is what 1 buys."""
    from tests.conftest import run_stack

    plan = run_stack("multi")
    groups = plan.by_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == 5  # four GPU groups and the system group
    for group in groups:
        assert group["inputs"]["updateConfig"] == {"maxUnavailable": 1}, group["name"]


def test_the_plugin_version_and_probe_mode_reach_the_pods():
    from tests.conftest import run_stack

    plan = run_stack("dev", ["devicePluginVersion=v0.19.3", "verificationMode=measure"])
    objects = {o["kind"]: o for o in kubernetes_objects(plan)}
    plugin = objects["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    assert plugin["image"].endswith(":v0.19.3")
    assert objects["DaemonSet"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v0.19.3"
    (pods,) = [o for o in kubernetes_objects(plan) if o["kind"] == "Deployment"
               and o["metadata"]["name"] == conventions.VERIFICATION_APP]
    probe = pods["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in probe["env"]}["PROBE_MODE"] == "measure"


def test_the_verification_image_reaches_the_pods():
    from tests.conftest import run_stack

    plan = run_stack("dev", ["verificationImage=python:3.13.9-slim-trixie"])
    (deployment,) = [
        o
        for o in kubernetes_objects(plan)
        if o["kind"] == "Deployment"
        and o["metadata"]["name"] == conventions.VERIFICATION_APP
    ]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]
    assert probe["image"] == "python:3.13.9-slim-trixie"


def test_no_verification_pods_means_no_workload():
    from components import GpuSharing, GpuSharingArgs
    from tests.conftest import run_program

    holder = {}
    plan = run_program(
        lambda: holder.setdefault(
            "gpu", GpuSharing("g", GpuSharingArgs(cluster=cluster_args(), verification_pods=0))
        )
    )
    assert holder["gpu"].verification is None
    assert not plan.by_type("eks-gpu-sharing:index:VerificationWorkload")


def volume_gib(plan, group: str = "gpu") -> int:
    template = by_name(plan, f"gpu-sharing-{group}-lt")
    (mapping,) = template["inputs"]["blockDeviceMappings"]
    return mapping["ebs"]["volumeSize"]


def test_the_node_volume_holds_what_the_node_runs(demo_plan):
    """AL2023: the AMI's 20 GiB, plus the plugin's, the probe's and the no-slice pod's images
    as containerd keeps them (4 x compressed), below the kubelet's 85 % image GC threshold."""
    from components import catalog
    from components.device_plugin import IMAGE_COMPRESSED_GB
    from components.verification import NO_SLICE_IMAGE, PROBE_IMAGES
    from tests.conftest import run_stack

    for plan, mode in ((demo_plan, "nvidia-smi"), (run_stack("dev", ["verificationMode=measure"]),
                                                   "measure")):  # fmt: skip
        images = IMAGE_COMPRESSED_GB + PROBE_IMAGES[mode].compressed_gb
        images += NO_SLICE_IMAGE.compressed_gb
        assert volume_gib(plan) == catalog.al2023_root_volume_gib([images])
    assert volume_gib(demo_plan) == 26  # (20 + 4 x 0.343 GB) / 0.85
    assert catalog.al2023_root_volume_gib([IMAGE_COMPRESSED_GB, 3.3]) == 39


def test_groups_without_the_pods_and_set_sizes_are_sized_otherwise():
    """multi: the pods run on the timesliced group; a size set by the user is kept; on
    Bottlerocket, whose images live on a second volume, the size stays the default 50."""
    from components import GpuNodeGroupArgs, GpuSharing, GpuSharingArgs, time_slicing
    from tests.conftest import cluster_args, run_program, run_stack

    multi = run_stack("multi", ["verificationMode=measure"])
    assert (volume_gib(multi, "timesliced"), volume_gib(multi, "mps")) == (40, 25)

    def program():
        GpuSharing("gpu-sharing", GpuSharingArgs(
            cluster=cluster_args(),
            node_groups={
                "own": GpuNodeGroupArgs(disk_size_gib=80),
                "br": GpuNodeGroupArgs(ami_type="BOTTLEROCKET_x86_64_NVIDIA"),
            },
            plugin_configs={"default": time_slicing(5)},
        ))  # fmt: skip

    plan = run_program(program)
    assert (volume_gib(plan, "own"), volume_gib(plan, "br")) == (80, 50)
