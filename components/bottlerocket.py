"""A :class:`PluginConfig` as Bottlerocket's own device plugin settings, in EC2 user data.

Bottlerocket's NVIDIA variants run NVIDIA's device plugin on the host and build its config
file from the API settings ``settings.kubelet-device-plugins.nvidia.*``. So the sharing our
DaemonSet reads from a ConfigMap key on AL2023 reaches a Bottlerocket node as TOML settings
in its launch template's user data, which EKS merges with its own bootstrap settings.
"""

# Sources:
# - Settings, their types and ranges: bottlerocket-os/bottlerocket-settings-sdk,
#   bottlerocket-settings-models/modeled-types/src/kubernetes.rs (NvidiaDevicePluginSettings:
#   device-id-strategy uuid|index, device-list-strategy envvar|volume-mounts|cdi-cri,
#   device-sharing-strategy, time-slicing.replicas BoundedI32<2, i32::MAX>), and
#   settings-extensions/kubelet-device-plugins/src/lib.rs (MPS; refused together with MIG);
#   bottlerocket.dev/en/os/1.54.x/api/settings/kubelet-device-plugins.
# - How the settings become the plugin's file, and Bottlerocket's defaults (time-slicing
#   renames to nvidia.com/gpu.shared and fails requests > 1 unless told otherwise):
#   bottlerocket-os/bottlerocket-core-kit, packages/nvidia-k8s-device-plugin/
#   nvidia-k8s-device-plugin-conf; MPS renames by default too (bottlerocket-core-kit PR 789,
#   a node with mps.replicas 2 and nothing else advertises nvidia.com/gpu.shared: 2).
# - The release that added each setting: bottlerocket-os/bottlerocket Release.toml and
#   sources/settings-migrations/v1.23.0/kubelet-device-plugins-settings,
#   v1.25.0/kubelet-device-plugins-time-slicing-settings; MPS first documented for 1.54.x
#   (bottlerocket-settings-models 0.20.0, CHANGELOG.md, "Added MPS GPU sharing settings").
# - User data: awsdocs/amazon-eks-user-guide doc_source/launch-templates.md, "Bottlerocket
#   user data": TOML, merged with what EKS provides when the template names no AMI; EKS
#   parses no quoted keys or escaped quotes (we write neither). botocore's ec2 model,
#   RequestLaunchTemplateData.UserData: base64-encoded text.

from __future__ import annotations

import base64
from typing import Any

import tomli_w

from .errors import ConfigError
from .plugin_config import Mps, PluginConfig, TimeSlicing

#: Where the settings live; each name below is a key under it.
PREFIX = "settings.kubelet-device-plugins.nvidia"
#: The Bottlerocket release that first has each setting we write.
RELEASES = {
    "pass-device-specs": "1.23.0",
    "device-id-strategy": "1.23.0",
    "device-list-strategy": "1.23.0",
    "device-sharing-strategy": "1.25.0",
    "time-slicing.replicas": "1.25.0",
    "time-slicing.rename-by-default": "1.25.0",
    "time-slicing.fail-requests-greater-than-one": "1.25.0",
    "mps.replicas": "1.54.0",
    "mps.rename-by-default": "1.54.0",
}
#: Values Bottlerocket's model accepts for the flags it has (modeled-types kubernetes.rs).
DEVICE_ID_STRATEGIES = ("uuid", "index")
#: The model also takes cdi-cri, and the 1.54.x docs describe it, but the release in
#: RELEASES lists only these two (bottlerocket.dev/en/os/1.23.x/api/settings/
#: kubelet-device-plugins) and we have not found the release that added it, so a node
#: could refuse it.
DEVICE_LIST_STRATEGIES = ("envvar", "volume-mounts")
#: time-slicing.replicas is a BoundedI32<2, i32::MAX>.
MAX_REPLICAS = 2**31 - 1
#: Flags of our model that Bottlerocket has no setting for: its template fixes
#: migStrategy none and failOnInitError true, and sets nothing else.
_NO_SETTING = {
    "mig_strategy": "flags.migStrategy",
    "fail_on_init_error": "flags.failOnInitError",
    "nvidia_driver_root": "flags.nvidiaDriverRoot",
    "mps_root": "flags.mpsRoot",
    "device_discovery_strategy": "flags.deviceDiscoveryStrategy",
    "shared_devices_allocation_policy": "flags.plugin.sharedDevicesAllocationPolicy",
}
_DEFAULT_FLAGS = {"mig_strategy": "none"}


def settings(config: PluginConfig, field: str = "config") -> dict[str, Any]:
    """The user-data settings that make Bottlerocket's plugin advertise what ``config`` says.

    Raises ConfigError, naming the option under ``field``, for what Bottlerocket cannot set.
    """
    nvidia: dict[str, Any] = _flags(config, field)
    sharing = config.sharing
    if sharing is None:
        nvidia["device-sharing-strategy"] = "none"
    else:
        nvidia["device-sharing-strategy"] = sharing.STRATEGY
        nvidia[sharing.STRATEGY] = _shared(sharing, f"{field}.sharing.{sharing.KEY}")
    return {"settings": {"kubelet-device-plugins": {"nvidia": nvidia}}}


def user_data(config: PluginConfig, field: str = "config") -> str:
    """The launch template's UserData: the settings as TOML, base64-encoded as EC2 takes it."""
    return base64.b64encode(tomli_w.dumps(settings(config, field)).encode()).decode()


def _flags(config: PluginConfig, field: str) -> dict[str, Any]:
    flags = config.flags
    for attr, key in _NO_SETTING.items():
        value = getattr(flags, attr)
        if value is not None and value != _DEFAULT_FLAGS.get(attr):
            raise _missing(f"{field}.{key}", value, f"no {key.rpartition('.')[2]} setting")
    out: dict[str, Any] = {}
    if flags.pass_device_specs is not None:
        out["pass-device-specs"] = flags.pass_device_specs
    if flags.device_id_strategy is not None:
        out["device-id-strategy"] = _one_of(
            f"{field}.flags.plugin.deviceIDStrategy",
            flags.device_id_strategy,
            DEVICE_ID_STRATEGIES,
            "device-id-strategy",
        )
    strategies = flags.device_list_strategy
    if strategies is not None:
        listed = (strategies,) if isinstance(strategies, str) else tuple(strategies)
        where = f"{field}.flags.plugin.deviceListStrategy"
        for strategy in listed:
            _one_of(where, strategy, DEVICE_LIST_STRATEGIES, "device-list-strategy")
        if len(listed) > 1:
            # Lists arrived in a later settings model than the releases in RELEASES.
            raise ConfigError(
                f"{where} {list(listed)!r}: for Bottlerocket give one strategy; "
                f"{PREFIX}.device-list-strategy takes a list only in newer releases"
            )
        out["device-list-strategy"] = listed[0]
    return out


def _shared(sharing: TimeSlicing | Mps, where: str) -> dict[str, Any]:
    """time-slicing or mps settings. A validated config with migStrategy none shares one
    resource, nvidia.com/gpu, on every device: just what Bottlerocket's template writes."""
    (resource,) = sharing.resources
    at = f"{where}.resources[0]"
    if resource.replicas > MAX_REPLICAS:
        raise ConfigError(
            f"{at}.replicas must be <= {MAX_REPLICAS} on Bottlerocket ({PREFIX}."
            f"{sharing.STRATEGY}.replicas is a 32-bit integer), got {resource.replicas}"
        )
    out: dict[str, Any] = {
        "replicas": resource.replicas,
        # Written even when false: Bottlerocket's default is true, our model's is false.
        "rename-by-default": sharing.rename_by_default,
    }
    if isinstance(sharing, TimeSlicing):
        out["fail-requests-greater-than-one"] = sharing.fail_requests_greater_than_one
    elif not sharing.fail_requests_greater_than_one:
        raise _missing(
            f"{where}.failRequestsGreaterThanOne",
            False,
            "no mps.fail-requests-greater-than-one (its plugin fails requests for more than one)",
        )
    return out


def _one_of(where: str, value: str, allowed: tuple[str, ...], setting: str) -> str:
    if value not in allowed:
        raise ConfigError(
            f"{where} {value!r} cannot be set on Bottlerocket: {PREFIX}.{setting} takes "
            f"{', '.join(allowed)}"
        )
    return value


def _missing(where: str, value: Any, lacks: str) -> ConfigError:
    return ConfigError(
        f"{where} {value!r} cannot be set on Bottlerocket: {PREFIX} has {lacks}; leave it "
        "out for Bottlerocket groups or use AL2023_x86_64_NVIDIA"
    )
