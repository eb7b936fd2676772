"""Everything at once: cluster, GPU node groups, device plugin with sharing, verification."""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from . import autoscaler, bottlerocket, catalog, conventions, validation
from .admission_policy import GpuAdmissionPolicy, GpuAdmissionPolicyArgs
from .autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from .cluster import GpuCluster, GpuClusterArgs
from .device_plugin import (
    DEFAULT_VERSION,
    IMAGE_COMPRESSED_GB,
    NvidiaDevicePlugin,
    NvidiaDevicePluginArgs,
    validate_version,
)
from .errors import ConfigError
from .node_group import GpuNodeGroup, GpuNodeGroupArgs
from .plugin_config import PluginConfig
from .sharing import demo_configs, validate_configs
from .system_node_group import SystemNodeGroup, SystemNodeGroupArgs
from .verification import (
    NO_SLICE_IMAGE,
    PROBE_IMAGES,
    VerificationWorkload,
    VerificationWorkloadArgs,
    probe_image_gb,
    validate_probe,
)

DEMO_NODE_GROUP = "gpu"


def _demo_node_groups() -> dict[str, GpuNodeGroupArgs]:
    return {DEMO_NODE_GROUP: GpuNodeGroupArgs()}


@dataclass(frozen=True, kw_only=True)
class GpuSharingArgs:
    """Inputs of :class:`GpuSharing`."""

    #: The EKS cluster. Default: ``GpuClusterArgs()`` (default VPC, the newest Kubernetes
    #: in standard support), which is refused until it names ``public_access_cidrs`` or
    #: turns the public endpoint off: no default opens the API.
    cluster: GpuClusterArgs = field(default_factory=GpuClusterArgs)
    #: GPU node groups by name; ``cluster_name`` and ``subnet_ids`` are filled in from the
    #: cluster. Default: one group ``gpu`` of one g4dn.xlarge.
    node_groups: Mapping[str, GpuNodeGroupArgs] = field(default_factory=_demo_node_groups)
    #: Device plugin configs by key; each node group picks one with ``plugin_config_key``.
    #: Default: ``{"default": time_slicing(5)}``.
    plugin_configs: Mapping[str, PluginConfig] = field(default_factory=demo_configs)
    #: Device plugin release. Default ``"v0.20.0"``.
    device_plugin_version: str = DEFAULT_VERSION
    #: Number of verification pods, each taking one slice; at most the slices the groups'
    #: nodes can advertise: at their max size when the autoscaler runs, else their desired
    #: size. Default 5; 0 deploys none.
    verification_pods: int = 5
    #: Config key whose nodes the verification pods run on. Default ``"default"``.
    verification_config_key: str = conventions.DEFAULT_PLUGIN_CONFIG_KEY
    #: ``"nvidia-smi"`` or ``"measure"``. Default ``"nvidia-smi"``.
    verification_mode: str = "nvidia-smi"
    #: Image of the verification pods, pinned; a PyTorch image in measure mode. Default
    #: ``None``: the mode's image (``verification.PROBE_IMAGES``).
    verification_image: str | None = None
    #: Create ``GpuAdmissionPolicy``, which refuses pods that reach a GPU without a
    #: slice. Default ``True``.
    admission_policy: bool = True
    #: The Cluster Autoscaler's settings; it runs when some group's min < max. ``provider``,
    #: ``cluster_name`` and ``kubernetes_version`` are filled in from the cluster. Default
    #: ``ClusterAutoscalerArgs()`` (upstream's scale-down settings); ``None``: no autoscaler,
    #: every group stays at its desired size.
    cluster_autoscaler: ClusterAutoscalerArgs | None = field(default_factory=ClusterAutoscalerArgs)
    #: A small node group without GPUs or taints, where CoreDNS and the Cluster Autoscaler run,
    #: so that every GPU group can scale to zero. ``cluster_name`` and ``subnet_ids`` are
    #: filled in from the cluster. Default ``SystemNodeGroupArgs()``: one t3.small; ``None``:
    #: none, so CoreDNS has nowhere to run and the autoscaler keeps the GPU node it runs on.
    system_nodes: SystemNodeGroupArgs | None = field(default_factory=SystemNodeGroupArgs)

    @property
    def autoscaled(self) -> bool:
        """Whether the Cluster Autoscaler runs: it is on and some group can change size."""
        return self.cluster_autoscaler is not None and any(
            group.min_size < group.max_size for group in self.node_groups.values()
        )

    def running_nodes(self, group: str) -> int:
        """The most nodes of a group the verification pods can count on: its max when the
        autoscaler sizes it, else its desired size (nothing else changes it)."""
        args = self.node_groups[group]
        return args.max_size if self.autoscaled else args.desired_size

    def system_node_args(self) -> SystemNodeGroupArgs | None:
        """The system group's Args, holding the autoscaler's pod too when it runs."""
        if self.system_nodes is None or not self.autoscaled:
            return self.system_nodes
        return dataclasses.replace(
            self.system_nodes,
            pod_memory_mib=(*self.system_nodes.pod_memory_mib, autoscaler.memory_request_mib()),
        )

    def advertised_resources(self, group: str) -> dict[str, int]:
        """What one node of the group advertises once the device plugin applies its config:
        units per GPU x GPUs per instance of the config's resource, and no whole
        ``nvidia.com/gpu`` left when that resource is renamed."""
        sharing = self.sharing_of(group)
        units = self.units_per_gpu(group) * self.node_groups[group].gpus_per_node
        resources = {sharing.resource_name(): units}
        resources.setdefault(conventions.GPU_RESOURCE, 0)  # renamed: no whole GPU is left
        return resources

    def sharing_of(self, group: str) -> PluginConfig:
        """The config that group's GPUs are advertised by: its key's, on either path (our
        DaemonSet's ConfigMap, or a Bottlerocket host plugin's settings)."""
        return self.plugin_configs[self.node_groups[group].plugin_config_key]

    def plugin_configs_for_daemonset(self) -> dict[str, PluginConfig]:
        """The configs our DaemonSet serves: those of non-Bottlerocket groups and the default.
        Empty when every group runs Bottlerocket: then we deploy no plugin at all."""
        keys = {
            args.plugin_config_key
            for args in self.node_groups.values()
            if not args.host_runs_device_plugin
        }
        if not keys:
            return {}
        keys.add(conventions.DEFAULT_PLUGIN_CONFIG_KEY)
        return {key: config for key, config in self.plugin_configs.items() if key in keys}

    def units_per_gpu(self, group: str) -> int:
        """Units one GPU of that node group is advertised as."""
        return self.sharing_of(group).units_per_gpu()

    def advertised_slices(self, config_key: str) -> int:
        """Units of that config's resource the running nodes of the groups using it advertise."""
        resource = self.plugin_configs[config_key].resource_name()
        return sum(
            self.running_nodes(group) * args.gpus_per_node * self.units_per_gpu(group)
            for group, args in self.node_groups.items()
            if args.plugin_config_key == config_key
            and self.sharing_of(group).resource_name() == resource
        )

    def validate(self) -> None:
        """Cross-field rules; each component validates its own Args as it is built."""
        if not self.node_groups:
            raise ConfigError("node_groups needs at least one GPU node group")
        self.cluster.validate()
        for name, group in self.node_groups.items():
            group.validate_settings()
            validation.one_of(
                f"node_groups[{name!r}].plugin_config_key",
                group.plugin_config_key,
                self.plugin_configs,
                "is not a key of plugin_configs",
            )
        validate_configs(self.plugin_configs, conventions.DEFAULT_PLUGIN_CONFIG_KEY)
        for name, group in self.node_groups.items():
            if group.host_runs_device_plugin:
                self._validate_bottlerocket(name, group.plugin_config_key)
        self._validate_autoscaling()
        system = self.system_node_args()
        if system is not None:
            if not isinstance(system, SystemNodeGroupArgs):
                raise ConfigError(
                    f"system_nodes must be SystemNodeGroupArgs or None, got {system!r}"
                )
            system.validate_settings()
        validate_version(self.device_plugin_version)
        validation.boolean("admission_policy", self.admission_policy)
        validation.integer("verificationPods", self.verification_pods, 0, 1000)
        if self.verification_pods:
            validate_probe(self.verification_pods, self.verification_mode, self.verification_image)
            validation.one_of(
                "verification_config_key",
                self.verification_config_key,
                self.plugin_configs,
                "is not a key of plugin_configs",
            )
            slices = self.advertised_slices(self.verification_config_key)
            if self.verification_pods > slices:
                size, key = (
                    ("gpuNodeMax", "max") if self.autoscaled else ("gpuNodeDesired", "desired")
                )
                why = (
                    "the Cluster Autoscaler adds nodes up to gpuNodeMax"
                    if self.autoscaled
                    else "nothing scales a group beyond gpuNodeDesired without the Cluster "
                    "Autoscaler, so gpuNodeMax adds none"
                )
                raise ConfigError(
                    f"verificationPods {self.verification_pods} is more than the {slices} GPU "
                    f"slices the nodes can advertise ({size} x GPUs per instance x "
                    f"timeSlicingReplicas, over the groups the pods run on; {why}"
                    f"); lower verificationPods or raise {size} "
                    f"or timeSlicingReplicas (in nodeGroups: {key}, sharing.replicas)"
                )

    def _validate_autoscaling(self) -> None:
        """min <= desired <= max is each group's own rule; these need the autoscaler setting."""
        if self.cluster_autoscaler is None:
            resizable = [g for g, a in self.node_groups.items() if a.min_size < a.max_size]
            if resizable:
                raise ConfigError(
                    f"node groups {resizable} have min < max, but clusterAutoscaler is off, so "
                    "nothing would ever change their size; set min = desired = max, or turn "
                    "clusterAutoscaler on"
                )
            return
        self.cluster_autoscaler.validate_settings()
        if not self.autoscaled:
            return
        for group in self.node_groups:
            resource = self.sharing_of(group).resource_name()
            if resource != conventions.GPU_RESOURCE:
                # kubernetes/autoscaler#8095: a node labelled k8s.amazonaws.com/accelerator
                # counts as not ready until it advertises nvidia.com/gpu, which it never
                # does once the plugin renames it (cluster-autoscaler/utils/gpu).
                raise ConfigError(
                    f"node group {group!r} advertises {resource} (renameByDefault), which the "
                    "Cluster Autoscaler cannot count: it waits for nvidia.com/gpu on a GPU "
                    "node before calling it ready, so it would keep adding nodes "
                    "(kubernetes/autoscaler#8095). Drop renameByDefault, or turn "
                    "clusterAutoscaler off and set min = desired = max"
                )

    def _validate_bottlerocket(self, group: str, key: str) -> None:
        """The group's (valid) config must be one Bottlerocket's settings can say."""
        try:
            bottlerocket.settings(self.plugin_configs[key], f"plugin_configs[{key!r}]")
        except ConfigError as error:
            raise ConfigError(f"node group {group!r} runs Bottlerocket: {error}") from None


def _volume_gib(args: GpuSharingArgs, group: str) -> int | None:
    """The group's own size, else, on AL2023, room for the images its nodes run: the device
    plugin's; where the verification pods run, the probe's and the no-slice pod's (even at 0
    pods: idling the demo with ``verificationPods: 0`` must not change the launch template,
    which would roll the nodes); and the autoscaler's when no system node keeps it off GPU
    nodes."""
    group_args = args.node_groups[group]
    if group_args.disk_size_gib is not None or not group_args.ami_type.startswith("AL2023_"):
        return group_args.disk_size_gib
    images = [IMAGE_COMPRESSED_GB]
    if args.autoscaled and args.system_nodes is None:
        images.append(autoscaler.IMAGE_COMPRESSED_GB)
    if group_args.plugin_config_key == args.verification_config_key:
        probe = args.verification_image or PROBE_IMAGES[args.verification_mode].reference
        images += [probe_image_gb(probe), NO_SLICE_IMAGE.compressed_gb]
    return catalog.al2023_root_volume_gib(images)


def _sharing_labels(group: GpuNodeGroupArgs, config: PluginConfig) -> dict[str, str]:
    """The group's labels, plus the one that brings our MPS control daemon when it uses MPS
    (not on Bottlerocket, whose host runs its own)."""
    if config.strategy != "mps" or group.host_runs_device_plugin:
        return dict(group.labels)
    return {**group.labels, conventions.MPS_CAPABLE_NODE_LABEL: "true"}


class GpuSharing(pulumi.ComponentResource):
    """An EKS cluster whose NVIDIA GPUs are shared between pods, and the pods that prove it."""

    cluster: GpuCluster
    node_groups: dict[str, GpuNodeGroup]
    #: None when every group runs Bottlerocket, whose hosts run their own plugin.
    device_plugin: NvidiaDevicePlugin | None
    #: None when ``system_nodes`` is None.
    system_nodes: SystemNodeGroup | None
    #: None when no group can change size or the autoscaler is off.
    autoscaler: ClusterAutoscaler | None
    verification: VerificationWorkload | None
    #: Schedulable slices each node of a group advertises (units per GPU x GPUs per node).
    gpu_slices_per_node: dict[str, pulumi.Output[int]]

    def __init__(
        self, name: str, args: GpuSharingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        super().__init__("eks-gpu-sharing:index:GpuSharing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.cluster = GpuCluster(f"{name}-cluster", args.cluster, opts=child)
        self.node_groups = {
            group: GpuNodeGroup(
                f"{name}-{group}",
                dataclasses.replace(
                    a,
                    cluster_name=self.cluster.cluster_name,
                    subnet_ids=self.cluster.subnet_ids,
                    labels=_sharing_labels(a, args.sharing_of(group)),
                    disk_size_gib=_volume_gib(args, group),
                    plugin_config=args.sharing_of(group),
                    advertised_resources=args.advertised_resources(group),
                    autoscaled=args.autoscaled and a.min_size < a.max_size,
                ),
                opts=child,
            )
            for group, a in args.node_groups.items()
        }
        system = args.system_node_args()
        self.system_nodes = None
        if system is not None:
            self.system_nodes = SystemNodeGroup(
                f"{name}-system",
                dataclasses.replace(
                    system,
                    cluster_name=self.cluster.cluster_name,
                    subnet_ids=self.cluster.subnet_ids,
                ),
                opts=child,
            )
        self.gpu_slices_per_node = {
            group: node_group.gpus_per_node.apply(
                functools.partial(operator.mul, args.units_per_gpu(group))
            )
            for group, node_group in self.node_groups.items()
        }
        # The node groups themselves: their Auto Scaling group tags are the autoscaler's.
        groups: list[pulumi.Resource] = [g.eks_node_group for g in self.node_groups.values()]
        configs = args.plugin_configs_for_daemonset()
        self.device_plugin = None
        if configs:
            self.device_plugin = NvidiaDevicePlugin(
                f"{name}-device-plugin",
                NvidiaDevicePluginArgs(
                    provider=self.cluster.provider,
                    configs=configs,
                    version=args.device_plugin_version,
                    node_groups=groups,
                ),
                opts=child,
            )
        admission: list[pulumi.Resource] = []
        if args.admission_policy:
            admission = [
                GpuAdmissionPolicy(
                    f"{name}-admission",
                    GpuAdmissionPolicyArgs(provider=self.cluster.provider),
                    opts=child,
                )
            ]
        self.autoscaler = None
        if args.autoscaled:
            assert args.cluster_autoscaler is not None  # args.autoscaled says so
            on_system_nodes = {}
            after: list[pulumi.Resource] = []
            if self.system_nodes is not None:
                on_system_nodes = {
                    conventions.SYSTEM_NODE_LABEL: conventions.SYSTEM_NODE_LABEL_VALUE
                }
                after = [self.system_nodes.eks_node_group]
            self.autoscaler = ClusterAutoscaler(
                f"{name}-autoscaler",
                dataclasses.replace(
                    args.cluster_autoscaler,
                    provider=self.cluster.provider,
                    cluster_name=self.cluster.cluster_name,
                    kubernetes_version=args.cluster.kubernetes_version
                    or self.cluster.kubernetes_version,
                    node_selector=args.cluster_autoscaler.node_selector or on_system_nodes,
                ),
                # Its association takes cluster_name, which waits for the Pod Identity agent.
                # It waits for the system nodes it runs on (so `up` does not time out on a
                # Deployment with no node, and `destroy` removes it before them). The
                # verification pods do not wait for it: it adds nodes for pods whenever they
                # are pending (issue 13: off the critical path).
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        self.verification = None
        if args.verification_pods:
            config = args.plugin_configs[args.verification_config_key]
            self.verification = VerificationWorkload(
                f"{name}-verification",
                VerificationWorkloadArgs(
                    provider=self.cluster.provider,
                    pods=args.verification_pods,
                    resource_name=config.resource_name(),
                    plugin_config_key=args.verification_config_key,
                    mode=args.verification_mode,
                    image=args.verification_image,
                    # The pods wait for a plugin (ours, or the Bottlerocket nodes' own) and
                    # for the policy that judges them.
                    pods_after=[
                        *([self.device_plugin] if self.device_plugin else groups),
                        *admission,
                    ],
                ),
                opts=child,
            )
        self.register_outputs(
            {
                "clusterName": self.cluster.cluster_name,
                "kubeconfig": self.cluster.kubeconfig,
                "nodeGroupNames": {g: ng.node_group_name for g, ng in self.node_groups.items()},
                "systemNodeGroupName": self.system_nodes.node_group_name
                if self.system_nodes
                else None,
                "gpuSlicesPerNode": self.gpu_slices_per_node,
            }
        )
