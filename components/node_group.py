"""A managed node group of g4dn GPU instances, tainted so only GPU workloads land there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from . import al2023, bottlerocket, catalog, conventions, node_template, validation, worker_node
from .errors import ConfigError
from .options import child_options
from .plugin_config import PluginConfig, unshared

#: The demo stack's config key for each field, named in messages.
CONFIG_KEYS = {
    "instance_type": "gpuInstanceType",
    "ami_type": "gpuAmiType",
    "capacity_type": "gpuCapacityType",
    "desired_size": "gpuNodeDesired",
    "min_size": "gpuNodeMin",
    "max_size": "gpuNodeMax",
}

#: The volume of a group whose images nobody sized (GPU images are large).
DEFAULT_DISK_SIZE_GIB = 50


@dataclass(frozen=True, kw_only=True)
class GpuNodeGroupArgs:
    """Inputs of :class:`GpuNodeGroup`."""

    #: Name of the EKS cluster to join; required (``GpuSharing`` fills it). Pass
    #: ``GpuCluster.cluster_name`` so the group waits for the cluster.
    cluster_name: pulumi.Input[str] | None = None
    #: Subnets for the nodes; required (``GpuSharing`` fills it), e.g. ``GpuCluster.subnet_ids``.
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    #: EC2 instance type; a g4dn type. Default ``"g4dn.xlarge"`` (one T4).
    instance_type: str = "g4dn.xlarge"
    #: EKS AMI type that ships the NVIDIA driver. Default ``"AL2023_x86_64_NVIDIA"``.
    ami_type: str = "AL2023_x86_64_NVIDIA"
    #: ``"ON_DEMAND"`` or ``"SPOT"``. Default ``"ON_DEMAND"``.
    capacity_type: str = "ON_DEMAND"
    #: Nodes to run. Default 1.
    desired_size: int = 1
    #: Fewest nodes. Default 1.
    min_size: int = 1
    #: Most nodes. Default 1.
    max_size: int = 1
    #: Size of the encrypted gp3 volume that holds images, GiB. Default ``None``: 50, or, in
    #: an AL2023 group of ``GpuSharing``, room for the images it runs
    #: (``catalog.al2023_root_volume_gib``).
    disk_size_gib: int | None = None
    #: IMDSv2 response hop limit. Default 1: containers (one hop further) cannot reach the
    #: instance metadata, so pods cannot borrow the node role. 2 lets them (warned about).
    imds_hop_limit: int = 1
    #: EC2 key pair for SSH to the nodes. Default ``None``: no key, no SSH.
    ssh_key_name: str | None = None
    #: Key of the device plugin ConfigMap these nodes use (node label
    #: ``nvidia.com/device-plugin.config``). Default ``"default"``.
    plugin_config_key: str = conventions.DEFAULT_PLUGIN_CONFIG_KEY
    #: The sharing of that key. Bottlerocket nodes get it as their host plugin's settings in
    #: the launch template's user data; other AMI types ignore it (our DaemonSet reads the
    #: ConfigMap key). ``GpuSharing`` fills it. Default ``None``: whole GPUs on Bottlerocket.
    plugin_config: PluginConfig | None = None
    #: Extra Kubernetes labels for the nodes. Default none.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Tags for every AWS resource. Default none.
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Units of each extended resource a node advertises once the device plugin has applied
    #: its config: the Cluster Autoscaler's node template (``GpuSharing`` fills it from the
    #: group's sharing config). Default ``None``: ``nvidia.com/gpu`` x the instance's GPUs.
    advertised_resources: Mapping[str, int] | None = None
    #: A Cluster Autoscaler sizes this group: its Auto Scaling group gets the node-template
    #: tags, and ``pulumi up`` leaves the desired size the autoscaler set. Default ``False``.
    autoscaled: bool = False

    @property
    def gpus_per_node(self) -> int:
        return catalog.G4DN[self.instance_type].gpus

    def node_labels(self, name: str) -> dict[str, str]:
        """Every label the group's nodes carry; ``name`` is the component's."""
        gpu = catalog.G4DN[self.instance_type].gpu_model
        return {
            **self.labels,
            conventions.GPU_NODE_LABEL: conventions.GPU_NODE_LABEL_VALUE,
            conventions.ACCELERATOR_NODE_LABEL: catalog.ACCELERATOR_LABEL_VALUES[gpu],
            conventions.NODE_GROUP_LABEL: name,
            conventions.AMI_TYPE_NODE_LABEL: self.ami_type,
            conventions.PLUGIN_CONFIG_NODE_LABEL: self.plugin_config_key,
            **(_host_sharing_labels(self.host_sharing) if self.host_runs_device_plugin else {}),
        }

    def node_template_tags(self, name: str) -> dict[str, str]:
        """The tags the Cluster Autoscaler builds this group's next node from."""
        resources = self.advertised_resources
        if resources is None:
            resources = {conventions.GPU_RESOURCE: self.gpus_per_node}
        return node_template.tags(self.node_labels(name), [GPU_TAINT], resources)

    @property
    def host_runs_device_plugin(self) -> bool:
        """Bottlerocket runs NVIDIA's device plugin itself; ours must not join it there."""
        return self.ami_type in conventions.HOST_DEVICE_PLUGIN_AMI_TYPES

    @property
    def host_sharing(self) -> PluginConfig:
        """What the host plugin of a Bottlerocket node is told to advertise."""
        return unshared() if self.plugin_config is None else self.plugin_config

    def validate(self) -> None:
        if self.cluster_name is None or self.subnet_ids is None:
            raise ConfigError("GpuNodeGroupArgs needs cluster_name and subnet_ids")
        self.validate_settings()

    def validate_settings(self, keys: Mapping[str, str] = CONFIG_KEYS) -> None:
        """Everything but the cluster it joins, which may not exist yet.

        ``keys`` names the config key that set each field, for the message.
        """

        def key(field: str) -> str:
            return keys.get(field, field)

        validation.one_of(
            key("instance_type"),
            self.instance_type,
            catalog.G4DN,
            "is not a g4dn instance type with NVIDIA GPUs",
        )
        if self.ami_type in catalog.DEPRECATED_GPU_AMI_TYPES:
            raise ConfigError(
                f"{key('ami_type')} {self.ami_type!r} is deprecated (Amazon Linux 2 AMIs are no "
                "longer updated since 2025-11-26); use one of "
                f"{', '.join(catalog.NVIDIA_AMI_TYPES)}"
            )
        validation.one_of(
            key("ami_type"), self.ami_type, catalog.NVIDIA_AMI_TYPES, "has no NVIDIA driver"
        )
        validation.one_of(key("capacity_type"), self.capacity_type, catalog.CAPACITY_TYPES)
        validation.integer(key("min_size"), self.min_size, 0, 100)
        validation.integer(key("max_size"), self.max_size, 1, 100)
        validation.integer(key("desired_size"), self.desired_size, 0, 100)
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ConfigError(
                f"{key('min_size')} <= {key('desired_size')} <= {key('max_size')} must hold, "
                f"got {self.min_size} <= {self.desired_size} <= {self.max_size}"
            )
        if self.disk_size_gib is not None:
            # gp3 in a launch template: 1 to 65,536 GiB (botocore's ec2 model,
            # LaunchTemplateEbsBlockDeviceRequest.VolumeSize); and never below the AMI's
            # 20 GiB snapshot (catalog.AL2023_AMI_VOLUME_GIB).
            validation.integer("disk_size_gib", self.disk_size_gib, 20, 65536)
        validation.integer("imds_hop_limit", self.imds_hop_limit, 1, 64)
        if self.ssh_key_name is not None:
            validation.matches(
                "ssh_key_name", self.ssh_key_name, r"[ -~]{1,255}", "a key pair name"
            )
        validation.matches(
            key("plugin_config_key"),
            self.plugin_config_key,
            validation.LABEL_VALUE,
            "a valid label value (the node label nvidia.com/device-plugin.config)",
        )
        validation.node_labels("labels", self.labels)
        validation.string_map("tags", self.tags)
        if self.plugin_config is not None:
            if not isinstance(self.plugin_config, PluginConfig):
                raise ConfigError(
                    f"plugin_config must be a PluginConfig, got {self.plugin_config!r}"
                )
            self.plugin_config.validate("plugin_config")
        if self.host_runs_device_plugin:
            bottlerocket.settings(self.host_sharing, "plugin_config")
        validation.boolean("autoscaled", self.autoscaled)
        for resource, units in (self.advertised_resources or {}).items():
            validation.matches(
                "advertised_resources",
                resource,
                validation.EXTENDED_RESOURCE,
                "an extended resource name like nvidia.com/gpu",
            )
            validation.integer(f"advertised_resources[{resource!r}]", units, 0)
        template = self.node_template_tags(name="")  # how many does not depend on the name
        if len({**self.tags, **template}) > node_template.MAX_NODE_GROUP_TAGS:
            raise ConfigError(
                f"tags: {len(self.tags)} tags and {len(template)} node-template tags (one per "
                "node label, taint and advertised resource, for the Cluster Autoscaler) are "
                f"more than the {node_template.MAX_NODE_GROUP_TAGS} an EKS node group takes"
            )


#: The taint every GPU node carries, as EKS takes it.
GPU_TAINT: aws.eks.NodeGroupTaintArgsDict = {
    "key": conventions.GPU_TAINT_KEY,
    "value": conventions.GPU_TAINT_VALUE,
    "effect": "NO_SCHEDULE",
}


class GpuNodeGroup(pulumi.ComponentResource):
    """An EKS managed node group of g4dn instances with its IAM role and launch template.

    Nodes carry the label ``nvidia.com/gpu.present=true`` and the taint
    ``nvidia.com/gpu=true:NoSchedule``; IMDSv2 is required with a hop limit of 1 so pods
    cannot borrow the node role; the root volume is encrypted; there is no SSH key; on AL2023
    the NVIDIA toolkit ignores ``NVIDIA_VISIBLE_DEVICES`` from unprivileged containers.
    """

    node_group_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    gpus_per_node: pulumi.Output[int]
    #: The EKS node group, created once its nodes have joined: what waits for the nodes
    #: depends on it, not on the component, whose Auto Scaling group tags come later.
    eks_node_group: aws.eks.NodeGroup

    def __init__(
        self, name: str, args: GpuNodeGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        if args.imds_hop_limit > 1:
            pulumi.log.warn(
                f"imds_hop_limit {args.imds_hop_limit}: pods can reach the instance metadata "
                "and use the node role's credentials"
            )
        if args.ssh_key_name is not None:
            pulumi.log.warn(
                f"ssh_key_name {args.ssh_key_name!r}: the GPU nodes accept SSH with that key"
            )
        super().__init__("eks-gpu-sharing:index:GpuNodeGroup", name, None, opts)
        child = child_options(self, opts)
        tags = dict(args.tags)

        role, attachments = worker_node.node_role(name, tags, child)
        template = worker_node.launch_template(
            name,
            description="GPU nodes: IMDSv2 only, encrypted gp3 volume, no SSH key",
            device_name=catalog.CONTAINER_VOLUME_DEVICE[args.ami_type],
            volume_gib=args.disk_size_gib or DEFAULT_DISK_SIZE_GIB,
            imds_hop_limit=args.imds_hop_limit,
            key_name=args.ssh_key_name,
            # Bottlerocket: its host plugin's sharing (its toolkit already ignores the env
            # var); AL2023: the toolkit settings that make slices the only way to a GPU. A
            # change is a new template version, which EKS rolls the group's nodes onto (the
            # host plugin does not restart pods already running: bottlerocket.dev
            # .../kubelet-device-plugins, "Lifecycle").
            user_data=bottlerocket.user_data(args.host_sharing, "plugin_config")
            if args.host_runs_device_plugin
            else al2023.user_data(),
            tags=tags,
            opts=child,
        )
        # The autoscaler reads the node-template tags from the node group (DescribeNodegroup)
        # and from its Auto Scaling group, which EKS does not copy them to
        # (aws/containers-roadmap#608): _tag_auto_scaling_group puts them there.
        template_tags = args.node_template_tags(name)
        group = aws.eks.NodeGroup(
            f"{name}-ng",
            cluster_name=args.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=args.subnet_ids,
            ami_type=args.ami_type,
            instance_types=[args.instance_type],
            capacity_type=args.capacity_type,
            scaling_config={
                "desired_size": args.desired_size,
                "min_size": args.min_size,
                "max_size": args.max_size,
            },
            update_config={"max_unavailable": 1},
            labels=args.node_labels(name),
            taints=[GPU_TAINT],
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            tags={**tags, **template_tags},
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=attachments,
                    # The autoscaler owns the desired size; `up` would reset it (EKS API docs,
                    # NodegroupScalingConfig.desiredSize: not to be changed with the Cluster
                    # Autoscaler; pulumi-aws NodeGroup docs, "Ignoring Changes to Desired Size").
                    ignore_changes=["scalingConfig.desiredSize"] if args.autoscaled else None,
                ),
            ),
        )
        if args.autoscaled:
            _tag_auto_scaling_group(name, group, template_tags, child)
        instance = aws.ec2.get_instance_type_output(
            instance_type=args.instance_type, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.eks_node_group = group
        self.node_group_name = group.node_group_name
        self.role_arn = role.arn
        self.gpus_per_node = instance.gpuses.apply(lambda gpus: sum(g.count for g in gpus))
        self.register_outputs(
            {
                "nodeGroupName": self.node_group_name,
                "roleArn": self.role_arn,
                "gpusPerNode": self.gpus_per_node,
            }
        )


def _host_sharing_labels(config: PluginConfig) -> dict[str, str]:
    """What the host plugin advertises, for ``verify``: no ConfigMap says it on Bottlerocket."""
    return {
        conventions.HOST_PLUGIN_RESOURCE_LABEL: config.resource_name().partition("/")[2],
        conventions.HOST_PLUGIN_UNITS_LABEL: str(config.units_per_gpu()),
    }


def _tag_auto_scaling_group(
    name: str, group: aws.eks.NodeGroup, tags: Mapping[str, str], child: pulumi.ResourceOptions
) -> None:
    """The node-template tags on the group's Auto Scaling group, where the autoscaler reads
    them first (aws_manager.go buildNodeFromTemplate). Not propagated to instances: they
    describe the group, and EKS sets the nodes' labels and taints itself."""
    asg_name = group.resources.apply(_auto_scaling_group_name)
    for key, value in tags.items():
        aws.autoscaling.Tag(
            f"{name}-asg-{key.removeprefix(node_template.PREFIX)}",
            autoscaling_group_name=asg_name,
            tag={"key": key, "value": value, "propagate_at_launch": False},
            opts=child,
        )


def _auto_scaling_group_name(resources: Sequence[aws.eks.outputs.NodeGroupResource]) -> str:
    """The one Auto Scaling group EKS made for the node group (DescribeNodegroup)."""
    (resource,) = resources
    (group,) = resource.autoscaling_groups or []
    assert group.name is not None  # EKS names every group it makes
    return group.name
