"""Stack config (``eks-gpu-sharing:*`` keys) -> validated :class:`GpuSharingArgs`, once."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from . import validation
from .autoscaler import ClusterAutoscalerArgs
from .cluster import GpuClusterArgs
from .conventions import DEFAULT_PLUGIN_CONFIG_KEY
from .device_plugin import DEFAULT_VERSION
from .errors import ConfigError
from .node_group import CONFIG_KEYS, GpuNodeGroupArgs
from .plugin_config import MPS_MAX_REPLICAS, PluginConfig, mps, time_slicing, unshared
from .sharing import DEFAULT_REPLICAS
from .stack import DEMO_NODE_GROUP, GpuSharingArgs
from .system_node_group import SystemNodeGroupArgs
from .validation import EKS_CLUSTER_NAME
from .verification import PROBE_MODES

NAMESPACE = "eks-gpu-sharing"

#: Every key the demo stack reads: (description, default as written in stack YAML).
KEYS: dict[str, tuple[str, Any]] = {
    "kubernetesVersion": (
        "Kubernetes minor version in EKS standard support (unset: the newest EKS lists at "
        "create, kept after; set it to upgrade)",
        None,
    ),
    "supportType": (
        "at the end of standard support: STANDARD (upgrade) or EXTENDED (6x)",
        "STANDARD",
    ),
    "gpuInstanceType": ("g4dn instance type of the GPU nodes", "g4dn.xlarge"),
    "gpuAmiType": (
        "EKS AMI type with the NVIDIA driver; it picks how the sharing is delivered: our device "
        "plugin (AL2023_x86_64_NVIDIA) or the host's, by user data (BOTTLEROCKET_x86_64_NVIDIA)",
        "AL2023_x86_64_NVIDIA",
    ),
    "gpuCapacityType": ("ON_DEMAND or SPOT", "ON_DEMAND"),
    "gpuNodeDesired": ("GPU nodes to run", 1),
    "gpuNodeMin": ("fewest GPU nodes", 1),
    "gpuNodeMax": ("most GPU nodes", 1),
    "timeSlicingReplicas": (
        "schedulable nvidia.com/gpu units per physical GPU (1: whole GPUs, no sharing)",
        DEFAULT_REPLICAS,
    ),
    "verificationPods": ("pods that each take one GPU slice (0: none)", 5),
    "verificationMode": (f"probe mode: {' or '.join(PROBE_MODES)}", "nvidia-smi"),
    "verificationImage": (
        "image of the verification pods, pinned (a PyTorch image in measure mode; unset: the "
        "mode's own)",
        None,
    ),
    "devicePluginVersion": ("nvcr.io/nvidia/k8s-device-plugin release", DEFAULT_VERSION),
    "publicAccessCidrs": (
        "CIDR blocks allowed to reach the public API endpoint; required while it is public "
        "(`make up` fills in your own address)",
        None,
    ),
    "allowPublicAccessFromAnywhere": (
        "let publicAccessCidrs hold 0.0.0.0/0, the whole internet",
        False,
    ),
    "endpointPublicAccess": (
        "serve the API on a public endpoint (false: only inside the VPC)",
        True,
    ),
    "clusterAdmins": (
        "IAM role or user ARNs with cluster-admin; must include whoever runs `pulumi up` "
        "(unset: that identity alone)",
        None,
    ),
    "kmsKeyAdmins": (
        "IAM ARNs that administer the secrets key; must include whoever runs `pulumi up` "
        "(unset: that identity)",
        None,
    ),
    "clusterAutoscaler": (
        "run the Cluster Autoscaler when some group's min < max (false: every group stays "
        "at its desired size)",
        True,
    ),
    "systemNodes": (
        "untainted nodes without GPUs for CoreDNS and the Cluster Autoscaler, so GPU groups "
        "can scale to zero (0: none)",
        1,
    ),
    "systemNodeType": ("x86_64 instance type of the system nodes", "t3.small"),
    "nodeGroups": (
        "several GPU node groups, each with its own sharing (see Pulumi.multi.yaml); "
        "replaces the gpu* and timeSlicingReplicas keys",
        None,
    ),
}

#: The single-group keys that ``nodeGroups`` replaces.
SINGLE_GROUP_KEYS = (*CONFIG_KEYS.values(), "timeSlicingReplicas")
#: Fields of one ``nodeGroups`` entry and the GpuNodeGroupArgs field each sets.
GROUP_FIELDS = {
    "instanceType": "instance_type",
    "amiType": "ami_type",
    "capacityType": "capacity_type",
    "desired": "desired_size",
    "min": "min_size",
    "max": "max_size",
}
SHARING_STRATEGIES = ("time-slicing", "mps", "none")


def _int(key: str, raw: str) -> int:
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{NAMESPACE}:{key} must be an integer, got {raw!r}")
    return value


def _bool(key: str, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ConfigError(f"{NAMESPACE}:{key} must be true or false, got {raw!r}")
    return raw == "true"


def _list(key: str, raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f'{NAMESPACE}:{key} must be a list of strings, e.g. ["203.0.113.7/32"], got {raw!r}'
        )
    return value


def _sharing(where: str, sharing: Any) -> PluginConfig:
    """One group's ``sharing: {strategy, replicas, renameByDefault}`` as a PluginConfig."""
    if not isinstance(sharing, dict):
        raise ConfigError(f"{where}.sharing must be a map with strategy and replicas")
    unknown = set(sharing) - {"strategy", "replicas", "renameByDefault"}
    if unknown:
        raise ConfigError(f"{where}.sharing has unknown fields {sorted(unknown)}")
    strategy = sharing.get("strategy")
    if strategy not in SHARING_STRATEGIES:
        raise ConfigError(
            f"{where}.sharing.strategy {strategy!r}; use one of {', '.join(SHARING_STRATEGIES)}"
        )
    if strategy == "none":
        if set(sharing) != {"strategy"}:
            raise ConfigError(f"{where}.sharing: strategy none takes no other fields")
        return unshared()
    replicas = sharing.get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"{where}.sharing.replicas must be an integer >= 1, got {replicas!r}")
    if strategy == "mps":
        if "renameByDefault" in sharing:
            raise ConfigError(f"{where}.sharing.renameByDefault is for time-slicing only here")
        if replicas > MPS_MAX_REPLICAS:  # plugin_config's rule, named by the key set here
            raise ConfigError(
                f"{where}.sharing.replicas must be <= {MPS_MAX_REPLICAS} with MPS (the most "
                f"clients an MPS server takes), got {replicas}"
            )
        return mps(replicas)
    rename = sharing.get("renameByDefault", False)
    if not isinstance(rename, bool):
        raise ConfigError(f"{where}.sharing.renameByDefault must be true or false")
    if replicas == 1 and rename:
        raise ConfigError(f"{where}.sharing: renameByDefault needs replicas >= 2")
    return _time_sliced_or_whole(replicas, rename_by_default=rename)


def _time_sliced_or_whole(replicas: int, rename_by_default: bool = False) -> PluginConfig:
    """One replica is a whole GPU: the plugin itself refuses time-slicing with replicas 1."""
    if replicas == 1:
        return unshared()
    return time_slicing(replicas, rename_by_default=rename_by_default)


def _node_groups(raw: str) -> tuple[dict[str, GpuNodeGroupArgs], dict[str, PluginConfig]]:
    """``nodeGroups``: a list of {name, sharing, instanceType?, amiType?, ...}."""
    key = f"{NAMESPACE}:nodeGroups"
    try:
        groups = json.loads(raw)
    except ValueError:
        groups = None
    if not isinstance(groups, list) or not groups:
        raise ConfigError(f"{key} must be a non-empty list of node groups, got {raw!r}")
    node_groups: dict[str, GpuNodeGroupArgs] = {}
    configs: dict[str, PluginConfig] = {}
    for i, group in enumerate(groups):
        where = f"{key}[{i}]"
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise ConfigError(f"{where} must be a map with a name, got {group!r}")
        name = group["name"]
        if name in node_groups:
            raise ConfigError(f"{where}.name {name!r} is used twice")
        unknown = set(group) - {"name", "sharing", *GROUP_FIELDS}
        if unknown:
            raise ConfigError(
                f"{where} has unknown fields {sorted(unknown)}; use name, sharing, "
                f"{', '.join(GROUP_FIELDS)}"
            )
        configs[name] = _sharing(where, group.get("sharing"))
        fields = {GROUP_FIELDS[k]: v for k, v in group.items() if k in GROUP_FIELDS}
        node_groups[name] = GpuNodeGroupArgs(plugin_config_key=name, **fields)
        # Checked here, so a message names the key the user set: nodeGroups[0].min.
        node_groups[name].validate_settings(
            {field: f"{where}.{k}" for k, field in GROUP_FIELDS.items()}
            | {"plugin_config_key": f"{where}.name"}
        )
    # Unlabelled GPU nodes (added outside this stack) get whole GPUs: the safe default.
    configs.setdefault(DEFAULT_PLUGIN_CONFIG_KEY, unshared())
    return node_groups, configs


def _system_nodes(nodes: int, instance_type: str) -> SystemNodeGroupArgs | None:
    validation.integer(f"{NAMESPACE}:systemNodes", nodes, 0, 10)
    if nodes == 0:
        return None
    return SystemNodeGroupArgs(instance_type=instance_type, nodes=nodes)


def _not_ours(full_key: str, namespace: str, key: str) -> None:
    """Refuse a key of ours written in another namespace (``eks_gpu_sharing:``, ``aws:``)."""
    fold = key.lower()
    ours = next((k for k in KEYS if k.lower() == fold), None)
    if ours is not None or re.sub("[-_]", "", namespace.lower()) == NAMESPACE.replace("-", ""):
        raise ConfigError(
            f"config key {full_key!r} is not in namespace {NAMESPACE}; write "
            f"{NAMESPACE}:{ours or key}"
        )


def _cluster_name(stack: str) -> str:
    """``eks-gpu-sharing-<stack>``, if EKS accepts it: a Pulumi stack name may hold a '.'."""
    name = f"{NAMESPACE}-{stack}"
    if not re.fullmatch(EKS_CLUSTER_NAME, name):
        raise ConfigError(
            f"stack {stack!r} names the EKS cluster {name!r}, which EKS refuses: use a stack "
            f"name of letters, digits, - and _, at most {100 - len(NAMESPACE) - 1} characters"
        )
    return name


def args_from_config(
    values: Mapping[str, str], stack: str, today: dt.date | None = None
) -> GpuSharingArgs:
    """Build and validate the demo's Args from raw config strings (as Pulumi stores them).

    The EKS cluster is named ``eks-gpu-sharing-<stack>`` so stacks don't collide.
    ``values`` maps full keys (``eks-gpu-sharing:gpuNodeMax``) to strings; other
    namespaces (``aws:region``) are ignored. Raises ConfigError naming the key.
    """
    ours = {}
    for full_key, raw in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            _not_ours(full_key, namespace, key)
            continue
        if key not in KEYS:
            near = difflib.get_close_matches(key, KEYS, n=1) or [
                k for k in KEYS if k.lower() == key.lower()
            ]
            hint = f"did you mean {NAMESPACE}:{near[0]}? " if near else ""
            raise ConfigError(
                f"unknown config key {full_key!r}; {hint}the keys are {', '.join(sorted(KEYS))}"
            )
        if not isinstance(raw, str):
            raise ConfigError(f"{full_key} must be given as a string, got {raw!r}")
        ours[key] = raw

    def text(key: str) -> str:
        value = ours.get(key, KEYS[key][1])
        if not value.strip():
            raise ConfigError(f"{NAMESPACE}:{key} must not be empty")
        return value.strip()

    def integer(key: str) -> int:
        return _int(key, ours[key]) if key in ours else KEYS[key][1]

    def boolean(key: str) -> bool:
        return _bool(key, ours[key].strip()) if key in ours else KEYS[key][1]

    def optional_list(key: str) -> list[str] | None:
        return _list(key, ours[key]) if key in ours else None

    if "nodeGroups" in ours:
        both = [k for k in SINGLE_GROUP_KEYS if k in ours]
        if both:
            raise ConfigError(
                f"{NAMESPACE}:nodeGroups replaces {', '.join(both)}; set those per group"
            )
        node_groups, plugin_configs = _node_groups(ours["nodeGroups"])
    else:
        replicas = integer("timeSlicingReplicas")
        if replicas < 1:
            raise ConfigError(f"{NAMESPACE}:timeSlicingReplicas must be >= 1, got {replicas}")
        node_groups = {
            DEMO_NODE_GROUP: GpuNodeGroupArgs(
                instance_type=text("gpuInstanceType"),
                ami_type=text("gpuAmiType"),
                capacity_type=text("gpuCapacityType"),
                desired_size=integer("gpuNodeDesired"),
                min_size=integer("gpuNodeMin"),
                max_size=integer("gpuNodeMax"),
            )
        }
        plugin_configs = {DEFAULT_PLUGIN_CONFIG_KEY: _time_sliced_or_whole(replicas)}
    first = next(iter(node_groups.values()))
    args = GpuSharingArgs(
        cluster=GpuClusterArgs(
            cluster_name=_cluster_name(stack),
            kubernetes_version=text("kubernetesVersion") if "kubernetesVersion" in ours else None,
            support_type=text("supportType"),
            gpu_instance_type=first.instance_type,
            public_access_cidrs=optional_list("publicAccessCidrs"),
            allow_public_access_from_anywhere=boolean("allowPublicAccessFromAnywhere"),
            endpoint_public_access=boolean("endpointPublicAccess"),
            cluster_admins=optional_list("clusterAdmins"),
            kms_key_admins=optional_list("kmsKeyAdmins"),
            aws_profile=values.get("aws:profile"),
            today=today,
        ),
        node_groups=node_groups,
        plugin_configs=plugin_configs,
        verification_config_key=first.plugin_config_key,
        device_plugin_version=text("devicePluginVersion"),
        verification_pods=integer("verificationPods"),
        verification_mode=text("verificationMode"),
        verification_image=text("verificationImage") if "verificationImage" in ours else None,
        cluster_autoscaler=(ClusterAutoscalerArgs() if boolean("clusterAutoscaler") else None),
        system_nodes=_system_nodes(integer("systemNodes"), text("systemNodeType")),
    )
    args.validate()
    return args
