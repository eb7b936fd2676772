"""Names that several components, the plan, ``verify`` and the policies must agree on.

Keeping them in one place is what makes taints match tolerations and the
ConfigMap name match what the device plugin reads.
"""

from __future__ import annotations

#: Taint on every GPU node so only pods that tolerate it are scheduled there.
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"

#: Label on every GPU node; the device plugin and the workload select on it.
GPU_NODE_LABEL = "nvidia.com/gpu.present"
GPU_NODE_LABEL_VALUE = "true"

#: Node label the device plugin's config-manager reads to pick a config key.
PLUGIN_CONFIG_NODE_LABEL = "nvidia.com/device-plugin.config"

#: Label on every node of the system node group (no GPU, no taint), which the Cluster
#: Autoscaler selects.
SYSTEM_NODE_LABEL = "eks-gpu-sharing/system-node"
SYSTEM_NODE_LABEL_VALUE = "true"

#: Label naming the node group a node of ours belongs to.
NODE_GROUP_LABEL = "eks-gpu-sharing/node-group"

#: Label carrying the node group's EKS AMI type (EKS sets no such label itself).
AMI_TYPE_NODE_LABEL = "eks-gpu-sharing/ami-type"

#: AMI types whose host runs NVIDIA's device plugin itself (Bottlerocket's NVIDIA variants,
#: bottlerocket.dev settings.kubelet-device-plugins): our DaemonSets stay off their nodes.
HOST_DEVICE_PLUGIN_AMI_TYPES = ("BOTTLEROCKET_x86_64_NVIDIA",)
#: Labels on those nodes saying what their host plugin advertises per GPU, for ``verify``:
#: the resource after ``nvidia.com/`` (``gpu`` or ``gpu.shared``) and how many units.
HOST_PLUGIN_RESOURCE_LABEL = "eks-gpu-sharing/host-plugin-resource"
HOST_PLUGIN_UNITS_LABEL = "eks-gpu-sharing/host-plugin-units-per-gpu"

#: Namespaces we create.
DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
VERIFICATION_NAMESPACE = "gpu-sharing-verification"

#: ``app.kubernetes.io/name`` of the verification pods; ``verify`` selects on it.
VERIFICATION_APP = "gpu-sharing-verification"

#: ``app.kubernetes.io/name`` of the pod that requests no GPU and must see none.
NO_SLICE_APP = "gpu-sharing-no-slice"

#: The resource a whole, unshared NVIDIA GPU is advertised as.
GPU_RESOURCE = "nvidia.com/gpu"

#: The ConfigMap holding the device plugin's config files, one key per config.
PLUGIN_CONFIGMAP_NAME = "nvidia-device-plugin-configs"

#: The key used on nodes that carry no ``nvidia.com/device-plugin.config`` label.
DEFAULT_PLUGIN_CONFIG_KEY = "default"

#: Node label that puts the MPS control daemon on a node (upstream's own label).
MPS_CAPABLE_NODE_LABEL = "nvidia.com/mps.capable"

#: The label the Cluster Autoscaler's AWS provider reads to know a node has GPUs; until the
#: node advertises nvidia.com/gpu it counts the node as not ready rather than scale out
#: again (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, "Special
#: note on GPU instances"; aws_cloud_provider.go GPULabel).
ACCELERATOR_NODE_LABEL = "k8s.amazonaws.com/accelerator"

#: Namespace and service account of the Cluster Autoscaler.
AUTOSCALER_NAMESPACE = "cluster-autoscaler"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"

#: The service principal EKS Pod Identity assumes roles as (EKS docs, pod-id-role.html).
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
