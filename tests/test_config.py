"""Stack config -> Args: every bad value is rejected, naming the key, before any resource."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from components import ConfigError, args_from_config
from components.config import KEYS, NAMESPACE

TODAY = dt.date(2026, 11, 22)


def config(**values: str) -> dict[str, str]:
    return {"aws:region": "us-west-2", **{f"{NAMESPACE}:{k}": v for k, v in values.items()}}


def test_defaults_are_the_demo():
    args = args_from_config(config(), "dev", today=TODAY)
    group = args.node_groups["gpu"]
    assert (group.instance_type, group.ami_type, group.capacity_type) == (
        "g4dn.xlarge", "AL2023_x86_64_NVIDIA", "ON_DEMAND")
    assert (group.min_size, group.desired_size, group.max_size) == (1, 1, 1)
    assert args.plugin_configs["default"].units_per_gpu() == 5
    assert args.verification_pods == 5
    assert args.cluster.kubernetes_version == "1.35"
    assert args.cluster.cluster_name == "eks-gpu-sharing-dev"


def test_values_are_read_as_pulumi_stores_them():
    args = args_from_config(
        config(gpuNodeMax="3", gpuNodeDesired="2", timeSlicingReplicas="8",
               gpuCapacityType="SPOT", publicAccessCidrs='["198.51.100.0/24"]'),
        "prod", today=TODAY,
    )
    group = args.node_groups["gpu"]
    assert (group.desired_size, group.max_size, group.capacity_type) == (2, 3, "SPOT")
    assert args.plugin_configs["default"].units_per_gpu() == 8
    assert list(args.cluster.public_access_cidrs) == ["198.51.100.0/24"]


BAD = [
    # (key, value, words the message must contain)
    ("kubernetesVersion", "1.29", ["kubernetesVersion", "'1.29'", "standard support", "1.35"]),
    ("kubernetesVersion", "latest", ["kubernetesVersion", "1.34"]),
    ("gpuInstanceType", "m5.large", ["gpuInstanceType", "'m5.large'", "g4dn.xlarge"]),
    ("gpuInstanceType", "p3.2xlarge", ["gpuInstanceType", "g4dn.xlarge"]),
    ("gpuAmiType", "AL2023_x86_64_STANDARD",
     ["gpuAmiType", "no NVIDIA driver", "AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"]),
    ("gpuAmiType", "AL2_x86_64_GPU", ["gpuAmiType", "deprecated", "AL2023_x86_64_NVIDIA"]),
    ("gpuCapacityType", "spot", ["gpuCapacityType", "ON_DEMAND", "SPOT"]),
    ("gpuNodeDesired", "two", ["gpuNodeDesired", "integer", "'two'"]),
    ("gpuNodeDesired", "1.5", ["gpuNodeDesired", "integer"]),
    ("gpuNodeDesired", "true", ["gpuNodeDesired", "integer"]),
    ("gpuNodeMin", "-1", ["gpuNodeMin", "between 0 and 100"]),
    ("gpuNodeMax", "0", ["gpuNodeMax", "between 1 and 100"]),
    ("gpuNodeMin", "2", ["gpuNodeMin <= gpuNodeDesired <= gpuNodeMax", "2 <= 1 <= 1"]),
    ("gpuNodeDesired", "3", ["gpuNodeMin <= gpuNodeDesired <= gpuNodeMax", "1 <= 3 <= 1"]),
    ("timeSlicingReplicas", "0", ["timeSlicingReplicas", ">= 1", "0"]),
    ("timeSlicingReplicas", "-3", ["timeSlicingReplicas", ">= 1"]),
    ("timeSlicingReplicas", "five", ["timeSlicingReplicas", "integer"]),
    ("verificationPods", "6", ["verificationPods 6", "5 GPU slices", "timeSlicingReplicas"]),
    ("verificationPods", "-1", ["verificationPods", "between 0 and 1000"]),
    ("verificationMode", "benchmark", ["verificationMode", "nvidia-smi", "measure"]),
    ("devicePluginVersion", "latest", ["devicePluginVersion", "'latest'", "v0.20.0"]),
    ("devicePluginVersion", "v0.14.0", ["devicePluginVersion", "v0.17.0 or newer"]),
    ("devicePluginVersion", "0.20.0", ["devicePluginVersion"]),
    ("publicAccessCidrs", "0.0.0.0/0", ["publicAccessCidrs", "list of strings"]),
    ("publicAccessCidrs", "[]", ["publicAccessCidrs", "non-empty list"]),
    ("publicAccessCidrs", '["10.0.0.1/8"]', ["publicAccessCidrs[0]", "'10.0.0.1/8'", "CIDR"]),
    ("publicAccessCidrs", '["my-laptop"]', ["publicAccessCidrs[0]", "CIDR"]),
    ("gpuNodeMaxx", "2", ["unknown config key", "eks-gpu-sharing:gpuNodeMaxx", "gpuNodeMax"]),
    ("gpuInstanceType", "  ", ["gpuInstanceType", "must not be empty"]),
]


@pytest.mark.parametrize(("key", "value", "words"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_bad_config_is_rejected_naming_the_key(key, value, words):
    with pytest.raises(ConfigError) as error:
        args_from_config(config(**{key: value}), "dev", today=TODAY)
    for word in words:
        assert word in str(error.value), str(error.value)


def test_one_replica_means_whole_gpus():
    args = args_from_config(config(timeSlicingReplicas="1", verificationPods="1"), "dev",
                            today=TODAY)
    assert args.plugin_configs["default"].strategy == "none"
    assert args.plugin_configs["default"].units_per_gpu() == 1
    with pytest.raises(ConfigError, match="verificationPods 2 is more than the 1 GPU slices"):
        args_from_config(config(timeSlicingReplicas="1", verificationPods="2"), "dev",
                         today=TODAY)


@pytest.mark.parametrize("replicas", [2, 3])
def test_two_or_more_replicas_time_slice(replicas):
    """Only replicas 1 means whole GPUs; 2 is the smallest time-slicing the plugin takes."""
    pods = str(replicas)
    single = args_from_config(
        config(timeSlicingReplicas=str(replicas), verificationPods=pods), "dev", today=TODAY)
    groups = args_from_config(
        config(verificationPods=pods, nodeGroups=json.dumps(
            [{"name": "ts", "sharing": {"strategy": "time-slicing", "replicas": replicas}}])),
        "dev", today=TODAY,
    )
    for plugin_config in (single.plugin_configs["default"], groups.plugin_configs["ts"]):
        assert plugin_config.strategy == "time-slicing"
        assert plugin_config.units_per_gpu() == replicas


def test_more_pods_are_allowed_when_more_nodes_can_advertise_slices():
    args = args_from_config(
        config(verificationPods="10", gpuNodeMax="2"), "dev", today=TODAY
    )
    assert args.max_slices("default") == 10


def test_every_documented_key_has_a_default_that_validates():
    explicit = {k: v if isinstance(v, str) else __import__("json").dumps(v)
                for k, (_, v) in KEYS.items() if v is not None}
    args_from_config(config(**explicit), "dev", today=TODAY)


def test_version_support_follows_the_calendar():
    with pytest.raises(ConfigError, match="kubernetesVersion '1.34'"):
        args_from_config(config(kubernetesVersion="1.34"), "dev", today=dt.date(2026, 12, 3))
    args_from_config(config(kubernetesVersion="1.34"), "dev", today=dt.date(2026, 12, 2))
