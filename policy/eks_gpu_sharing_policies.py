"""The secure defaults as checks: a resource's inputs in, violation messages out.

Each check is a plain function so it is tested on the offline plan's inputs without the
Pulumi engine; ``policy/__main__.py`` wires them into a CrossGuard ``PolicyPack``. They
match resources by type and inputs, not by our names, so they hold any stack to the same
bar. Inputs arrive as the engine holds them (camelCase keys); during ``pulumi preview``
they are read-only mappings whose unknown values raise when read, which CrossGuard turns
into a "can't run during preview" note.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import catalog, conventions
from components.cluster import OPEN_TO_THE_INTERNET

Props = Mapping[str, Any]
#: (resource type, inputs) -> one message per violation.
Check = Callable[[str, Props], list[str]]

EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE = "kubernetes:core/v1:Service"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"

#: Where each pod-creating kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    STATEFUL_SET: ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

#: The control-plane logs an incident needs: who called the API, what changed, who
#: authenticated. A floor for any stack; our default (``GpuClusterArgs``) sends these.
REQUIRED_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator")
OPEN_CIDRS = (OPEN_TO_THE_INTERNET, "::/0")

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

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_LEVELS = ("privileged", "baseline", "restricted")
_MANAGED_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?([^/]+)")


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
class StackResource:
    """What a stack policy needs of one resource, from CrossGuard or from the offline plan."""

    urn: str
    type: str
    props: Props
    dependencies: tuple[str, ...]


@dataclass(frozen=True)
class StackRule:
    """A policy that needs several resources at once; its check yields (urn, message)."""

    name: str
    description: str
    check: Callable[[Sequence[StackResource]], list[tuple[str, str]]]
    mandatory: bool


def _get(props: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(props, Mapping):
            return None
        props = props.get(key)
    return props


def _items(value: Any) -> list[Any]:
    """A list input as a list; anything else (absent, a string) as no items."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def _is_true(value: Any) -> bool:
    """The AWS provider carries some booleans as strings (``encrypted: "true"``)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


# --- EKS control plane ------------------------------------------------------------------


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
            log_types=_items(props.get("enabledClusterLogTypes")),
            secrets_key_arn=props.get("encryptionConfigKeyArn"),
        )
    encryption = props.get("encryptionConfig")
    for_secrets = "secrets" in _items(_get(encryption, "resources"))
    return ClusterSettings(
        authentication_mode=_get(props, "accessConfig", "authenticationMode"),
        private_endpoint=_get(props, "vpcConfig", "endpointPrivateAccess"),
        public_endpoint=_get(props, "vpcConfig", "endpointPublicAccess"),
        public_cidrs=_get(props, "vpcConfig", "publicAccessCidrs"),
        log_types=_items(props.get("enabledClusterLogTypes")),
        secrets_key_arn=_get(encryption, "provider", "keyArn") if for_secrets else None,
    )


def _cluster_check(rule: Callable[[ClusterSettings], list[str]]) -> Check:
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
    if _is_true(settings.private_endpoint):
        return []
    return [
        "endpointPrivateAccess is not true; turn it on so nodes reach the API server inside "
        "the VPC instead of over the internet"
    ]


def public_endpoint_not_open(settings: ClusterSettings) -> list[str]:
    # Unset, EKS turns the public endpoint on, open to everyone unless CIDRs are given.
    if settings.public_endpoint is not None and not _is_true(settings.public_endpoint):
        return []
    cidrs = _items(settings.public_cidrs) or [OPEN_TO_THE_INTERNET]
    open_to = [c for c in cidrs if c in OPEN_CIDRS]
    if not open_to:
        return []
    return [
        f"the public API endpoint is open to {', '.join(open_to)}; narrow publicAccessCidrs "
        'to your own addresses (eks-gpu-sharing:publicAccessCidrs, e.g. ["203.0.113.7/32"])'
    ]


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
    if _get(options, "httpTokens") != "required":
        problems.append(
            f"metadataOptions.httpTokens is {_get(options, 'httpTokens')!r}; set it to "
            "required (IMDSv2 only)"
        )
    if _get(options, "httpPutResponseHopLimit") != 1:
        problems.append(
            "metadataOptions.httpPutResponseHopLimit is "
            f"{_get(options, 'httpPutResponseHopLimit')!r}; set it to 1 so pods cannot fetch "
            "the node role's credentials from the instance metadata service"
        )
    return problems


def launch_template_ebs_encrypted(_: str, props: Props) -> list[str]:
    return [
        f"blockDeviceMappings {_get(mapping, 'deviceName')!r}: ebs.encrypted is "
        f"{_get(mapping, 'ebs', 'encrypted')!r}; set it to true"
        for mapping in _items(props.get("blockDeviceMappings"))
        if _get(mapping, "ebs") is not None and not _is_true(_get(mapping, "ebs", "encrypted"))
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
    gpu_types = [t for t in _items(props.get("instanceTypes")) if is_nvidia_gpu_instance(t)]
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


def _trusts_ec2(assume_role_policy: Any) -> bool:
    """Whether a role's trust policy lets EC2 instances (nodes) assume it."""
    document = assume_role_policy
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    statements = _get(document, "Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in _items(statements):
        services = _get(statement, "Principal", "Service")
        services = [services] if isinstance(services, str) else _items(services)
        if _get(statement, "Effect") == "Allow" and "ec2.amazonaws.com" in services:
            return True
    return False


def node_role_worker_policies_only(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """Extra managed policies on a node role are handed to every pod that reaches IMDS."""
    node_roles = {
        r.urn for r in resources if r.type == ROLE and _trusts_ec2(r.props.get("assumeRolePolicy"))
    }
    violations = []
    for attachment in resources:
        if attachment.type != ROLE_POLICY_ATTACHMENT or not node_roles & set(
            attachment.dependencies
        ):
            continue
        arn = attachment.props.get("policyArn")
        match = _MANAGED_POLICY_ARN.fullmatch(arn) if isinstance(arn, str) else None
        if match is None or match.group(1) not in catalog.WORKER_NODE_POLICIES:
            violations.append(
                (
                    attachment.urn,
                    f"policy {arn!r} is attached to a node role; nodes need only "
                    f"{', '.join(catalog.WORKER_NODE_POLICIES)}. Give pods AWS access through "
                    "EKS Pod Identity or IRSA instead",
                )
            )
    return violations


# --- Kubernetes workloads ----------------------------------------------------------------


def _containers(resource_type: str, props: Props) -> tuple[Any, list[Mapping[str, Any]]]:
    """The pod's namespace and all its containers (init containers included)."""
    spec = _get(props, *POD_SPEC_PATHS[resource_type])
    containers = _items(_get(spec, "initContainers")) + _items(_get(spec, "containers"))
    return _get(props, "metadata", "namespace"), [c for c in containers if isinstance(c, Mapping)]


def _name(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name')!r}"


def containers_least_privilege(resource_type: str, props: Props) -> list[str]:
    """Privileged containers are allowed only in the device plugin's namespace (MPS needs it)."""
    namespace, containers = _containers(resource_type, props)
    problems = []
    for container in containers:
        context = container.get("securityContext")
        if _is_true(_get(context, "privileged")):
            if namespace != conventions.DEVICE_PLUGIN_NAMESPACE:
                problems.append(
                    f"{_name(container)} is privileged in namespace {namespace!r}; only the "
                    f"device plugin's namespace {conventions.DEVICE_PLUGIN_NAMESPACE!r} may "
                    "run privileged containers"
                )
            continue
        if _get(context, "allowPrivilegeEscalation") is not False:
            problems.append(
                f"{_name(container)}: set securityContext.allowPrivilegeEscalation to false"
            )
        if "ALL" not in _items(_get(context, "capabilities", "drop")):
            problems.append(f"{_name(container)}: set securityContext.capabilities.drop to [ALL]")
    return problems


def containers_resource_bounds(resource_type: str, props: Props) -> list[str]:
    """CPU and memory requests place the pod; a memory limit keeps it from starving the node.

    No CPU limit is asked for: it only throttles, and the GPU probes are bursty.
    """
    _, containers = _containers(resource_type, props)
    problems = []
    for container in containers:
        resources = container.get("resources")
        missing = [
            f"resources.requests.{r}"
            for r in ("cpu", "memory")
            if not _get(resources, "requests", r)
        ]
        if not _get(resources, "limits", "memory"):
            missing.append("resources.limits.memory")
        if missing:
            problems.append(f"{_name(container)}: set {', '.join(missing)}")
    return problems


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or ``None`` when it has a tag or a digest."""
    if not isinstance(image, str) or not image:
        return "has no image"
    if "@" in image:
        return None  # a digest pins the exact bytes
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return f"image {image!r} has no tag, which means latest"
    if tag == "latest":
        return f"image {image!r} uses the moving tag latest"
    return None


def containers_pinned_images(resource_type: str, props: Props) -> list[str]:
    _, containers = _containers(resource_type, props)
    return [
        f"{_name(container)}: {problem}; pin a release tag or a digest"
        for container in containers
        if (problem := image_problem(container.get("image"))) is not None
    ]


def containers_read_only_root(resource_type: str, props: Props) -> list[str]:
    _, containers = _containers(resource_type, props)
    return [
        f"{_name(container)}: set securityContext.readOnlyRootFilesystem to true (mount an "
        "emptyDir where it must write)"
        for container in containers
        if not _is_true(_get(container, "securityContext", "privileged"))
        and not _is_true(_get(container, "securityContext", "readOnlyRootFilesystem"))
    ]


def namespace_pod_security(_: str, props: Props) -> list[str]:
    level = _get(props, "metadata", "labels", PSA_ENFORCE)
    if level in PSA_LEVELS:
        return []
    return [
        f"label {PSA_ENFORCE} is {level!r}; set it to one of {', '.join(PSA_LEVELS)} "
        "(restricted unless the pods need more)"
    ]


def namespace_privileged_only_for_device_plugin(_: str, props: Props) -> list[str]:
    name = _get(props, "metadata", "name")
    level = _get(props, "metadata", "labels", PSA_ENFORCE)
    if level != "privileged" or name == conventions.DEVICE_PLUGIN_NAMESPACE:
        return []
    return [
        f"namespace {name!r} admits privileged pods; only the device plugin's namespace "
        f"{conventions.DEVICE_PLUGIN_NAMESPACE!r} needs that (hostPath to the kubelet). Use "
        "restricted or baseline"
    ]


def no_orphaned_aws_resources(resource_type: str, props: Props) -> list[str]:
    """Objects whose AWS resources outlive ``pulumi destroy`` and can block VPC deletion."""
    if resource_type == SERVICE and _get(props, "spec", "type") == "LoadBalancer":
        return [
            "a Service of type LoadBalancer makes AWS create a load balancer and security "
            "groups outside Pulumi's state; if the cluster goes first they are left behind and "
            "block deleting the VPC. Use kubectl port-forward or an Ingress you manage"
        ]
    if resource_type == PVC:
        return [
            "a PersistentVolumeClaim makes the EBS CSI driver create a volume outside "
            "Pulumi's state; with a Retain reclaim policy it outlives the cluster and keeps "
            "costing. Use emptyDir, or delete the volume with the claim"
        ]
    if resource_type == STATEFUL_SET and _items(_get(props, "spec", "volumeClaimTemplates")):
        return [
            "volumeClaimTemplates create PersistentVolumeClaims that Kubernetes keeps after the "
            "StatefulSet is deleted, so their EBS volumes outlive pulumi destroy"
        ]
    return []


CLUSTERS = (EKS_COMPONENT, EKS_CLUSTER)
POD_CONTROLLERS = tuple(POD_SPEC_PATHS)

RULES: tuple[Rule, ...] = (
    Rule(
        "eks-authentication-mode-api",
        "EKS clusters grant access only through access entries (authentication mode API).",
        CLUSTERS,
        _cluster_check(authentication_mode_api),
        mandatory=True,
    ),
    Rule(
        "eks-private-endpoint",
        "EKS clusters serve their API on a private endpoint inside the VPC.",
        CLUSTERS,
        _cluster_check(private_endpoint_on),
        mandatory=True,
    ),
    Rule(
        "eks-public-endpoint-restricted",
        "The public EKS API endpoint is not open to the whole internet.",
        CLUSTERS,
        _cluster_check(public_endpoint_not_open),
        mandatory=False,
    ),
    Rule(
        "eks-control-plane-logs",
        "EKS sends its api, audit and authenticator logs to CloudWatch.",
        CLUSTERS,
        _cluster_check(control_plane_logs),
        mandatory=True,
    ),
    Rule(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes secrets with a KMS key.",
        CLUSTERS,
        _cluster_check(secrets_encrypted),
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
        "Node roles carry only the EKS worker, CNI and ECR read-only managed policies.",
        node_role_worker_policies_only,
        mandatory=False,
    ),
)
