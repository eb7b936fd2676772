"""NvidiaDevicePlugin under mocks: pinned image, RBAC for the config-manager, config hash."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import pytest

from components import ConfigError, NvidiaDevicePlugin, NvidiaDevicePluginArgs, time_slicing
from components.tools.plan import kubernetes_objects
from tests.conftest import run_program


def build(**kwargs):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        NvidiaDevicePlugin("dp", NvidiaDevicePluginArgs(provider=provider, **kwargs))

    return run_program(program)


def daemonset(plan):
    return next(o for o in kubernetes_objects(plan) if o["kind"] == "DaemonSet")


def test_plugin_objects_and_pinned_image():
    plan = build()
    kinds = sorted(o["kind"] for o in kubernetes_objects(plan))
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Namespace",
                     "ServiceAccount"]
    spec = daemonset(plan)["spec"]["template"]["spec"]
    images = {c["image"] for c in spec["containers"] + spec["initContainers"]}
    assert images == {"nvcr.io/nvidia/k8s-device-plugin:v0.20.0"}
    assert spec["serviceAccountName"] == "nvidia-device-plugin"
    assert spec["priorityClassName"] == "system-node-critical"


def test_namespace_admits_the_hostpath_the_plugin_needs():
    namespace = next(o for o in kubernetes_objects(build()) if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_config_manager_may_read_nodes_and_nothing_else():
    role = next(o for o in kubernetes_objects(build()) if o["kind"] == "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"],
                              "verbs": ["get", "list", "watch"]}]


def test_containers_drop_every_capability_and_cannot_escalate():
    spec = daemonset(build())["spec"]["template"]["spec"]
    for container in spec["containers"] + spec["initContainers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]


def test_a_new_version_changes_only_the_image_tag():
    spec = daemonset(build(version="v0.19.3"))["spec"]["template"]["spec"]
    assert {c["image"] for c in spec["containers"]} == {
        "nvcr.io/nvidia/k8s-device-plugin:v0.19.3"}


def test_a_changed_config_changes_the_pod_template_hash():
    def annotation(plan):
        return daemonset(plan)["spec"]["template"]["metadata"]["annotations"][
            "eks-gpu-sharing/config-hash"]

    five = annotation(build(configs={"default": time_slicing(5)}))
    four = annotation(build(configs={"default": time_slicing(4)}))
    assert len(five) == 64 and five != four
    assert five == annotation(build())


def test_default_key_reaches_the_config_manager():
    plan = build(configs={"shared": time_slicing(3)}, default_key="shared")
    spec = daemonset(plan)["spec"]["template"]["spec"]
    for container in spec["initContainers"] + spec["containers"][:1]:
        assert {"name": "DEFAULT_CONFIG", "value": "shared"} in container["env"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "latest"}, "devicePluginVersion 'latest'"),
        ({"version": "v0.16.2"}, "v0.17.0 or newer"),
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"configs": {}}, "configs"),
        ({"default_key": "missing"}, "default_key 'missing' is not a key of configs"),
        ({"configs": {"default": 5}}, "must be a PluginConfig"),
    ],
)
def test_bad_args_are_rejected(kwargs, message):
    with pytest.raises(ConfigError) as error:
        NvidiaDevicePluginArgs(provider=None, **kwargs).validate()
    assert message in str(error.value)


def test_a_bad_namespace_is_named_with_what_is_allowed():
    with pytest.raises(ConfigError) as error:
        NvidiaDevicePluginArgs(provider=None, namespace="UPPER").validate()
    assert str(error.value) == "namespace 'UPPER' is not a valid namespace name"
