"""NvidiaDevicePlugin under mocks: pinned image, RBAC for the config-manager, config hash."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import (
    ConfigError,
    NvidiaDevicePlugin,
    NvidiaDevicePluginArgs,
    conventions,
    mps,
    time_slicing,
)
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
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "Namespace",
        "ServiceAccount",
    ]
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
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
    ]


def test_containers_drop_every_capability_and_cannot_escalate():
    spec = daemonset(build())["spec"]["template"]["spec"]
    for container in spec["containers"] + spec["initContainers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]


def test_a_new_version_changes_only_the_image_tag():
    spec = daemonset(build(version="v0.19.3"))["spec"]["template"]["spec"]
    assert {c["image"] for c in spec["containers"]} == {"nvcr.io/nvidia/k8s-device-plugin:v0.19.3"}


def test_a_changed_config_changes_the_pod_template_hash():
    def annotation(plan):
        return daemonset(plan)["spec"]["template"]["metadata"]["annotations"][
            "eks-gpu-sharing/config-hash"
        ]

    five = annotation(build(configs={"default": time_slicing(5)}))
    four = annotation(build(configs={"default": time_slicing(4)}))
    assert len(five) == 64 and five != four
    assert five == annotation(build())


def test_default_key_reaches_the_config_manager():
    plan = build(configs={"shared": time_slicing(3)}, default_key="shared")
    spec = daemonset(plan)["spec"]["template"]["spec"]
    for container in spec["initContainers"] + spec["containers"][:1]:
        assert {"name": "DEFAULT_CONFIG", "value": "shared"} in container["env"]


RELEASES = "a supported device plugin release (v0.17.0 or newer, e.g. v0.20.0; never latest)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "latest"}, f"devicePluginVersion 'latest' is not {RELEASES}"),
        ({"version": "v0.16.2"}, f"devicePluginVersion 'v0.16.2' is not {RELEASES}"),
        ({"namespace": "Bad_NS"}, "namespace 'Bad_NS' is not a valid namespace name"),
        ({"configs": {}}, "configs must map at least one key to a PluginConfig"),
        ({"configs": []}, "configs must map at least one key to a PluginConfig"),
        (
            {"default_key": "missing"},
            "default_key 'missing' is not a key of configs; use one of default",
        ),
        ({"configs": {"default": 5}}, "configs['default'] must be a PluginConfig, got 5"),
        (
            {"configs": {"default": mps(49)}},
            "configs['default'].sharing.mps.resources[0].replicas must be <= 48 with MPS (the "
            "most clients an MPS server takes), got 49",
        ),
        (
            # The key is a node's nvidia.com/device-plugin.config label value too.
            {"configs": {"Bad Key": time_slicing(2), "default": time_slicing(2)}},
            "configs key 'Bad Key' is not a valid ConfigMap key and node label value",
        ),
    ],
)
def test_bad_args_are_rejected(kwargs, message):
    with pytest.raises(ConfigError) as error:
        NvidiaDevicePluginArgs(provider=None, **kwargs).validate()
    assert str(error.value) == message


# --- What the API server and upstream require of the pod specs ----------------------------


def api_server_errors(pod_spec: dict) -> list[str]:
    """The Kubernetes API server's rule on process namespaces, as it validates a pod template.

    kubernetes/kubernetes pkg/apis/core/validation/validation.go, validatePodSpecSecurityContext:
    "ShareProcessNamespace and HostPID cannot both be enabled".
    """
    if pod_spec.get("shareProcessNamespace") is True and pod_spec.get("hostPID") is True:
        return [
            "spec.shareProcessNamespace: ShareProcessNamespace and HostPID cannot both be enabled"
        ]
    return []


def daemonsets(plan) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in kubernetes_objects(plan)
        if o["kind"] == "DaemonSet"
    }


def test_the_mps_control_daemon_runs_in_the_host_pid_namespace_as_upstream_does():
    """NVIDIA/k8s-device-plugin v0.20.0, deployments/helm/nvidia-device-plugin: values.yaml
    ``mps.enableHostPID: true`` ("hostPID is needed for the MPS server to find its own PID via
    /proc/self"), and templates/daemonset-mps-control-daemon.yml sets ``hostPID: true`` in place
    of ``shareProcessNamespace: true``. The plugin's own DaemonSet keeps sharing its pod's
    process namespace (templates/daemonset-device-plugin.yml), so its sidecar can signal it."""
    specs = daemonsets(build(configs={"default": mps(2)}))
    daemon = specs["nvidia-device-plugin-mps-control-daemon"]
    assert daemon["hostPID"] is True and "shareProcessNamespace" not in daemon
    plugin = specs["nvidia-device-plugin"]
    assert plugin["shareProcessNamespace"] is True and "hostPID" not in plugin
    for spec in specs.values():
        assert api_server_errors(spec) == []
    # The old daemon spec had both once hostPID came in: the API server refuses it.
    assert api_server_errors({**daemon, "shareProcessNamespace": True})


def test_the_mps_control_daemon_mounts_and_privileges_match_upstream():
    """templates/daemonset-mps-control-daemon.yml at v0.20.0: a privileged init container
    mounts the shm with Bidirectional propagation; the daemon itself is privileged and mounts
    /dev/shm and /mps from the host's mps.root (/run/nvidia/mps)."""
    daemon = daemonsets(build(configs={"default": mps(2)}))[
        "nvidia-device-plugin-mps-control-daemon"
    ]
    mounts, ctr = daemon["initContainers"][0], daemon["containers"][-1]
    assert mounts["command"] == ["mps-control-daemon", "mount-shm"]
    assert mounts["securityContext"] == {"privileged": True}
    assert mounts["volumeMounts"] == [
        {"name": "mps-root", "mountPath": "/mps", "mountPropagation": "Bidirectional"}
    ]
    assert ctr["command"] == ["mps-control-daemon"]
    assert ctr["securityContext"] == {"privileged": True}
    volumes = {v["name"]: v.get("hostPath") for v in daemon["volumes"]}
    assert volumes["mps-root"] == {"path": "/run/nvidia/mps", "type": "DirectoryOrCreate"}
    assert volumes["mps-shm"] == {"path": "/run/nvidia/mps/shm"}
    assert daemon["nodeSelector"] == {conventions.MPS_CAPABLE_NODE_LABEL: "true"}


MPS_DAEMON = "nvidia-device-plugin-mps-control-daemon"


def signal_env(container: dict) -> list[str]:
    """SEND_SIGNAL, SIGNAL and PROCESS_TO_SIGNAL of a config-manager container, in order."""
    signal = ("SEND_SIGNAL", "SIGNAL", "PROCESS_TO_SIGNAL")
    return [e["value"] for e in container["env"] if e["name"] in signal]


def test_the_mps_sidecar_signals_the_process_upstream_names():
    """templates/daemonset-mps-control-daemon.yml at v0.20.0: the config-manager sidecar has
    SEND_SIGNAL "true", SIGNAL "1" and PROCESS_TO_SIGNAL "/usr/bin/mps-control-daemon";
    config-manager signals the process whose cmdline[0] equals it (cmd/config-manager/
    main.go, findPidToSignal). The init container sends none. We keep upstream's values."""
    daemon = daemonsets(build(configs={"default": mps(2)}))[MPS_DAEMON]
    init, sidecar = daemon["initContainers"][1], daemon["containers"][0]
    assert init["command"] == sidecar["command"] == ["config-manager"]
    assert signal_env(init) == ["false", "", ""]
    assert signal_env(sidecar) == ["true", "1", "/usr/bin/mps-control-daemon"]


def test_both_daemonsets_stay_off_nodes_whose_host_runs_a_device_plugin():
    """The affinity names our AMI type label and every AMI type with a host plugin."""
    for spec in daemonsets(build(configs={"default": mps(2)})).values():
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms == {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": conventions.AMI_TYPE_NODE_LABEL,
                            "operator": "NotIn",
                            "values": list(conventions.HOST_DEVICE_PLUGIN_AMI_TYPES),
                        }
                    ]
                }
            ]
        }


def test_a_bad_namespace_is_named_with_what_is_allowed():
    with pytest.raises(ConfigError) as error:
        NvidiaDevicePluginArgs(provider=None, namespace="UPPER").validate()
    assert str(error.value) == "namespace 'UPPER' is not a valid namespace name"


@pytest.mark.parametrize("configs", [None, {"default": mps(2)}])
def test_only_the_daemonsets_wait_for_the_node_groups(configs):
    """A DaemonSet with no node to run on is ready at once (pulumi-kubernetes
    provider/pkg/await/daemonset.go: kstatus, desiredNumberScheduled 0), so only created after
    the nodes does its readiness mean the plugin runs there; the rest needs the API only."""

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        nodes = k8s.core.v1.Namespace(
            "node-group-stand-in", opts=pulumi.ResourceOptions(provider=provider)
        )
        extra = {"configs": configs} if configs else {}
        NvidiaDevicePlugin(
            "dp", NvidiaDevicePluginArgs(provider=provider, node_groups=[nodes], **extra)
        )

    plan = run_program(program)
    (nodes,) = [r["urn"] for r in plan.resources if r["name"] == "node-group-stand-in"]
    waiting = {r["name"] for r in plan.resources if nodes in r["dependencies"]}
    assert waiting == ({"dp-ds", "dp-mps"} if configs else {"dp-ds"})


def test_what_the_plugin_is_given_to_wait_for_every_object_waits_for():
    """``depends_on`` on the component reaches each of its objects, the ConfigMap of its
    SharingConfig too (options.child_options: the engine does not hold a component's
    children back for the component's own dependencies)."""

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        first = k8s.core.v1.Namespace("first", opts=pulumi.ResourceOptions(provider=provider))
        NvidiaDevicePlugin(
            "dp",
            NvidiaDevicePluginArgs(provider=provider, configs={"default": mps(2)}),
            opts=pulumi.ResourceOptions(depends_on=[first]),
        )

    plan = run_program(program)
    (first,) = [r["urn"] for r in plan.resources if r["name"] == "first"]
    objects = [
        r for r in plan.resources if r["type"].startswith("kubernetes:") and r["name"] != "first"
    ]
    assert sorted(r["type"].rsplit(":", 1)[1] for r in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "DaemonSet",
        "Namespace",
        "ServiceAccount",
    ]
    assert all(first in r["dependencies"] for r in objects)


TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.mark.parametrize("configs", [None, {"default": mps(2)}])
def test_only_the_config_manager_gets_a_service_account_token(configs):
    """It alone calls the API (NVIDIA/k8s-device-plugin cmd/config-manager/main.go); the
    plugin and the MPS daemon do not, so they get no token to lose."""
    objects = kubernetes_objects(build(**({"configs": configs} if configs else {})))
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert account["automountServiceAccountToken"] is False
    daemonsets = [o for o in objects if o["kind"] == "DaemonSet"]
    assert len(daemonsets) == (2 if configs else 1)
    for ds in daemonsets:
        spec = ds["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        with_token = {
            c["name"]
            for c in spec["containers"] + spec["initContainers"]
            if any(m["mountPath"] == TOKEN_DIR for m in c.get("volumeMounts", []))
        }
        assert with_token == {"config-manager", "config-manager-init"}
        (volume,) = [v for v in spec["volumes"] if v["name"] == "kube-api-access"]
        sources = [next(iter(s)) for s in volume["projected"]["sources"]]
        assert sources == ["serviceAccountToken", "configMap", "downwardAPI"]


def test_the_plugin_pods_run_with_the_runtime_default_seccomp_profile():
    for ds in kubernetes_objects(build(configs={"default": mps(2)})):
        if ds["kind"] == "DaemonSet":
            context = ds["spec"]["template"]["spec"]["securityContext"]
            assert context == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_the_plugin_sees_every_gpu_where_the_toolkit_ignores_the_env_var():
    """On AL2023 (components/al2023.py) the toolkit takes an unprivileged container's device
    list only from /dev/null mounts under /var/run/nvidia-container-devices
    (nvidia-container-toolkit internal/config/image/cuda_image.go, requestsFromMounts, which
    skips any other source); the plugin needs every GPU to advertise them."""
    spec = daemonset(build())["spec"]["template"]["spec"]
    (plugin,) = [c for c in spec["containers"] if c["name"] == "nvidia-device-plugin"]
    assert "privileged" not in plugin["securityContext"]
    mounts = {m["mountPath"]: m["name"] for m in plugin["volumeMounts"]}
    volume = mounts["/var/run/nvidia-container-devices/all"]
    (source,) = [v for v in spec["volumes"] if v["name"] == volume]
    assert source["hostPath"] == {"path": "/dev/null", "type": "CharDevice"}
    others = [c for c in spec.get("initContainers", []) + spec["containers"] if c is not plugin]
    assert not any("nvidia-container-devices" in str(c.get("volumeMounts")) for c in others)
