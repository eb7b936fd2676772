"""Stack config (``eks-gpu-sharing:*`` keys) -> validated :class:`GpuSharingArgs`, once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from .cluster import DEFAULT_KUBERNETES_VERSION, GpuClusterArgs
from .device_plugin import DEFAULT_VERSION
from .errors import ConfigError
from .node_group import GpuNodeGroupArgs
from .plugin_config import time_slicing
from .sharing import DEFAULT_REPLICAS
from .stack import DEMO_NODE_GROUP, GpuSharingArgs
from .verification import PROBE_MODES

NAMESPACE = "eks-gpu-sharing"

#: Every key the demo stack reads: (description, default as written in stack YAML).
KEYS: dict[str, tuple[str, Any]] = {
    "kubernetesVersion": (
        "Kubernetes minor version in EKS standard support",
        DEFAULT_KUBERNETES_VERSION,
    ),
    "gpuInstanceType": ("g4dn instance type of the GPU nodes", "g4dn.xlarge"),
    "gpuAmiType": ("EKS AMI type with the NVIDIA driver", "AL2023_x86_64_NVIDIA"),
    "gpuCapacityType": ("ON_DEMAND or SPOT", "ON_DEMAND"),
    "gpuNodeDesired": ("GPU nodes to run", 1),
    "gpuNodeMin": ("fewest GPU nodes", 1),
    "gpuNodeMax": ("most GPU nodes", 1),
    "timeSlicingReplicas": ("schedulable nvidia.com/gpu units per physical GPU", DEFAULT_REPLICAS),
    "verificationPods": ("pods that each take one GPU slice (0: none)", 5),
    "verificationMode": (f"probe mode: {' or '.join(PROBE_MODES)}", "nvidia-smi"),
    "devicePluginVersion": ("nvcr.io/nvidia/k8s-device-plugin release", DEFAULT_VERSION),
    "publicAccessCidrs": ("CIDR blocks allowed to reach the public API endpoint", ["0.0.0.0/0"]),
}


def _int(key: str, raw: str) -> int:
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{NAMESPACE}:{key} must be an integer, got {raw!r}")
    return value


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
            continue
        if key not in KEYS:
            raise ConfigError(
                f"unknown config key {full_key!r}; the keys are {', '.join(sorted(KEYS))}"
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

    replicas = integer("timeSlicingReplicas")
    if replicas < 1:
        raise ConfigError(f"{NAMESPACE}:timeSlicingReplicas must be >= 1, got {replicas}")
    instance_type = text("gpuInstanceType")
    args = GpuSharingArgs(
        cluster=GpuClusterArgs(
            cluster_name=f"{NAMESPACE}-{stack}",
            kubernetes_version=text("kubernetesVersion"),
            gpu_instance_type=instance_type,
            public_access_cidrs=(
                _list("publicAccessCidrs", ours["publicAccessCidrs"])
                if "publicAccessCidrs" in ours
                else KEYS["publicAccessCidrs"][1]
            ),
            today=today,
        ),
        node_groups={
            DEMO_NODE_GROUP: GpuNodeGroupArgs(
                instance_type=instance_type,
                ami_type=text("gpuAmiType"),
                capacity_type=text("gpuCapacityType"),
                desired_size=integer("gpuNodeDesired"),
                min_size=integer("gpuNodeMin"),
                max_size=integer("gpuNodeMax"),
            )
        },
        plugin_configs={"default": time_slicing(replicas)},
        device_plugin_version=text("devicePluginVersion"),
        verification_pods=integer("verificationPods"),
        verification_mode=text("verificationMode"),
    )
    args.validate()
    return args
