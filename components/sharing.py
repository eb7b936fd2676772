"""The device plugin's config files, rendered from typed settings into one ConfigMap."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import yaml

from . import conventions, manifest_files, validation
from .errors import ConfigError
from .options import child_options
from .plugin_config import PluginConfig, time_slicing

DEFAULT_REPLICAS = 5
#: How the plugin tells the NVIDIA toolkit a pod's GPUs on the nodes our DaemonSet runs on
#: (AL2023): the only list their toolkit accepts from unprivileged containers (al2023.py). The
#: plugin answers Allocate with a /dev/null mount per device under
#: /var/run/nvidia-container-devices, made by the kubelet: nothing more from our DaemonSet
#: (NVIDIA/k8s-device-plugin v0.20.0 internal/plugin/server.go, updateResponseForDeviceMounts).
DEVICE_LIST_STRATEGY = "volume-mounts"


def demo_configs() -> dict[str, PluginConfig]:
    return {conventions.DEFAULT_PLUGIN_CONFIG_KEY: time_slicing(DEFAULT_REPLICAS)}


@dataclass(frozen=True, kw_only=True)
class SharingConfigArgs:
    """Inputs of :class:`SharingConfig`."""

    #: Kubernetes provider of the target cluster (required), with
    #: ``enable_config_map_mutable=True`` so a change updates the ConfigMap in place.
    provider: k8s.Provider
    #: Namespace of the device plugin, where the ConfigMap goes (required).
    namespace: pulumi.Input[str]
    #: One device plugin config per key; a node picks the key named by its
    #: ``nvidia.com/device-plugin.config`` label. Default: ``{"default": time_slicing(5)}``.
    configs: Mapping[str, PluginConfig] = field(default_factory=demo_configs)
    #: Key used by nodes without that label; must be in ``configs``. Default ``"default"``.
    default_key: str = conventions.DEFAULT_PLUGIN_CONFIG_KEY

    def validate(self) -> None:
        validate_configs(self.configs, self.default_key)


def validate_configs(configs: Mapping[str, PluginConfig], default_key: str) -> None:
    if not isinstance(configs, Mapping) or not configs:
        raise ConfigError("configs must map at least one key to a PluginConfig")
    for key, config in configs.items():
        validation.matches(
            "configs key", key, validation.LABEL_VALUE, "a valid ConfigMap key and node label value"
        )
        if not isinstance(config, PluginConfig):
            raise ConfigError(f"configs[{key!r}] must be a PluginConfig, got {config!r}")
        config.validate(f"configs[{key!r}]")
        if config.flags.device_list_strategy in ("envvar", ("envvar",)):
            raise ConfigError(
                f"configs[{key!r}].flags.plugin.deviceListStrategy 'envvar' alone gives pods no "
                "GPU: the GPU nodes' NVIDIA toolkit ignores NVIDIA_VISIBLE_DEVICES from "
                "unprivileged containers (docs/security.md); leave it unset "
                f"({DEVICE_LIST_STRATEGY}) or add volume-mounts or a cdi- strategy"
            )
    validation.one_of("default_key", default_key, configs, "is not a key of configs")


def render_data(configs: Mapping[str, PluginConfig]) -> dict[str, str]:
    """The ConfigMap's data: each config as the YAML file the plugin reads."""
    return {
        key: yaml.safe_dump(_served(config).to_dict(), sort_keys=False)
        for key, config in sorted(configs.items())
    }


def _served(config: PluginConfig) -> PluginConfig:
    """The config with ``DEVICE_LIST_STRATEGY`` where it names no device list strategy."""
    if config.flags.device_list_strategy is not None:
        return config
    flags = dataclasses.replace(config.flags, device_list_strategy=DEVICE_LIST_STRATEGY)
    return dataclasses.replace(config, flags=flags)


def config_hash(data: Mapping[str, str]) -> str:
    """sha256 of the data; the plugin's pod template carries it so a change rolls the pods."""
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()


class SharingConfig(pulumi.ComponentResource):
    """The ConfigMap ``nvidia-device-plugin-configs`` the device plugin reads its sharing from."""

    config_map_name: str
    data: dict[str, str]
    config_hash: str

    def __init__(
        self, name: str, args: SharingConfigArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        super().__init__("eks-gpu-sharing:index:SharingConfig", name, None, opts)
        self.data = render_data(args.configs)
        self.config_hash = config_hash(self.data)

        config_map = manifest_files.load("sharing-config.yaml")["ConfigMap"]
        config_map["metadata"]["namespace"] = args.namespace
        config_map["data"] = self.data
        self.config_map_name = config_map["metadata"]["name"]
        k8s.core.v1.ConfigMap(
            f"{name}-configmap",
            metadata=config_map["metadata"],
            data=config_map["data"],
            opts=child_options(self, opts, provider=args.provider),
        )
        self.register_outputs({"configHash": self.config_hash, "data": self.data})
