"""The Cluster Autoscaler: its image, its AWS permissions through Pod Identity, and the
node templates that tell it a GPU is N slices."""

from __future__ import annotations

import json

import botocore.session
import kubernetes_validate
import pytest

from components import (
    ConfigError,
    GpuNodeGroupArgs,
    GpuSharingArgs,
    args_from_config,
    catalog,
    conventions,
    manifest_files,
    time_slicing,
)
from components.autoscaler import ClusterAutoscalerArgs, image
from components.node_template import RESOURCES
from components.tools.plan import kubernetes_objects
from tests.conftest import OWN_CIDRS, PINNED_TODAY, by_name, cluster_args, plan_scope, run_stack

SESSION = botocore.session.get_session()
AUTOSCALER = "eks-gpu-sharing:index:ClusterAutoscaler"
ASG_TAG = "aws:autoscaling/tag:Tag"


@pytest.fixture(scope=plan_scope)
def multi_plan():
    return run_stack("multi")


def dev(**overrides: str) -> GpuSharingArgs:
    values = {
        "eks-gpu-sharing:gpuNodeMin": "0",
        "eks-gpu-sharing:gpuNodeMax": "2",
        "eks-gpu-sharing:publicAccessCidrs": json.dumps(list(OWN_CIDRS)),
    }
    values |= {f"eks-gpu-sharing:{k}": v for k, v in overrides.items()}
    return args_from_config(values, "dev", today=PINNED_TODAY)


# The image: the newest patch of the cluster's minor (cluster-autoscaler/README.md, Releases).


def test_every_minor_in_standard_support_has_an_autoscaler_release():
    for minor in catalog.EKS_STANDARD_SUPPORT_ENDS:
        release = catalog.CLUSTER_AUTOSCALER_VERSIONS[minor]
        assert release.rpartition(".")[0] == minor
        assert image(minor) == f"registry.k8s.io/autoscaling/cluster-autoscaler:v{release}"


def test_a_minor_without_a_release_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"kubernetesVersion '1.20' has no Cluster Autoscaler"):
        image("1.20")


def test_the_plan_runs_the_release_of_the_cluster_minor(demo_plan):
    version = demo_plan.one("eks:index:Cluster")["inputs"]["version"]
    deployment = by_name(demo_plan, "gpu-sharing-autoscaler-deployment")["inputs"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image(version)
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == (
        f"v{catalog.CLUSTER_AUTOSCALER_VERSIONS[version]}"
    )


# What it runs with: auto-discovery by this cluster's tags, least-waste, scale-down inputs.


def test_it_discovers_this_clusters_groups_by_tag_and_expands_least_waste(demo_plan):
    container = by_name(demo_plan, "gpu-sharing-autoscaler-deployment")["inputs"]["spec"][
        "template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[0] == "./cluster-autoscaler"
    assert "--cloud-provider=aws" in command
    assert "--expander=least-waste" in command
    assert ("--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
            "k8s.io/cluster-autoscaler/eks-gpu-sharing-dev") in command
    assert "--scale-down-unneeded-time=10m0s" in command
    assert {"name": "AWS_REGION", "value": "us-west-2"} in container["env"]


def test_scale_down_settings_reach_the_flags():
    from components.autoscaler import _deployment

    args = ClusterAutoscalerArgs(scale_down_unneeded_minutes=3,
                                 scale_down_delay_after_add_minutes=0,
                                 scale_down_gpu_utilization_threshold=0.2)
    deployment = _deployment(manifest_files.load("cluster-autoscaler.yaml")["Deployment"],
                             args, image("1.35"), "c", "eu-west-1")
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert {"--scale-down-unneeded-time=3m0s", "--scale-down-delay-after-add=0m0s",
            "--scale-down-gpu-utilization-threshold=0.2"} <= set(command)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("scale_down_unneeded_minutes", 0, "scaleDownUnneededMinutes must be between 1 and 1440"),
    ("scale_down_delay_after_add_minutes", -1, "scaleDownDelayAfterAddMinutes"),
    ("scale_down_gpu_utilization_threshold", 1.5, "between 0 and 1, got 1.5"),
    ("scale_down_gpu_utilization_threshold", "0.5", "must be a number"),
])
def test_scale_down_settings_are_validated(field, value, message):
    with pytest.raises(ConfigError, match=message):
        GpuSharingArgs(cluster=cluster_args(),
                       cluster_autoscaler=ClusterAutoscalerArgs(**{field: value}),
                       node_groups={"gpu": GpuNodeGroupArgs(min_size=0, max_size=2)}).validate()


def test_it_meets_restricted_pod_security(demo_plan):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in kubernetes_objects(demo_plan)}
    namespace = objects[("Namespace", conventions.AUTOSCALER_NAMESPACE)]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = objects[("Deployment", "cluster-autoscaler")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "volumes" not in pod  # no hostPath: restricted admits none
    # AWS endpoints resolve through the VPC's resolver: CoreDNS may have no node to run on.
    assert pod["dnsPolicy"] == "Default"
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    # Where it runs (the system node, else a GPU node it tolerates):
    # tests/test_system_node_group.py.


@pytest.mark.parametrize("version", sorted(catalog.EKS_STANDARD_SUPPORT_ENDS))
def test_the_plain_manifest_is_schema_valid(version):
    for obj in manifest_files.load("cluster-autoscaler.yaml").values():
        kubernetes_validate.validate(obj, f"{version}.0", strict=True)


# AWS permissions: Pod Identity, the documented policy, scoped to this cluster.


def test_its_role_is_trusted_by_pod_identity_and_associated_with_its_service_account(demo_plan):
    (role,) = [r["inputs"] for r in autoscaler_children(demo_plan)
               if r["type"] == "aws:iam/role:Role"]
    (statement,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert statement == {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                         "Action": ["sts:AssumeRole", "sts:TagSession"]}
    association = by_name(demo_plan, "gpu-sharing-autoscaler-aws-association")
    assert association["inputs"]["namespace"] == conventions.AUTOSCALER_NAMESPACE
    assert association["inputs"]["serviceAccount"] == conventions.AUTOSCALER_SERVICE_ACCOUNT
    assert association["inputs"]["clusterName"] == "eks-gpu-sharing-dev"
    agent = demo_plan.one("aws:eks/addon:Addon")
    assert agent["inputs"]["addonName"] == "eks-pod-identity-agent"
    assert agent["urn"] in association["dependencies"]
    deployment = by_name(demo_plan, "gpu-sharing-autoscaler-deployment")
    assert association["urn"] in deployment["dependencies"]
    pod = deployment["inputs"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == conventions.AUTOSCALER_SERVICE_ACCOUNT


def test_create_pod_identity_association_gets_what_eks_requires(demo_plan):
    inputs = by_name(demo_plan, "gpu-sharing-autoscaler-aws-association")["inputs"]
    request = SESSION.get_service_model("eks").shape_for("CreatePodIdentityAssociationRequest")
    assert set(request.required_members) == {"clusterName", "namespace", "serviceAccount",
                                             "roleArn"}
    assert set(request.required_members) <= set(inputs)


def test_no_node_role_permission_and_no_static_keys(demo_plan):
    types = {r["type"] for r in demo_plan.resources}
    assert "aws:iam/accessKey:AccessKey" not in types
    node_role_policies = {r["inputs"]["policyArn"] for r in demo_plan.by_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r["parent"].endswith("::gpu-sharing-gpu")}
    assert node_role_policies == {f"arn:aws:iam::aws:policy/{p}"
                                  for p in catalog.WORKER_NODE_POLICIES}
    assert policy_of(demo_plan)["Statement"]  # held by the autoscaler's own role


def autoscaler_children(plan) -> list[dict]:
    return [r for r in plan.resources
            if (r["parent"] or "").endswith("::gpu-sharing-autoscaler")]


def policy_of(plan) -> dict:
    """The autoscaler's policy document, however its Pod Identity role holds it (a
    RolePolicy, a managed Policy, an inline policy of the role)."""
    mine = autoscaler_children(plan)
    documents = [r["inputs"]["policy"] for r in mine
                 if r["type"] in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")]
    documents += [p["policy"] for r in mine if r["type"] == "aws:iam/role:Role"
                  for p in r["inputs"].get("inlinePolicies", [])]
    (document,) = documents
    return json.loads(document)


def test_every_action_exists_in_its_service_model(demo_plan):
    services = {"autoscaling": "autoscaling", "ec2": "ec2", "eks": "eks"}
    for statement in policy_of(demo_plan)["Statement"]:
        for action in statement["Action"]:
            prefix, _, operation = action.partition(":")
            model = SESSION.get_service_model(services[prefix])
            assert operation in model.operation_names, action


def test_scaling_is_limited_to_this_clusters_auto_scaling_groups(demo_plan):
    statements = policy_of(demo_plan)["Statement"]
    scaling = [s for s in statements if "autoscaling:SetDesiredCapacity" in s["Action"]]
    assert scaling == [{
        "Effect": "Allow",
        "Action": ["autoscaling:SetDesiredCapacity",
                   "autoscaling:TerminateInstanceInAutoScalingGroup"],
        "Resource": "*",
        "Condition": {"StringEquals": {
            "aws:ResourceTag/k8s.io/cluster-autoscaler/eks-gpu-sharing-dev": "owned"}},
    }]
    (describe_nodegroup,) = [s for s in statements if s["Action"] == ["eks:DescribeNodegroup"]]
    assert describe_nodegroup["Resource"] == (
        "arn:aws:eks:*:*:nodegroup/eks-gpu-sharing-dev/*")
    for statement in statements:
        assert all("*" not in action for action in statement["Action"])


# When it runs.


def test_the_demo_and_multi_stacks_run_it(demo_plan, multi_plan):
    assert len(demo_plan.by_type(AUTOSCALER)) == 1
    assert len(multi_plan.by_type(AUTOSCALER)) == 1


def test_not_when_no_group_can_change_size():
    plan = run_stack("dev", ["gpuNodeMin=1", "gpuNodeMax=1"])
    assert plan.by_type(AUTOSCALER) == []
    assert plan.by_type(ASG_TAG) == []
    associations = plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert [a["name"] for a in associations] == ["gpu-sharing-cluster-aws-node-association"]


def test_turned_off_it_leaves_no_group_with_min_below_max():
    assert dev(clusterAutoscaler="false", gpuNodeMin="1", gpuNodeMax="1").cluster_autoscaler is None
    with pytest.raises(ConfigError, match=r"min < max, but clusterAutoscaler is off"):
        dev(clusterAutoscaler="false")
    with pytest.raises(ConfigError, match=r"clusterAutoscaler must be true or false, got 'yes'"):
        dev(clusterAutoscaler="yes")


# Validation follows the model: max with the autoscaler, desired without.


def test_verification_pods_may_fill_the_largest_size_the_autoscaler_can_reach():
    assert dev(verificationPods="10").verification_pods == 10  # 2 nodes x 5 slices
    with pytest.raises(ConfigError, match=r"more than the 10 GPU slices .* gpuNodeMax"):
        dev(verificationPods="11")


def test_without_the_autoscaler_the_desired_nodes_count():
    with pytest.raises(ConfigError, match=r"more than the 5 GPU slices .* gpuNodeDesired"):
        args_from_config(
            {
                "eks-gpu-sharing:verificationPods": "6",
                "eks-gpu-sharing:publicAccessCidrs": json.dumps(list(OWN_CIDRS)),
            },
            "dev",
            today=PINNED_TODAY,
        )


def test_scale_from_zero_is_configured(multi_plan):
    group = by_name(multi_plan, "gpu-sharing-exclusive-ng")["inputs"]
    assert group["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 2}
    assert group["tags"][f"{RESOURCES}nvidia.com/gpu"] == "1"
    names = {t["name"] for t in multi_plan.by_type(ASG_TAG)}
    assert "gpu-sharing-exclusive-asg-resources/nvidia.com/gpu" in names


# renameByDefault: the autoscaler cannot count renamed GPUs (kubernetes/autoscaler#8095).


def renamed(min_size: int, max_size: int) -> GpuSharingArgs:
    return GpuSharingArgs(
        cluster=cluster_args(),
        node_groups={"gpu": GpuNodeGroupArgs(min_size=min_size, max_size=max_size)},
        plugin_configs={"default": time_slicing(5, rename_by_default=True)},
    )


def test_renamed_resources_are_refused_with_the_autoscaler_saying_why():
    with pytest.raises(ConfigError, match=r"advertises nvidia.com/gpu.shared .*#8095"):
        renamed(0, 2).validate()
    renamed(1, 1).validate()  # no autoscaler: nothing to mislead


def test_a_renamed_resource_template_has_no_whole_gpu_left():
    args = renamed(1, 1)
    assert args.advertised_resources("gpu") == {"nvidia.com/gpu.shared": 5, "nvidia.com/gpu": 0}


def test_up_leaves_alone_the_desired_size_the_autoscaler_set(monkeypatch):
    """Only for the groups it sizes (pulumi-aws's NodeGroup docs, "Ignoring Changes to
    Desired Size", the provider's aws_eks_node_group example of the same)."""
    from components import node_group

    ignored = {}
    real = node_group.aws.eks.NodeGroup

    def capture(name, **kwargs):
        ignored[name] = kwargs["opts"].ignore_changes
        return real(name, **kwargs)

    monkeypatch.setattr(node_group.aws.eks, "NodeGroup", capture)
    run_stack("multi")
    assert ignored == {
        "gpu-sharing-timesliced-ng": None,
        "gpu-sharing-bottlerocket-ng": None,
        "gpu-sharing-mps-ng": None,
        "gpu-sharing-exclusive-ng": ["scalingConfig.desiredSize"],
        "gpu-sharing-system-ng": None,  # a fixed size: nothing else sets it
    }
