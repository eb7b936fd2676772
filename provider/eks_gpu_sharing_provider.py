"""Our components for Pulumi programs in other languages (TypeScript, YAML, Go, C#, Java).

Pulumi's Python component host infers a package schema from each component's ``args``
annotation: a TypedDict of plain or ``pulumi.Input`` values, documented by a docstring under
each field. The library's Args are frozen dataclasses holding Python objects (a
``PluginConfig``, a Kubernetes provider) that no other language can build. So each class here
takes plain values, builds the library's Args from them and delegates to the library
component of the same name: defaults and validation stay in ``components``, and a key left
out here means the library's default.

No ``from __future__ import annotations`` in this module: the SDK's analyzer reads
annotations with ``inspect.get_annotations`` and cannot resolve them from strings.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired, TypedDict

import components

#: The package name other languages see: ``@pulumi/eks-gpu-sharing``, ``eks-gpu-sharing:index:*``.
PACKAGE = "eks-gpu-sharing"
#: ``sharing`` values and the library's config for each (``none`` takes no replicas).
SHARING = {"time-slicing": components.time_slicing, "mps": components.mps}
NO_SHARING = "none"


class GpuSharingInputs(TypedDict):
    """Inputs of GpuSharing."""

    cluster_name: NotRequired[str]
    """Name of the EKS cluster. Default: `<name>-cluster`, from the component's name."""
    kubernetes_version: NotRequired[str]
    """Kubernetes minor version in EKS standard support. Default: the newest EKS lists."""
    public_access_cidrs: list[str]
    """CIDR blocks that may reach the public API endpoint; required: no default opens it."""
    instance_type: NotRequired[str]
    """EC2 instance type of the GPU nodes; a g4dn type. Default `"g4dn.xlarge"` (one T4)."""
    ami_type: NotRequired[str]
    """EKS AMI type that ships the NVIDIA driver. Default `"AL2023_x86_64_NVIDIA"`."""
    capacity_type: NotRequired[str]
    """`"ON_DEMAND"` or `"SPOT"`. Default `"ON_DEMAND"`."""
    desired_size: NotRequired[int]
    """GPU nodes to run. Default 1."""
    min_size: NotRequired[int]
    """Fewest GPU nodes. Default 1."""
    max_size: NotRequired[int]
    """Most GPU nodes. Default 1."""
    disk_size_gib: NotRequired[int]
    """GiB of each node's encrypted gp3 volume (GPU images are large). Default 50."""
    sharing: NotRequired[str]
    """`"time-slicing"`, `"mps"` or `"none"` (whole GPUs). Default `"time-slicing"`."""
    replicas: NotRequired[int]
    """Units per GPU (2 or more) for time-slicing or mps; needed when `sharing` is. Default 5."""
    device_plugin_version: NotRequired[str]
    """Release of nvcr.io/nvidia/k8s-device-plugin, never latest. Default `"v0.20.0"`."""
    verification_pods: NotRequired[int]
    """Pods that each take one GPU unit to prove the sharing; 0 deploys none. Default 5."""
    verification_mode: NotRequired[str]
    """`"nvidia-smi"`, or `"measure"` to also report each pod's TFLOP/s. Default `"nvidia-smi"`."""
    system_nodes: NotRequired[int]
    """t3.small nodes for CoreDNS and the Cluster Autoscaler (0: none). Default 1."""
    tags: NotRequired[dict[str, str]]
    """Tags for every AWS resource. Default none."""


class GpuNodeGroupInputs(TypedDict):
    """Inputs of GpuNodeGroup."""

    cluster_name: pulumi.Input[str]
    """Name of the EKS cluster to join; pass the cluster's output so the group waits for it."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets for the nodes, in AZs that offer the instance type."""
    instance_type: NotRequired[str]
    """EC2 instance type; a g4dn type. Default `"g4dn.xlarge"` (one T4)."""
    ami_type: NotRequired[str]
    """EKS AMI type that ships the NVIDIA driver. Default `"AL2023_x86_64_NVIDIA"`."""
    capacity_type: NotRequired[str]
    """`"ON_DEMAND"` or `"SPOT"`. Default `"ON_DEMAND"`."""
    desired_size: NotRequired[int]
    """Nodes to run. Default 1."""
    min_size: NotRequired[int]
    """Fewest nodes. Default 1."""
    max_size: NotRequired[int]
    """Most nodes. Default 1."""
    disk_size_gib: NotRequired[int]
    """GiB of each node's encrypted gp3 volume (GPU images are large). Default 50."""
    plugin_config_key: NotRequired[str]
    """Device plugin config key (node label nvidia.com/device-plugin.config). Default default."""
    labels: NotRequired[dict[str, str]]
    """Extra Kubernetes labels for the nodes. Default none."""
    tags: NotRequired[dict[str, str]]
    """Tags for every AWS resource. Default none."""


class NvidiaDevicePluginInputs(TypedDict):
    """Inputs of NvidiaDevicePlugin."""

    kubeconfig: pulumi.Input[str]
    """Kubeconfig of the target cluster, as YAML or JSON; pass it as a secret."""
    sharing: NotRequired[str]
    """`"time-slicing"`, `"mps"` or `"none"` (whole GPUs). Default `"time-slicing"`."""
    replicas: NotRequired[int]
    """Units per GPU (2 or more) for time-slicing or mps; needed when `sharing` is. Default 5."""
    version: NotRequired[str]
    """Release of nvcr.io/nvidia/k8s-device-plugin, never latest. Default `"v0.20.0"`."""
    namespace: NotRequired[str]
    """Namespace created for the plugin. Default `"nvidia-device-plugin"`."""


class VerificationWorkloadInputs(TypedDict):
    """Inputs of VerificationWorkload."""

    kubeconfig: pulumi.Input[str]
    """Kubeconfig of the target cluster, as YAML or JSON; pass it as a secret."""
    pods: NotRequired[int]
    """Number of pods, each requesting one unit of `resourceName`. Default 5."""
    resource_name: NotRequired[str]
    """Resource each pod requests: NvidiaDevicePlugin's `resourceName`. Default nvidia.com/gpu."""
    plugin_config_key: NotRequired[str]
    """Nodes' config key (label nvidia.com/device-plugin.config) to run on. Default default."""
    mode: NotRequired[str]
    """`"nvidia-smi"`, or `"measure"` to also report each pod's TFLOP/s. Default `"nvidia-smi"`."""
    namespace: NotRequired[str]
    """Namespace created for the pods. Default `"gpu-sharing-verification"`."""
    ready_timeout_seconds: NotRequired[int]
    """Seconds `pulumi up` waits for every pod to be Ready before failing. Default 900."""


#: Where each GpuSharing input goes; ``sharing`` and ``replicas`` become its plugin config.
CLUSTER_INPUTS = ("cluster_name", "kubernetes_version", "public_access_cidrs", "tags")
NODE_GROUP_INPUTS = (
    "instance_type",
    "ami_type",
    "capacity_type",
    "desired_size",
    "min_size",
    "max_size",
    "disk_size_gib",
    "tags",
)
STACK_INPUTS = ("device_plugin_version", "verification_pods", "verification_mode")
SHARING_INPUTS = ("sharing", "replicas")
SYSTEM_INPUTS = ("system_nodes",)


def _wire(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The engine carries every number as a double, and the host passes it on as a float.

    All of our numbers are counts; a fractional one stays a float for validation to refuse.
    """
    return {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in inputs.items()
    }


def _pick(inputs: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: inputs[key] for key in keys if key in inputs}


def plugin_configs(inputs: Mapping[str, Any]) -> dict[str, components.PluginConfig] | None:
    """``sharing`` and ``replicas`` as the library's configs; None keeps its default."""
    if "sharing" not in inputs and "replicas" not in inputs:
        return None
    sharing = inputs.get("sharing", "time-slicing")
    if sharing == NO_SHARING:
        if "replicas" in inputs:
            raise components.ConfigError("replicas is for sharing time-slicing or mps, not none")
        return {"default": components.unshared()}
    if sharing not in SHARING:
        raise components.ConfigError(
            f"sharing {sharing!r}; use one of {', '.join([*SHARING, NO_SHARING])}"
        )
    if "replicas" not in inputs:
        raise components.ConfigError(f"sharing {sharing!r} needs replicas (2 or more)")
    return {"default": SHARING[sharing](inputs["replicas"])}


def system_nodes(nodes: Any) -> components.SystemNodeGroupArgs | None:
    """``system_nodes`` as the library's system group; 0 is none."""
    if nodes == 0 and not isinstance(nodes, bool):
        return None
    return components.SystemNodeGroupArgs(nodes=nodes)


def gpu_sharing_args(inputs: GpuSharingInputs) -> components.GpuSharingArgs:
    """The library's Args from the flat inputs, validated; keys left out keep its defaults."""
    given = _wire(inputs)
    group = components.GpuNodeGroupArgs(**_pick(given, NODE_GROUP_INPUTS))
    rest = _pick(given, STACK_INPUTS)
    configs = plugin_configs(given)
    if configs is not None:
        rest["plugin_configs"] = configs
    if "system_nodes" in given:
        rest["system_nodes"] = system_nodes(given["system_nodes"])
    args = components.GpuSharingArgs(
        cluster=components.GpuClusterArgs(
            **_pick(given, CLUSTER_INPUTS), gpu_instance_type=group.instance_type
        ),
        node_groups={"gpu": group},
        **rest,
    )
    args.validate()
    return args


def _kubernetes(name: str, kubeconfig: pulumi.Input[str], parent: pulumi.Resource) -> k8s.Provider:
    """The explicit provider every object gets; nothing falls back to an ambient kubeconfig."""
    return k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


class GpuSharing(pulumi.ComponentResource):
    """An EKS cluster with a GPU node group whose GPUs pods share, and the pods that prove it."""

    cluster_name: pulumi.Output[str]
    """Name of the EKS cluster."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig of the cluster (secret); it authenticates with `aws eks get-token`."""
    node_group_name: pulumi.Output[str]
    """Name of the GPU managed node group."""
    gpu_slices_per_node: pulumi.Output[int]
    """Schedulable GPU units each node advertises (units per GPU x GPUs per node)."""
    resource_name: pulumi.Output[str]
    """Extended resource a pod requests for one unit, e.g. `nvidia.com/gpu`."""

    def __init__(
        self, name: str, args: GpuSharingInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        library_args = gpu_sharing_args(args)
        super().__init__(f"{PACKAGE}:index:GpuSharing", name, None, opts)
        gpu = components.GpuSharing(name, library_args, pulumi.ResourceOptions(parent=self))
        group = next(iter(gpu.node_groups))
        self.cluster_name = gpu.cluster.cluster_name
        self.kubeconfig = gpu.cluster.kubeconfig
        self.node_group_name = gpu.node_groups[group].node_group_name
        self.gpu_slices_per_node = gpu.gpu_slices_per_node[group]
        self.resource_name = pulumi.Output.from_input(
            library_args.plugin_configs[library_args.verification_config_key].resource_name()
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "nodeGroupName": self.node_group_name,
                "gpuSlicesPerNode": self.gpu_slices_per_node,
                "resourceName": self.resource_name,
            }
        )


class GpuNodeGroup(pulumi.ComponentResource):
    """A managed node group of g4dn GPU instances joining an existing EKS cluster.

    Nodes are labelled `nvidia.com/gpu.present=true` and tainted `nvidia.com/gpu=true:NoSchedule`.
    """

    node_group_name: pulumi.Output[str]
    """Name of the managed node group."""
    role_arn: pulumi.Output[str]
    """ARN of the nodes' IAM role."""
    gpus_per_node: pulumi.Output[int]
    """NVIDIA GPUs in each node, from EC2's data of the instance type."""

    def __init__(
        self, name: str, args: GpuNodeGroupInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        library_args = components.GpuNodeGroupArgs(**_wire(args))
        library_args.validate()
        super().__init__(f"{PACKAGE}:index:GpuNodeGroup", name, None, opts)
        group = components.GpuNodeGroup(name, library_args, pulumi.ResourceOptions(parent=self))
        self.node_group_name = group.node_group_name
        self.role_arn = group.role_arn
        self.gpus_per_node = group.gpus_per_node
        self.register_outputs(
            {
                "nodeGroupName": self.node_group_name,
                "roleArn": self.role_arn,
                "gpusPerNode": self.gpus_per_node,
            }
        )


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """NVIDIA's device plugin, sharing each GPU as configured, on an existing cluster's GPU nodes.

    It runs on nodes labelled `nvidia.com/gpu.present=true` (GpuNodeGroup labels its nodes so).
    """

    namespace: pulumi.Output[str]
    """Namespace of the plugin."""
    config_hash: pulumi.Output[str]
    """sha256 of the sharing config; a change rolls the plugin pods."""
    resource_name: pulumi.Output[str]
    """Extended resource a pod requests for one unit, e.g. `nvidia.com/gpu`."""
    units_per_gpu: pulumi.Output[int]
    """Units of `resourceName` each GPU is advertised as."""

    def __init__(
        self,
        name: str,
        args: NvidiaDevicePluginInputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        given = _wire(args)
        rest = {k: v for k, v in given.items() if k not in ("kubeconfig", *SHARING_INPUTS)}
        configs = plugin_configs(given)
        if configs is not None:
            rest["configs"] = configs
        super().__init__(f"{PACKAGE}:index:NvidiaDevicePlugin", name, None, opts)
        library_args = components.NvidiaDevicePluginArgs(
            provider=_kubernetes(name, given["kubeconfig"], self), **rest
        )
        plugin = components.NvidiaDevicePlugin(
            name, library_args, pulumi.ResourceOptions(parent=self)
        )
        config = library_args.configs[library_args.default_key]
        self.namespace = plugin.namespace
        self.config_hash = pulumi.Output.from_input(plugin.sharing.config_hash)
        self.resource_name = pulumi.Output.from_input(config.resource_name())
        self.units_per_gpu = pulumi.Output.from_input(config.units_per_gpu())
        self.register_outputs(
            {
                "namespace": self.namespace,
                "configHash": self.config_hash,
                "resourceName": self.resource_name,
                "unitsPerGpu": self.units_per_gpu,
            }
        )


class VerificationWorkload(pulumi.ComponentResource):
    """Pods that each take one GPU unit and report the GPU they see: the proof of sharing.

    Give it `dependsOn` the device plugin; `pulumi up` waits until every pod is Ready.
    """

    namespace: pulumi.Output[str]
    """Namespace of the pods."""

    def __init__(
        self,
        name: str,
        args: VerificationWorkloadInputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        given = _wire(args)
        rest = {k: v for k, v in given.items() if k != "kubeconfig"}
        super().__init__(f"{PACKAGE}:index:VerificationWorkload", name, None, opts)
        workload = components.VerificationWorkload(
            name,
            components.VerificationWorkloadArgs(
                provider=_kubernetes(name, given["kubeconfig"], self), **rest
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.namespace = workload.namespace
        self.register_outputs({"namespace": self.namespace})


#: What the plugin hosts, in the order the schema lists them.
COMPONENTS: list[type[pulumi.ComponentResource]] = [
    GpuSharing,
    GpuNodeGroup,
    NvidiaDevicePlugin,
    VerificationWorkload,
]
