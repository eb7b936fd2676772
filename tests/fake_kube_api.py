"""A Kubernetes API server in a thread, answering the reads ``verify`` makes.

Responses have the shape the real API server gives (lists whose items carry no kind, RFC 3339
timestamps, every field the official client's models require, ``Status`` objects for errors,
logs as text/plain), so the client deserializes them exactly as it would a live cluster's.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

TOKEN = "fake-token-for-tests"
CREATED = "2026-11-02T09:00:00Z"
PROBE_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
APP_LABEL = "app.kubernetes.io/name"
APP = "gpu-sharing-verification"
NO_SLICE_APP = "gpu-sharing-no-slice"
NAMESPACE = "gpu-sharing-verification"
#: What the scheduler says when no node has a free ``nvidia.com/gpu`` unit (Kubernetes 1.35).
INSUFFICIENT_GPU = (
    "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
    "{node-role.kubernetes.io/system: true}. preemption: 0/2 nodes are available: 1 No "
    "preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
)


@dataclass
class Cluster:
    """What the fake API server holds; tests build it with the helpers below."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    configmaps: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    #: Container log text by (namespace, pod name); a pod without one has not started.
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Called (under the server's lock) before each pod list with how many came before, so a
    #: test can change the cluster between polls.
    on_pod_list: Callable[[Cluster, int], None] | None = None
    #: Called (under the server's lock) before each node list, so a test can play the
    #: Cluster Autoscaler removing nodes.
    on_node_list: Callable[[Cluster], None] | None = None
    #: Called (under the server's lock) after a Deployment's replicas are set through its
    #: scale subresource, with the Deployment, so a test can play its ReplicaSet.
    on_scale: Callable[[Cluster, dict[str, Any]], None] | None = None
    #: While set, every GET is answered 503, as by an API server that went away mid-run;
    #: PATCHes still land, as they would once it is back.
    unavailable: bool = False
    #: Every request's path and query, in order (PATCH requests prefixed "PATCH ").
    requests: list[str] = field(default_factory=list)
    pod_lists: int = 0


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
        "resourceVersion": "4711",
        "creationTimestamp": CREATED,
        **extra,
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def gpu_node(
    name: str,
    resources: Mapping[str, int],
    *,
    instance_type: str = "g4dn.xlarge",
    config_key: str | None = None,
) -> dict[str, Any]:
    """A GPU node as EKS and the device plugin leave it; ``resources`` are its GPU resources."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": instance_type,
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": "gpu-sharing-gpu",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance_type,
        "nvidia.com/gpu.present": "true",
        "topology.kubernetes.io/region": "us-west-2",
        "topology.kubernetes.io/zone": "us-west-2a",
    }
    if config_key is not None:
        labels["nvidia.com/device-plugin.config"] = config_key
    node = _node(name, labels, {k: str(v) for k, v in resources.items()})
    node["spec"]["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    return node


def cpu_node(name: str) -> dict[str, Any]:
    """A node without GPUs (e.g. a system node group), which verify must leave out."""
    return _node(
        name,
        {"kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "m6i.large"},
        {},
    )


def _node(name: str, labels: dict[str, str], extra: dict[str, str]) -> dict[str, Any]:
    capacity = {
        "cpu": "4",
        "ephemeral-storage": "104845292Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "15950512Ki",
        "pods": "29",
        **extra,
    }
    allocatable = {**capacity, "cpu": "3920m", "memory": "15260336Ki"}
    return {
        "metadata": _meta(name, labels=labels, annotations={"node.alpha.kubernetes.io/ttl": "0"}),
        "spec": {
            "providerID": f"aws:///us-west-2a/i-{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:17]}"
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": CREATED,
                    "lastTransitionTime": CREATED,
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.0.1.23"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "9a1c3e0e-3b7c-4d8e-9f40-2b6a1c7d5e11",
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.141-155.222.amzn2023.x86_64",
                "kubeProxyVersion": "v1.35.0-eks-4096722",
                "kubeletVersion": "v1.35.0-eks-4096722",
                "machineID": "ec2a1f0c7d1e4b5a9c3d2e1f0a9b8c7d",
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.9.20251027",
                "systemUUID": "ec2a1f0c-7d1e-4b5a-9c3d-2e1f0a9b8c7d",
            },
        },
    }


def probe_pod(
    name: str,
    node: str | None,
    *,
    resource: str | None = "nvidia.com/gpu",
    ready: bool = True,
    unschedulable: str = INSUFFICIENT_GPU,
    namespace: str = NAMESPACE,
    app: str = APP,
    owner: str = "ReplicaSet",
) -> dict[str, Any]:
    """A verification pod: Running on ``node`` (Ready or not), or Pending when node is None,
    with the scheduler's ``unschedulable`` message in its PodScheduled condition. With
    ``resource`` None it requests no GPU; ``owner`` is the kind of its controller."""
    gpu = {} if resource is None else {resource: "1"}
    pod: dict[str, Any] = {
        "metadata": _meta(
            name,
            namespace,
            generateName=name.rsplit("-", 1)[0] + "-",
            labels={APP_LABEL: app, "app.kubernetes.io/part-of": "eks-gpu-sharing"},
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": owner,
                    "name": name.rsplit("-", 1)[0],
                    "uid": "5b1f0d6e-8c1a-4e52-9a1e-3f6c2b7d9e01",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        ),
        "spec": {
            "containers": [
                {
                    "name": "gpu-probe",
                    "image": PROBE_IMAGE,
                    "command": ["python3", "/opt/gpu-probe/gpu_probe.py"],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi", **gpu},
                        "limits": {"memory": "2Gi", **gpu},
                    },
                }
            ],
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
        },
        "status": {"qosClass": "Burstable"},
    }
    if node is None:
        pod["status"].update(
            phase="Pending",
            conditions=[
                _condition("PodScheduled", False, reason="Unschedulable", message=unschedulable)
            ],
        )
        return pod
    pod["spec"]["nodeName"] = node
    pod["status"].update(
        phase="Running",
        hostIP="10.0.1.23",
        podIP="10.0.1.57",
        startTime=CREATED,
        conditions=[
            _condition("PodReadyToStartContainers", True),
            _condition("Initialized", True),
            _condition("Ready", ready, reason=None if ready else "ContainersNotReady"),
            _condition("ContainersReady", ready, reason=None if ready else "ContainersNotReady"),
            _condition("PodScheduled", True),
        ],
        containerStatuses=[
            {
                "name": "gpu-probe",
                "image": PROBE_IMAGE,
                "imageID": "docker.io/pytorch/pytorch@sha256:" + "0" * 64,
                "containerID": "containerd://" + uuid.uuid5(uuid.NAMESPACE_OID, name).hex * 2,
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": CREATED}},
            }
        ],
    )
    if not ready:
        pod["status"]["conditions"][2]["message"] = "containers with unready status: [gpu-probe]"
    return pod


def _condition(
    kind: str, ok: bool, *, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": CREATED,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def scheduling_event(pod: dict[str, Any], message: str) -> dict[str, Any]:
    """A FailedScheduling event as the scheduler records it (events.k8s.io, read via core/v1)."""
    meta = pod["metadata"]
    return {
        "metadata": _meta(f"{meta['name']}.1879a3c2b4e0f1d2", meta["namespace"]),
        "involvedObject": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
            "resourceVersion": meta["resourceVersion"],
        },
        "reason": "FailedScheduling",
        "message": message,
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "type": "Warning",
        "eventTime": "2026-11-02T09:00:05.123456Z",
        "action": "Scheduling",
        "reportingComponent": "default-scheduler",
        "reportingInstance": "default-scheduler-ip-172-16-0-10",
    }


def probe_line(
    pod: str,
    node: str,
    gpu_uuid: str,
    *,
    tflops: float | None = None,
    error: str | None = None,
) -> str:
    """One line of components/gpu_probe.py; measure mode when ``tflops`` is given."""
    return json.dumps(
        {
            "ts": "2026-11-02T09:01:00.000000+00:00",
            "pod": pod,
            "node": node,
            "mode": "nvidia-smi" if tflops is None else "measure",
            "gpus": [
                {
                    "uuid": gpu_uuid,
                    "name": "Tesla T4",
                    "utilization_gpu_pct": 100,
                    "memory_used_mib": 1285,
                    "memory_total_mib": 15360,
                }
            ],
            "tflops": tflops,
            "iterations": None if tflops is None else int(tflops * 1e12 * 5 / (2 * 4096**3)),
            "error": error,
        }
    )


def no_slice_line(pod: str, node: str, device: str | None = None) -> str:
    """One line of the pod without a slice (manifests/verification-workload.yaml, its shell
    loop): no GPU device node, or the one ``device`` it should not see."""
    return json.dumps(
        {
            "ts": "2026-11-02T09:01:00+00:00",
            "pod": pod,
            "node": node,
            "mode": "no-slice",
            "gpus": [] if device is None else [{"device": device}],
            "error": None,
        }
    )


def probe_deployment(replicas: int, namespace: str = NAMESPACE, app: str = APP) -> dict[str, Any]:
    """The verification (or ``app``'s) Deployment as the API returns it (what verify reads:
    replicas)."""
    labels = {APP_LABEL: app}
    return {
        "metadata": _meta(app, namespace, labels=labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
        },
    }


def plugin_configmap(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The device plugin's ConfigMap: one YAML file per config key."""
    return {
        "metadata": _meta(
            "nvidia-device-plugin-configs",
            "nvidia-device-plugin",
            labels={"app.kubernetes.io/name": "nvidia-device-plugin"},
        ),
        "data": {key: yaml.safe_dump(dict(config)) for key, config in configs.items()},
    }


def time_slicing(replicas: int, *, rename_by_default: bool = False) -> dict[str, Any]:
    """The plugin config that shares every GPU as ``replicas`` units."""
    shared: dict[str, Any] = {"resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}
    if rename_by_default:
        shared["renameByDefault"] = True
    return {"version": "v1", "sharing": {"timeSlicing": shared}}


def _status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        status["details"] = details
    return status


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def _matches(obj: Mapping[str, Any], selector: str, *, labels: bool) -> bool:
    """Equality and existence requirements, as label and field selectors write them."""
    for requirement in filter(None, selector.split(",")):
        match = re.fullmatch(r"(!?)([\w./-]+)(?:(==|=|!=)(.*))?", requirement)
        if match is None:
            raise ValueError(f"the fake does not parse selector {requirement!r}")
        negate, key, op, value = match.groups()
        actual = obj["metadata"].get("labels", {}).get(key) if labels else _lookup(obj, key)
        if op is None:
            if (actual is None) != bool(negate):
                return False
        elif (actual == value) != (op != "!="):
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    cluster: Cluster
    lock: threading.Lock

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: pytest shows failures, not every request."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.cluster.requests.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            if self.cluster.unavailable:
                message = "the server is currently unable to handle the request"
                self._json(503, _status(503, "ServiceUnavailable", message))
                return
            try:
                self._route(url.path, query)
            except ValueError as err:
                self._json(400, _status(400, "BadRequest", str(err)))

    def do_PATCH(self) -> None:  # noqa: N802 - stdlib name
        """A Deployment's scale subresource: the patch's spec.replicas (merge or strategic
        merge patch, as the client sends), answered with the Scale object."""
        url = urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with self.lock:
            self.cluster.requests.append(f"PATCH {self.path}")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            match = re.fullmatch(
                r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale", url.path
            )
            found = match and next(
                (
                    d
                    for d in self.cluster.deployments
                    if (d["metadata"]["namespace"], d["metadata"]["name"]) == match.groups()
                ),
                None,
            )
            if not found:
                self._json(404, _status(404, "NotFound", "deployments.apps not found"))
                return
            found["spec"]["replicas"] = body["spec"]["replicas"]
            if self.cluster.on_scale is not None:
                self.cluster.on_scale(self.cluster, found)
            meta = found["metadata"]
            self._json(
                200,
                {
                    "kind": "Scale",
                    "apiVersion": "autoscaling/v1",
                    "metadata": _meta(meta["name"], meta["namespace"]),
                    "spec": {"replicas": found["spec"]["replicas"]},
                    "status": {
                        "replicas": found["spec"]["replicas"],
                        "selector": ",".join(
                            f"{k}={v}" for k, v in found["spec"]["selector"]["matchLabels"].items()
                        ),
                    },
                },
            )

    def _route(self, path: str, query: dict[str, str]) -> None:
        c = self.cluster
        if path == "/api/v1/nodes":
            if c.on_node_list is not None:
                c.on_node_list(c)
            self._list("NodeList", c.nodes, query)
            return
        deployments = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments", path)
        if deployments is not None:
            namespace = deployments.group(1)
            items = [d for d in c.deployments if d["metadata"]["namespace"] == namespace]
            self._list("DeploymentList", items, query, api_version="apps/v1")
            return
        match = re.fullmatch(
            r"/api/v1/namespaces/([^/]+)/(pods|events|configmaps)(?:/([^/]+))?"
            r"(/log)?",
            path,
        )
        if match is None:
            self._json(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
            return
        namespace, kind, name, log = match.groups()
        if kind == "pods" and name is None:
            if c.on_pod_list is not None:
                c.on_pod_list(c, c.pod_lists)
            c.pod_lists += 1
        items = {"pods": c.pods, "events": c.events, "configmaps": c.configmaps}[kind]
        in_namespace = [i for i in items if i["metadata"]["namespace"] == namespace]
        if name is None:
            self._list({"pods": "PodList", "events": "EventList"}[kind], in_namespace, query)
            return
        found = next((i for i in in_namespace if i["metadata"]["name"] == name), None)
        if found is None:
            self._json(
                404, _status(404, "NotFound", f'{kind} "{name}" not found', name=name, kind=kind)
            )
        elif log:
            self._log(found, query)
        else:
            self._json(200, {"kind": "ConfigMap", "apiVersion": "v1", **found})

    def _list(
        self,
        kind: str,
        items: list[dict[str, Any]],
        query: dict[str, str],
        api_version: str = "v1",
    ) -> None:
        selected = [
            item
            for item in items
            if _matches(item, query.get("labelSelector", ""), labels=True)
            and _matches(item, query.get("fieldSelector", ""), labels=False)
        ]
        self._json(
            200,
            {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": "4711"},
                "items": selected,
            },
        )

    def _log(self, pod: dict[str, Any], query: dict[str, str]) -> None:
        name = pod["metadata"]["name"]
        text = self.cluster.logs.get((pod["metadata"]["namespace"], name))
        if text is None:
            message = f'container "gpu-probe" in pod "{name}" is waiting to start: ' + (
                "ContainerCreating" if pod["spec"].get("nodeName") else "PodInitializing"
            )
            self._json(400, _status(400, "BadRequest", message))
            return
        lines = text.splitlines(keepends=True)
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :]
        self._send(200, "text/plain", "".join(lines).encode())

    def _json(self, code: int, body: dict[str, Any]) -> None:
        self._send(code, "application/json", json.dumps(body).encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(cluster: Cluster) -> Iterator[str]:
    """Serve ``cluster`` on 127.0.0.1 at an ephemeral port; yields the server URL."""
    handler = type("Handler", (_Handler,), {"cluster": cluster, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    """A URL nothing listens on: a port the OS just handed out and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def write_kubeconfig(path: Path, server: str, token: str = TOKEN) -> Path:
    """A kubeconfig as ``aws eks update-kubeconfig`` writes one, with a token instead of exec."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "fake", "user": {"token": token}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    return path
