"""The demo stack: one `pulumi up` builds an EKS cluster whose GPU is shared by 5 pods."""

import pulumi
from pulumi.runtime.config import get_config_env

from components import GpuSharing, args_from_config

args = args_from_config(get_config_env(), pulumi.get_stack())
gpu = GpuSharing("gpu-sharing", args)
first = next(iter(args.node_groups))

pulumi.export("clusterName", gpu.cluster.cluster_name)
pulumi.export("kubeconfig", gpu.cluster.kubeconfig)
pulumi.export("nodeGroupName", gpu.node_groups[first].node_group_name)
pulumi.export("gpuSlicesPerNode", gpu.gpu_slices_per_node[first])
pulumi.export(
    "verificationNamespace", gpu.verification.namespace if gpu.verification else None
)
if len(args.node_groups) > 1:
    pulumi.export("nodeGroupNames", {k: g.node_group_name for k, g in gpu.node_groups.items()})
    pulumi.export("gpuSlicesPerNodeByGroup", gpu.gpu_slices_per_node)
