"""The NVIDIA device plugin DaemonSet, with its namespace, RBAC and sharing config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from . import conventions, manifest_files, validation
from .options import child_options
from .plugin_config import PluginConfig
from .sharing import SharingConfig, SharingConfigArgs, demo_configs

#: The device plugin release we pin and test against (nvcr.io/nvidia/k8s-device-plugin).
DEFAULT_VERSION = "v0.20.0"
IMAGE_REPOSITORY = "nvcr.io/nvidia/k8s-device-plugin"
#: Compressed size of that image for linux/amd64, GB: an estimate (NGC lists no size we can
#: read offline); the node's volume and ``plan``'s pull time use it.
IMAGE_COMPRESSED_GB = 0.2
#: Releases whose config file and config-manager match what we render (MPS since v0.15).
SUPPORTED_VERSION = r"v0\.(1[7-9]|2[0-9])\.[0-9]+"


@dataclass(frozen=True, kw_only=True)
class NvidiaDevicePluginArgs:
    """Inputs of :class:`NvidiaDevicePlugin`."""

    #: Kubernetes provider of the target cluster (required). Give it
    #: ``enable_config_map_mutable=True`` (as ``GpuCluster`` does) so a config change
    #: updates the ConfigMap in place; without it the provider deletes and re-creates it.
    provider: k8s.Provider
    #: One device plugin config per key; a node uses the key named by its
    #: ``nvidia.com/device-plugin.config`` label. Default: ``{"default": time_slicing(5)}``.
    configs: Mapping[str, PluginConfig] = field(default_factory=demo_configs)
    #: Key used by nodes without that label. Default ``"default"``.
    default_key: str = conventions.DEFAULT_PLUGIN_CONFIG_KEY
    #: Image tag of ``nvcr.io/nvidia/k8s-device-plugin``; a release, never ``latest``.
    #: Default ``"v0.20.0"``.
    version: str = DEFAULT_VERSION
    #: Namespace created for the plugin. Default ``"nvidia-device-plugin"``.
    namespace: str = conventions.DEVICE_PLUGIN_NAMESPACE
    #: GPU node groups the DaemonSets are created after, so ``pulumi up`` awaits them until
    #: the plugin runs on those nodes (a DaemonSet with no node to run on is ready at once).
    #: The namespace, RBAC and ConfigMap need only the API server. Default none.
    node_groups: Sequence[pulumi.Resource] = ()

    def validate(self) -> None:
        validate_version(self.version)
        validation.matches(
            "namespace",
            self.namespace,
            validation.DNS_LABEL,
            "a valid namespace name",
        )
        self.sharing_args(namespace=self.namespace).validate()

    def sharing_args(self, namespace: pulumi.Input[str]) -> SharingConfigArgs:
        return SharingConfigArgs(
            provider=self.provider,
            namespace=namespace,
            configs=self.configs,
            default_key=self.default_key,
        )


def validate_version(version: str) -> None:
    validation.matches(
        "devicePluginVersion",
        version,
        SUPPORTED_VERSION,
        f"a supported device plugin release (v0.17.0 or newer, e.g. {DEFAULT_VERSION}; "
        "never latest)",
    )


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The upstream device plugin as a DaemonSet on GPU nodes, reading :class:`SharingConfig`.

    A change of the sharing config updates the ConfigMap in place and changes the pod
    template's config hash, which rolls the plugin pods; nothing is replaced. Neither
    DaemonSet runs on Bottlerocket NVIDIA nodes, whose host runs its own plugin.
    """

    namespace: pulumi.Output[str]
    sharing: SharingConfig

    def __init__(
        self, name: str, args: NvidiaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        super().__init__("eks-gpu-sharing:index:NvidiaDevicePlugin", name, None, opts)
        child = child_options(self, opts, provider=args.provider)
        objects = manifest_files.load("device-plugin.yaml")
        namespace = objects["Namespace"]
        namespace["metadata"]["name"] = args.namespace
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata=namespace["metadata"], opts=child)
        self.namespace = ns.metadata.name

        self.sharing = SharingConfig(
            f"{name}-sharing",
            args.sharing_args(namespace=self.namespace),
            opts=child_options(self, opts),
        )
        account = objects["ServiceAccount"]
        account["metadata"]["namespace"] = self.namespace
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=account["metadata"],
            automount_service_account_token=account["automountServiceAccountToken"],
            opts=child,
        )
        role = objects["ClusterRole"]
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-role", metadata=role["metadata"], rules=role["rules"], opts=child
        )
        binding = objects["ClusterRoleBinding"]
        binding["subjects"][0]["namespace"] = self.namespace
        role_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding",
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=child,
        )
        after = pulumi.ResourceOptions.merge(
            child,
            pulumi.ResourceOptions(
                depends_on=[sa, role_binding, cluster_role, self.sharing, *args.node_groups]
            ),
        )
        daemonset = _daemonset(objects["DaemonSet"], args, self.sharing)
        daemonset["metadata"]["namespace"] = self.namespace
        k8s.apps.v1.DaemonSet(
            f"{name}-ds", metadata=daemonset["metadata"], spec=daemonset["spec"], opts=after
        )
        if any(config.strategy == "mps" for config in args.configs.values()):
            # MPS needs a control daemon beside the plugin on the nodes that use it.
            mps = manifest_files.load("mps-control-daemon.yaml")["DaemonSet"]
            mps = _daemonset(mps, args, self.sharing)
            mps["metadata"]["namespace"] = self.namespace
            k8s.apps.v1.DaemonSet(
                f"{name}-mps", metadata=mps["metadata"], spec=mps["spec"], opts=after
            )
        self.register_outputs({"namespace": self.namespace, "configHash": self.sharing.config_hash})


def _daemonset(daemonset: dict, args: NvidiaDevicePluginArgs, sharing: SharingConfig) -> dict:
    """A manifest's DaemonSet with our image tag, default config key and config hash."""
    daemonset["metadata"]["labels"]["app.kubernetes.io/version"] = args.version
    pod = daemonset["spec"]["template"]
    pod["metadata"]["annotations"]["eks-gpu-sharing/config-hash"] = sharing.config_hash
    for volume in pod["spec"]["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = sharing.config_map_name
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        container["image"] = f"{IMAGE_REPOSITORY}:{args.version}"
        for env in container.get("env", []):
            if env["name"] == "DEFAULT_CONFIG":
                env["value"] = args.default_key
    return daemonset
