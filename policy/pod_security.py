"""The Pod Security Standards Baseline, for every pod controller, and the plugin's exemption.

Each control mirrors a check of kubernetes/kubernetes
``staging/src/k8s.io/pod-security-admission/policy/check_*.go`` (the code behind the
``baseline`` level; kubernetes/website ``content/en/docs/concepts/security/
pod-security-standards.md`` lists the same controls). Host namespaces and privileged
containers have their own rules (``pods-no-host-namespaces``,
``containers-least-privilege``); this one holds the rest.

The device plugin needs more than Baseline allows: hostPath to the kubelet's sockets and
the MPS pipes, and (MPS) privileged containers. Only its own containers are exempt, known
by namespace *and* image *and* container name, and only from what our manifests give them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from components import conventions, manifest_files
from components.device_plugin import IMAGE_REPOSITORY
from policy.inputs import get, is_true, items

#: check_capabilities_baseline.go: what a container may add.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
#: check_sysctls.go (Kubernetes 1.32+): namespaced sysctls isolated from other pods.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
#: check_selinuxOptions.go: the SELinux types a pod may ask for ("" or unset too).
SELINUX_TYPES = frozenset(
    {"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
#: check_seccompProfile_baseline.go and check_appArmorProfile.go: anything but Unconfined.
CONFINED_PROFILES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _plugin_daemonsets() -> list[Mapping[str, Any]]:
    return [
        manifest_files.load(name)["DaemonSet"]["spec"]["template"]["spec"]
        for name in ("device-plugin.yaml", "mps-control-daemon.yaml")
    ]


#: The plugin's containers by name, and whether our manifests make each privileged.
PLUGIN_CONTAINERS: dict[str, bool] = {
    c["name"]: is_true(get(c, "securityContext", "privileged"))
    for spec in _plugin_daemonsets()
    for c in spec.get("initContainers", []) + spec["containers"]
}
#: The host paths our plugin manifests mount.
PLUGIN_HOST_PATHS = frozenset(
    v["hostPath"]["path"]
    for spec in _plugin_daemonsets()
    for v in spec["volumes"]
    if "hostPath" in v
)


def is_plugin_container(namespace: Any, container: Mapping[str, Any]) -> bool:
    """One of the device plugin's own containers: its namespace, image and name."""
    image = str(container.get("image"))
    return (
        namespace == conventions.DEVICE_PLUGIN_NAMESPACE
        and image.startswith((f"{IMAGE_REPOSITORY}:", f"{IMAGE_REPOSITORY}@"))
        and container.get("name") in PLUGIN_CONTAINERS
    )


def may_be_privileged(namespace: Any, container: Mapping[str, Any]) -> bool:
    return is_plugin_container(namespace, container) and PLUGIN_CONTAINERS[container["name"]]


def _containers(spec: Any) -> Iterator[Mapping[str, Any]]:
    for kind in CONTAINER_KINDS:
        yield from (c for c in items(get(spec, kind)) if isinstance(c, Mapping))


def _contexts(spec: Any) -> Iterator[tuple[str, Any]]:
    """The pod's security context and each container's, with where they are."""
    yield "pod", get(spec, "securityContext")
    for container in _containers(spec):
        yield f"container {container.get('name')!r}", container.get("securityContext")


def baseline(spec: Any, metadata: Any, namespace: Any) -> list[str]:
    """What the pod spec does beyond Baseline, host namespaces and privilege aside."""
    containers = list(_containers(spec))
    plugin_pod = bool(containers) and all(is_plugin_container(namespace, c) for c in containers)
    problems = [
        f"volume {get(v, 'name')!r} mounts the node's {get(v, 'hostPath', 'path')!r} (hostPath)"
        for v in items(get(spec, "volumes"))
        if get(v, "hostPath") is not None
        and not (plugin_pod and get(v, "hostPath", "path") in PLUGIN_HOST_PATHS)
    ]
    for container in containers:
        name = f"container {container.get('name')!r}"
        added = sorted(
            str(c) for c in items(get(container, "securityContext", "capabilities", "add"))
        )
        if beyond := [c for c in added if c not in BASELINE_CAPABILITIES]:
            problems.append(f"{name} adds capabilities {', '.join(beyond)}")
        ports = [get(p, "hostPort") for p in items(container.get("ports"))]
        if bound := [p for p in ports if p not in (None, 0)]:
            problems.append(f"{name} binds host ports {', '.join(map(str, bound))}")
        if get(container, "securityContext", "procMount") not in (None, "", "Default"):
            problems.append(f"{name} sets procMount {container['securityContext']['procMount']}")
        handlers = [get(container, p) for p in PROBES] + [
            get(container, "lifecycle", hook) for hook in ("postStart", "preStop")
        ]
        if any(get(h, kind, "host") for h in handlers for kind in ("httpGet", "tcpSocket")):
            problems.append(f"{name} points a probe or lifecycle hook at another host")
    for where, context in _contexts(spec):
        problems += _context_problems(where, context)
    for sysctl in items(get(spec, "securityContext", "sysctls")):
        if get(sysctl, "name") not in SAFE_SYSCTLS:
            problems.append(f"pod sets sysctl {get(sysctl, 'name')!r}, which is not namespaced")
    for key, value in (get(metadata, "annotations") or {}).items():
        confined = value == "runtime/default" or str(value).startswith("localhost/")
        if key.startswith(APPARMOR_ANNOTATION) and not confined:
            problems.append(f"annotation {key} is {value!r}")
    return problems


def _context_problems(where: str, context: Any) -> list[str]:
    problems = []
    if is_true(get(context, "windowsOptions", "hostProcess")):
        problems.append(f"{where} runs as a Windows HostProcess")
    for profile in ("seccompProfile", "appArmorProfile"):
        kind = get(context, profile, "type")
        if kind is not None and kind not in CONFINED_PROFILES:
            problems.append(f"{where} sets {profile}.type {kind}")
    selinux = get(context, "seLinuxOptions")
    if get(selinux, "type") not in (None, "", *SELINUX_TYPES):
        problems.append(f"{where} sets seLinuxOptions.type {get(selinux, 'type')}")
    if get(selinux, "user") or get(selinux, "role"):
        problems.append(f"{where} sets seLinuxOptions.user or role")
    return problems
