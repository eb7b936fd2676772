"""``verify --scale-test``: ask for one node's worth of slices more than the running nodes
advertise, and check that the Cluster Autoscaler adds exactly the one node they need.

The autoscaler's AWS provider counts ``nvidia.com/gpu`` from the instance type (1 on a
g4dn.xlarge) unless the node group's template tag says what the device plugin will
advertise (components/node_template.py): with the tag, 5 more pods at 5 slices per node
bring 1 node; without it, 5 (kubernetes/autoscaler#3427). The pods are scaled back
afterwards, whatever happened; the autoscaler removes the extra node once it has been
unneeded for its scale-down time (10 minutes by default).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from .verify_checks import Check, Kube, NodeReport, Status


@dataclass
class ScaleReport:
    resource: str
    slices_per_node: int
    pods_before: int
    pods_asked: int
    nodes_before: int
    nodes_expected: int
    nodes_after: int
    #: Seconds from the scale-up until every pod was Ready (or the timeout).
    scale_up_seconds: float
    #: Seconds from the scale-back until only the original pods were left, all Ready.
    scale_back_seconds: float
    check: Check


def requested_resource(pod: Kube) -> str | None:
    """The GPU resource the probe pod requests (nvidia.com/gpu, or a shared/renamed one)."""
    requests = pod.spec.containers[0].resources.requests or {}
    return next((name for name in requests if name.startswith("nvidia.com/")), None)


def config_key(pods: list[Kube], nodes: list[NodeReport]) -> str | None:
    """The config key of the nodes the probe pods run on; None unless there is one."""
    placed = {p.spec.node_name for p in pods if p.spec.node_name}
    keys = {n.config_key for n in nodes if n.name in placed}
    return next(iter(keys)) if len(keys) == 1 else None


def usable_nodes(nodes: list[NodeReport], resource: str, config_key: str) -> list[NodeReport]:
    """The GPU nodes the probe pods can run on: same config key, advertising their resource."""
    return [
        n for n in nodes if n.resource == resource and n.config_key == config_key and n.allocatable
    ]


def run(
    api: Any,
    *,
    namespace: str,
    pods: list[Kube],
    nodes: list[NodeReport],
    timeout: float,
    poll_seconds: float,
    progress: Any,
    wait: Any,
) -> ScaleReport | Check:
    """Scale the probe Deployment past the running nodes' slices and back; ``wait`` is
    verify's wait_for_pods. A Check (skip) when there is nothing to measure from."""
    deployment = api.deployment(namespace)
    resource = requested_resource(pods[0]) if pods else None
    key = config_key(pods, nodes)
    if deployment is None or resource is None or key is None:
        return Check(
            "scale-test",
            "skip",
            "needs the probe Deployment and its pods running on nodes of one config key",
        )
    name, before = deployment
    usable = usable_nodes(nodes, resource, key)
    slices = min(n.allocatable or 0 for n in usable)
    asked = (len(usable) + 1) * slices
    expected = math.ceil(asked / slices)
    api.scale(namespace, name, asked)
    try:
        _, up_seconds, timed_out = wait(api, namespace, asked, timeout, poll_seconds, progress)
        after = len(usable_nodes(api.node_reports(), resource, key))
    finally:
        started = time.monotonic()
        api.scale(namespace, name, before)
    wait(api, namespace, before, timeout, poll_seconds, progress)
    back_seconds = time.monotonic() - started
    status: Status
    if timed_out:
        status, detail = (
            "fail",
            f"{asked} pods not all Ready after {up_seconds:.0f}s; {after} node(s) of config "
            f"{key!r} ({expected} expected)",
        )
    elif after != expected:
        status, detail = (
            "fail",
            f"the autoscaler brought {after} node(s) of config {key!r} for {asked} pods at "
            f"{slices} {resource} per node; {expected} fit them: does the node group's "
            f"k8s.io/cluster-autoscaler/node-template/resources/{resource} tag say {slices}?",
        )
    else:
        status, detail = (
            "pass",
            f"{asked} pods at {slices} {resource} per node: {len(usable)} -> {after} node(s) "
            f"in {up_seconds:.0f}s, as the slices need; back to {before} pods in "
            f"{back_seconds:.0f}s (the extra node goes after the autoscaler's scale-down time)",
        )
    return ScaleReport(
        resource,
        slices,
        before,
        asked,
        len(usable),
        expected,
        after,
        round(up_seconds, 1),
        round(back_seconds, 1),
        Check("scale-test", status, detail),
    )
