"""What each component registers as its outputs (``register_outputs``, shown by ``pulumi
stack --show-urns`` and read by a multi-language consumer) agrees with what it built."""

from __future__ import annotations

from typing import Any

from components import conventions
from components.tools.plan import kubernetes_objects


def outputs(plan, typ: str) -> dict[str, Any]:
    return plan.component_outputs[plan.one(f"eks-gpu-sharing:index:{typ}")["urn"]]


def test_the_top_component_passes_on_what_its_parts_built(demo_plan):
    top = outputs(demo_plan, "GpuSharing")
    cluster = outputs(demo_plan, "GpuCluster")
    group = outputs(demo_plan, "GpuNodeGroup")
    system = outputs(demo_plan, "SystemNodeGroup")
    assert top == {
        "clusterName": "eks-gpu-sharing-dev",
        "kubeconfig": "[secret]",
        "nodeGroupNames": {"gpu": group["nodeGroupName"]},
        "systemNodeGroupName": system["nodeGroupName"],
        "gpuSlicesPerNode": {"gpu": 5},
    }
    assert system["nodeGroupName"].startswith("gpu-sharing-system-ng-")
    assert cluster["clusterName"] == top["clusterName"]
    assert cluster["kubeconfig"] == "[secret]"


def test_cluster_and_node_group_outputs_are_the_resources_they_made(demo_plan):
    eks = demo_plan.one("eks:index:Cluster")["inputs"]
    cluster = outputs(demo_plan, "GpuCluster")
    assert (cluster["vpcId"], cluster["subnetIds"]) == (eks["vpcId"], eks["subnetIds"])
    assert cluster["kubernetesVersion"] == eks["version"]
    group = outputs(demo_plan, "GpuNodeGroup")
    assert group["gpusPerNode"] == 1
    assert group["nodeGroupName"].startswith("gpu-sharing-gpu-ng-")
    (role,) = [r["name"] for r in demo_plan.by_type("aws:iam/role:Role")
               if r["parent"].endswith("::gpu-sharing-gpu")]
    assert group["roleArn"].startswith(f"arn:aws:iam::123456789012:role/{role}-")
    gpu_group = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    assert gpu_group["inputs"]["nodeRoleArn"] == group["roleArn"]


def test_plugin_and_verification_outputs_name_their_objects(demo_plan):
    objects = kubernetes_objects(demo_plan)
    (daemonset,) = [o for o in objects if o["kind"] == "DaemonSet"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"
                     and o["metadata"]["name"] == conventions.VERIFICATION_APP]
    (config_map,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME
    ]
    plugin = outputs(demo_plan, "NvidiaDevicePlugin")
    sharing = outputs(demo_plan, "SharingConfig")
    assert plugin["namespace"] == daemonset["metadata"]["namespace"] == "nvidia-device-plugin"
    assert plugin["configHash"] == sharing["configHash"]
    assert sharing["data"] == config_map["data"]
    verification = outputs(demo_plan, "VerificationWorkload")
    assert verification == {"namespace": conventions.VERIFICATION_NAMESPACE}
    assert deployment["metadata"]["namespace"] == conventions.VERIFICATION_NAMESPACE


def test_autoscaler_outputs_name_its_namespace_and_image(demo_plan):
    autoscaler = outputs(demo_plan, "ClusterAutoscaler")
    objects = kubernetes_objects(demo_plan)
    (deployment,) = [o for o in objects if o["metadata"]["name"] == "cluster-autoscaler"
                     and o["kind"] == "Deployment"]
    assert autoscaler == {
        "namespace": deployment["metadata"]["namespace"],
        "image": deployment["spec"]["template"]["spec"]["containers"][0]["image"],
    }
