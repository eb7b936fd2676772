"""``pulumi destroy`` removes everything in a safe order; config changes update, not replace.

Pulumi deletes a resource only after everything that depends on it: its dependents
(``dependencies``), its children (``parent``) and whatever it is the provider of. The
plan records those edges exactly as the engine receives them, so the destroy order and
the input changes of an update are read from it without touching AWS; whether the
Kubernetes provider updates or replaces a changed object is its own rule, mirrored below.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import pytest

from components import conventions
from components.tools.critical_path import needs
from components.tools.plan import Plan
from tests.conftest import plan_scope, run_stack

EKS = "eks:index:Cluster"
KMS_KEY = "aws:kms/key:Key"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_PROVIDER = "pulumi:providers:kubernetes"
#: Resources a GPU-sharing config change must leave alone: replacing any of them means
#: new nodes, a new control plane or lost encrypted secrets.
INFRASTRUCTURE = (
    EKS,
    KMS_KEY,
    NODE_GROUP,
    LAUNCH_TEMPLATE,
    "aws:iam/role:Role",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    K8S_PROVIDER,
)
#: NodeGroup inputs the AWS provider marks ForceNew (terraform-provider-aws,
#: internal/service/eks/node_group.go): changing any replaces the group, i.e. new nodes.
#: Scaling, labels, taints, update config, tags and the launch template version update
#: in place.
NODE_GROUP_FORCE_NEW = (
    "amiType",
    "capacityType",
    "clusterName",
    "diskSize",
    "instanceTypes",
    "launchTemplate.id",
    "launchTemplate.name",
    "nodeGroupName",
    "nodeGroupNamePrefix",
    "nodeRoleArn",
    "remoteAccess",
    "subnetIds",
)


def transitive(plan: Plan) -> dict[str, set[str]]:
    """Every URN each resource depends on, directly or not."""
    direct = {r["urn"]: needs(r) for r in plan.resources}
    closure: dict[str, set[str]] = {}

    def visit(urn: str) -> set[str]:
        if urn not in closure:
            closure[urn] = set()
            for dependency in direct.get(urn, ()):
                closure[urn] |= {dependency} | visit(dependency)
        return closure[urn]

    for urn in direct:
        visit(urn)
    return closure


def destroy_waves(plan: Plan) -> list[list[str]]:
    """Reverse topological order in waves: each wave can go once the earlier ones are gone."""
    remaining = {
        r["urn"]: needs(r) & {x["urn"] for x in plan.resources} for r in plan.resources
    }
    waves = []
    while remaining:
        needed = set().union(*remaining.values())
        wave = [urn for urn in remaining if urn not in needed]
        assert wave, f"dependency cycle among {sorted(remaining)}"
        waves.append(wave)
        for urn in wave:
            del remaining[urn]
    return waves


@pytest.fixture(scope=plan_scope)
def closure(demo_plan):
    return transitive(demo_plan)


@pytest.fixture(scope=plan_scope)
def wave_of(demo_plan):
    return {urn: i for i, wave in enumerate(destroy_waves(demo_plan)) for urn in wave}


def urn_of(plan: Plan, typ: str, under: str | None = None) -> str:
    return plan.one(typ, under)["urn"]


def plugin_configmap(plan: Plan) -> str:
    (urn,) = [
        r["urn"]
        for r in plan.by_type(CONFIGMAP)
        if r["inputs"]["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME
    ]
    return urn


def test_every_kubernetes_object_goes_before_the_cluster(demo_plan, closure, wave_of):
    """Through the explicit provider, built from the cluster's kubeconfig."""
    eks, provider = urn_of(demo_plan, EKS), urn_of(demo_plan, K8S_PROVIDER)
    objects = [r["urn"] for r in demo_plan.resources if r["type"].startswith("kubernetes:")]
    assert objects
    for urn in objects:
        assert {provider, eks} <= closure[urn], urn
        assert wave_of[urn] < wave_of[provider] < wave_of[eks]


def test_workload_goes_before_the_plugin_before_the_nodes(demo_plan, closure, wave_of):
    """Pods are deleted while their nodes still run, and the nodes before the cluster."""
    (workload,) = [r["urn"] for r in demo_plan.by_type(DEPLOYMENT)
                   if r["name"] == "gpu-sharing-verification-pods"]
    chain = [
        workload,
        urn_of(demo_plan, DAEMONSET),
        urn_of(demo_plan, NODE_GROUP, "GpuNodeGroup"),
        urn_of(demo_plan, EKS),
        urn_of(demo_plan, KMS_KEY),
    ]
    for later, earlier in zip(chain, chain[1:], strict=False):
        assert earlier in closure[later], f"{later} does not depend on {earlier}"
        assert wave_of[later] < wave_of[earlier]


def test_namespaces_go_after_everything_in_them(demo_plan, wave_of):
    namespaces = {r["inputs"]["metadata"]["name"]: r["urn"] for r in demo_plan.by_type(NAMESPACE)}
    for resource in demo_plan.resources:
        namespace = resource["inputs"].get("metadata", {}).get("namespace")
        if resource["type"].startswith("kubernetes:") and namespace:
            assert wave_of[resource["urn"]] < wave_of[namespaces[namespace]], resource["urn"]


#: What `destroy` must delete before what, in the demo (first, then, why). Nothing else is
#: ordered: `up` gives each Kubernetes object only the edges it needs (the namespace, RBAC
#: and ConfigMaps wait for the cluster alone), and `destroy` runs the same edges backwards.
#: The Cluster Autoscaler's Deployment has no edge to the GPU node groups it resizes: nothing
#: depends on it, so `destroy` deletes it first, but only its own edges are required here
#: (the system node group it runs on among them).
REQUIRED_DESTROY_ORDER = [
    ("Deployment gpu-sharing-verification-pods", "DaemonSet gpu-sharing-device-plugin-ds",
     "up creates the pods once the plugin runs (to await slices); destroy reverses it"),
    ("Deployment gpu-sharing-verification-pods", "NodeGroup gpu-sharing-gpu-ng",
     "GPU pods end (SIGTERM) while their node still runs, not orphaned on a vanished node"),
    ("Deployment gpu-sharing-verification-pods", "Namespace gpu-sharing-verification-ns",
     "an object goes before its namespace, which would otherwise delete it behind Pulumi"),
    ("ConfigMap gpu-sharing-verification-program", "Namespace gpu-sharing-verification-ns",
     "the same: the probe program lives in the namespace"),
    ("Deployment gpu-sharing-verification-no-slice", "NodeGroup gpu-sharing-gpu-ng",
     "as the probes: the pod without a slice ends while its GPU node still runs"),
    ("Deployment gpu-sharing-verification-no-slice", "Namespace gpu-sharing-verification-ns",
     "an object goes before its namespace"),
    ("NetworkPolicy gpu-sharing-verification-deny-all", "Namespace gpu-sharing-verification-ns",
     "the same"),
    ("DaemonSet gpu-sharing-device-plugin-ds", "NodeGroup gpu-sharing-gpu-ng",
     "the plugin pods end while their nodes run (up awaits the plugin on those nodes)"),
    ("DaemonSet gpu-sharing-device-plugin-ds", "ServiceAccount gpu-sharing-device-plugin-sa",
     "running plugin pods use their service account, RBAC and config until they end"),
    ("DaemonSet gpu-sharing-device-plugin-ds",
     "ClusterRoleBinding gpu-sharing-device-plugin-binding",
     "the same: the plugin reads its node through this binding"),
    ("DaemonSet gpu-sharing-device-plugin-ds",
     "ConfigMap gpu-sharing-device-plugin-sharing-configmap",
     "the same: the config-manager sidecar reads the sharing config"),
    ("ConfigMap gpu-sharing-device-plugin-sharing-configmap",
     "Namespace gpu-sharing-device-plugin-ns", "an object goes before its namespace"),
    ("Namespace gpu-sharing-verification-ns", "kubernetes gpu-sharing-cluster-k8s",
     "every Kubernetes object is deleted through the provider, i.e. the API server"),
    ("Namespace gpu-sharing-device-plugin-ns", "kubernetes gpu-sharing-cluster-k8s",
     "the same"),
    ("ClusterRole gpu-sharing-device-plugin-role", "kubernetes gpu-sharing-cluster-k8s",
     "the same"),
    ("ValidatingAdmissionPolicy gpu-sharing-admission-policy",
     "kubernetes gpu-sharing-cluster-k8s", "the same"),
    ("Deployment gpu-sharing-autoscaler-deployment",
     "PodIdentityAssociation gpu-sharing-autoscaler-aws-association",
     "the autoscaler's pod gets its AWS credentials through the association until it ends"),
    ("Deployment gpu-sharing-autoscaler-deployment",
     "Addon gpu-sharing-cluster-pod-identity-agent",
     "the same: the agent on its node hands the credentials out"),
    ("PodIdentityAssociation gpu-sharing-autoscaler-aws-association",
     "RolePolicy gpu-sharing-autoscaler-aws-policy",
     "the role keeps its permissions while its credentials are handed out"),
    ("PodIdentityAssociation gpu-sharing-autoscaler-aws-association",
     "Role gpu-sharing-autoscaler-aws-role", "the association names the role"),
    ("Deployment gpu-sharing-autoscaler-deployment", "ServiceAccount gpu-sharing-autoscaler-sa",
     "a running autoscaler uses its service account and RBAC until it ends"),
    ("Deployment gpu-sharing-autoscaler-deployment",
     "ClusterRoleBinding gpu-sharing-autoscaler-binding",
     "the same: it watches pods and nodes through this binding"),
    ("Deployment gpu-sharing-autoscaler-deployment",
     "RoleBinding gpu-sharing-autoscaler-status-binding",
     "the same: it writes its status ConfigMap through this binding"),
    ("Deployment gpu-sharing-autoscaler-deployment", "Namespace gpu-sharing-autoscaler-ns",
     "an object goes before its namespace"),
    ("Namespace gpu-sharing-autoscaler-ns", "kubernetes gpu-sharing-cluster-k8s",
     "every Kubernetes object is deleted through the provider"),
    ("Deployment gpu-sharing-autoscaler-deployment", "NodeGroup gpu-sharing-system-ng",
     "the autoscaler ends on its system node, not left Pending while destroy runs"),
    ("NodeGroup gpu-sharing-system-ng", "Cluster gpu-sharing-cluster-eks",
     "EKS refuses to delete a cluster that still has node groups (ResourceInUseException)"),
    ("NodeGroup gpu-sharing-system-ng", "Role gpu-sharing-system-role",
     "the nodes run with the role until they are gone"),
    ("NodeGroup gpu-sharing-system-ng", "LaunchTemplate gpu-sharing-system-lt",
     "the group's instances are launched from the template"),
    ("ClusterRole gpu-sharing-autoscaler-role", "kubernetes gpu-sharing-cluster-k8s",
     "the same"),
    ("Tag gpu-sharing-gpu-asg-resources/nvidia.com/gpu", "NodeGroup gpu-sharing-gpu-ng",
     "the node-template tags are on the group's Auto Scaling group, which EKS deletes with it"),
    ("kubernetes gpu-sharing-cluster-k8s", "Cluster gpu-sharing-cluster-eks",
     "the provider's kubeconfig is the cluster's"),
    ("NodeGroup gpu-sharing-gpu-ng", "Command gpu-sharing-cluster-logging-off-before-delete",
     "logging goes off after the node groups (docs/security.md): whether EKS refuses a "
     "node-group delete during a logging update is undocumented"),
    ("Command gpu-sharing-cluster-logging-off-before-delete", "Cluster gpu-sharing-cluster-eks",
     "logging off must run while the cluster exists"),
    ("NodeGroup gpu-sharing-gpu-ng", "Cluster gpu-sharing-cluster-eks",
     "EKS refuses to delete a cluster that still has node groups (ResourceInUseException)"),
    ("NodeGroup gpu-sharing-gpu-ng", "Role gpu-sharing-gpu-role",
     "the nodes run with the role until they are gone"),
    ("NodeGroup gpu-sharing-gpu-ng", "LaunchTemplate gpu-sharing-gpu-lt",
     "the group's instances are launched from the template"),
    ("Cluster gpu-sharing-cluster-eks", "Key gpu-sharing-cluster-secrets",
     "the cluster's secrets are encrypted with the key until the cluster is gone"),
    ("Cluster gpu-sharing-cluster-eks", "LogGroup gpu-sharing-cluster-logs",
     "EKS writes control-plane logs there until the cluster is gone"),
]  # fmt: skip


@pytest.mark.parametrize(("first", "then", "why"), REQUIRED_DESTROY_ORDER)
def test_destroy_deletes_in_the_required_order(demo_plan, wave_of, first, then, why):
    named = {
        f"{r['type'].rsplit(':', 1)[-1]} {r['name']}": r["urn"] for r in demo_plan.resources
    }
    assert wave_of[named[first]] < wave_of[named[then]], why


def test_nothing_creates_aws_resources_outside_the_state(demo_plan):
    """No load balancer, volume or ENI that Kubernetes would make and destroy could orphan."""
    for resource in demo_plan.resources:
        inputs = resource["inputs"]
        assert resource["type"] != "kubernetes:core/v1:PersistentVolumeClaim"
        assert resource["type"] != "kubernetes:networking.k8s.io/v1:Ingress"
        if resource["type"] == "kubernetes:core/v1:Service":
            assert inputs.get("spec", {}).get("type") != "LoadBalancer"


# --- Updates ----------------------------------------------------------------------------


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where two input trees differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(set(before) | set(after))
            for change in differences(
                before.get(key), after.get(key), f"{path}.{key}" if path else key
            )
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            change
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for change in differences(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [path]


def diff(before: Plan, after: Plan) -> dict[str, list[str]]:
    """URN -> changed input paths, for the resources whose inputs changed."""
    old = {r["urn"]: r for r in before.resources}
    new = {r["urn"]: r for r in after.resources}
    assert old.keys() == new.keys(), "a config change must not create or delete resources"
    changes = {urn: differences(old[urn]["inputs"], new[urn]["inputs"]) for urn in old}
    return {urn: paths for urn, paths in changes.items() if paths}


def types_of(plan: Plan, urns: Iterable[str]) -> set[str]:
    by_urn = {r["urn"]: r["type"] for r in plan.resources}
    return {by_urn[urn] for urn in urns}


#: (before, after) config of each update; the pod count stays 3 so that both fit.
UPDATES = {
    "replicas": ("timeSlicingReplicas=5", "timeSlicingReplicas=3"),
    "version": ("devicePluginVersion=v0.20.0", "devicePluginVersion=v0.19.3"),
}


@functools.cache
def updated(kind: str) -> tuple[Plan, Plan, dict[str, list[str]]]:
    first, second = UPDATES[kind]
    before = run_stack("dev", ["verificationPods=3", first])
    after = run_stack("dev", ["verificationPods=3", second])
    return before, after, diff(before, after)


@pytest.fixture(params=sorted(UPDATES))
def update(request) -> tuple[Plan, Plan, dict[str, list[str]]]:
    return updated(request.param)


def node_template_changes(plan: Plan, changes: dict[str, list[str]]) -> set[str]:
    """The node group and its Auto Scaling group tags, where only the Cluster Autoscaler's
    node template changed: the slices a node adds (node_template.py). Tags update in place:
    a NodeGroup's are not ForceNew (NODE_GROUP_FORCE_NEW), nor an autoscaling.Tag's value
    (terraform-provider-aws internal/service/autoscaling/group_tag.go: key and group name
    are)."""
    template = "tags.k8s.io/cluster-autoscaler/node-template/"
    types = {r["urn"]: r["type"] for r in plan.resources}
    return {
        urn for urn, paths in changes.items()
        if (types[urn] == NODE_GROUP and all(p.startswith(template) for p in paths))
        or (types[urn] == "aws:autoscaling/tag:Tag" and paths == ["tag.value"])
    }  # fmt: skip


def test_a_sharing_change_touches_only_the_configmap_the_plugin_and_the_node_template(update):
    before, _, changes = update
    assert urn_of(before, DAEMONSET) in changes
    assert set(changes) <= {
        plugin_configmap(before), urn_of(before, DAEMONSET),
        *node_template_changes(before, changes),
    }  # fmt: skip


def test_a_replica_change_updates_the_slices_the_autoscaler_counts():
    before, _, changes = updated("replicas")
    assert changes[urn_of(before, NODE_GROUP, "GpuNodeGroup")] == [
        "tags.k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"]
    assert len(node_template_changes(before, changes)) == 2  # the group and its ASG's tag


def test_the_plugin_daemonset_rolls_in_place(update):
    """Only its labels and pod template change; the selector, which is immutable, does not."""
    before, _, changes = update
    (daemonset,) = [urn for urn in changes if urn == urn_of(before, DAEMONSET)]
    for path in changes[daemonset]:
        assert path.startswith(("spec.template.", "metadata.labels.")), path


def test_the_replica_change_rewrites_the_config_and_rolls_the_plugin_with_its_hash():
    before, _, changes = updated("replicas")
    assert changes[plugin_configmap(before)] == ["data.default"]
    assert changes[urn_of(before, DAEMONSET)] == [
        "spec.template.metadata.annotations.eks-gpu-sharing/config-hash"
    ]


#: Inputs pulumi-kubernetes replaces an object for, by kind, besides ``metadata.name`` and
#: ``metadata.namespace`` (pulumi/pulumi-kubernetes provider/pkg/provider/diff.go,
#: ``forceNew`` and ``metadataForceNewProperties``), for the kinds we create.
KUBERNETES_FORCE_NEW = {
    "DaemonSet": ("spec.selector",),
    "Deployment": ("spec.selector",),
    "ClusterRoleBinding": ("roleRef",),
}


def kubernetes_force_new(kind: str, inputs: dict[str, Any], provider: dict[str, Any]) -> tuple:
    """diff.go ``forceNewProperties``: a ConfigMap's data and binaryData too, unless the
    provider sets enableConfigMapMutable and the ConfigMap is not ``immutable``."""
    fields = ("metadata.name", "metadata.namespace", *KUBERNETES_FORCE_NEW.get(kind, ()))
    mutable = provider.get("enableConfigMapMutable") == "true" and not inputs.get("immutable")
    if kind == "ConfigMap" and not mutable:
        fields += ("binaryData", "data")
    return fields


def kubernetes_change(
    kind: str, old: dict[str, Any], new: dict[str, Any], provider: dict[str, Any]
) -> str:
    """What ``pulumi up`` does to a changed object, as pulumi-kubernetes decides it.

    provider.go ``Diff``: a change under a force-new field replaces the object, and the
    replacement deletes the old object first (``deleteBeforeReplace``) when it keeps the
    same user-set name and namespace; otherwise the new one is created first.
    """
    forced = kubernetes_force_new(kind, new, provider)
    replaces = [
        path for path in differences(old, new)
        if any(path == f or path.startswith((f"{f}.", f"{f}[")) for f in forced)
    ]  # fmt: skip
    if not replaces:
        return "update"
    same = all(old["metadata"].get(k) == new["metadata"].get(k) for k in ("name", "namespace"))
    return "delete, then create" if new["metadata"].get("name") and same else "create, then delete"


def test_the_replace_rule_mirrors_the_provider():
    """The ConfigMap cases of pulumi-kubernetes provider/pkg/provider/diff_test.go, and a
    DaemonSet selector (immutable in Kubernetes, so the provider replaces)."""
    old = {"metadata": {"name": "c", "namespace": "n"}, "data": {"k": "1"}}
    new = {**old, "data": {"k": "2"}}
    assert kubernetes_change("ConfigMap", old, new, {}) == "delete, then create"
    mutable = {"enableConfigMapMutable": "true"}
    assert kubernetes_change("ConfigMap", old, new, mutable) == "update"
    frozen = {**new, "immutable": True}
    assert kubernetes_change("ConfigMap", old, frozen, mutable) == "delete, then create"
    renamed = {**new, "metadata": {"name": "c2", "namespace": "n"}}
    assert kubernetes_change("ConfigMap", old, renamed, {}) == "create, then delete"
    selector = {"spec": {"selector": {"matchLabels": {"a": "1"}}}, "metadata": old["metadata"]}
    moved = {**selector, "spec": {"selector": {"matchLabels": {"a": "2"}}}}
    assert kubernetes_change("DaemonSet", selector, moved, mutable) == "delete, then create"


def test_every_changed_kubernetes_object_is_updated_in_place(update):
    """Our provider sets enableConfigMapMutable, so the plugin's ConfigMap is patched and the
    plugin pods roll on the new hash; without it, its fixed name makes the provider delete
    the config the running plugin reads before it creates the new one."""
    before, after, changes = update
    provider = before.one(K8S_PROVIDER)["inputs"]
    old = {r["urn"]: r for r in before.resources}
    new = {r["urn"]: r for r in after.resources}
    kubernetes = [urn for urn in changes if old[urn]["type"].startswith("kubernetes:")]
    assert kubernetes
    for urn in kubernetes:
        kind = old[urn]["type"].rsplit(":", 1)[-1]
        change = kubernetes_change(kind, old[urn]["inputs"], new[urn]["inputs"], provider)
        assert change == "update", (urn, change)
    configmap = plugin_configmap(before)
    if configmap in changes:
        without = {k: v for k, v in provider.items() if k != "enableConfigMapMutable"}
        assert (
            kubernetes_change(
                "ConfigMap", old[configmap]["inputs"], new[configmap]["inputs"], without
            )
            == "delete, then create"
        )


def test_infrastructure_is_left_alone(update):
    """Bar the node-template tags, which update in place."""
    before, _, changes = update
    untouched = set(changes) - node_template_changes(before, changes)
    assert not types_of(before, untouched) & set(INFRASTRUCTURE)


def test_no_node_group_input_that_forces_replacement_changes(update):
    before, after, _ = update
    old, new = (
        before.one(NODE_GROUP, "GpuNodeGroup")["inputs"],
        after.one(NODE_GROUP, "GpuNodeGroup")["inputs"],
    )
    changed = differences(old, new)
    for field in NODE_GROUP_FORCE_NEW:
        assert not any(p == field or p.startswith(f"{field}.") or p.startswith(f"{field}[")
                       for p in changed), field  # fmt: skip


def test_a_new_instance_type_does_replace_the_node_group(demo_plan):
    """The contrast: this is a ForceNew input, so the change means new nodes."""
    bigger = run_stack("dev", ["gpuInstanceType=g4dn.2xlarge"])
    changed = diff(demo_plan, bigger)[urn_of(demo_plan, NODE_GROUP, "GpuNodeGroup")]
    assert [p for p in changed if p.split("[")[0].split(".")[0] in NODE_GROUP_FORCE_NEW] == [
        "instanceTypes[0]"
    ]
