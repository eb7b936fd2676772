"""A small managed node group without GPUs or taints, for what must not hold a GPU node up:
the Cluster Autoscaler, which removes a node only when its pods can move elsewhere (its own
pod among them), and CoreDNS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from . import autoscaler, catalog, conventions, validation, worker_node
from .errors import ConfigError
from .options import child_options

#: The demo stack's config key for each field, named in messages.
CONFIG_KEYS = {"instance_type": "systemNodeType", "nodes": "systemNodes"}

#: Pods of the DaemonSets EKS runs on every node: aws-node, kube-proxy and the
#: eks-pod-identity-agent. They request no memory that the check below must count.
EKS_DAEMONSET_PODS = 3
#: CoreDNS as EKS runs it: two replicas, each requesting 70 MiB of memory (EKS's coredns
#: Deployment in kube-system, as the EKS docs' managing-coredns page shows it).
COREDNS_POD_MEMORY_MIB = (70, 70)


@dataclass(frozen=True, kw_only=True)
class SystemNodeGroupArgs:
    """Inputs of :class:`SystemNodeGroup`."""

    #: Name of the EKS cluster to join; required (``GpuSharing`` fills it). Pass
    #: ``GpuCluster.cluster_name`` so the group waits for the cluster.
    cluster_name: pulumi.Input[str] | None = None
    #: Subnets for the nodes; required (``GpuSharing`` fills it), e.g. ``GpuCluster.subnet_ids``.
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    #: EC2 instance type, x86_64 without GPUs (``catalog.SYSTEM_INSTANCE_TYPES``). Default
    #: ``"t3.small"`` (2 vCPUs, 2 GiB, 11 pods; $0.0208/hour in us-west-2).
    instance_type: str = "t3.small"
    #: Nodes, always this many: the group's min, desired and max, so the autoscaler never
    #: resizes it. Default 1.
    nodes: int = 1
    #: Memory requests (MiB) of the pods besides EKS's DaemonSets that one node must hold, so
    #: that losing a node never strands them. Default CoreDNS's two; ``GpuSharing`` adds the
    #: Cluster Autoscaler's.
    pod_memory_mib: Sequence[int] = COREDNS_POD_MEMORY_MIB
    #: Size of the encrypted gp3 root volume, GiB. Default ``None``: the AMI's 20 GiB plus room
    #: for the autoscaler's image (``catalog.al2023_root_volume_gib``), 24.
    disk_size_gib: int | None = None
    #: Extra Kubernetes labels for the nodes. Default none.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Tags for every AWS resource. Default none.
    tags: Mapping[str, str] = field(default_factory=dict)

    def node_labels(self, name: str) -> dict[str, str]:
        """Every label the group's nodes carry; ``name`` is the component's."""
        return {
            **self.labels,
            conventions.SYSTEM_NODE_LABEL: conventions.SYSTEM_NODE_LABEL_VALUE,
            conventions.NODE_GROUP_LABEL: name,
        }

    def validate(self) -> None:
        if self.cluster_name is None or self.subnet_ids is None:
            raise ConfigError("SystemNodeGroupArgs needs cluster_name and subnet_ids")
        self.validate_settings()

    def validate_settings(self, keys: Mapping[str, str] = CONFIG_KEYS) -> None:
        """Everything but the cluster it joins, which may not exist yet."""
        instance_key, nodes_key = keys["instance_type"], keys["nodes"]
        validation.one_of(
            instance_key,
            self.instance_type,
            catalog.SYSTEM_INSTANCE_TYPES,
            "is not a system instance type this library knows (x86_64, no GPU)",
        )
        validation.integer(nodes_key, self.nodes, 1, 10)
        for memory in self.pod_memory_mib:
            validation.integer("pod_memory_mib", memory, 0)
        if self.disk_size_gib is not None:
            # As GpuNodeGroupArgs: gp3 takes up to 65,536 GiB, the AMI needs 20.
            validation.integer("disk_size_gib", self.disk_size_gib, 20, 65536)
        validation.node_labels("labels", self.labels)
        validation.string_map("tags", self.tags)
        self._validate_room(instance_key)

    def _validate_room(self, instance_key: str) -> None:
        """One node must hold every pod meant for it: as many pods as the VPC CNI gives
        addresses to (the kubelet's maxPods) and their memory within what is allocatable."""
        instance = catalog.SYSTEM_INSTANCE_TYPES[self.instance_type]
        pods = EKS_DAEMONSET_PODS + len(self.pod_memory_mib)
        memory = sum(self.pod_memory_mib)
        allocatable = catalog.allocatable_memory_mib(instance.memory_mib, instance.max_pods)
        if pods > instance.max_pods or memory > allocatable:
            raise ConfigError(
                f"{instance_key} {self.instance_type!r} holds {instance.max_pods} pods and "
                f"{allocatable} MiB of pod memory (maxPods and allocatable memory as the EKS "
                f"AMI sets them): too little for the {pods} pods it must run (EKS's "
                f"{EKS_DAEMONSET_PODS} DaemonSet pods, CoreDNS's 2 and the Cluster Autoscaler "
                f"when it runs) and their {memory} MiB; use t3.small or larger"
            )


class SystemNodeGroup(pulumi.ComponentResource):
    """An EKS managed node group of small untainted nodes without GPUs, always ``nodes`` of them.

    Nodes carry the label ``eks-gpu-sharing/system-node=true``, which the Cluster
    Autoscaler selects; AL2023 standard AMI, On-Demand (a Spot interruption would stop the
    autoscaler and DNS together); IMDSv2 with hop limit 1, an encrypted volume, no SSH key.
    """

    node_group_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    eks_node_group: aws.eks.NodeGroup

    def __init__(
        self, name: str, args: SystemNodeGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        super().__init__("eks-gpu-sharing:index:SystemNodeGroup", name, None, opts)
        child = child_options(self, opts)
        tags = dict(args.tags)
        role, attachments = worker_node.node_role(name, tags, child)
        template = worker_node.launch_template(
            name,
            description="System nodes: IMDSv2 only, encrypted gp3 volume, no SSH key",
            device_name="/dev/xvda",  # AL2023 keeps images on its one (root) volume
            volume_gib=args.disk_size_gib or default_volume_gib(),
            tags=tags,
            opts=child,
        )
        group = aws.eks.NodeGroup(
            f"{name}-ng",
            cluster_name=args.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=args.subnet_ids,
            ami_type=catalog.SYSTEM_AMI_TYPE,
            instance_types=[args.instance_type],
            capacity_type="ON_DEMAND",
            scaling_config={
                "desired_size": args.nodes,
                "min_size": args.nodes,
                "max_size": args.nodes,
            },
            update_config={"max_unavailable": 1},
            labels=args.node_labels(name),
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=attachments)
            ),
        )
        self.eks_node_group = group
        self.node_group_name = group.node_group_name
        self.role_arn = role.arn
        self.register_outputs({"nodeGroupName": self.node_group_name, "roleArn": self.role_arn})


def default_volume_gib() -> int:
    """The AMI's volume plus the autoscaler's image; EKS's own images (CoreDNS, aws-node,
    kube-proxy) fit in the AMI's, as on every node."""
    return catalog.al2023_root_volume_gib([autoscaler.IMAGE_COMPRESSED_GB])
