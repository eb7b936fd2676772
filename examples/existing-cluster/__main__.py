"""Bring your own cluster: GPU sharing on an EKS cluster this stack did not create.

The stack gets only a kubeconfig (secret config ``kubeconfig``) and creates no AWS
resource: a Kubernetes provider from that kubeconfig, NVIDIA's device plugin with its
time-slicing config, and pods that each take one GPU unit to prove it works
(``python -m components verify --kubeconfig <file>``).

The GPU nodes need the labels our node groups set: ``nvidia.com/gpu.present=true`` (the
plugin and the pods select on it) and ``nvidia.com/device-plugin.config=default`` (the pods
do), the NVIDIA driver (AMI type AL2023_x86_64_NVIDIA) and no other device plugin.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import (
    NvidiaDevicePlugin,
    NvidiaDevicePluginArgs,
    VerificationWorkload,
    VerificationWorkloadArgs,
    time_slicing,
)

config = pulumi.Config()
given_replicas = config.get_int("timeSlicingReplicas")
replicas = 4 if given_replicas is None else given_replicas
given_pods = config.get_int("verificationPods")
pods = replicas if given_pods is None else given_pods
sharing = time_slicing(replicas)

# Every object gets this provider explicitly: nothing falls back to an ambient kubeconfig.
cluster = k8s.Provider(
    "existing-cluster",
    kubeconfig=config.require_secret("kubeconfig"),
    enable_server_side_apply=True,
)
plugin = NvidiaDevicePlugin(
    "gpu-sharing",
    NvidiaDevicePluginArgs(provider=cluster, configs={"default": sharing}),
)
pulumi.export("devicePluginNamespace", plugin.namespace)
pulumi.export("resourceName", sharing.resource_name())
pulumi.export("unitsPerGpu", sharing.units_per_gpu())
if pods:
    probe = VerificationWorkload(
        "gpu-sharing-verification",
        VerificationWorkloadArgs(
            provider=cluster,
            pods=pods,
            resource_name=sharing.resource_name(),
            # The pods can only be scheduled once the plugin advertises the GPU units; their
            # namespace and program need only the API server.
            pods_after=[plugin],
        ),
    )
    pulumi.export("verificationNamespace", probe.namespace)
