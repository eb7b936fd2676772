"""What ``python -m components verify`` concludes from what the cluster returned.

The report types and the checks over them: what each GPU node should advertise, why a probe
pod is not Ready, which physical GPU each pod sees and how evenly it is shared. Nothing here
talks to the cluster; ``components.verify`` reads it and hands over the objects.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import yaml

from .. import catalog, conventions
from ..errors import ConfigError
from ..plugin_config import advertised_units

POD_SELECTOR = f"app.kubernetes.io/name={conventions.VERIFICATION_APP}"
NO_SLICE_SELECTOR = f"app.kubernetes.io/name={conventions.NO_SLICE_APP}"
GPU_NODE_SELECTOR = f"{conventions.GPU_NODE_LABEL}={conventions.GPU_NODE_LABEL_VALUE}"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CONFIGMAP = f"{conventions.DEVICE_PLUGIN_NAMESPACE}/{conventions.PLUGIN_CONFIGMAP_NAME}"

Status = Literal["pass", "fail", "skip"]
#: An object of the official client (V1Node, V1Pod, ...); it ships no type stubs.
Kube = Any


@dataclass
class Check:
    name: str
    status: Status
    #: One line for the person reading the report.
    detail: str
    #: One line per node, pod or GPU behind the verdict.
    notes: list[str] = field(default_factory=list)


@dataclass
class NodeReport:
    """One GPU node and one resource its device plugin config advertises."""

    name: str
    instance_type: str
    #: Physical GPUs of the instance type (catalog); None when the type is not in it.
    gpus: int | None
    config_key: str
    resource: str | None = None
    units_per_gpu: int | None = None
    expected: int | None = None
    capacity: int | None = None
    allocatable: int | None = None
    #: Why nothing could be expected of the node (missing ConfigMap or key, bad config).
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.capacity == self.allocatable == self.expected


@dataclass
class PodReport:
    name: str
    node: str | None
    phase: str
    ready: bool
    #: Why it is not Ready, quoted from its events or status.
    why: str | None = None
    #: Resources the scheduler found too few of ("Insufficient nvidia.com/gpu").
    missing: list[str] = field(default_factory=list)
    #: From the probe's latest JSON log line.
    gpu_uuids: list[str] = field(default_factory=list)
    mode: str | None = None
    tflops: float | None = None
    reported_at: str | None = None
    #: The probe's own error, or why its log has no report.
    error: str | None = None
    #: Its part of the TFLOP/s of all pods on its GPU (measure mode).
    share: float | None = None


@dataclass
class GpuReport:
    """One physical GPU and the pods that report it, in measure mode."""

    uuid: str
    node: str | None
    pods: list[str]
    tflops: float
    #: Slowest pod's TFLOP/s over the fastest's: 1.0 is a perfectly even split.
    fairness: float


@dataclass
class Report:
    namespace: str
    expected_pods: int
    waited_seconds: float
    timed_out: bool
    nodes: list[NodeReport]
    pods: list[PodReport]
    gpus: list[GpuReport]
    checks: list[Check]
    #: What ``--scale-test`` measured (components/tools/scale_test.py); None when not run.
    scale_test: dict[str, Any] | None = None
    #: What ``--scale-to-zero`` measured (components/tools/scale_to_zero.py); None when not
    #: run.
    scale_to_zero: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def is_ready(pod: Kube) -> bool:
    conditions = pod.status.conditions or []
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in conditions
    )


def node_reports(node: Kube, configs: dict[str, str] | None) -> list[NodeReport]:
    """What the node advertises against what its config key says it should."""
    labels = node.metadata.labels or {}
    instance_type = labels.get(INSTANCE_TYPE_LABEL, "unknown")
    known = catalog.G4DN.get(instance_type)
    key = labels.get(conventions.PLUGIN_CONFIG_NODE_LABEL, conventions.DEFAULT_PLUGIN_CONFIG_KEY)
    ami_type = labels.get(conventions.AMI_TYPE_NODE_LABEL, "")
    # Our plugin stays off these nodes; the host's own shares as its settings say, which the
    # node group also writes on the node as labels (components/node_group.py).
    host_plugin = ami_type in conventions.HOST_DEVICE_PLUGIN_AMI_TYPES
    if host_plugin:
        key = f"{key} ({ami_type}'s host plugin)"
    base = NodeReport(node.metadata.name, instance_type, known.gpus if known else None, key)
    try:
        units = _host_units(labels) if host_plugin else _units(key, configs)
    except ConfigError as err:
        base.problem = str(err)
        return [base]
    if known is None:
        base.problem = (
            f"instance type {instance_type!r} is not in the catalog "
            f"({', '.join(catalog.G4DN)}), so its GPU count is unknown"
        )
        return [base]
    reports = []
    for resource, per_gpu in units.items():
        reports.append(
            replace(
                base,
                resource=resource,
                units_per_gpu=per_gpu,
                expected=per_gpu * known.gpus,
                capacity=_quantity((node.status.capacity or {}).get(resource)),
                allocatable=_quantity((node.status.allocatable or {}).get(resource)),
            )
        )
    return reports


def _host_units(labels: dict[str, str]) -> dict[str, int]:
    """{resource: units per GPU} a Bottlerocket node's host plugin was given, from its labels."""
    resource = labels.get(conventions.HOST_PLUGIN_RESOURCE_LABEL)
    units = labels.get(conventions.HOST_PLUGIN_UNITS_LABEL, "")
    if resource is None or not units.isdigit():
        raise ConfigError(
            f"node labels {conventions.HOST_PLUGIN_RESOURCE_LABEL} and "
            f"{conventions.HOST_PLUGIN_UNITS_LABEL} are missing or bad ({resource!r}, {units!r}), "
            "so the sharing its host plugin was given is unknown; was the node group made "
            "by this stack?"
        )
    return {f"nvidia.com/{resource}": int(units)}


def _units(key: str, configs: dict[str, str] | None) -> dict[str, int]:
    if configs is None:
        raise ConfigError(f"ConfigMap {CONFIGMAP} is missing, so the device plugin shares nothing")
    if key not in configs:
        raise ConfigError(
            f"config key {key!r} (node label {conventions.PLUGIN_CONFIG_NODE_LABEL}) is not in "
            f"ConfigMap {CONFIGMAP}, which has: {', '.join(sorted(configs)) or 'no keys'}"
        )
    try:
        parsed = yaml.safe_load(configs[key])
    except yaml.YAMLError as err:
        raise ConfigError(f"ConfigMap {CONFIGMAP} key {key!r} is not YAML: {err}") from None
    try:
        return advertised_units(parsed)
    except ConfigError as err:
        raise ConfigError(f"ConfigMap {CONFIGMAP} key {key!r}: {err}") from None


def _quantity(value: str | None) -> int | None:
    """Extended resources are whole numbers; anything else is shown as missing."""
    return int(value) if value is not None and value.isdigit() else None


def why_not_ready(pod: Kube, events: list[Kube]) -> tuple[str, list[str]]:
    """The newest Warning event that still applies, else the pod's own status.

    ``events`` come newest first, as ``verify.Api.events`` returns them.
    """
    state = pod.status.phase or "Unknown"
    if state == "Running":
        state = "Running, not Ready"
    scheduled = pod.spec.node_name is not None
    for event in events:
        if event.type == "Warning" and not (scheduled and event.reason == "FailedScheduling"):
            return _explained(state, f'event {event.reason}: "{one_line(event.message)}"')
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None:
            return _explained(
                state,
                f"container {status.name} waiting: {waiting.reason}"
                + (f": {one_line(waiting.message)}" if waiting.message else ""),
            )
    for condition in pod.status.conditions or []:
        if condition.status != "True" and (condition.reason or condition.message):
            return _explained(
                state, f"{condition.type} {condition.reason}: {one_line(condition.message)}"
            )
    return _explained(state, pod.status.message or pod.status.reason or "no event or reason yet")


def _explained(state: str, evidence: str) -> tuple[str, list[str]]:
    missing = sorted(set(re.findall(r"Insufficient ([\w./-]*\w)", evidence)))
    why = f"{state}: {evidence}"
    if missing:
        why += f"; missing resource: {', '.join(missing)}"
    return why, missing


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def latest_sample(log: str) -> dict[str, Any] | None:
    for line in reversed(log.splitlines()):
        try:
            sample = json.loads(line)
        except ValueError:
            continue
        if isinstance(sample, dict) and "gpus" in sample:
            return sample
    return None


def gpu_reports(pods: list[PodReport]) -> list[GpuReport]:
    """Group measure-mode pods by the one GPU they see; sets each pod's share of it."""
    by_gpu: dict[str, list[PodReport]] = defaultdict(list)
    for pod in pods:
        if pod.mode == "measure" and pod.tflops is not None and len(pod.gpu_uuids) == 1:
            by_gpu[pod.gpu_uuids[0]].append(pod)
    reports = []
    for uuid, group in sorted(by_gpu.items()):
        total = sum(pod.tflops or 0.0 for pod in group)
        rates = [pod.tflops or 0.0 for pod in group]
        for pod in group:
            pod.share = (pod.tflops or 0.0) / total if total > 0 else None
        fairness = min(rates) / max(rates) if max(rates) > 0 else 0.0
        reports.append(GpuReport(uuid, group[0].node, [p.name for p in group], total, fairness))
    return reports


def check_capacity(nodes: list[NodeReport]) -> Check:
    name = "node-capacity"
    if not nodes:
        return Check(
            name,
            "fail",
            f"no GPU nodes: no node has label {GPU_NODE_SELECTOR} (node group not up yet, or "
            "scaled to 0?)",
        )
    notes = []
    for n in nodes:
        if n.problem is not None:
            notes.append(f"{n.name}: {n.problem}")
            continue
        notes.append(
            f"{n.name}: {n.resource} capacity {_shown(n.capacity)}, allocatable "
            f"{_shown(n.allocatable)}; expected {n.units_per_gpu} per GPU (config {n.config_key!r})"
            f" x {n.gpus} GPU ({n.instance_type}) = {n.expected}"
        )
    bad = sorted({n.name for n in nodes if not n.ok})
    total = len({n.name for n in nodes})
    if bad:
        return Check(
            name,
            "fail",
            f"{len(bad)} of {total} GPU nodes advertise other than their "
            f"config says: {', '.join(bad)}",
            notes,
        )
    return Check(name, "pass", f"{total} GPU node(s) advertise units per GPU x GPUs", notes)


def _shown(value: int | None) -> str:
    return "none" if value is None else str(value)


def check_ready(
    pods: list[PodReport],
    expected: int,
    gpu_nodes: set[str],
    namespace: str,
    waited: float,
    timed_out: bool,
) -> Check:
    name = "pods-ready"
    if not pods:
        detail = f"no pods labelled {POD_SELECTOR} in namespace {namespace}"
    else:
        good = [p for p in pods if p.ready and p.node in gpu_nodes]
        detail = f"{len(good)}/{expected} pods Running and Ready on GPU nodes"
        if len(pods) != expected:
            detail += f" ({len(pods)} found)"
    if timed_out:
        detail += f"; gave up waiting after {waited:.0f}s (--timeout)"
    notes = []
    for pod in pods:
        if pod.why is not None:
            notes.append(f"{pod.name}: {pod.why}")
        elif pod.node not in gpu_nodes:
            notes.append(f"{pod.name}: on node {pod.node}, which lacks label {GPU_NODE_SELECTOR}")
    passed = bool(pods) and not notes and len(pods) >= expected
    return Check(name, "pass" if passed else "fail", detail, notes)


def check_shared_gpu(pods: list[PodReport], nodes: list[NodeReport]) -> Check:
    name = "shared-gpu"
    running = [p for p in pods if p.phase == "Running"]
    if not running:
        return Check(name, "fail", "no pod is running, so none has reported its GPU")
    gpus_of = {n.name: n.gpus for n in nodes}
    problems = []
    by_node: dict[str, list[PodReport]] = defaultdict(list)
    for pod in running:
        if not pod.gpu_uuids:
            problems.append(f"{pod.name}: reports no GPU: {pod.error or 'empty GPU list'}")
        elif len(pod.gpu_uuids) > 1:
            problems.append(
                f"{pod.name}: sees {len(pod.gpu_uuids)} GPUs ({', '.join(pod.gpu_uuids)}) for "
                "its 1 unit"
            )
        else:
            by_node[pod.node or "-"].append(pod)
    notes = []
    for node, group in sorted(by_node.items()):
        uuids = sorted({pod.gpu_uuids[0] for pod in group})
        line = f"{node}: {len(group)} pod(s) see {', '.join(uuids)}"
        if node not in gpus_of:
            problems.append(f"{line}, but it is not a GPU node")
            continue
        gpus = gpus_of[node]
        if gpus is None:
            problems.append(f"{line}, but the node's GPU count is unknown")
        elif len(uuids) > gpus:
            problems.append(f"{line}: {len(uuids)} different GPUs on a node with {gpus}")
        else:
            notes.append(line if len(group) > 1 else f"{line}; only 1 pod, so nothing is shared")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(name, "fail", problems[0] + more, problems + notes)
    distinct = len({p.gpu_uuids[0] for group in by_node.values() for p in group})
    return Check(
        name,
        "pass",
        f"{len(running)} pod(s) on {len(by_node)} node(s) see {distinct} physical GPU(s)",
        notes,
    )


def check_fair_shares(pods: list[PodReport], gpus: list[GpuReport], min_fairness: float) -> Check:
    name = "fair-shares"
    measured = [p for p in pods if p.mode == "measure"]
    if not measured:
        return Check(name, "skip", "no pod runs in measure mode (verificationMode: measure)")
    problems = [
        f"{p.name}: no TFLOP/s in its latest report: {p.error or 'none given'}"
        for p in measured
        if p.tflops is None or len(p.gpu_uuids) != 1
    ]
    notes = []
    for gpu in gpus:
        line = (
            f"{gpu.uuid}: {len(gpu.pods)} pod(s), {gpu.tflops:.2f} TFLOP/s in all, fairness "
            f"{gpu.fairness:.2f} (slowest/fastest)"
        )
        if gpu.fairness < min_fairness:
            problems.append(f"{line} < {min_fairness}")
        else:
            notes.append(line)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(name, "fail", problems[0] + more, problems + notes)
    worst = min(gpu.fairness for gpu in gpus)
    return Check(name, "pass", f"{len(gpus)} GPU(s) split evenly: fairness >= {worst:.2f}", notes)


def check_no_slice(pods: list[PodReport], gpu_nodes: set[str], namespace: str) -> Check:
    """A pod on a GPU node that requests no GPU must see none (components/verification.py).

    Its image sets ``NVIDIA_VISIBLE_DEVICES=all``, so it sees GPUs wherever the node's NVIDIA
    toolkit accepts that variable from unprivileged containers (the toolkit's default, which
    our AL2023 user data turns off: components/al2023.py).
    """
    name = "no-slice-no-gpu"
    running = [p for p in pods if p.phase == "Running" and p.node in gpu_nodes]
    if not running:
        found = "; ".join(f"{p.name}: {p.why or f'on node {p.node}'}" for p in pods)
        return Check(
            name,
            "fail",
            f"no pod labelled {NO_SLICE_SELECTOR} runs on a GPU node in namespace {namespace}"
            + (f" ({found})" if found else ""),
        )
    seeing = [p for p in running if p.gpu_uuids]
    if seeing:
        return Check(
            name,
            "fail",
            f"{len(seeing)} pod(s) without a GPU request see a GPU: the node's NVIDIA toolkit "
            "accepts NVIDIA_VISIBLE_DEVICES from the image (docs/security.md, Slices)",
            [f"{p.name} on {p.node}: sees {', '.join(p.gpu_uuids)}" for p in seeing],
        )
    unread = [p for p in running if p.mode != "no-slice"]
    if unread:
        return Check(
            name,
            "fail",
            f"{unread[0].name} has not reported what it sees: {unread[0].error or 'no report'}",
        )
    return Check(
        name,
        "pass",
        f"{len(running)} pod(s) without a GPU request see no GPU",
        [f"{p.name} on {p.node}: {p.error or 'no GPU listed'}" for p in running],
    )
