"""Checks of the AWS side: the EKS control plane, the GPU nodes' template and group, their role."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import catalog
from components.cluster import OPEN_TO_THE_INTERNET
from policy.inputs import Check, Props, StackResource, get, is_true, items

EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

#: The control-plane logs an incident needs: who called the API, what changed, who
#: authenticated. A floor for any stack; our default (``GpuClusterArgs``) sends these.
REQUIRED_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator")

#: EC2 families with NVIDIA GPUs (x86_64); the catalog describes only the g4dn sizes we
#: deploy, this only recognises a GPU node group in any stack.
NVIDIA_GPU_FAMILIES: tuple[str, ...] = (
    "g4dn",
    "g5",
    "g6",
    "g6e",
    "gr6",
    "p3",
    "p3dn",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
)

_MANAGED_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?([^/]+)")


@dataclass(frozen=True)
class ClusterSettings:
    """The settings we check, read from either cluster type's inputs."""

    authentication_mode: Any
    private_endpoint: Any
    public_endpoint: Any
    public_cidrs: Any
    log_types: list[Any]
    secrets_key_arn: Any


def cluster_settings(resource_type: str, props: Props) -> ClusterSettings | None:
    """``None`` for a pulumi-eks component with no inputs.

    pulumi-eks builds its ``Cluster`` in its own process and registers the component there
    with no inputs, so on a real engine the policies see its ``aws:eks/cluster:Cluster``
    child instead; only our offline plan records the component's inputs.
    """
    if resource_type == EKS_COMPONENT:
        if not props:
            return None
        return ClusterSettings(
            authentication_mode=props.get("authenticationMode"),
            private_endpoint=props.get("endpointPrivateAccess"),
            public_endpoint=props.get("endpointPublicAccess"),
            public_cidrs=props.get("publicAccessCidrs"),
            log_types=items(props.get("enabledClusterLogTypes")),
            secrets_key_arn=props.get("encryptionConfigKeyArn"),
        )
    encryption = props.get("encryptionConfig")
    for_secrets = "secrets" in items(get(encryption, "resources"))
    return ClusterSettings(
        authentication_mode=get(props, "accessConfig", "authenticationMode"),
        private_endpoint=get(props, "vpcConfig", "endpointPrivateAccess"),
        public_endpoint=get(props, "vpcConfig", "endpointPublicAccess"),
        public_cidrs=get(props, "vpcConfig", "publicAccessCidrs"),
        log_types=items(props.get("enabledClusterLogTypes")),
        secrets_key_arn=get(encryption, "provider", "keyArn") if for_secrets else None,
    )


def cluster_check(rule: Callable[[ClusterSettings], list[str]]) -> Check:
    """One rule over the settings, for either cluster type."""

    def check(resource_type: str, props: Props) -> list[str]:
        settings = cluster_settings(resource_type, props)
        return rule(settings) if settings is not None else []

    return check


def authentication_mode_api(settings: ClusterSettings) -> list[str]:
    if settings.authentication_mode == "API":
        return []
    return [
        f"authenticationMode is {settings.authentication_mode!r}; set it to API so access is "
        "granted only by EKS access entries (IAM-audited), not the aws-auth ConfigMap"
    ]


def private_endpoint_on(settings: ClusterSettings) -> list[str]:
    if is_true(settings.private_endpoint):
        return []
    return [
        "endpointPrivateAccess is not true; turn it on so nodes reach the API server inside "
        "the VPC instead of over the internet"
    ]


def public_endpoint_not_open(settings: ClusterSettings) -> list[str]:
    # Unset, EKS turns the public endpoint on, open to everyone unless CIDRs are given.
    if settings.public_endpoint is not None and not is_true(settings.public_endpoint):
        return []
    cidrs = items(settings.public_cidrs) or [OPEN_TO_THE_INTERNET]
    open_to = _whole_internet(cidrs)
    if not open_to:
        return []
    return [
        f"the public API endpoint is open to {open_to}; narrow publicAccessCidrs "
        'to your own addresses (eks-gpu-sharing:publicAccessCidrs, e.g. ["203.0.113.7/32"])'
    ]


def _whole_internet(cidrs: list[Any]) -> str | None:
    """The CIDRs that together open an address family to everyone, compared as networks
    (``0.0.0.0/00``, ``0.0.0.0/1`` with ``128.0.0.0/1``, ``::/0``); unreadable ones count."""
    by_family: dict[int, list[Any]] = {4: [], 6: []}
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            return f"{cidr!r}, which is no CIDR block"
        by_family[network.version].append(network)
    for networks in by_family.values():
        if any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(networks)):
            return ", ".join(str(n) for n in networks)
    return None


def control_plane_logs(settings: ClusterSettings) -> list[str]:
    missing = [t for t in REQUIRED_LOG_TYPES if t not in settings.log_types]
    if not missing:
        return []
    return [
        f"enabledClusterLogTypes lacks {', '.join(missing)}; send "
        f"{', '.join(REQUIRED_LOG_TYPES)} to CloudWatch so API calls can be audited"
    ]


def secrets_encrypted(settings: ClusterSettings) -> list[str]:
    arn = settings.secrets_key_arn
    if isinstance(arn, str) and arn.startswith("arn:") and ":kms:" in arn:
        return []
    return [
        f"Kubernetes secrets are not envelope-encrypted with a KMS key (key ARN {arn!r}); set "
        "encryptionConfigKeyArn (pulumi-eks) or encryptionConfig with resources [secrets]"
    ]


# --- GPU nodes -------------------------------------------------------------------------


def launch_template_imdsv2(_: str, props: Props) -> list[str]:
    options = props.get("metadataOptions")
    problems = []
    if get(options, "httpTokens") != "required":
        problems.append(
            f"metadataOptions.httpTokens is {get(options, 'httpTokens')!r}; set it to "
            "required (IMDSv2 only)"
        )
    if get(options, "httpPutResponseHopLimit") != 1:
        problems.append(
            "metadataOptions.httpPutResponseHopLimit is "
            f"{get(options, 'httpPutResponseHopLimit')!r}; set it to 1 so pods cannot fetch "
            "the node role's credentials from the instance metadata service"
        )
    return problems


def launch_template_ebs_encrypted(_: str, props: Props) -> list[str]:
    return [
        f"blockDeviceMappings {get(mapping, 'deviceName')!r}: ebs.encrypted is "
        f"{get(mapping, 'ebs', 'encrypted')!r}; set it to true"
        for mapping in items(props.get("blockDeviceMappings"))
        if get(mapping, "ebs") is not None and not is_true(get(mapping, "ebs", "encrypted"))
    ]


def launch_template_no_key_pair(_: str, props: Props) -> list[str]:
    if not props.get("keyName"):
        return []
    return [
        f"keyName {props['keyName']!r} puts an SSH key on the nodes; leave it out and reach "
        "a node with kubectl debug node/<name> instead"
    ]


def node_group_no_ssh(_: str, props: Props) -> list[str]:
    if not props.get("remoteAccess"):
        return []
    return [
        "remoteAccess opens SSH to the nodes; remove it and reach a node with "
        "kubectl debug node/<name> instead"
    ]


def node_group_launch_template(_: str, props: Props) -> list[str]:
    if props.get("launchTemplate"):
        return []
    return [
        "no launchTemplate: the nodes get EKS's defaults (IMDS hop limit 2, so pods can reach "
        "the node role); use a launch template with IMDSv2, hop limit 1 and an encrypted volume"
    ]


def is_nvidia_gpu_instance(instance_type: Any) -> bool:
    return isinstance(instance_type, str) and instance_type.split(".")[0] in NVIDIA_GPU_FAMILIES


def node_group_gpu_ami(_: str, props: Props) -> list[str]:
    gpu_types = [t for t in items(props.get("instanceTypes")) if is_nvidia_gpu_instance(t)]
    ami_type = props.get("amiType")
    if not gpu_types or ami_type in catalog.NVIDIA_AMI_TYPES:
        return []
    why = (
        "is deprecated (Amazon Linux 2)"
        if ami_type in catalog.DEPRECATED_GPU_AMI_TYPES
        else "has no NVIDIA driver"
    )
    return [
        f"instanceTypes {', '.join(gpu_types)} have NVIDIA GPUs but amiType {ami_type!r} {why}; "
        f"use one of {', '.join(catalog.NVIDIA_AMI_TYPES)}"
    ]


def trusts(assume_role_policy: Any, service: str) -> bool:
    """Whether a role's trust policy lets that AWS service (``ec2.amazonaws.com``: nodes)
    assume it."""
    document = assume_role_policy
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    statements = get(document, "Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in items(statements):
        services = get(statement, "Principal", "Service")
        services = [services] if isinstance(services, str) else items(services)
        if get(statement, "Effect") == "Allow" and service in services:
            return True
    return False


def node_role_worker_policies_only(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """Extra policies on a node role are handed to every pod that reaches IMDS: managed ones
    attached (``RolePolicyAttachment``, the role's ``managedPolicyArns``) and inline ones
    (``RolePolicy``, the role's ``inlinePolicies``)."""
    node_roles = {
        r.urn: r
        for r in resources
        if r.type == ROLE and trusts(r.props.get("assumeRolePolicy"), "ec2.amazonaws.com")
    }
    violations = []
    for role in node_roles.values():
        for arn in items(role.props.get("managedPolicyArns")):
            if (message := _extra_managed_policy(arn)) is not None:
                violations.append((role.urn, message))
        for inline in items(role.props.get("inlinePolicies")):
            if get(inline, "policy"):
                violations.append((role.urn, _inline_message(get(inline, "name"))))
    for resource in resources:
        if not node_roles.keys() & set(resource.dependencies):
            continue
        if resource.type == ROLE_POLICY_ATTACHMENT:
            message = _extra_managed_policy(resource.props.get("policyArn"))
            if message is not None:
                violations.append((resource.urn, message))
        elif resource.type == ROLE_POLICY:
            violations.append((resource.urn, _inline_message(resource.props.get("name"))))
    return violations


def _extra_managed_policy(arn: Any) -> str | None:
    match = _MANAGED_POLICY_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is not None and match.group(1) in catalog.WORKER_NODE_POLICIES:
        return None
    return (
        f"policy {arn!r} is attached to a node role; nodes need only "
        f"{', '.join(catalog.WORKER_NODE_POLICIES)}. Give pods AWS access through "
        "EKS Pod Identity or IRSA instead"
    )


def _inline_message(name: Any) -> str:
    return (
        f"inline policy {name!r} is on a node role; nodes need only the managed "
        f"{', '.join(catalog.WORKER_NODE_POLICIES)}. Give pods AWS access through EKS Pod "
        "Identity or IRSA instead"
    )


def log_group_retention(_: str, props: Props) -> list[str]:
    """A group without ``retentionInDays`` (or 0) keeps its logs, and bills them, forever
    (CloudWatch Logs PutRetentionPolicy; pulumi-aws ``cloudwatch.LogGroup``)."""
    days = props.get("retentionInDays")
    if isinstance(days, int) and not isinstance(days, bool) and days > 0:
        return []
    return [
        f"log group {props.get('name')!r} has retentionInDays {days!r}, so its logs never "
        "expire; set a retention (GpuClusterArgs.log_retention_days, default 30)"
    ]
