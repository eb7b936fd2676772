"""The pack's Pod Security Baseline, the plugin's narrow exemption, and the rules of issue 15.

Each Baseline control mirrors kubernetes/kubernetes
staging/src/k8s.io/pod-security-admission/policy/check_*.go; each case breaks one control
of a real pod spec from the demo plan, and a near miss that Baseline allows must pass.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components import conventions
from policy.aws_checks import ROLE, ROLE_POLICY
from policy.eks_gpu_sharing_policies import RULES, STACK_RULES
from policy.inputs import StackResource
from policy.kubernetes_checks import NAMESPACE, POD_SPEC_PATHS
from tests.conftest import run_stack
from tests.test_policy import (  # noqa: F401 - pytest fixtures
    DAEMONSET,
    DEPLOYMENT,
    analyze,
    analyzer,
    changed,
    inputs_of,
    pulumi_policy,
    stack_resources,
    violated,
)

RULE = {rule.name: rule for rule in (*RULES, *STACK_RULES)}
POD = ("spec", "template", "spec")
PROBE = (*POD, "containers", 0)

#: The DaemonSet of issue 15: root on every node, in ``default``.
CRAFTED = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "node-agent", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "node-agent"}},
        "template": {
            "metadata": {"labels": {"app": "node-agent"}},
            "spec": {
                "hostNetwork": True,
                "hostPID": True,
                "hostIPC": True,
                "tolerations": [{"operator": "Exists"}],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                "containers": [
                    {
                        "name": "agent",
                        "image": "busybox:1.37",
                        "command": ["sleep", "infinity"],
                        "securityContext": {
                            "runAsUser": 0,
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"memory": "32Mi"},
                        },
                        "volumeMounts": [{"name": "root", "mountPath": "/host"}],
                    }
                ],
            },
        },
    },
}


def baseline(typ: str, inputs: dict[str, Any]) -> list[str]:
    return RULE["pods-baseline"].check(typ, inputs)


def test_the_crafted_daemonset_fails_baseline_and_host_namespaces():
    found = violated(DAEMONSET, CRAFTED)
    assert set(found) == {"pods-baseline", "pods-no-host-namespaces"}
    assert any("'/'" in m and "hostPath" in m for m in found["pods-baseline"])
    assert any("SYS_ADMIN" in m for m in found["pods-baseline"])
    assert len(found["pods-no-host-namespaces"]) == 3
    assert all(RULE[name].mandatory for name in found)


def test_the_crafted_daemonset_is_flagged_for_its_unlabelled_namespace(demo_plan):
    crafted = StackResource("urn:crafted", DAEMONSET, CRAFTED, ())
    check = RULE["workloads-in-labelled-namespaces"].check
    assert check(stack_resources(demo_plan)) == []
    ((urn, message),) = check([*stack_resources(demo_plan), crafted])
    assert urn == "urn:crafted" and "namespace 'default'" in message


def test_the_pack_blocks_the_crafted_daemonset_over_grpc(analyzer):  # noqa: F811
    names = {d.policyName for d in analyze(analyzer, DAEMONSET, CRAFTED)}
    assert names == {"pods-baseline", "pods-no-host-namespaces"}


# fmt: off
CONTROLS = [
    # (path under the probe Deployment, value that breaks Baseline, one it allows, words)
    ((*POD, "volumes", 0), {"name": "h", "hostPath": {"path": "/var/log"}},
     {"name": "h", "emptyDir": {}}, "hostPath"),
    ((*PROBE, "securityContext", "capabilities", "add"), ["NET_RAW", "SYS_PTRACE"],
     ["NET_BIND_SERVICE", "CHOWN"], "SYS_PTRACE"),
    ((*PROBE, "ports"), [{"containerPort": 80, "hostPort": 8080}],
     [{"containerPort": 80, "hostPort": 0}], "host ports 8080"),
    ((*PROBE, "securityContext", "procMount"), "Unmasked", "Default", "procMount"),
    ((*POD, "securityContext", "seccompProfile"), {"type": "Unconfined"},
     {"type": "Localhost", "localhostProfile": "p.json"}, "seccompProfile"),
    ((*PROBE, "securityContext", "appArmorProfile"), {"type": "Unconfined"},
     {"type": "RuntimeDefault"}, "appArmorProfile"),
    ((*PROBE, "securityContext", "seLinuxOptions"), {"type": "spc_t"}, {"type": "container_t"},
     "seLinuxOptions.type"),
    ((*POD, "securityContext", "seLinuxOptions"), {"user": "system_u"}, {"level": "s0:c1"},
     "user or role"),
    ((*POD, "securityContext", "sysctls"), [{"name": "kernel.msgmax", "value": "1"}],
     [{"name": "net.ipv4.tcp_syncookies", "value": "1"}], "kernel.msgmax"),
    ((*POD, "securityContext", "windowsOptions"), {"hostProcess": True}, {"hostProcess": False},
     "HostProcess"),
    ((*PROBE, "readinessProbe"), {"httpGet": {"host": "169.254.169.254", "port": 80}},
     {"httpGet": {"port": 80}}, "another host"),
    (("spec", "template", "metadata", "annotations"),
     {"container.apparmor.security.beta.kubernetes.io/gpu-probe": "unconfined"},
     {"container.apparmor.security.beta.kubernetes.io/gpu-probe": "runtime/default"},
     "apparmor"),
]
# fmt: on


@pytest.mark.parametrize(("path", "bad", "good", "words"), CONTROLS, ids=[c[3] for c in CONTROLS])
def test_each_baseline_control_fires_and_its_near_miss_passes(demo_plan, path, bad, good, words):
    probe = inputs_of(demo_plan, DEPLOYMENT, conventions.VERIFICATION_APP)
    assert baseline(DEPLOYMENT, probe) == []
    (message,) = baseline(DEPLOYMENT, changed(probe, path, bad))
    assert words in message and "Baseline forbids it" in message
    assert baseline(DEPLOYMENT, changed(probe, path, good)) == []


def test_ephemeral_containers_are_held_to_baseline_too(demo_plan):
    probe = inputs_of(demo_plan, DEPLOYMENT, conventions.VERIFICATION_APP)
    debug = {"name": "debug", "image": "busybox:1.37",
             "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
    (message,) = baseline(DEPLOYMENT, changed(probe, (*POD, "ephemeralContainers"), [debug]))
    assert "'debug' adds capabilities SYS_ADMIN" in message


@pytest.mark.parametrize("typ", sorted(POD_SPEC_PATHS))
def test_every_workload_type_is_held_to_baseline(typ):
    pod = copy.deepcopy(CRAFTED["spec"]["template"])
    pod["spec"]["hostNetwork"] = pod["spec"]["hostPID"] = pod["spec"]["hostIPC"] = False
    wrapped: dict[str, Any] = {"metadata": {"name": "w", "namespace": "default"}}
    *parents, _ = POD_SPEC_PATHS[typ]
    target = wrapped
    for key in parents:
        target = target.setdefault(key, {})
    if parents:
        target.update(pod)
    else:
        wrapped["spec"] = pod["spec"]
    assert set(violated(typ, wrapped)) == {"pods-baseline"}, typ
    assert len(baseline(typ, wrapped)) == 2


# --- The plugin's exemption: namespace, image and container name, only what it needs -------


@pytest.fixture(scope="module")
def mps_daemon() -> dict[str, Any]:
    return inputs_of(run_stack("multi"), DAEMONSET, "nvidia-device-plugin-mps-control-daemon")


def test_the_plugin_pods_mount_their_host_paths_and_run_the_mps_daemon_privileged(
    demo_plan, mps_daemon
):
    plugin = inputs_of(demo_plan, DAEMONSET, "nvidia-device-plugin")
    for daemonset in (plugin, mps_daemon):
        assert "pods-baseline" not in violated(DAEMONSET, daemonset)
        assert "containers-least-privilege" not in violated(DAEMONSET, daemonset)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("metadata", "namespace"), "nvidia-device-plugin-x"),
        ((*POD, "containers", 1, "image"), "ghcr.io/evil/k8s-device-plugin:v0.20.0"),
        ((*POD, "containers", 1, "image"), "nvcr.io/nvidia/k8s-device-plugin-fork:v0.20.0"),
        ((*POD, "containers", 1, "name"), "nvidia-device-plugin-2"),
    ],
)
def test_the_plugin_is_exempt_only_by_namespace_image_and_name(demo_plan, path, value):
    plugin = inputs_of(demo_plan, DAEMONSET, "nvidia-device-plugin")
    found = baseline(DAEMONSET, changed(plugin, path, value))
    assert found and all("hostPath" in m for m in found)


def test_the_plugin_gets_no_host_path_beyond_its_own(demo_plan):
    plugin = inputs_of(demo_plan, DAEMONSET, "nvidia-device-plugin")
    volumes = plugin["spec"]["template"]["spec"]["volumes"]
    root = {"name": "r", "hostPath": {"path": "/"}}
    rooted = changed(plugin, (*POD, "volumes"), [*volumes, root])
    (message,) = baseline(DAEMONSET, rooted)
    assert "'/'" in message


def test_privilege_is_for_the_mps_daemons_privileged_containers_only(mps_daemon):
    spec = mps_daemon["spec"]["template"]["spec"]
    sidecar = next(i for i, c in enumerate(spec["containers"]) if c["name"] == "config-manager")
    privileged = changed(mps_daemon, (*POD, "containers", sidecar, "securityContext"),
                         {"privileged": True})
    (message,) = violated(DAEMONSET, privileged)["containers-least-privilege"]
    assert "'config-manager' is privileged" in message
    daemon = next(i for i, c in enumerate(spec["containers"]) if c["name"] == "mps-control-daemon")
    elsewhere = changed(mps_daemon, (*POD, "containers", daemon, "image"), "evil/mps:1")
    assert violated(DAEMONSET, elsewhere)["containers-least-privilege"]


# --- CIDRs as networks, node roles' every policy, log retention ----------------------------


@pytest.mark.parametrize(
    ("cidrs", "opens"),
    [
        (["0.0.0.0/1", "128.0.0.0/1"], True),
        (["0.0.0.0/00"], True),
        (["::/0"], True),
        (["not-a-cidr"], True),
        (["203.0.113.7/32", "10.0.0.0/8"], False),
        (["0.0.0.0/1"], False),
    ],
)
def test_public_cidrs_are_compared_as_networks(demo_plan, cidrs, opens):
    component = inputs_of(demo_plan, "eks:index:Cluster")
    found = RULE["eks-public-endpoint-restricted"].check(
        "eks:index:Cluster", changed(component, ("publicAccessCidrs",), cidrs)
    )
    assert bool(found) is opens, found


def test_node_roles_inline_and_listed_managed_policies_are_read(demo_plan):
    rule = RULE["node-role-worker-policies-only"]
    resources = stack_resources(demo_plan)
    role = next(r for r in resources if r.type == ROLE
                and "ec2.amazonaws.com" in r.props["assumeRolePolicy"])
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    for props, words in (
        ({**role.props, "managedPolicyArns": [admin]}, "AdministratorAccess"),
        ({**role.props, "inlinePolicies": [{"name": "s3", "policy": "{}"}]}, "inline policy 's3'"),
    ):
        others = [r for r in resources if r.urn != role.urn]
        ((urn, message),) = rule.check([*others, StackResource(role.urn, ROLE, props, ())])
        assert urn == role.urn and words in message
    inline = StackResource("urn:inline", ROLE_POLICY, {"name": "extra", "policy": "{}"},
                           (role.urn,))
    ((urn, message),) = rule.check([*resources, inline])
    assert urn == "urn:inline" and "inline policy 'extra'" in message


@pytest.mark.parametrize(("days", "fires"), [(30, False), (1, False), (0, True), (None, True)])
def test_log_groups_expire_their_logs(demo_plan, days, fires):
    group = inputs_of(demo_plan, "aws:cloudwatch/logGroup:LogGroup")
    assert group["retentionInDays"] == 30
    found = RULE["log-group-retention"].check("aws:cloudwatch/logGroup:LogGroup",
                                              {**group, "retentionInDays": days})
    assert bool(found) is fires


def test_a_namespace_without_a_psa_label_is_flagged(demo_plan):
    namespace = inputs_of(demo_plan, NAMESPACE, conventions.VERIFICATION_NAMESPACE)
    unlabelled = changed(namespace, ("metadata", "labels"), {})
    assert RULE["namespace-pod-security"].check(NAMESPACE, unlabelled)
    assert RULE["namespace-pod-security"].check(NAMESPACE, namespace) == []
