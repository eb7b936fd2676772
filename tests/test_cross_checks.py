"""The names that must agree across resources do agree: a broken chain fails here."""

from __future__ import annotations

import yaml

from components import conventions
from components.tools.plan import kubernetes_objects
from tests.conftest import run_stack


def objects(plan, kind):
    return [o for o in kubernetes_objects(plan) if o["kind"] == kind]


def verification(plan):
    (deployment,) = [d for d in objects(plan, "Deployment")
                     if d["metadata"]["name"] == conventions.VERIFICATION_APP]
    return deployment


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def tolerates(pod, taint) -> bool:
    for t in pod.get("tolerations", []):
        if t.get("effect") not in (None, taint["effect"]) or t["key"] != taint["key"]:
            continue
        if t.get("operator") == "Exists" or t.get("value") == taint["value"]:
            return True
    return False


def node_taints(plan):
    effects = {
        "NO_SCHEDULE": "NoSchedule",
        "NO_EXECUTE": "NoExecute",
        "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    }
    return [
        {**t, "effect": effects[t["effect"]]}
        for group in plan.by_type("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
        for t in group["inputs"]["taints"]
    ]


def test_gpu_nodes_are_tainted_and_labelled(demo_plan):
    group = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")["inputs"]
    assert group["labels"][conventions.GPU_NODE_LABEL] == "true"
    assert node_taints(demo_plan) == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]


def gpu_workloads(plan) -> list[dict]:
    """Every DaemonSet and Deployment but the autoscaler, which keeps off GPU nodes
    (tests/test_system_node_group.py)."""
    return [
        obj
        for obj in objects(plan, "DaemonSet") + objects(plan, "Deployment")
        if obj["metadata"]["namespace"] != conventions.AUTOSCALER_NAMESPACE
    ]


def test_plugin_and_workload_tolerate_every_gpu_node_taint(demo_plan):
    pods = gpu_workloads(demo_plan)
    assert len(pods) == 3  # the plugin, the probe pods, the no-slice pod
    for taint in node_taints(demo_plan):
        for obj in pods:
            assert tolerates(pod_spec(obj), taint), obj["metadata"]["name"]


def test_plugin_and_workload_select_labels_the_gpu_nodes_carry(demo_plan):
    labels = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")["inputs"]["labels"]
    for obj in gpu_workloads(demo_plan):
        for key, value in pod_spec(obj).get("nodeSelector", {}).items():
            assert labels.get(key) == value, (obj["metadata"]["name"], key)


def test_every_node_selector_is_met_by_a_node_group_of_ours(demo_plan):
    """The autoscaler's too: the system group's label."""
    groups = [g["inputs"]["labels"] for g in demo_plan.by_type("aws:eks/nodeGroup:NodeGroup")]
    for obj in objects(demo_plan, "DaemonSet") + objects(demo_plan, "Deployment"):
        selector = pod_spec(obj).get("nodeSelector", {})
        assert any(selector.items() <= labels.items() for labels in groups), obj["metadata"]


def test_plugin_reads_the_configmap_and_key_we_create(demo_plan):
    (config_map,) = [
        c
        for c in objects(demo_plan, "ConfigMap")
        if c["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME
    ]
    (daemonset,) = objects(demo_plan, "DaemonSet")
    spec = pod_spec(daemonset)
    assert config_map["metadata"]["namespace"] == daemonset["metadata"]["namespace"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["available-configs"]["configMap"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME
    for container in spec["initContainers"] + spec["containers"][:1]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["DEFAULT_CONFIG"] in config_map["data"]
        assert env["NODE_LABEL"] == conventions.PLUGIN_CONFIG_NODE_LABEL
        assert env["CONFIG_FILE_SRCDIR"] == "/available-configs"
    labels = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")["inputs"]["labels"]
    assert labels[conventions.PLUGIN_CONFIG_NODE_LABEL] in config_map["data"]
    plugin = next(c for c in spec["containers"] if c["command"] == ["nvidia-device-plugin"])
    env = {e["name"]: e.get("value") for e in plugin["env"]}
    sidecar = next(c for c in spec["containers"] if c["name"] == "config-manager")
    sidecar_env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["CONFIG_FILE"] == sidecar_env["CONFIG_FILE_DST"]


def test_pods_request_the_resource_the_sharing_config_advertises(demo_plan):
    (config_map,) = [
        c
        for c in objects(demo_plan, "ConfigMap")
        if c["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME
    ]
    config = yaml.safe_load(config_map["data"]["default"])
    assert config["version"] == "v1"
    (resource,) = config["sharing"]["timeSlicing"]["resources"]
    assert resource == {"name": "nvidia.com/gpu", "replicas": 5}
    container = pod_spec(verification(demo_plan))["containers"][0]
    assert container["resources"]["limits"] == {"memory": "2Gi", "nvidia.com/gpu": "1"}
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"


def test_pods_fit_in_the_slices_one_node_advertises(demo_plan):
    assert verification(demo_plan)["spec"]["replicas"] <= demo_plan.outputs["gpuSlicesPerNode"]


def test_a_sharing_change_and_only_that_rolls_the_plugin_pods(demo_plan):
    """The plugin reads its config once, at start: a changed ConfigMap must change the pod
    template (so the DaemonSet rolls), and an unchanged one must leave it as it is."""

    def plugin_pods(plan):
        (daemonset,) = objects(plan, "DaemonSet")
        return daemonset["spec"]["template"]

    assert plugin_pods(run_stack("dev")) == plugin_pods(demo_plan)
    changed = run_stack("dev", ["timeSlicingReplicas=4", "verificationPods=4"])
    assert plugin_pods(changed) != plugin_pods(demo_plan)


def test_images_are_pinned(demo_plan):
    for obj in objects(demo_plan, "DaemonSet") + objects(demo_plan, "Deployment"):
        spec = pod_spec(obj)
        for container in spec.get("initContainers", []) + spec["containers"]:
            name, _, tag = container["image"].rpartition(":")
            assert name and tag and tag != "latest", container["image"]
    (daemonset,) = objects(demo_plan, "DaemonSet")
    assert {c["image"] for c in pod_spec(daemonset)["containers"]} == {
        "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"
    }


def test_the_plugin_pods_run_as_the_account_the_role_is_bound_to(demo_plan):
    """The config-manager reads its node's labels through the API: its pods need the service
    account, in their namespace, bound to the role that allows it, and a token mounted where
    client-go's in-cluster config reads it (the account mounts none by itself)."""
    (daemonset,) = objects(demo_plan, "DaemonSet")
    namespace = daemonset["metadata"]["namespace"]
    account_name = pod_spec(daemonset)["serviceAccountName"]
    (account,) = [
        a for a in objects(demo_plan, "ServiceAccount") if a["metadata"]["name"] == account_name
    ]
    assert account["metadata"]["namespace"] == namespace
    assert account["automountServiceAccountToken"] is False
    spec = pod_spec(daemonset)
    (manager,) = [c for c in spec["containers"] if c["name"] == "config-manager"]
    (mount,) = [m for m in manager["volumeMounts"] if m["name"] == "kube-api-access"]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    (volume,) = [v for v in spec["volumes"] if v["name"] == "kube-api-access"]
    assert {"path": "token", "expirationSeconds": 3607} in [
        s.get("serviceAccountToken") for s in volume["projected"]["sources"]]
    assert_bound(demo_plan, account_name, namespace)


def test_the_autoscaler_pod_runs_as_the_account_the_role_is_bound_to(demo_plan):
    """The autoscaler reads and changes the cluster through the API: its pod needs its
    service account, in its namespace, with a token, bound to the role that allows it."""
    (autoscaler,) = [d for d in objects(demo_plan, "Deployment")
                     if d["metadata"]["name"] == "cluster-autoscaler"]
    namespace = autoscaler["metadata"]["namespace"]
    account_name = pod_spec(autoscaler)["serviceAccountName"]
    (account,) = [a for a in objects(demo_plan, "ServiceAccount")
                  if a["metadata"]["name"] == account_name]
    assert account["metadata"]["namespace"] == namespace
    assert account["automountServiceAccountToken"] is True
    assert_bound(demo_plan, account_name, namespace)


def assert_bound(plan, account_name: str, namespace: str) -> None:
    """One ClusterRoleBinding binds the account alone, to a ClusterRole the stack creates."""
    subject = {"kind": "ServiceAccount", "name": account_name, "namespace": namespace}
    (binding,) = [b for b in objects(plan, "ClusterRoleBinding") if b["subjects"] == [subject]]
    roles = [r["metadata"]["name"] for r in objects(plan, "ClusterRole")]
    assert binding["roleRef"]["name"] in roles


def test_the_sharing_config_is_there_before_the_plugin_without_waiting_for_the_nodes(demo_plan):
    """The plugin reads its ConfigMap at start, so the DaemonSet waits for it; the ConfigMap
    needs only the API server, so it is created while the GPU nodes join."""
    node_group = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")["urn"]
    (config_map,) = [r for r in demo_plan.by_type("kubernetes:core/v1:ConfigMap")
                     if r["inputs"]["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME]
    daemonset = demo_plan.one("kubernetes:apps/v1:DaemonSet")
    assert {config_map["urn"], node_group} <= set(daemonset["dependencies"])
    assert node_group not in config_map["dependencies"]
