"""What the Cluster Autoscaler believes a new node of each group will be, from our tags.

The autoscaler builds a node it has not started from the Auto Scaling group's tags and
EKS's DescribeNodegroup (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/
aws_manager.go, buildNodeFromTemplate): ``template_node`` below does what it does, step by
step, from our plan, and the verification pods are then packed onto such nodes.
"""

from __future__ import annotations

import dataclasses
import math
import re

import botocore.session
import pytest

from components import (
    GpuNodeGroupArgs,
    GpuSharingArgs,
    catalog,
    conventions,
    mps,
    time_slicing,
    unshared,
)
from components.node_template import LABEL, PREFIX, RESOURCES, TAINT, TAINT_EFFECTS
from components.tools.plan import kubernetes_objects
from tests.conftest import by_name, cluster_args, plan_scope, run_stack

ASG_TAG = "aws:autoscaling/tag:Tag"
SESSION = botocore.session.get_session()
#: extractTaintsFromAsg takes a tag whose value matches this.
TAINT_VALUE = re.compile(r"(.*):(?:NoSchedule|NoExecute|PreferNoSchedule)")


@pytest.fixture(scope=plan_scope)
def multi_plan():
    return run_stack("multi")


def asg_tags(plan, group: str) -> dict[str, str]:
    """The tags the plan puts on the group's Auto Scaling group (aws.autoscaling.Tag)."""
    return {
        r["inputs"]["tag"]["key"]: r["inputs"]["tag"]["value"]
        for r in plan.by_type(ASG_TAG)
        if r["parent"].endswith(f"::gpu-sharing-{group}")
    }


def template_node(plan, group: str, tags: dict[str, str] | None = None) -> dict:
    """buildNodeFromTemplate, for an EKS managed node group of our plan."""
    node_group = by_name(plan, f"gpu-sharing-{group}-ng")["inputs"]
    tags = asg_tags(plan, group) if tags is None else tags
    instance = catalog.G4DN[node_group["instanceTypes"][0]]
    # Capacity from the instance type: nvidia.com/gpu is the instance's physical GPUs.
    capacity = {"pods": 110, "cpu": instance.vcpus * 1000,  # millicores, for the sums below
                "memory": instance.memory_mib * 2**20, conventions.GPU_RESOURCE: instance.gpus}
    # extractAllocatableResourcesFromAsg: .../resources/<name> overrides capacity.
    capacity |= {k.removeprefix(RESOURCES): int(v) for k, v in tags.items()
                 if k.startswith(RESOURCES)}
    # extractLabelsFromAsg and extractTaintsFromAsg.
    labels = {k.removeprefix(LABEL): v for k, v in tags.items() if k.startswith(LABEL)}
    taints = [(k.removeprefix(TAINT), *v.split(":", 1)) for k, v in tags.items()
              if k.startswith(TAINT) and TAINT_VALUE.fullmatch(v)]
    # EKS managed node group (the ASG's eks:nodegroup-name tag): DescribeNodegroup's labels
    # win over the ASG's, its taints are added, and its resource tags override.
    labels |= node_group["labels"]
    taints += [(t["key"], t["value"], TAINT_EFFECTS[t["effect"]]) for t in node_group["taints"]]
    capacity |= {k.removeprefix(RESOURCES): int(v) for k, v in node_group["tags"].items()
                 if k.startswith(RESOURCES)}
    return {"capacity": capacity, "labels": labels, "taints": taints}


def verification_pod(plan) -> dict:
    (deployment,) = [o for o in kubernetes_objects(plan) if o["kind"] == "Deployment"
                     and o["metadata"]["name"] == conventions.VERIFICATION_APP]
    return deployment["spec"]["template"]["spec"]


def quantity(value: str, resource: str) -> int:
    if resource == "cpu":
        return int(value.removesuffix("m")) if value.endswith("m") else int(value) * 1000
    units = {"Mi": 2**20, "Gi": 2**30}
    return int(value[:-2]) * units[value[-2:]] if value[-2:] in units else int(value)


def pods_per_node(pod: dict, node: dict) -> int:
    """How many copies of the pod the scheduler fits on the node (0: none)."""
    if any(node["labels"].get(k) != v for k, v in pod["nodeSelector"].items()):
        return 0
    for key, value, effect in node["taints"]:
        if effect in ("NoSchedule", "NoExecute") and not any(
            t["key"] == key and t.get("effect") in (None, effect)
            and (t["operator"] == "Exists" or t.get("value") == value)
            for t in pod["tolerations"]
        ):
            return 0
    requests = pod["containers"][0]["resources"]["requests"]
    return min(node["capacity"].get(name, 0) // quantity(value, name)
               for name, value in requests.items())


@pytest.mark.parametrize("pods", [1, 4, 5, 6, 10])
def test_pending_verification_pods_fit_in_ceil_n_over_slices_template_nodes(demo_plan, pods):
    node = template_node(demo_plan, "gpu")
    slices = demo_plan.outputs["gpuSlicesPerNode"]
    assert slices == 5
    assert pods_per_node(verification_pod(demo_plan), node) == slices
    assert math.ceil(pods / pods_per_node(verification_pod(demo_plan), node)) == math.ceil(
        pods / slices)


def test_without_our_resource_tags_it_would_start_one_node_per_pod(demo_plan):
    """kubernetes/autoscaler#3427: the instance type alone says 1 GPU on a g4dn.xlarge."""
    untagged = {k: v for k, v in asg_tags(demo_plan, "gpu").items()
                if not k.startswith(RESOURCES)}
    node = template_node(demo_plan, "gpu", untagged)
    node["capacity"] = {**node["capacity"], conventions.GPU_RESOURCE: 1}  # nor the group's
    assert pods_per_node(verification_pod(demo_plan), node) == 1


def test_each_multi_group_template_advertises_its_own_slices(multi_plan):
    """Time-slicing 5 x 1 T4 (on AL2023 and on Bottlerocket), MPS 2 x 1 T4, whole GPUs on a
    g4dn.2xlarge (1 T4)."""
    slices = {g: template_node(multi_plan, g)["capacity"][conventions.GPU_RESOURCE]
              for g in ("timesliced", "bottlerocket", "mps", "exclusive")}
    assert slices == {"timesliced": 5, "bottlerocket": 5, "mps": 2, "exclusive": 1}
    assert slices == multi_plan.outputs["gpuSlicesPerNodeByGroup"]
    pod = verification_pod(multi_plan)  # selects the timesliced group's config key
    assert pods_per_node(pod, template_node(multi_plan, "timesliced")) == 5
    assert pods_per_node(pod, template_node(multi_plan, "mps")) == 0


def test_the_template_knows_the_gpu_label_the_autoscaler_waits_on(demo_plan):
    node = template_node(demo_plan, "gpu")
    assert node["labels"][conventions.ACCELERATOR_NODE_LABEL] == "nvidia-tesla-t4"
    assert (conventions.GPU_TAINT_KEY, conventions.GPU_TAINT_VALUE, "NoSchedule") in node["taints"]


def test_the_asg_carries_the_node_groups_template_tags_unpropagated(demo_plan):
    group = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    template = {k: v for k, v in group["inputs"]["tags"].items() if k.startswith(PREFIX)}
    assert asg_tags(demo_plan, "gpu") == template
    for tag in demo_plan.by_type(ASG_TAG):
        assert tag["inputs"]["tag"]["propagateAtLaunch"] is False
        # The name EKS gave the group's Auto Scaling group (the mocks answer as EKS).
        assert re.fullmatch(r"eks-gpu-sharing-gpu-ng-[0-9a-f]+-[0-9a-f-]{36}",
                            tag["inputs"]["autoscalingGroupName"])


def test_the_longest_tag_we_can_write_fits_the_asg_and_eks_tag_rules():
    """Label keys are at most 63 characters (validation.node_labels, EKS's labelKey) and
    resource names too (the device plugin's MaxResourceNameLength): both fit AWS's keys."""
    autoscaling = SESSION.get_service_model("autoscaling")
    eks = SESSION.get_service_model("eks")
    longest = max(len(LABEL), len(RESOURCES), len(TAINT)) + 63
    for model in (autoscaling, eks):
        assert longest <= model.shape_for("TagKey").metadata["max"]
    args = GpuNodeGroupArgs(labels={"a" * 20 + "/" + "b" * 42: "c" * 63})
    for key, value in args.node_template_tags("gpu").items():
        # The models' pattern: printable characters (no control characters but tab/newline).
        assert key.isprintable() and value.isprintable() and len(key) <= longest
        assert len(value) <= autoscaling.shape_for("TagValue").metadata["max"]


def test_more_tags_than_a_node_group_takes_are_refused():
    labels = {f"l{i}": "v" for i in range(20)}
    tags = {f"t{i}": "v" for i in range(30)}
    with pytest.raises(Exception, match=r"30 tags and 27 node-template tags .* more than the 50"):
        GpuNodeGroupArgs(labels=labels, tags=tags).validate_settings()
    GpuNodeGroupArgs(labels=labels, tags=dict(list(tags.items())[:23])).validate_settings()


# A test per sharing strategy and instance size: the slices in the tag come from the same
# PluginConfig as the ConfigMap (units_per_gpu) x GPUs per instance (the catalog).
CASES = [
    (time_slicing(5), "g4dn.xlarge", "AL2023_x86_64_NVIDIA", 5),
    (time_slicing(5), "g4dn.12xlarge", "AL2023_x86_64_NVIDIA", 20),
    (time_slicing(3), "g4dn.metal", "AL2023_x86_64_NVIDIA", 24),
    (mps(2), "g4dn.xlarge", "AL2023_x86_64_NVIDIA", 2),
    (mps(4), "g4dn.12xlarge", "AL2023_x86_64_NVIDIA", 16),
    (unshared(), "g4dn.2xlarge", "AL2023_x86_64_NVIDIA", 1),
    (unshared(), "g4dn.12xlarge", "AL2023_x86_64_NVIDIA", 4),
    # Bottlerocket's host plugin is given the same sharing in its settings (bottlerocket.py).
    (time_slicing(5), "g4dn.12xlarge", "BOTTLEROCKET_x86_64_NVIDIA", 20),
    (unshared(), "g4dn.12xlarge", "BOTTLEROCKET_x86_64_NVIDIA", 4),
]


@pytest.mark.parametrize(("config", "instance", "ami", "slices"), CASES)
def test_the_resource_tag_is_units_per_gpu_times_gpus_per_instance(config, instance, ami, slices):
    group = GpuNodeGroupArgs(instance_type=instance, ami_type=ami, min_size=0, max_size=3)
    args = GpuSharingArgs(cluster=cluster_args(), node_groups={"g": group},
                          plugin_configs={"default": config},
                          verification_pods=0)
    args.validate()
    assert args.units_per_gpu("g") * catalog.G4DN[instance].gpus == slices
    filled = dataclasses.replace(group, advertised_resources=args.advertised_resources("g"))
    assert filled.node_template_tags("g")[f"{RESOURCES}nvidia.com/gpu"] == str(slices)


@pytest.mark.parametrize(("resources", "message"), [
    ({"gpu": 5}, "advertised_resources 'gpu' is not an extended resource name"),
    ({"nvidia.com/gpu": -1}, r"advertised_resources\['nvidia.com/gpu'\] must be >= 0, got -1"),
    ({"nvidia.com/gpu": "5"}, "must be an integer"),
])
def test_advertised_resources_given_by_hand_are_validated(resources, message):
    from components import ConfigError

    with pytest.raises(ConfigError, match=message):
        GpuNodeGroupArgs(advertised_resources=resources).validate_settings()
