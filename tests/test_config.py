"""Stack config -> Args: every bad value is rejected, naming the key, before any resource."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from components import ConfigError, args_from_config, mps, time_slicing
from components.config import KEYS, NAMESPACE
from tests.conftest import OWN_CIDRS

TODAY = dt.date(2026, 11, 22)


def config(**values: str) -> dict[str, str]:
    """Stack config with these keys, and CIDRs for the public endpoint unless it is given
    other (``None`` leaves a key out)."""
    if values.get("endpointPublicAccess") != "false":
        values.setdefault("publicAccessCidrs", json.dumps(list(OWN_CIDRS)))
    return {
        "aws:region": "us-west-2",
        **{f"{NAMESPACE}:{k}": v for k, v in values.items() if v is not None},
    }


def test_defaults_are_the_demo():
    args = args_from_config(config(), "dev", today=TODAY)
    group = args.node_groups["gpu"]
    assert (group.instance_type, group.ami_type, group.capacity_type) == (
        "g4dn.xlarge",
        "AL2023_x86_64_NVIDIA",
        "ON_DEMAND",
    )
    assert (group.min_size, group.desired_size, group.max_size) == (1, 1, 1)
    assert args.plugin_configs["default"].units_per_gpu() == 5
    assert args.verification_pods == 5
    assert args.cluster.kubernetes_version is None  # the newest EKS lists
    assert args.cluster.cluster_name == "eks-gpu-sharing-dev"


def test_values_are_read_as_pulumi_stores_them():
    args = args_from_config(
        config(
            gpuNodeMax="3",
            gpuNodeDesired="2",
            timeSlicingReplicas="8",
            gpuCapacityType="SPOT",
            gpuInstanceType="g4dn.2xlarge",
            supportType="EXTENDED",
            publicAccessCidrs='["198.51.100.0/24"]',
        ),
        "prod",
        today=TODAY,
    )
    group = args.node_groups["gpu"]
    assert (group.desired_size, group.max_size, group.capacity_type) == (2, 3, "SPOT")
    # The cluster picks its default subnets in the AZs that offer the group's type.
    assert (group.instance_type, args.cluster.gpu_instance_type) == ("g4dn.2xlarge",) * 2
    assert args.cluster.support_type == "EXTENDED"
    assert args.plugin_configs["default"].units_per_gpu() == 8
    assert list(args.cluster.public_access_cidrs) == ["198.51.100.0/24"]


BAD = [
    # (key, value, words the message must contain)
    ("kubernetesVersion", "1.29", ["kubernetesVersion", "'1.29'", "standard support", "1.35"]),
    ("kubernetesVersion", "latest", ["kubernetesVersion", "1.34"]),
    ("gpuInstanceType", "m5.large", ["gpuInstanceType", "'m5.large'", "g4dn.xlarge"]),
    ("gpuInstanceType", "p3.2xlarge", ["gpuInstanceType", "g4dn.xlarge"]),
    (
        "gpuAmiType",
        "AL2023_x86_64_STANDARD",
        ["gpuAmiType", "no NVIDIA driver", "AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"],
    ),
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
    ("verificationImage", "python", ["verificationImage 'python'", "not pinned"]),
    ("verificationImage", "python:latest", ["verificationImage", "not latest"]),
    ("verificationImage", "Python:3", ["verificationImage", "not an image reference"]),
    ("devicePluginVersion", "latest", ["devicePluginVersion", "'latest'", "v0.20.0"]),
    ("devicePluginVersion", "v0.14.0", ["devicePluginVersion", "v0.17.0 or newer"]),
    ("devicePluginVersion", "0.20.0", ["devicePluginVersion"]),
    ("publicAccessCidrs", "0.0.0.0/0", ["eks-gpu-sharing:publicAccessCidrs must be a list"]),
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
    args = args_from_config(
        config(timeSlicingReplicas="1", verificationPods="1"), "dev", today=TODAY
    )
    assert args.plugin_configs["default"].strategy == "none"
    assert args.plugin_configs["default"].units_per_gpu() == 1
    with pytest.raises(ConfigError, match="verificationPods 2 is more than the 1 GPU slices"):
        args_from_config(config(timeSlicingReplicas="1", verificationPods="2"), "dev", today=TODAY)


@pytest.mark.parametrize("replicas", [2, 3])
def test_two_or_more_replicas_time_slice(replicas):
    """Only replicas 1 means whole GPUs; 2 is the smallest time-slicing the plugin takes."""
    pods = str(replicas)
    single = args_from_config(
        config(timeSlicingReplicas=str(replicas), verificationPods=pods), "dev", today=TODAY
    )
    groups = args_from_config(
        config(
            verificationPods=pods,
            nodeGroups=json.dumps(
                [{"name": "ts", "sharing": {"strategy": "time-slicing", "replicas": replicas}}]
            ),
        ),
        "dev",
        today=TODAY,
    )
    for plugin_config in (single.plugin_configs["default"], groups.plugin_configs["ts"]):
        assert plugin_config.strategy == "time-slicing"
        assert plugin_config.units_per_gpu() == replicas


def test_more_pods_are_allowed_when_more_nodes_run():
    args = args_from_config(
        config(verificationPods="10", gpuNodeDesired="2", gpuNodeMax="2"), "dev", today=TODAY
    )
    assert args.advertised_slices("default") == 10


def test_the_documented_defaults_leave_the_endpoints_cidrs_to_the_user():
    with pytest.raises(ConfigError, match="^publicAccessCidrs is unset and the API endpoint"):
        args_from_config({"aws:region": "us-west-2"}, "dev", today=TODAY)


def test_every_documented_key_has_a_default_that_validates():
    explicit = {
        k: v if isinstance(v, str) else json.dumps(v) for k, (_, v) in KEYS.items() if v is not None
    }
    args_from_config(config(**explicit), "dev", today=TODAY)


def test_version_support_follows_the_calendar():
    with pytest.raises(ConfigError, match="kubernetesVersion '1.34'"):
        args_from_config(config(kubernetesVersion="1.34"), "dev", today=dt.date(2026, 12, 3))
    args_from_config(config(kubernetesVersion="1.34"), "dev", today=dt.date(2026, 12, 2))


GROUP = '{"name": "a", "sharing": {"strategy": "none"}'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('"instanceType": "m5.large"', "nodeGroups[0].instanceType 'm5.large' is not a g4dn"),
        (
            '"amiType": "AL2023_x86_64_STANDARD"',
            "nodeGroups[0].amiType 'AL2023_x86_64_STANDARD' has no NVIDIA driver",
        ),
        ('"amiType": "AL2_x86_64_GPU"', "nodeGroups[0].amiType 'AL2_x86_64_GPU' is deprecated"),
        ('"capacityType": "spot"', "nodeGroups[0].capacityType 'spot'; use one of"),
        ('"min": -1', "nodeGroups[0].min must be between 0 and 100, got -1"),
        ('"max": "2"', "nodeGroups[0].max must be an integer, got '2'"),
        ('"desired": 101', "nodeGroups[0].desired must be between 0 and 100"),
        (
            '"min": 2',
            f"nodeGroups[0].min <= {NAMESPACE}:nodeGroups[0].desired <= "
            f"{NAMESPACE}:nodeGroups[0].max must hold, got 2 <= 1 <= 1",
        ),
    ],
)
def test_a_bad_node_group_field_names_the_key_the_user_set(fields, message):
    """Issue 14: not gpuInstanceType, a key that cannot be set inside nodeGroups."""
    with pytest.raises(ConfigError) as error:
        args_from_config(config(nodeGroups=f"[{GROUP}, {fields}}}]"), "dev", today=TODAY)
    assert str(error.value).startswith(f"{NAMESPACE}:{message}")


def test_the_second_group_is_named_by_its_index():
    raw = f'[{GROUP}}}, {{"name": "b", "sharing": {{"strategy": "none"}}, "max": 0}}]'
    with pytest.raises(ConfigError, match=r"^eks-gpu-sharing:nodeGroups\[1\]\.max must be"):
        args_from_config(config(nodeGroups=raw), "dev", today=TODAY)


def test_a_group_name_that_is_no_label_value_names_the_name_key():
    """The name becomes the node label nvidia.com/device-plugin.config: at most 63."""
    raw = f'[{{"name": "{"a" * 64}", "sharing": {{"strategy": "none"}}}}]'
    with pytest.raises(ConfigError, match=r"^eks-gpu-sharing:nodeGroups\[0\]\.name 'a{64}' is"):
        args_from_config(config(nodeGroups=raw), "dev", today=TODAY)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gpuInstanceType", "m5.large", "gpuInstanceType 'm5.large' is not a g4dn"),
        ("gpuCapacityType", "spot", "gpuCapacityType 'spot'; use one of"),
        ("gpuNodeMin", "2", "gpuNodeMin <= gpuNodeDesired <= gpuNodeMax must hold"),
    ],
)
def test_the_single_group_keys_keep_their_names(key, value, message):
    with pytest.raises(ConfigError) as error:
        args_from_config(config(**{key: value}), "dev", today=TODAY)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("eks_gpu_sharing:gpuNodeMax", "write eks-gpu-sharing:gpuNodeMax"),
        ("EKS-GPU-SHARING:gpuNodeMax", "write eks-gpu-sharing:gpuNodeMax"),
        ("aws:gpuNodeMax", "write eks-gpu-sharing:gpuNodeMax"),
        ("aws:GPUNODEMAX", "write eks-gpu-sharing:gpuNodeMax"),
        ("eks-gpu-sharing:GpuNodeMax", "did you mean eks-gpu-sharing:gpuNodeMax?"),
        ("eks-gpu-sharing:gpuNodeMaxx", "did you mean eks-gpu-sharing:gpuNodeMax?"),
        # Our namespace misspelt is refused even when the key is not ours either.
        ("eks_gpu_sharing:gpuNodeMaks", "write eks-gpu-sharing:gpuNodeMaks"),
        ("Eks-Gpu-Sharing:gpuNodeMaks", "write eks-gpu-sharing:gpuNodeMaks"),
        # Too far from any key for difflib; the same key in another case is still found.
        ("eks-gpu-sharing:GPUNODEMAX", "did you mean eks-gpu-sharing:gpuNodeMax?"),
    ],
)
def test_a_key_in_the_wrong_namespace_or_case_is_refused_not_ignored(key, hint):
    with pytest.raises(ConfigError) as error:
        args_from_config({**config(), key: "2"}, "dev", today=TODAY)
    assert repr(key) in str(error.value) and hint in str(error.value)


def test_an_unknown_key_near_none_of_ours_is_told_the_keys():
    with pytest.raises(ConfigError) as error:
        args_from_config({**config(), "eks-gpu-sharing:zzz": "2"}, "dev", today=TODAY)
    assert str(error.value) == (
        f"unknown config key 'eks-gpu-sharing:zzz'; the keys are {', '.join(sorted(KEYS))}"
    )


def test_a_value_that_is_not_a_string_is_refused_naming_the_key():
    """Pulumi hands a program its config as strings; a caller passing values by hand is told."""
    with pytest.raises(ConfigError) as error:
        args_from_config({**config(), "eks-gpu-sharing:gpuNodeMax": 2}, "dev", today=TODAY)
    assert str(error.value) == "eks-gpu-sharing:gpuNodeMax must be given as a string, got 2"


def test_other_namespaces_are_left_to_their_providers():
    args_from_config(
        {**config(), "aws:profile": "x", "kubernetes:context": "y"}, "dev", today=TODAY
    )


@pytest.mark.parametrize("stack", ["a.b", "x" * 85])
def test_a_stack_whose_cluster_name_eks_refuses_is_named(stack):
    """botocore eks ClusterName: ^[0-9A-Za-z][A-Za-z0-9\\-_]*, 1 to 100; Pulumi allows '.'."""
    with pytest.raises(ConfigError) as error:
        args_from_config(config(), stack, today=TODAY)
    assert str(error.value).startswith(f"stack {stack!r} names the EKS cluster")
    assert "at most 84 characters" in str(error.value)


def test_the_longest_stack_name_eks_accepts():
    args = args_from_config(config(), "x" * 84, today=TODAY)
    assert len(args.cluster.cluster_name) == 100


@pytest.mark.parametrize("cidr", ["2001:db8::/32", "::/0"])
def test_an_ipv6_public_access_cidr_is_refused_on_an_ipv4_cluster(cidr):
    """botocore eks VpcConfigRequest.publicAccessCidrs: no IPv6 blocks on IPv4 clusters."""
    with pytest.raises(ConfigError, match=r"^publicAccessCidrs\[1\] .* is IPv6; the cluster"):
        args_from_config(
            config(publicAccessCidrs=f'["198.51.100.0/24", "{cidr}"]'), "dev", today=TODAY
        )


def test_too_many_mps_clients_in_a_group_name_the_key_set():
    """The plugin's MPS limit (48 clients, plugin_config.MPS_MAX_REPLICAS), said of the key
    the user wrote, not of the internal configs[...] path."""
    import json

    most = [{"name": "m", "sharing": {"strategy": "mps", "replicas": 48}}]
    args = args_from_config(config(nodeGroups=json.dumps(most), verificationPods="1"), "dev")
    assert args.plugin_configs["m"] == mps(48)
    groups = [{"name": "m", "sharing": {"strategy": "mps", "replicas": 49}}]
    with pytest.raises(ConfigError) as error:
        args_from_config(config(nodeGroups=json.dumps(groups), verificationPods="1"), "dev")
    assert str(error.value) == (
        "eks-gpu-sharing:nodeGroups[0].sharing.replicas must be <= 48 with MPS (the most "
        "clients an MPS server takes), got 49"
    )


def test_rename_by_default_reaches_the_group_s_config():
    """renameByDefault advertises ``nvidia.com/gpu.shared`` (NVIDIA/k8s-device-plugin,
    api/config/v1/replicas.go, DefaultSharedRename); min = max, so no autoscaler refuses it."""
    import json

    sharing = {"strategy": "time-slicing", "replicas": 4, "renameByDefault": True}
    groups = [{"name": "r", "sharing": sharing}]
    args = args_from_config(config(nodeGroups=json.dumps(groups), verificationPods="1"), "dev")
    assert args.plugin_configs["r"] == time_slicing(4, rename_by_default=True)
    assert args.advertised_resources("r") == {"nvidia.com/gpu.shared": 4, "nvidia.com/gpu": 0}


def test_the_verification_image_is_checked_against_the_mode():
    """measure imports torch: a Python image without it is refused, naming both keys."""
    args = args_from_config(config(verificationImage="python:3.13.9-slim-trixie"), "dev",
                            today=TODAY)
    assert args.verification_image == "python:3.13.9-slim-trixie"
    assert args_from_config(config(), "dev", today=TODAY).verification_image is None
    with pytest.raises(ConfigError, match="verificationImage 'python:3.13.9-slim-trixie' cannot "
                       "run verificationMode measure"):
        args_from_config(config(verificationImage="python:3.13.9-slim-trixie",
                                verificationMode="measure"), "dev", today=TODAY)
