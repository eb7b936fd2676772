"""The pack's rules: which plain check applies to which resource types, and how hard.

The checks (``aws_checks``, ``kubernetes_checks``) take a resource's inputs and return
violation messages, so the tests run them on the offline plan without the Pulumi engine;
``policy/__main__.py`` hands these rules to CrossGuard. They match resources by type and
inputs, not by our names, so they hold any stack to the same bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policy.autoscaler_checks import (
    POLICY_HOLDERS,
    autoscaler_image_pinned,
    autoscaler_pod_identity_role,
    autoscaler_policy_documented,
)
from policy.aws_checks import (
    EKS_CLUSTER,
    EKS_COMPONENT,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    NODE_GROUP,
    authentication_mode_api,
    cluster_check,
    control_plane_logs,
    launch_template_ebs_encrypted,
    launch_template_imdsv2,
    launch_template_no_key_pair,
    log_group_retention,
    node_group_gpu_ami,
    node_group_launch_template,
    node_group_no_ssh,
    node_role_worker_policies_only,
    private_endpoint_on,
    public_endpoint_not_open,
    secrets_encrypted,
)
from policy.inputs import Check, StackResource
from policy.kubernetes_checks import (
    NAMESPACE,
    POD_SPEC_PATHS,
    PVC,
    SERVICE,
    STATEFUL_SET,
    containers_least_privilege,
    containers_pinned_images,
    containers_read_only_root,
    containers_resource_bounds,
    device_plugin_off_host_plugin_nodes,
    namespace_pod_security,
    namespace_privileged_only_for_device_plugin,
    no_orphaned_aws_resources,
    pods_baseline,
    pods_no_host_namespaces,
    workloads_in_labelled_namespaces,
)


@dataclass(frozen=True)
class Rule:
    """One resource policy: the types it applies to, its check and its enforcement."""

    name: str
    description: str
    types: tuple[str, ...]
    check: Check
    #: Mandatory rules block ``pulumi up``; advisory ones only warn.
    mandatory: bool


@dataclass(frozen=True)
class StackRule:
    """A policy that needs several resources at once; its check yields (urn, message)."""

    name: str
    description: str
    check: Callable[[Sequence[StackResource]], list[tuple[str, str]]]
    mandatory: bool


CLUSTERS = (EKS_COMPONENT, EKS_CLUSTER)
POD_CONTROLLERS = tuple(POD_SPEC_PATHS)

RULES: tuple[Rule, ...] = (
    Rule(
        "eks-authentication-mode-api",
        "EKS clusters grant access only through access entries (authentication mode API).",
        CLUSTERS,
        cluster_check(authentication_mode_api),
        mandatory=True,
    ),
    Rule(
        "eks-private-endpoint",
        "EKS clusters serve their API on a private endpoint inside the VPC.",
        CLUSTERS,
        cluster_check(private_endpoint_on),
        mandatory=True,
    ),
    Rule(
        "eks-public-endpoint-restricted",
        "The public EKS API endpoint is not open to the whole internet.",
        CLUSTERS,
        cluster_check(public_endpoint_not_open),
        mandatory=False,
    ),
    Rule(
        "eks-control-plane-logs",
        "EKS sends its api, audit and authenticator logs to CloudWatch.",
        CLUSTERS,
        cluster_check(control_plane_logs),
        mandatory=True,
    ),
    Rule(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes secrets with a KMS key.",
        CLUSTERS,
        cluster_check(secrets_encrypted),
        mandatory=True,
    ),
    Rule(
        "log-group-retention",
        "CloudWatch log groups expire their logs (retentionInDays set).",
        (LOG_GROUP,),
        log_group_retention,
        mandatory=True,
    ),
    Rule(
        "launch-template-imdsv2",
        "Launch templates require IMDSv2 with a hop limit of 1.",
        (LAUNCH_TEMPLATE,),
        launch_template_imdsv2,
        mandatory=True,
    ),
    Rule(
        "launch-template-ebs-encrypted",
        "Every EBS volume in a launch template is encrypted.",
        (LAUNCH_TEMPLATE,),
        launch_template_ebs_encrypted,
        mandatory=True,
    ),
    Rule(
        "launch-template-no-key-pair",
        "Launch templates put no SSH key pair on the nodes.",
        (LAUNCH_TEMPLATE,),
        launch_template_no_key_pair,
        mandatory=False,
    ),
    Rule(
        "node-group-no-ssh",
        "Managed node groups open no SSH access (remoteAccess).",
        (NODE_GROUP,),
        node_group_no_ssh,
        mandatory=True,
    ),
    Rule(
        "node-group-launch-template",
        "Managed node groups use a launch template (so IMDS and disks are set by us).",
        (NODE_GROUP,),
        node_group_launch_template,
        mandatory=False,
    ),
    Rule(
        "node-group-gpu-ami",
        "Node groups of NVIDIA GPU instances use an AMI type with the NVIDIA driver.",
        (NODE_GROUP,),
        node_group_gpu_ami,
        mandatory=True,
    ),
    Rule(
        "containers-least-privilege",
        "Containers cannot escalate privileges and drop all capabilities.",
        POD_CONTROLLERS,
        containers_least_privilege,
        mandatory=True,
    ),
    Rule(
        "pods-no-host-namespaces",
        "Pods stay out of the node's PID, IPC and network namespaces; only the MPS control "
        "daemon's pod (device plugin image, its own commands) in the default device plugin "
        "namespace uses hostPID.",
        POD_CONTROLLERS,
        pods_no_host_namespaces,
        mandatory=True,
    ),
    Rule(
        "device-plugin-off-host-plugin-nodes",
        "Pods running NVIDIA's device plugin keep off nodes whose host runs it (Bottlerocket "
        "NVIDIA variants share through their own settings).",
        ("kubernetes:apps/v1:DaemonSet",),
        device_plugin_off_host_plugin_nodes,
        mandatory=True,
    ),
    Rule(
        "pods-baseline",
        "Pods meet the Pod Security Standards Baseline (no hostPath, added capabilities beyond "
        "its list, host ports, unconfined seccomp or AppArmor, custom SELinux, unsafe sysctls, "
        "procMount, HostProcess, probes to other hosts); only the device plugin's own "
        "containers (namespace, image and name) mount its host paths.",
        POD_CONTROLLERS,
        pods_baseline,
        mandatory=True,
    ),
    Rule(
        "containers-resource-bounds",
        "Containers request CPU and memory and are limited in memory.",
        POD_CONTROLLERS,
        containers_resource_bounds,
        mandatory=True,
    ),
    Rule(
        "containers-pinned-images",
        "Container images name an explicit release tag (not latest) or a digest.",
        POD_CONTROLLERS,
        containers_pinned_images,
        mandatory=True,
    ),
    Rule(
        "autoscaler-image-pinned",
        "The Cluster Autoscaler image is a release of the project's version table.",
        POD_CONTROLLERS,
        autoscaler_image_pinned,
        mandatory=True,
    ),
    Rule(
        "autoscaler-policy-documented",
        "IAM policies granting Auto Scaling actions grant only the Cluster Autoscaler's "
        "documented actions, each named (no wildcards).",
        POLICY_HOLDERS,
        autoscaler_policy_documented,
        mandatory=True,
    ),
    Rule(
        "containers-read-only-root",
        "Containers run with a read-only root filesystem.",
        POD_CONTROLLERS,
        containers_read_only_root,
        mandatory=False,
    ),
    Rule(
        "namespace-pod-security",
        "Namespaces enforce a Pod Security Standard level.",
        (NAMESPACE,),
        namespace_pod_security,
        mandatory=True,
    ),
    Rule(
        "namespace-privileged-only-for-device-plugin",
        "Only the device plugin's namespace admits privileged pods.",
        (NAMESPACE,),
        namespace_privileged_only_for_device_plugin,
        mandatory=False,
    ),
    Rule(
        "no-orphaned-aws-resources",
        "No LoadBalancer Services or persistent volume claims, which leave AWS resources "
        "behind on destroy.",
        (SERVICE, PVC, STATEFUL_SET),
        no_orphaned_aws_resources,
        mandatory=False,
    ),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "node-role-worker-policies-only",
        "Node roles carry only the EKS worker node managed policies (catalog."
        "WORKER_NODE_POLICIES), attached or listed on the role, and no inline policy.",
        node_role_worker_policies_only,
        mandatory=False,
    ),
    StackRule(
        "workloads-in-labelled-namespaces",
        "Pods run only in namespaces the stack creates with a Pod Security Admission label.",
        workloads_in_labelled_namespaces,
        mandatory=False,
    ),
    StackRule(
        "autoscaler-pod-identity-role",
        "Auto Scaling permissions sit on a role only EKS Pod Identity assumes, never a node role.",
        autoscaler_pod_identity_role,
        mandatory=True,
    ),
)
