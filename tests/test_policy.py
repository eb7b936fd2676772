"""The policy pack: the demo stack passes every mandatory rule; breaking one input breaks one rule.

The checks run on the inputs the offline plan recorded, as the engine would hand them to
CrossGuard. Each non-compliant case is a deep copy of one real resource's inputs with
exactly one thing changed.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from components import catalog, conventions
from components.tools.plan import Plan
from policy.aws_checks import (
    EKS_CLUSTER,
    EKS_COMPONENT,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    NODE_GROUP,
    ROLE,
    ROLE_POLICY_ATTACHMENT,
    is_nvidia_gpu_instance,
)
from policy.eks_gpu_sharing_policies import RULES, STACK_RULES
from policy.inputs import StackResource
from policy.kubernetes_checks import NAMESPACE, PVC, SERVICE, STATEFUL_SET
from tests.conftest import ROOT, run_stack

DAEMONSET = "kubernetes:apps/v1:DaemonSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"
RULE = {rule.name: rule for rule in RULES}
DELETE = object()


def eks_child_inputs(component: dict[str, Any]) -> dict[str, Any]:
    """The ``aws:eks/cluster:Cluster`` inputs pulumi-eks builds from its component's inputs.

    Mirrors ``createCluster`` in pulumi-eks (nodejs/eks/cluster/cluster.ts); under our mocks
    the component is not expanded, on a real engine this child is what the policies see.
    """
    return {
        "name": component["name"],
        "version": component["version"],
        "vpcConfig": {
            "subnetIds": component["subnetIds"],
            "endpointPrivateAccess": component["endpointPrivateAccess"],
            "endpointPublicAccess": component["endpointPublicAccess"],
            "publicAccessCidrs": component["publicAccessCidrs"],
        },
        "enabledClusterLogTypes": component["enabledClusterLogTypes"],
        "encryptionConfig": {
            "provider": {"keyArn": component["encryptionConfigKeyArn"]},
            "resources": ["secrets"],
        },
        "accessConfig": {
            "authenticationMode": component["authenticationMode"],
            "bootstrapClusterCreatorAdminPermissions": True,
        },
    }


def resources(plan: Plan) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, inputs) of every resource, plus the EKS cluster pulumi-eks would create."""
    for resource in plan.resources:
        yield resource["type"], resource["inputs"]
    yield EKS_CLUSTER, eks_child_inputs(plan.one(EKS_COMPONENT)["inputs"])


def inputs_of(
    plan: Plan, typ: str, name: str | None = None, under: str = "GpuNodeGroup"
) -> dict[str, Any]:
    """A deep copy of one resource's inputs; ``name`` picks a Kubernetes object by name, and
    ``under`` a node group's resources by their component (the GPU group's, or the system
    group's)."""
    if typ in (NODE_GROUP, LAUNCH_TEMPLATE):
        return copy.deepcopy(plan.one(typ, under)["inputs"])
    found = [
        inputs
        for t, inputs in resources(plan)
        if t == typ and (name is None or inputs["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {typ} named {name}"
    return copy.deepcopy(found[0])


def violated(typ: str, inputs: dict[str, Any]) -> dict[str, list[str]]:
    """Rule name -> messages, for every rule that applies to ``typ``."""
    found = {rule.name: rule.check(typ, inputs) for rule in RULES if typ in rule.types}
    return {name: messages for name, messages in found.items() if messages}


def changed(inputs: dict[str, Any], path: Sequence[str | int], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(inputs)
    *parents, last = path
    target: Any = out
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return out


def stack_resources(plan: Plan) -> list[StackResource]:
    return [
        StackResource(r["urn"], r["type"], r["inputs"], tuple(r["dependencies"]))
        for r in plan.resources
    ]


# --- The stacks we ship are compliant ------------------------------------------------------


def mandatory_violations(plan: Plan) -> list[str]:
    return [
        f"{typ} {rule}: {message}"
        for typ, inputs in resources(plan)
        for rule, messages in violated(typ, inputs).items()
        for message in messages
        if RULE[rule].mandatory
    ]


def test_demo_stack_breaks_no_mandatory_rule(demo_plan):
    assert mandatory_violations(demo_plan) == []
    assert [v for rule in STACK_RULES for v in rule.check(stack_resources(demo_plan))] == []


def test_multi_group_stack_with_mps_breaks_no_mandatory_rule():
    """The MPS control daemon's privileged containers sit in the device plugin's namespace."""
    plan = run_stack("multi")
    assert len(plan.by_type(DAEMONSET)) == 2  # the plugin and the MPS control daemon
    assert mandatory_violations(plan) == []


def test_demo_stack_advisory_is_one_writable_root(demo_plan):
    advisories = {
        (typ, rule, message)
        for typ, inputs in resources(demo_plan)
        for rule, messages in violated(typ, inputs).items()
        for message in messages
    }
    assert {(typ, rule) for typ, rule, _ in advisories} == {
        # Upstream leaves the plugin container's root filesystem writable.
        (DAEMONSET, "containers-read-only-root"),
    }
    assert any("'nvidia-device-plugin'" in message for _, _, message in advisories)


# --- Breaking one input breaks one rule ----------------------------------------------------

PROBE = ("spec", "template", "spec", "containers", 0)
PLUGIN = ("spec", "template", "spec", "containers", 1)
#: The device plugin's node affinity expression that keeps it off Bottlerocket nodes.
EXCLUDES = ("spec", "template", "spec", "affinity", "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms", 0,
            "matchExpressions", 0)

# fmt: off
BREAKS = [
    # (rule, resource type, Kubernetes object name, input path, new value, words of the message)
    ("eks-authentication-mode-api", EKS_COMPONENT, None, ("authenticationMode",),
     "API_AND_CONFIG_MAP", "access entries"),
    ("eks-authentication-mode-api", EKS_CLUSTER, None, ("accessConfig", "authenticationMode"),
     "CONFIG_MAP", "aws-auth"),
    ("eks-private-endpoint", EKS_COMPONENT, None, ("endpointPrivateAccess",), False,
     "endpointPrivateAccess"),
    ("eks-private-endpoint", EKS_CLUSTER, None, ("vpcConfig", "endpointPrivateAccess"), DELETE,
     "endpointPrivateAccess"),
    ("eks-control-plane-logs", EKS_COMPONENT, None, ("enabledClusterLogTypes",),
     ["api", "authenticator"], "audit"),
    ("eks-control-plane-logs", EKS_CLUSTER, None, ("enabledClusterLogTypes",), DELETE,
     "api, audit, authenticator"),
    ("eks-secrets-encryption", EKS_COMPONENT, None, ("encryptionConfigKeyArn",), DELETE, "KMS"),
    ("eks-secrets-encryption", EKS_CLUSTER, None, ("encryptionConfig", "resources"), [], "KMS"),
    ("launch-template-imdsv2", LAUNCH_TEMPLATE, None, ("metadataOptions", "httpTokens"),
     "optional", "httpTokens"),
    ("launch-template-imdsv2", LAUNCH_TEMPLATE, None,
     ("metadataOptions", "httpPutResponseHopLimit"), 2, "node role"),
    ("launch-template-ebs-encrypted", LAUNCH_TEMPLATE, None,
     ("blockDeviceMappings", 0, "ebs", "encrypted"), "false", "/dev/xvda"),
    ("launch-template-no-key-pair", LAUNCH_TEMPLATE, None, ("keyName",), "ops", "SSH key"),
    ("node-group-no-ssh", NODE_GROUP, None, ("remoteAccess",), {"ec2SshKey": "ops"}, "SSH"),
    ("node-group-launch-template", NODE_GROUP, None, ("launchTemplate",), DELETE, "hop limit"),
    ("node-group-gpu-ami", NODE_GROUP, None, ("amiType",), "AL2023_x86_64_STANDARD",
     "no NVIDIA driver"),
    ("node-group-gpu-ami", NODE_GROUP, None, ("amiType",), "AL2_x86_64_GPU", "deprecated"),
    ("containers-least-privilege", DAEMONSET, "nvidia-device-plugin",
     (*PLUGIN, "securityContext", "allowPrivilegeEscalation"), True, "allowPrivilegeEscalation"),
    ("containers-least-privilege", DAEMONSET, "nvidia-device-plugin",
     (*PLUGIN, "securityContext", "capabilities", "drop"), [], "drop to [ALL]"),
    ("containers-least-privilege", DEPLOYMENT, conventions.VERIFICATION_APP,
     (*PROBE, "securityContext", "privileged"), True, "only the MPS control daemon's containers"),
    ("pods-no-host-namespaces", DEPLOYMENT, conventions.VERIFICATION_APP,
     ("spec", "template", "spec", "hostPID"), True, "only the MPS control daemon"),
    ("pods-no-host-namespaces", DAEMONSET, "nvidia-device-plugin",
     ("spec", "template", "spec", "hostPID"), True, "hostPID is true"),
    ("pods-no-host-namespaces", DAEMONSET, "nvidia-device-plugin",
     ("spec", "template", "spec", "hostNetwork"), True, "node's network namespace"),
    ("containers-resource-bounds", DEPLOYMENT, conventions.VERIFICATION_APP,
     (*PROBE, "resources", "limits", "memory"), DELETE, "resources.limits.memory"),
    ("containers-resource-bounds", DAEMONSET, "nvidia-device-plugin",
     ("spec", "template", "spec", "initContainers", 0, "resources", "requests"), {},
     "resources.requests.cpu, resources.requests.memory"),
    ("containers-pinned-images", DEPLOYMENT, conventions.VERIFICATION_APP, (*PROBE, "image"),
     "pytorch/pytorch", "no tag"),
    ("containers-pinned-images", DAEMONSET, "nvidia-device-plugin", (*PLUGIN, "image"),
     "nvcr.io/nvidia/k8s-device-plugin:latest", "latest"),
    ("containers-pinned-images", DEPLOYMENT, conventions.VERIFICATION_APP, (*PROBE, "image"),
     "registry.local:5000/probe", "no tag"),
    ("containers-read-only-root", DEPLOYMENT, conventions.VERIFICATION_APP,
     (*PROBE, "securityContext", "readOnlyRootFilesystem"), False, "readOnlyRootFilesystem"),
    ("device-plugin-off-host-plugin-nodes", DAEMONSET, "nvidia-device-plugin",
     ("spec", "template", "spec", "affinity"), DELETE, "NotIn ['BOTTLEROCKET_x86_64_NVIDIA']"),
    ("device-plugin-off-host-plugin-nodes", DAEMONSET, "nvidia-device-plugin",
     (*EXCLUDES, "values"), ["AL2_x86_64_GPU"], "host runs NVIDIA's device plugin itself"),
    ("device-plugin-off-host-plugin-nodes", DAEMONSET, "nvidia-device-plugin",
     (*EXCLUDES, "operator"), "In", "every required node affinity term"),
    ("pods-baseline", DEPLOYMENT, conventions.VERIFICATION_APP,
     (*PROBE, "securityContext", "capabilities", "add"), ["SYS_ADMIN"], "SYS_ADMIN"),
    ("pods-baseline", DAEMONSET, "nvidia-device-plugin",
     ("metadata", "namespace"), "default", "hostPath"),
    ("log-group-retention", LOG_GROUP, None, ("retentionInDays",), DELETE, "never expire"),
    ("namespace-pod-security", NAMESPACE, conventions.VERIFICATION_NAMESPACE,
     ("metadata", "labels", "pod-security.kubernetes.io/enforce"), DELETE, "restricted"),
    ("namespace-privileged-only-for-device-plugin", NAMESPACE,
     conventions.VERIFICATION_NAMESPACE,
     ("metadata", "labels", "pod-security.kubernetes.io/enforce"), "privileged", "hostPath"),
    ("autoscaler-image-pinned", DEPLOYMENT, "cluster-autoscaler",
     ("spec", "template", "spec", "containers", 0, "image"),
     "registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0", "not a Cluster Autoscaler release"),
    ("autoscaler-policy-documented", "aws:iam/rolePolicy:RolePolicy", None, ("policy",),
     '{"Statement": [{"Effect": "Allow", "Action": "autoscaling:*", "Resource": "*"}]}',
     "autoscaling:* go beyond"),
]
# fmt: on


#: The node rules hold for the system node group too; the GPU AMI rule is the GPU groups'.
CASES = [(*b, "GpuNodeGroup") for b in BREAKS] + [
    (*b, "SystemNodeGroup")
    for b in BREAKS
    if b[1] in (NODE_GROUP, LAUNCH_TEMPLATE) and b[0] != "node-group-gpu-ami"
]


@pytest.mark.parametrize(
    ("rule", "typ", "name", "path", "value", "words", "under"),
    CASES,
    ids=[f"{c[0]}-{'.'.join(map(str, c[3][-2:]))}-{c[1].rsplit(':', 1)[-1]}-{c[6]}" for c in CASES],
)
def test_breaking_one_input_breaks_exactly_that_rule(
    demo_plan, rule, typ, name, path, value, words, under
):
    before = inputs_of(demo_plan, typ, name, under)
    after = changed(before, path, value)
    found = violated(typ, after)
    assert set(found) - set(violated(typ, before)) == {rule}
    assert any(words in message for message in found[rule]), found[rule]


def test_the_gpu_ami_rule_leaves_the_system_group_alone(demo_plan):
    """Its t3.small has no GPU: the standard AMI is right for it."""
    group = inputs_of(demo_plan, NODE_GROUP, under="SystemNodeGroup")
    assert group["amiType"] == "AL2023_x86_64_STANDARD"
    assert "node-group-gpu-ami" not in violated(NODE_GROUP, group)


def test_host_pid_is_allowed_only_for_the_mps_control_daemon_in_the_plugin_namespace():
    """Upstream runs the daemon with hostPID (chart v0.20.0, ``mps.enableHostPID: true``)."""
    mps = inputs_of(run_stack("multi"), DAEMONSET, "nvidia-device-plugin-mps-control-daemon")
    assert mps["spec"]["template"]["spec"]["hostPID"] is True
    assert "pods-no-host-namespaces" not in violated(DAEMONSET, mps)
    elsewhere = changed(mps, ("metadata", "namespace"), "default")
    assert "hostPID" in violated(DAEMONSET, elsewhere)["pods-no-host-namespaces"][0]
    ipc = changed(mps, ("spec", "template", "spec", "hostIPC"), True)
    assert "hostIPC" in violated(DAEMONSET, ipc)["pods-no-host-namespaces"][0]


def test_host_pid_is_allowed_only_when_every_container_is_the_mps_daemon_pods_own():
    """hostPID is pod-wide: upstream's pod (chart v0.20.0,
    templates/daemonset-mps-control-daemon.yml) has four containers, all the device plugin
    image running ``mps-control-daemon [mount-shm]`` or ``config-manager``; an extra
    container, another image or extra arguments would run in the node's PID namespace."""
    mps = inputs_of(run_stack("multi"), DAEMONSET, "nvidia-device-plugin-mps-control-daemon")
    pod = ("spec", "template", "spec")
    containers = mps["spec"]["template"]["spec"]["containers"]
    daemon = next(c for c in containers if c["command"] == ["mps-control-daemon"])
    nsenter = {**daemon, "name": "debug", "command": ["sh", "-c", "nsenter -t 1 -a sh"]}
    init = mps["spec"]["template"]["spec"]["initContainers"]
    for broken in (
        changed(mps, (*pod, "containers"), [*containers, nsenter]),
        changed(mps, (*pod, "initContainers"), [*init, nsenter]),
        changed(mps, (*pod, "containers", containers.index(daemon), "image"), "evil:1"),
        changed(
            mps,
            (*pod, "initContainers", 0, "image"),
            "nvcr.io/nvidia/k8s-device-plugin-fork:v0.20.0",
        ),
        changed(mps, (*pod, "containers", 0, "args"), ["--evil"]),
    ):
        found = violated(DAEMONSET, broken)["pods-no-host-namespaces"]
        assert "only the MPS control daemon" in found[0]


def test_every_rule_has_a_breaking_case():
    tested = {b[0] for b in BREAKS} | {
        "eks-public-endpoint-restricted",
        "no-orphaned-aws-resources",
    }
    assert tested == set(RULE)


def test_public_endpoint_open_to_everyone_is_advised_against(demo_plan):
    check = RULE["eks-public-endpoint-restricted"].check
    component = inputs_of(demo_plan, EKS_COMPONENT)
    assert check(EKS_COMPONENT, component) == []  # the demo opens it to no one by default
    opened = changed(component, ("publicAccessCidrs",), ["0.0.0.0/0"])
    assert "0.0.0.0/0" in check(EKS_COMPONENT, opened)[0]
    narrowed = changed(component, ("publicAccessCidrs",), ["203.0.113.7/32"])
    assert check(EKS_COMPONENT, narrowed) == []
    # Without CIDRs EKS opens the public endpoint to everyone.
    assert check(EKS_COMPONENT, changed(narrowed, ("publicAccessCidrs",), DELETE))
    private_only = changed(component, ("endpointPublicAccess",), False)
    assert check(EKS_COMPONENT, private_only) == []
    child = inputs_of(demo_plan, EKS_CLUSTER)
    assert check(EKS_CLUSTER, changed(child, ("vpcConfig", "publicAccessCidrs"), ["::/0"]))


def test_a_pulumi_eks_component_without_inputs_is_left_to_its_child():
    """A real engine gets no inputs for pulumi-eks's component; its aws:eks child is checked."""
    assert violated(EKS_COMPONENT, {}) == {}
    assert set(violated(EKS_CLUSTER, {})) >= {
        "eks-authentication-mode-api",
        "eks-private-endpoint",
        "eks-control-plane-logs",
        "eks-secrets-encryption",
    }


def test_every_pod_controller_kind_is_looked_into(demo_plan):
    template = inputs_of(demo_plan, DEPLOYMENT, "gpu-sharing-verification")["spec"]["template"]
    cronjob = {
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": template}}},
    }
    assert violated(CRONJOB, cronjob) == {}
    broken = changed(cronjob, ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0,
                               "image"), "pytorch/pytorch:latest")  # fmt: skip
    assert set(violated(CRONJOB, broken)) == {"containers-pinned-images"}


def test_load_balancers_and_volumes_that_outlive_destroy_are_advised_against(demo_plan):
    deployment = inputs_of(demo_plan, DEPLOYMENT, "gpu-sharing-verification")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": deployment["metadata"],
        "spec": {
            "type": "ClusterIP",
            "selector": deployment["spec"]["selector"]["matchLabels"],
            "ports": [{"port": 80}],
        },
    }
    assert violated(SERVICE, service) == {}
    exposed = violated(SERVICE, changed(service, ("spec", "type"), "LoadBalancer"))
    assert set(exposed) == {"no-orphaned-aws-resources"}
    assert "block deleting the VPC" in exposed["no-orphaned-aws-resources"][0]
    claim = {
        "metadata": deployment["metadata"],
        "spec": {"resources": {"requests": {"storage": "1Gi"}}},
    }
    assert set(violated(PVC, claim)) == {"no-orphaned-aws-resources"}
    stateful = changed(deployment, ("spec", "volumeClaimTemplates"), [claim])
    assert set(violated(STATEFUL_SET, stateful)) == {"no-orphaned-aws-resources"}


def test_extra_policies_on_a_node_role_are_advised_against(demo_plan):
    (rule,) = [r for r in STACK_RULES if r.name == "node-role-worker-policies-only"]
    resources = stack_resources(demo_plan)
    role = next(r for r in resources if r.type == ROLE
                and "ec2.amazonaws.com" in r.props["assumeRolePolicy"])
    attachment = next(r for r in resources if r.type == ROLE_POLICY_ATTACHMENT
                      and role.urn in r.dependencies)
    admin = StackResource(
        attachment.urn.replace(attachment.urn.rsplit("::", 1)[1], "admin"),
        ROLE_POLICY_ATTACHMENT,
        {**attachment.props, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        attachment.dependencies,
    )
    assert role.urn in admin.dependencies
    ((urn, message),) = rule.check([*resources, admin])
    assert urn == admin.urn and "AdministratorAccess" in message
    # The same policy on a role EC2 cannot assume (e.g. the EKS service role) is not ours to judge.
    service_role = StackResource(
        role.urn.replace(role.urn.rsplit("::", 1)[1], "eks-service"),
        ROLE,
        {"assumeRolePolicy": role.props["assumeRolePolicy"].replace("ec2.", "eks.")},
        (),
    )
    elsewhere = StackResource(
        admin.urn + "-2", ROLE_POLICY_ATTACHMENT, admin.props, (service_role.urn,)
    )
    assert rule.check([*resources, admin, service_role, elsewhere]) == [(urn, message)]


def test_security_doc_lists_every_rule_with_its_level():
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (mandatory|advisory) \|", text, re.MULTILINE))
    levels = {r.name: "mandatory" if r.mandatory else "advisory" for r in (*RULES, *STACK_RULES)}
    assert rows == levels


def test_every_g4dn_type_we_deploy_is_recognised_as_a_gpu_instance():
    assert all(is_nvidia_gpu_instance(t) for t in catalog.G4DN)
    assert not is_nvidia_gpu_instance("m6i.large") and not is_nvidia_gpu_instance("g4ad.xlarge")


# --- The pack itself ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulumi_policy():
    return pytest.importorskip(
        "pulumi_policy",
        reason="pulumi-policy is not installed (pip install 'pulumi-policy>=1.21,<2')",
    )


def test_pack_declares_every_rule_with_its_enforcement_level(pulumi_policy):
    pack = importlib.import_module("policy.__main__")
    levels = {p.name: p.enforcement_level for p in pack.POLICIES}
    expected = {
        r.name: pulumi_policy.EnforcementLevel.MANDATORY
        if r.mandatory
        else pulumi_policy.EnforcementLevel.ADVISORY
        for r in (*RULES, *STACK_RULES)
    }
    assert levels == expected
    assert {type(p).__name__ for p in pack.POLICIES} == {
        "ResourceValidationPolicy",
        "StackValidationPolicy",
    }


@pytest.fixture(scope="module")
def analyzer(pulumi_policy) -> Iterator[Any]:
    """The pack started as the Pulumi CLI starts it, serving over gRPC on a local port."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    process = subprocess.Popen(
        # The engine address is only parsed; the pack prints the port it serves on.
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(ROOT / "policy")],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def analyze(analyzer: Any, typ: str, inputs: dict[str, Any]) -> list[Any]:
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    properties = struct_pb2.Struct()
    properties.update(inputs)
    urn = f"urn:pulumi:dev::eks-gpu-sharing::{typ}::test"
    request = analyzer_pb2.AnalyzeRequest(type=typ, properties=properties, urn=urn, name="test")
    return list(analyzer.Analyze(request).diagnostics)


def test_pack_serves_its_policies_to_the_engine(analyzer):
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "eks-gpu-sharing"
    mandatory = {p.name for p in info.policies if p.enforcementLevel == analyzer_pb2.MANDATORY}
    assert mandatory == {r.name for r in (*RULES, *STACK_RULES) if r.mandatory}


def test_pack_blocks_a_launch_template_without_imdsv2(analyzer, demo_plan):
    from pulumi.runtime.proto import analyzer_pb2

    template = inputs_of(demo_plan, LAUNCH_TEMPLATE)
    assert analyze(analyzer, LAUNCH_TEMPLATE, template) == []
    broken = changed(template, ("metadataOptions", "httpTokens"), "optional")
    (diagnostic,) = analyze(analyzer, LAUNCH_TEMPLATE, broken)
    assert diagnostic.policyName == "launch-template-imdsv2"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "httpTokens" in diagnostic.message


def test_pack_passes_the_demo_kubernetes_objects(analyzer, demo_plan):
    for resource in demo_plan.resources:
        if resource["type"].startswith("kubernetes:") or resource["type"] == NODE_GROUP:
            diagnostics = analyze(analyzer, resource["type"], resource["inputs"])
            assert all(d.policyName == "containers-read-only-root" for d in diagnostics)


# --- The Cluster Autoscaler -------------------------------------------------------------------


def test_the_autoscaler_image_must_be_a_release_of_the_table(demo_plan):
    deployment = inputs_of(demo_plan, DEPLOYMENT, "cluster-autoscaler")
    assert violated(DEPLOYMENT, deployment) == {}
    image = ("spec", "template", "spec", "containers", 0, "image")
    for unlisted in ("registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0",
                     "registry.k8s.io/autoscaling/cluster-autoscaler:latest"):
        found = violated(DEPLOYMENT, changed(deployment, image, unlisted))
        assert "autoscaler-image-pinned" in found, unlisted


def test_the_autoscaler_policy_grants_only_its_documented_actions(demo_plan):
    policy = inputs_of(demo_plan, "aws:iam/rolePolicy:RolePolicy")
    assert violated("aws:iam/rolePolicy:RolePolicy", policy) == {}
    document = json.loads(policy["policy"])
    for extra in ("autoscaling:*", "ec2:TerminateInstances", "*"):
        widened = json.loads(json.dumps(document))
        widened["Statement"][0]["Action"].append(extra)
        found = violated("aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps(widened)})
        assert extra in found["autoscaler-policy-documented"][0]
    # A policy that grants no Auto Scaling action is not the autoscaler's.
    other = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    assert violated("aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps(other)}) == {}


def test_scaling_permissions_on_a_node_role_are_refused(demo_plan):
    (rule,) = [r for r in STACK_RULES if r.name == "autoscaler-pod-identity-role"]
    resources = stack_resources(demo_plan)
    assert rule.check(resources) == []
    node_role = next(r for r in resources if r.type == ROLE
                     and "ec2.amazonaws.com" in r.props["assumeRolePolicy"])
    policy = next(r for r in resources if r.type == "aws:iam/rolePolicy:RolePolicy")
    on_node_role = StackResource(policy.urn + "-node", policy.type, policy.props,
                                 (node_role.urn,))
    ((urn, message),) = rule.check([*resources, on_node_role])
    assert urn == on_node_role.urn and "never the node role" in message


def test_scaling_permissions_held_any_way_by_a_node_role_are_refused(demo_plan):
    """A managed Policy attached to the node role, or an inline policy of the node role."""
    (rule,) = [r for r in STACK_RULES if r.name == "autoscaler-pod-identity-role"]
    resources = stack_resources(demo_plan)
    node_role = next(r for r in resources if r.type == ROLE
                     and "ec2.amazonaws.com" in r.props["assumeRolePolicy"])
    document = next(r for r in resources if r.type == "aws:iam/rolePolicy:RolePolicy").props[
        "policy"]
    managed = StackResource(node_role.urn + "-scaling", "aws:iam/policy:Policy",
                            {"policy": document}, ())
    attached = StackResource(node_role.urn + "-attach", ROLE_POLICY_ATTACHMENT,
                             {"policyArn": "arn:aws:iam::123456789012:policy/scaling"},
                             (node_role.urn, managed.urn))
    ((urn, _),) = rule.check([*resources, managed, attached])
    assert urn == managed.urn
    inline = StackResource(node_role.urn, ROLE, {**node_role.props, "inlinePolicies": [
        {"name": "scaling", "policy": document}]}, node_role.dependencies)
    others = [r for r in resources if r.urn != node_role.urn]
    ((urn, _),) = rule.check([*others, inline])
    assert urn == node_role.urn
    # The same document is within the documented policy wherever it is held.
    for typ, props in (("aws:iam/policy:Policy", managed.props), (ROLE, inline.props)):
        assert "autoscaler-policy-documented" not in violated(typ, props)
    wide = {**managed.props, "policy": document.replace("autoscaling:SetDesiredCapacity",
                                                         "autoscaling:*")}
    assert "autoscaler-policy-documented" in violated("aws:iam/policy:Policy", wide)
