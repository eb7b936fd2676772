"""AWS facts the validation needs before anything is asked of AWS.

Sources (checked 2026-11): the EC2 instance type pages for G4dn
(https://aws.amazon.com/ec2/instance-types/g4/) and the system types (a test checks them
against EC2's recorded DescribeInstanceTypes answers), the EKS AMI type list in
botocore's ``eks`` service model, the EKS version calendar
(https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html) and
the On-Demand price list for us-west-2 (USD per hour).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInstanceType:
    """One EC2 instance type with NVIDIA GPUs."""

    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    gpu_model: str
    gpu_memory_mib: int
    #: On-Demand price in us-west-2, USD per hour.
    on_demand_usd_per_hour: float


#: The g4dn family: NVIDIA T4 GPUs, 16 GiB each.
G4DN: dict[str, GpuInstanceType] = {
    t.name: t
    for t in (
        GpuInstanceType("g4dn.xlarge", 4, 16384, 1, "T4", 16384, 0.526),
        GpuInstanceType("g4dn.2xlarge", 8, 32768, 1, "T4", 16384, 0.752),
        GpuInstanceType("g4dn.4xlarge", 16, 65536, 1, "T4", 16384, 1.204),
        GpuInstanceType("g4dn.8xlarge", 32, 131072, 1, "T4", 16384, 2.176),
        GpuInstanceType("g4dn.12xlarge", 48, 196608, 4, "T4", 16384, 3.912),
        GpuInstanceType("g4dn.16xlarge", 64, 262144, 1, "T4", 16384, 4.352),
        GpuInstanceType("g4dn.metal", 96, 393216, 8, "T4", 16384, 7.824),
    )
}


@dataclass(frozen=True)
class SystemInstanceType:
    """One EC2 instance type without GPUs, for the system node group."""

    name: str
    vcpus: int
    memory_mib: int
    #: Network interfaces, and IPv4 addresses on each (EC2 DescribeInstanceTypes NetworkInfo).
    max_enis: int
    ipv4_per_eni: int
    #: On-Demand price in us-west-2, USD per hour.
    on_demand_usd_per_hour: float

    @property
    def max_pods(self) -> int:
        """Pods the VPC CNI gives an address, which the EKS AMI sets as the kubelet's
        maxPods: ENIs x (addresses per ENI - 1) + 2, the + 2 for host-network pods
        (awslabs/amazon-eks-ami nodeadm/internal/kubelet/eni_max_pods.go,
        calculateStandardMaxPods)."""
        return self.max_enis * (self.ipv4_per_eni - 1) + 2


#: Small x86_64 types with no GPU for the system node group (AL2023_x86_64_STANDARD): the
#: burstable T3/T3a sizes and the smallest general-purpose and compute ones.
SYSTEM_INSTANCE_TYPES: dict[str, SystemInstanceType] = {
    t.name: t
    for t in (
        SystemInstanceType("t3.micro", 2, 1024, 2, 2, 0.0104),
        SystemInstanceType("t3.small", 2, 2048, 3, 4, 0.0208),
        SystemInstanceType("t3.medium", 2, 4096, 3, 6, 0.0416),
        SystemInstanceType("t3a.small", 2, 2048, 2, 4, 0.0188),
        SystemInstanceType("t3a.medium", 2, 4096, 3, 6, 0.0376),
        SystemInstanceType("m5.large", 2, 8192, 3, 10, 0.096),
        SystemInstanceType("m6i.large", 2, 8192, 3, 10, 0.096),
        SystemInstanceType("c5.large", 2, 4096, 3, 10, 0.085),
    )
}
#: The EKS AMI type of system nodes.
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"


def on_demand_usd_per_hour(instance_type: str) -> float:
    """On-Demand price in us-west-2 of any instance type the catalog lists."""
    known = G4DN.get(instance_type) or SYSTEM_INSTANCE_TYPES[instance_type]
    return known.on_demand_usd_per_hour


#: EKS AMI types that ship the NVIDIA driver and container toolkit.
NVIDIA_AMI_TYPES: tuple[str, ...] = ("AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA")

#: GPU AMI types EKS still accepts but has deprecated (Amazon Linux 2 ends 2025-11-26).
DEPRECATED_GPU_AMI_TYPES: tuple[str, ...] = ("AL2_x86_64_GPU",)

#: Kubernetes minor versions in EKS standard support, with the day it ends. A real
#: ``pulumi up`` asks EKS itself (DescribeClusterVersions); the offline plan has only this.
EKS_STANDARD_SUPPORT_ENDS: dict[str, dt.date] = {
    "1.34": dt.date(2026, 12, 2),
    "1.35": dt.date(2027, 3, 27),
}
#: The day the calendar above was last checked against the EKS docs. 1.36 is not in it:
#: the docs found then name 1.36 as an example but give no dates for it.
CALENDAR_AS_OF = dt.date(2026, 11, 23)

#: Cluster Autoscaler release for each Kubernetes minor: the newest patch of the same minor,
#: as its README asks ("use the latest Cluster Autoscaler release that corresponds to the
#: minor version of Kubernetes"; kubernetes/autoscaler cluster-autoscaler/README.md,
#: Releases), read from the repository's ``cluster-autoscaler-1.x.y`` tags as of 2026-08-22.
#: Every minor of EKS_STANDARD_SUPPORT_ENDS has one (a test checks); 1.36 is here too, for a
#: cluster EKS creates at a minor newer than the calendar.
CLUSTER_AUTOSCALER_VERSIONS: dict[str, str] = {
    "1.34": "1.34.5",
    "1.35": "1.35.2",
    "1.36": "1.36.1",
}

#: The ``k8s.amazonaws.com/accelerator`` value of each GPU model: the label the Cluster
#: Autoscaler's AWS provider reads to know a node has GPUs (its GPULabel,
#: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider.go), valued as its README's
#: example (``nvidia-tesla-k80`` on P2).
ACCELERATOR_LABEL_VALUES: dict[str, str] = {"T4": "nvidia-tesla-t4"}

#: EKS control plane, standard support, USD per hour.
EKS_CONTROL_PLANE_USD_PER_HOUR = 0.10


def today() -> dt.date:
    """The day support is checked against: the one place the product reads the clock."""
    return dt.date.today()


def versions_in_standard_support(day: dt.date) -> list[str]:
    """Kubernetes versions EKS still gives standard support on ``day``, by the calendar."""
    return [v for v, ends in EKS_STANDARD_SUPPORT_ENDS.items() if ends >= day]


def minor(version: str) -> tuple[int, ...]:
    """``"1.35"`` as ``(1, 35)``, to order versions as numbers."""
    return tuple(int(part) for part in version.split("."))


#: Control-plane log types EKS can send to CloudWatch.
EKS_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")

#: The block device each NVIDIA AMI type keeps containers and images on. AL2023 has one
#: volume. Bottlerocket has two (bottlerocket-os/bottlerocket README.md, "Default Volumes"):
#: the root device /dev/xvda holds only the OS partitions and the API's data store; the data
#: device /dev/xvdb holds images and containers, and grows its partition to the volume at
#: boot. So images need the second one sized (Karpenter's Bottlerocket AMI family likewise
#: gives /dev/xvda 4 GiB and /dev/xvdb the room).
CONTAINER_VOLUME_DEVICE: dict[str, str] = {
    "AL2023_x86_64_NVIDIA": "/dev/xvda",
    "BOTTLEROCKET_x86_64_NVIDIA": "/dev/xvdb",
}

#: Every AL2023 EKS AMI, the NVIDIA one too, maps a 20 GiB root volume (awslabs/amazon-eks-ami
#: templates/al2023/template.json, ``ami_block_device_mappings``): the OS, kubelet,
#: containerd and the driver fit in it; a launch template may give the volume more, never
#: less than the AMI's snapshot.
AL2023_AMI_VOLUME_GIB = 20
#: containerd keeps an image twice: its compressed layers and their unpacked snapshot,
#: typically 2 to 3 times larger (an estimate), so 4 times the compressed size in all.
IMAGE_DISK_PER_COMPRESSED = 4
#: The kubelet deletes unused images once the disk is this full (imageGCHighThresholdPercent,
#: default 85: kubernetes/kubelet config/v1beta1 types.go); what the node runs must fit below.
IMAGE_GC_HIGH_THRESHOLD = 0.85
GIB_PER_GB = 1e9 / 2**30


def al2023_root_volume_gib(images_compressed_gb: Iterable[float]) -> int:
    """Root volume (GiB) of an AL2023 NVIDIA node that runs images of these compressed sizes:
    the AMI's own volume plus the images as containerd stores them, below the kubelet's
    image garbage-collection threshold."""
    images_gib = IMAGE_DISK_PER_COMPRESSED * sum(images_compressed_gb) * GIB_PER_GB
    return math.ceil((AL2023_AMI_VOLUME_GIB + images_gib) / IMAGE_GC_HIGH_THRESHOLD)


#: Memory the EKS AMIs reserve for the kubelet and container runtime, MiB: 11 per pod of
#: maxPods plus 255 (awslabs/amazon-eks-ami nodeadm/internal/kubelet/config.go,
#: getMemoryMebibytesToReserve, the kubelet's kubeReserved; Bottlerocket's is the same).
KUBE_RESERVED_MIB_PER_POD = 11
KUBE_RESERVED_MIB_BASE = 255
#: The kubelet evicts pods below this much free memory (evictionHard memory.available
#: 100Mi, the EKS AMIs' default), so pods never get it either.
EVICTION_HARD_MIB = 100


def allocatable_memory_mib(memory_mib: int, max_pods: int) -> int:
    """The most memory pods can request on a node: EC2's figure less what the kubelet keeps.
    An upper bound: the kernel keeps some of EC2's figure too."""
    reserved = KUBE_RESERVED_MIB_PER_POD * max_pods + KUBE_RESERVED_MIB_BASE
    return memory_mib - reserved - EVICTION_HARD_MIB


#: Managed policies a worker node's role needs, and no more: ECR pull without list access
#: (awsdocs/amazon-eks-user-guide latest/ug/security/iam-reference/create-node-role.adoc).
WORKER_NODE_POLICIES: tuple[str, ...] = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
)
#: The VPC CNI's policy: on the aws-node service account's own role (GpuCluster), never on
#: the node role, where every host-network pod could use it.
CNI_POLICY = "AmazonEKS_CNI_Policy"

#: EKS managed node group capacity types.
CAPACITY_TYPES: tuple[str, ...] = ("ON_DEMAND", "SPOT")

#: A public IPv4 address, USD per hour (every public IPv4 address is billed since
#: 2024-02-01; Amazon VPC pricing, "Public IPv4 address").
PUBLIC_IPV4_USD_PER_HOUR = 0.005
#: gp3 storage, USD per GiB-month (us-west-2).
GP3_USD_PER_GIB_MONTH = 0.08
#: A customer-managed KMS key, USD per month.
KMS_KEY_USD_PER_MONTH = 1.00
HOURS_PER_MONTH = 730

#: Retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
