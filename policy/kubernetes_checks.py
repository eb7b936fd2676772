"""Checks of the Kubernetes side: pod controllers' containers, namespaces, AWS-backed objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components import conventions
from components.device_plugin import IMAGE_REPOSITORY
from policy.inputs import Props, StackResource, get, is_true, items
from policy.pod_security import baseline, may_be_privileged

NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE = "kubernetes:core/v1:Service"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"

#: Where each pod-creating kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    STATEFUL_SET: ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_LEVELS = ("privileged", "baseline", "restricted")


def _containers(resource_type: str, props: Props) -> tuple[Any, list[Mapping[str, Any]]]:
    """The pod's namespace and all its containers (init containers included)."""
    spec = get(props, *POD_SPEC_PATHS[resource_type])
    containers = items(get(spec, "initContainers")) + items(get(spec, "containers"))
    return get(props, "metadata", "namespace"), [c for c in containers if isinstance(c, Mapping)]


def _name(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name')!r}"


def containers_least_privilege(resource_type: str, props: Props) -> list[str]:
    """Privileged containers are allowed only to the MPS control daemon's own (MPS needs it),
    known by the device plugin's namespace, image and container name."""
    namespace, containers = _containers(resource_type, props)
    problems = []
    for container in containers:
        context = container.get("securityContext")
        if is_true(get(context, "privileged")):
            if not may_be_privileged(namespace, container):
                problems.append(
                    f"{_name(container)} is privileged in namespace {namespace!r}; only the "
                    f"MPS control daemon's containers ({IMAGE_REPOSITORY}) in the device "
                    f"plugin's namespace {conventions.DEVICE_PLUGIN_NAMESPACE!r} may be"
                )
            continue
        if get(context, "allowPrivilegeEscalation") is not False:
            problems.append(
                f"{_name(container)}: set securityContext.allowPrivilegeEscalation to false"
            )
        if "ALL" not in items(get(context, "capabilities", "drop")):
            problems.append(f"{_name(container)}: set securityContext.capabilities.drop to [ALL]")
    return problems


#: Pod fields that put a pod in one of the node's own namespaces, and those namespaces.
HOST_NAMESPACES = {"hostPID": "PID", "hostIPC": "IPC", "hostNetwork": "network"}

#: The commands of the MPS control daemon pod's four containers (init ``mount-shm``, init
#: and sidecar ``config-manager``, the daemon), as in NVIDIA/k8s-device-plugin v0.20.0,
#: deployments/helm/nvidia-device-plugin/templates/daemonset-mps-control-daemon.yml.
MPS_DAEMON_POD_COMMANDS = (
    ["mps-control-daemon", "mount-shm"],
    ["config-manager"],
    ["mps-control-daemon"],
)


def _is_mps_daemon_pod(namespace: Any, containers: list[Mapping[str, Any]]) -> bool:
    """hostPID is pod-wide, so every container must be one of the daemon pod's own: the
    device plugin's image running one of its commands, with no extra arguments."""
    image = (f"{IMAGE_REPOSITORY}:", f"{IMAGE_REPOSITORY}@")
    return (
        namespace == conventions.DEVICE_PLUGIN_NAMESPACE
        and any(items(c.get("command")) == ["mps-control-daemon"] for c in containers)
        and all(
            str(c.get("image")).startswith(image)
            and items(c.get("command")) in MPS_DAEMON_POD_COMMANDS
            and not items(c.get("args"))
            for c in containers
        )
    )


def pods_no_host_namespaces(resource_type: str, props: Props) -> list[str]:
    """A pod in the node's PID, IPC or network namespace sees or reaches the node itself.

    The one exception is hostPID for the MPS control daemon in the device plugin's
    namespace: its MPS server finds its own PID through /proc, so upstream runs it with
    hostPID (NVIDIA/k8s-device-plugin v0.20.0, deployments/helm/nvidia-device-plugin,
    values.yaml ``mps.enableHostPID: true``). The namespace is the default
    ``conventions.DEVICE_PLUGIN_NAMESPACE``: a device plugin built with another
    ``NvidiaDevicePluginArgs.namespace`` fails this rule.
    """
    spec = get(props, *POD_SPEC_PATHS[resource_type])
    namespace, containers = _containers(resource_type, props)
    mps_daemon = _is_mps_daemon_pod(namespace, containers)
    return [
        f"{field} is true in namespace {namespace!r}: the pod shares the node's "
        f"{host_namespace} namespace; only the MPS control daemon in "
        f"{conventions.DEVICE_PLUGIN_NAMESPACE!r} may set hostPID, with every container "
        f"running {IMAGE_REPOSITORY} as upstream's chart does"
        for field, host_namespace in HOST_NAMESPACES.items()
        if is_true(get(spec, field)) and not (field == "hostPID" and mps_daemon)
    ]


def device_plugin_off_host_plugin_nodes(resource_type: str, props: Props) -> list[str]:
    """A pod running NVIDIA's device plugin image must keep off nodes whose host runs that
    plugin itself (Bottlerocket's NVIDIA variants share through their own settings): two
    plugins would register nvidia.com/gpu on one node. Every term of the required node
    affinity must exclude those AMI types by our node label (``kubernetes/kubernetes``
    component-helpers nodeaffinity: terms are ORed, so one term without it lets a pod in).
    """
    image = (f"{IMAGE_REPOSITORY}:", f"{IMAGE_REPOSITORY}@")
    _, containers = _containers(resource_type, props)
    if not any(str(c.get("image")).startswith(image) for c in containers):
        return []
    spec = get(props, *POD_SPEC_PATHS[resource_type])
    required = get(
        spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"
    )
    terms = items(get(required, "nodeSelectorTerms"))

    def excludes(term: Any) -> bool:
        return any(
            get(e, "key") == conventions.AMI_TYPE_NODE_LABEL
            and get(e, "operator") == "NotIn"
            and set(conventions.HOST_DEVICE_PLUGIN_AMI_TYPES) <= set(items(get(e, "values")))
            for e in items(get(term, "matchExpressions"))
        )

    if terms and all(excludes(term) for term in terms):
        return []
    return [
        f"it runs {IMAGE_REPOSITORY} but may land on nodes whose host runs NVIDIA's device "
        "plugin itself; give every required node affinity term "
        f"{conventions.AMI_TYPE_NODE_LABEL} NotIn "
        f"{list(conventions.HOST_DEVICE_PLUGIN_AMI_TYPES)}"
    ]


def pods_baseline(resource_type: str, props: Props) -> list[str]:
    """The Pod Security Standards Baseline, beyond host namespaces and privilege."""
    path = POD_SPEC_PATHS[resource_type]
    pod_metadata = get(props, *path[:-1], "metadata") if len(path) > 1 else get(props, "metadata")
    return [
        f"{problem}; the Pod Security Standards Baseline forbids it"
        for problem in baseline(
            get(props, *path), pod_metadata, get(props, "metadata", "namespace")
        )
    ]


def containers_resource_bounds(resource_type: str, props: Props) -> list[str]:
    """CPU and memory requests place the pod; a memory limit keeps it from starving the node.

    No CPU limit is asked for: it only throttles, and the GPU probes are bursty.
    """
    _, containers = _containers(resource_type, props)
    problems = []
    for container in containers:
        resources = container.get("resources")
        missing = [
            f"resources.requests.{r}"
            for r in ("cpu", "memory")
            if not get(resources, "requests", r)
        ]
        if not get(resources, "limits", "memory"):
            missing.append("resources.limits.memory")
        if missing:
            problems.append(f"{_name(container)}: set {', '.join(missing)}")
    return problems


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or ``None`` when it has a tag or a digest."""
    if not isinstance(image, str) or not image:
        return "has no image"
    if "@" in image:
        return None  # a digest pins the exact bytes
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return f"image {image!r} has no tag, which means latest"
    if tag == "latest":
        return f"image {image!r} uses the moving tag latest"
    return None


def containers_pinned_images(resource_type: str, props: Props) -> list[str]:
    _, containers = _containers(resource_type, props)
    return [
        f"{_name(container)}: {problem}; pin a release tag or a digest"
        for container in containers
        if (problem := image_problem(container.get("image"))) is not None
    ]


def containers_read_only_root(resource_type: str, props: Props) -> list[str]:
    _, containers = _containers(resource_type, props)
    return [
        f"{_name(container)}: set securityContext.readOnlyRootFilesystem to true (mount an "
        "emptyDir where it must write)"
        for container in containers
        if not is_true(get(container, "securityContext", "privileged"))
        and not is_true(get(container, "securityContext", "readOnlyRootFilesystem"))
    ]


def namespace_pod_security(_: str, props: Props) -> list[str]:
    level = get(props, "metadata", "labels", PSA_ENFORCE)
    if level in PSA_LEVELS:
        return []
    return [
        f"label {PSA_ENFORCE} is {level!r}; set it to one of {', '.join(PSA_LEVELS)} "
        "(restricted unless the pods need more)"
    ]


def workloads_in_labelled_namespaces(
    resources: Sequence[StackResource],
) -> list[tuple[str, str]]:
    """A namespace the stack does not create with a PSA label (``default``, say) enforces no
    Pod Security level: EKS labels none, and an unlabelled namespace admits privileged pods."""
    labelled = {
        get(r.props, "metadata", "name")
        for r in resources
        if r.type == NAMESPACE and get(r.props, "metadata", "labels", PSA_ENFORCE) in PSA_LEVELS
    }
    return [
        (
            r.urn,
            f"namespace {namespace!r} is not created by this stack with a {PSA_ENFORCE} label, "
            "so nothing enforces a Pod Security level there (an unlabelled namespace admits "
            "privileged pods); create the namespace with the label",
        )
        for r in resources
        if r.type in POD_SPEC_PATHS
        and (namespace := get(r.props, "metadata", "namespace") or "default") not in labelled
    ]


def namespace_privileged_only_for_device_plugin(_: str, props: Props) -> list[str]:
    name = get(props, "metadata", "name")
    level = get(props, "metadata", "labels", PSA_ENFORCE)
    if level != "privileged" or name == conventions.DEVICE_PLUGIN_NAMESPACE:
        return []
    return [
        f"namespace {name!r} admits privileged pods; only the device plugin's namespace "
        f"{conventions.DEVICE_PLUGIN_NAMESPACE!r} needs that (hostPath to the kubelet). Use "
        "restricted or baseline"
    ]


def no_orphaned_aws_resources(resource_type: str, props: Props) -> list[str]:
    """Objects whose AWS resources outlive ``pulumi destroy`` and can block VPC deletion."""
    if resource_type == SERVICE and get(props, "spec", "type") == "LoadBalancer":
        return [
            "a Service of type LoadBalancer makes AWS create a load balancer and security "
            "groups outside Pulumi's state; if the cluster goes first they are left behind and "
            "block deleting the VPC. Use kubectl port-forward or an Ingress you manage"
        ]
    if resource_type == PVC:
        return [
            "a PersistentVolumeClaim makes the EBS CSI driver create a volume outside "
            "Pulumi's state; with a Retain reclaim policy it outlives the cluster and keeps "
            "costing. Use emptyDir, or delete the volume with the claim"
        ]
    if resource_type == STATEFUL_SET and items(get(props, "spec", "volumeClaimTemplates")):
        return [
            "volumeClaimTemplates create PersistentVolumeClaims that Kubernetes keeps after the "
            "StatefulSet is deleted, so their EBS volumes outlive pulumi destroy"
        ]
    return []
