"""A stack that already has its EKS cluster (pulumi_eks) gains GPU nodes that pods share.

``platform`` stands for the cluster you already have, with CPU nodes for everything else.
It uses API access entries: EKS then creates the entry a managed node group's role needs,
whereas with ``CONFIG_MAP`` that role would have to be in the aws-auth map pulumi_eks owns.
The library adds only what the GPUs need: the node group and NVIDIA's device plugin.
"""

from __future__ import annotations

import pulumi
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components import (
    GpuNodeGroup,
    GpuNodeGroupArgs,
    NvidiaDevicePlugin,
    NvidiaDevicePluginArgs,
    time_slicing,
)

config = pulumi.Config()
cluster_name = config.get("clusterName") or "platform"
subnet_ids: list[str] = config.require_object("subnetIds")
given_replicas = config.get_int("timeSlicingReplicas")
sharing = time_slicing(4 if given_replicas is None else given_replicas)

# --- the cluster you already have ---
cluster = eks.Cluster(
    "platform",
    name=cluster_name,
    vpc_id=config.require("vpcId"),
    subnet_ids=subnet_ids,
    instance_type="t3.medium",
    desired_capacity=2,
    min_size=2,
    max_size=3,
    authentication_mode=eks.AuthenticationMode.API,
)
kubernetes = k8s.Provider(
    "platform-k8s", kubeconfig=cluster.kubeconfig_json, enable_server_side_apply=True
)

# --- what this library adds ---
gpu = GpuNodeGroup(
    "gpu",
    GpuNodeGroupArgs(cluster_name=cluster_name, subnet_ids=subnet_ids),
    # Joined by name, so the group is held back until the cluster (and its children) exist.
    opts=pulumi.ResourceOptions(depends_on=[cluster]),
)
plugin = NvidiaDevicePlugin(
    "gpu-device-plugin",
    NvidiaDevicePluginArgs(
        provider=kubernetes,
        configs={"default": sharing},
        # Its DaemonSet is created after the GPU nodes, so `up` awaits the plugin running on
        # them; its namespace, RBAC and config are created while the nodes join.
        node_groups=[gpu],
    ),
)

pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig_json))
pulumi.export("gpuNodeGroupName", gpu.node_group_name)
units = sharing.units_per_gpu()
pulumi.export("gpuSlicesPerNode", gpu.gpus_per_node.apply(lambda gpus: gpus * units))
pulumi.export("resourceName", sharing.resource_name())
pulumi.export("devicePluginNamespace", plugin.namespace)
