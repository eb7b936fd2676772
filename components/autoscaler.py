"""The Kubernetes Cluster Autoscaler, sizing the GPU node groups by the slices pods need."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import catalog, conventions, manifest_files, validation
from .errors import ConfigError
from .options import child_options
from .pod_identity import pod_identity_role

IMAGE_REPOSITORY = "registry.k8s.io/autoscaling/cluster-autoscaler"
#: Compressed size of its image, GB: an estimate (one static binary, about 100 to 170 MB
#: unpacked with every cloud provider built in: kubernetes/autoscaler#1323).
IMAGE_COMPRESSED_GB = 0.1
#: Describe calls take no resource-level permissions: the first statement of the
#: autoscaler's "Full Cluster Autoscaler Features Policy", as documented
#: (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, IAM Policy).
DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
)
#: The second statement, which that README asks to scope; we scope it to the Auto Scaling
#: groups EKS tags as this cluster's (see _policy).
SCALING_ACTIONS = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)
#: Reads a managed node group's labels, taints and tags for scale-up from zero.
NODEGROUP_ACTIONS = ("eks:DescribeNodegroup",)


@dataclass(frozen=True, kw_only=True)
class ClusterAutoscalerArgs:
    """Inputs of :class:`ClusterAutoscaler`."""

    #: Kubernetes provider of the target cluster; required (``GpuSharing`` fills it).
    provider: k8s.Provider | None = None
    #: Name of the EKS cluster whose node groups it scales; required (``GpuSharing`` fills
    #: it). Its Auto Scaling groups are found by the tag ``k8s.io/cluster-autoscaler/<name>``.
    cluster_name: pulumi.Input[str] | None = None
    #: The cluster's Kubernetes minor version; required (``GpuSharing`` fills it). The
    #: release is the newest patch of that minor (``catalog.CLUSTER_AUTOSCALER_VERSIONS``).
    kubernetes_version: pulumi.Input[str] | None = None
    #: Minutes a node must be unneeded before it is removed. Default 10 (upstream's).
    scale_down_unneeded_minutes: int = 10
    #: Minutes after a scale-up before scale-down is considered again. Default 10 (upstream's).
    scale_down_delay_after_add_minutes: int = 10
    #: GPU nodes whose requested GPUs over allocatable fall below this may be removed.
    #: Default 0.5 (upstream's).
    scale_down_gpu_utilization_threshold: float = 0.5
    #: Labels of the nodes it must run on; it then keeps off GPU nodes. ``GpuSharing`` gives
    #: the system node group's. Default none: it prefers a node without GPUs and tolerates
    #: the GPU taint, so on a cluster of GPU nodes alone it runs on one, which it then keeps
    #: (it removes a node only when every pod on it can move elsewhere; its own cannot).
    node_selector: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.provider is None or self.cluster_name is None or self.kubernetes_version is None:
            raise ConfigError(
                "ClusterAutoscalerArgs needs provider, cluster_name and kubernetes_version"
            )
        if validation.is_known(self.kubernetes_version):
            image(str(self.kubernetes_version))
        self.validate_settings()

    def validate_settings(self) -> None:
        """Everything but the cluster, which may not exist yet."""
        validation.integer("scaleDownUnneededMinutes", self.scale_down_unneeded_minutes, 1, 1440)
        validation.integer(
            "scaleDownDelayAfterAddMinutes", self.scale_down_delay_after_add_minutes, 0, 1440
        )
        threshold = self.scale_down_gpu_utilization_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ConfigError(
                f"scaleDownGpuUtilizationThreshold must be a number, got {threshold!r}"
            )
        if not 0 <= threshold <= 1:
            raise ConfigError(
                f"scaleDownGpuUtilizationThreshold must be between 0 and 1, got {threshold}"
            )
        validation.node_labels("node_selector", self.node_selector)


def memory_request_mib() -> int:
    """The memory its pod requests of a node (the manifest's), MiB."""
    container = manifest_files.load("cluster-autoscaler.yaml")["Deployment"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    return int(container["resources"]["requests"]["memory"].removesuffix("Mi"))


def image(kubernetes_version: str) -> str:
    """The autoscaler image for a cluster at that Kubernetes minor."""
    validation.one_of(
        "kubernetesVersion",
        kubernetes_version,
        catalog.CLUSTER_AUTOSCALER_VERSIONS,
        "has no Cluster Autoscaler release in components/catalog.py "
        "(CLUSTER_AUTOSCALER_VERSIONS); add its newest patch there",
    )
    return f"{IMAGE_REPOSITORY}:v{catalog.CLUSTER_AUTOSCALER_VERSIONS[kubernetes_version]}"


class ClusterAutoscaler(pulumi.ComponentResource):
    """Cluster Autoscaler with its AWS provider, finding this cluster's node groups by tag.

    Its AWS role comes from EKS Pod Identity: give it ``GpuCluster.cluster_name``, which
    waits for the cluster's ``pod_identity_agent``. It expands the group that wastes least
    (``least-waste``).
    """

    namespace: pulumi.Output[str]
    image: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        assert args.cluster_name is not None and args.kubernetes_version is not None  # validated
        super().__init__("eks-gpu-sharing:index:ClusterAutoscaler", name, None, opts)
        child = child_options(self, opts, provider=args.provider)
        objects = manifest_files.load("cluster-autoscaler.yaml")
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata=objects["Namespace"]["metadata"], opts=child
        )
        self.namespace = ns.metadata.name
        association = pod_identity_role(
            f"{name}-aws",
            cluster_name=args.cluster_name,
            namespace=conventions.AUTOSCALER_NAMESPACE,
            service_account=conventions.AUTOSCALER_SERVICE_ACCOUNT,
            inline_policy=pulumi.Output.from_input(args.cluster_name).apply(policy),
            opts=child_options(self, opts),
        )
        account = objects["ServiceAccount"]
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=account["metadata"],
            automount_service_account_token=account["automountServiceAccountToken"],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[ns])),
        )
        rbac = [
            k8s.rbac.v1.ClusterRole(
                f"{name}-role",
                metadata=objects["ClusterRole"]["metadata"],
                rules=objects["ClusterRole"]["rules"],
                opts=child,
            ),
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-binding",
                metadata=objects["ClusterRoleBinding"]["metadata"],
                role_ref=objects["ClusterRoleBinding"]["roleRef"],
                subjects=objects["ClusterRoleBinding"]["subjects"],
                opts=child,
            ),
            k8s.rbac.v1.Role(
                f"{name}-status-role",
                metadata=objects["Role"]["metadata"],
                rules=objects["Role"]["rules"],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[ns])),
            ),
            k8s.rbac.v1.RoleBinding(
                f"{name}-status-binding",
                metadata=objects["RoleBinding"]["metadata"],
                role_ref=objects["RoleBinding"]["roleRef"],
                subjects=objects["RoleBinding"]["subjects"],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[ns])),
            ),
        ]
        self.image = pulumi.Output.from_input(args.kubernetes_version).apply(
            lambda version: image(str(version))
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        deployment = pulumi.Output.all(self.image, args.cluster_name, region).apply(
            lambda values: _deployment(objects["Deployment"], args, *values)
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            # Its pod starts with the role's credentials only once the association exists.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[ns, sa, association, *rbac])
            ),
        )
        self.register_outputs({"namespace": self.namespace, "image": self.image})


def policy(cluster_name: str) -> str:
    """The autoscaler's documented IAM policy, scaling only this cluster's node groups.

    EKS tags a managed node group's Auto Scaling group ``k8s.io/cluster-autoscaler/<cluster>
    = owned`` (EKS docs, managed-node-groups.html; the tag auto-discovery also reads), so
    the scaling actions are conditioned on it (IAM condition key aws:ResourceTag, which
    Auto Scaling groups support: Auto Scaling docs, control-access-using-iam.html).
    DescribeNodegroup takes a node group ARN: this cluster's only.
    """
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": list(DESCRIBE_ACTIONS), "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": list(SCALING_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                }
            },
        },
        {
            "Effect": "Allow",
            "Action": list(NODEGROUP_ACTIONS),
            "Resource": f"arn:aws:eks:*:*:nodegroup/{cluster_name}/*",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _deployment(
    deployment: dict[str, Any],
    args: ClusterAutoscalerArgs,
    image: str,
    cluster_name: str,
    region: str,
) -> dict[str, Any]:
    """The manifest's Deployment with our image, cluster, region, scale-down settings and, given
    a node selector, only the nodes it selects."""
    deployment["metadata"]["labels"]["app.kubernetes.io/version"] = image.rpartition(":")[2]
    pod = deployment["spec"]["template"]["spec"]
    if args.node_selector:
        pod["nodeSelector"] = dict(args.node_selector)
        del pod["affinity"], pod["tolerations"]
    container = pod["containers"][0]
    container["image"] = image
    flags = {
        "node-group-auto-discovery": "asg:tag=k8s.io/cluster-autoscaler/enabled,"
        f"k8s.io/cluster-autoscaler/{cluster_name}",
        "scale-down-unneeded-time": f"{args.scale_down_unneeded_minutes}m0s",
        "scale-down-delay-after-add": f"{args.scale_down_delay_after_add_minutes}m0s",
        "scale-down-gpu-utilization-threshold": str(args.scale_down_gpu_utilization_threshold),
    }
    command = []
    for arg in container["command"]:
        flag = arg.removeprefix("--").partition("=")[0]
        command.append(f"--{flag}={flags.pop(flag)}" if flag in flags else arg)
    container["command"] = command
    for env in container["env"]:
        if env["name"] == "AWS_REGION":
            env["value"] = region
    return deployment
