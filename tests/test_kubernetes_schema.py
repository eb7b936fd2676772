"""Every Kubernetes object we create, checked against the cluster version's OpenAPI schema."""

from __future__ import annotations

import kubernetes_validate
import pytest

from components import manifest_files
from components.catalog import EKS_STANDARD_SUPPORT_ENDS
from components.tools.plan import kubernetes_objects

MANIFEST_FILES = [
    "admission-policy.yaml",
    "device-plugin.yaml",
    "sharing-config.yaml",
    "verification-workload.yaml",
    "cluster-autoscaler.yaml",
]


def validate_strict(obj: dict, kubernetes_version: str) -> None:
    kubernetes_validate.validate(obj, f"{kubernetes_version}.0", strict=True)


def test_plan_objects_are_valid_for_the_cluster_version(demo_plan):
    version = demo_plan.one("eks:index:Cluster")["inputs"]["version"]
    objects = kubernetes_objects(demo_plan)
    assert {o["kind"] for o in objects} == {
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
        "DaemonSet", "Deployment", "NetworkPolicy", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "Role", "RoleBinding",
    }
    for obj in objects:
        validate_strict(obj, version)


@pytest.mark.parametrize("version", sorted(EKS_STANDARD_SUPPORT_ENDS))
@pytest.mark.parametrize("filename", MANIFEST_FILES)
def test_plain_manifests_are_valid_for_every_supported_version(filename, version):
    for obj in manifest_files.load(filename).values():
        validate_strict(obj, version)


def test_strict_validation_catches_a_misspelt_field():
    daemonset = manifest_files.load("device-plugin.yaml")["DaemonSet"]
    daemonset["spec"]["template"]["spec"]["tolerationz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_strict(daemonset, "1.35")


def test_numbers_come_back_as_integers(demo_plan):
    deployment = next(o for o in kubernetes_objects(demo_plan) if o["kind"] == "Deployment"
                      and o["metadata"]["name"] == "gpu-sharing-verification")
    assert deployment["spec"]["replicas"] == 5
    assert isinstance(deployment["spec"]["replicas"], int)
