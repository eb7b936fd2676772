"""eks-gpu-sharing: Pulumi components for EKS clusters whose NVIDIA GPUs pods share.

Where each resource is created, in one hop:

- :class:`GpuCluster` (cluster.py): the EKS cluster, its KMS key and Kubernetes provider,
  the Pod Identity agent add-on and aws-node's role; its cluster-admin access entries and
  the key's policy come from cluster_access.py, every Pod Identity role from pod_identity.py.
- :class:`GpuNodeGroup` (node_group.py): a g4dn managed node group, its role and template
  (worker_node.py);
  on Bottlerocket the template's user data carries the sharing (rendered by bottlerocket.py).
- :class:`SystemNodeGroup` (system_node_group.py): a small managed node group without GPUs
  for CoreDNS and the Cluster Autoscaler; it shares its role and launch template with
  GpuNodeGroup's (worker_node.py).
- :class:`NvidiaDevicePlugin` (device_plugin.py): namespace, RBAC and DaemonSet of the plugin.
- :class:`SharingConfig` (sharing.py): the ConfigMap of device plugin configs.
- :class:`GpuAdmissionPolicy` (admission_policy.py): the admission policy that keeps GPUs
  to pods holding a slice.
- :class:`VerificationWorkload` (verification.py): the pods that prove the sharing.
- :class:`ClusterAutoscaler` (autoscaler.py): the Cluster Autoscaler, its RBAC, and its AWS
  role through EKS Pod Identity (pod_identity.py); node groups carry its node-template
  tags (node_template.py).
- :class:`GpuSharing` (stack.py): all of the above, as the demo stack uses it.
"""

from .admission_policy import GpuAdmissionPolicy, GpuAdmissionPolicyArgs
from .autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from .cluster import GpuCluster, GpuClusterArgs
from .config import args_from_config
from .device_plugin import NvidiaDevicePlugin, NvidiaDevicePluginArgs
from .errors import ConfigError
from .node_group import GpuNodeGroup, GpuNodeGroupArgs
from .plugin_config import PluginConfig, mps, time_slicing, unshared
from .sharing import SharingConfig, SharingConfigArgs
from .stack import GpuSharing, GpuSharingArgs
from .system_node_group import SystemNodeGroup, SystemNodeGroupArgs
from .verification import VerificationWorkload, VerificationWorkloadArgs

__all__ = [
    "ClusterAutoscaler",
    "ClusterAutoscalerArgs",
    "ConfigError",
    "GpuAdmissionPolicy",
    "GpuAdmissionPolicyArgs",
    "GpuCluster",
    "GpuClusterArgs",
    "GpuNodeGroup",
    "GpuNodeGroupArgs",
    "GpuSharing",
    "GpuSharingArgs",
    "NvidiaDevicePlugin",
    "NvidiaDevicePluginArgs",
    "PluginConfig",
    "SharingConfig",
    "SharingConfigArgs",
    "SystemNodeGroup",
    "SystemNodeGroupArgs",
    "VerificationWorkload",
    "VerificationWorkloadArgs",
    "args_from_config",
    "mps",
    "time_slicing",
    "unshared",
]
