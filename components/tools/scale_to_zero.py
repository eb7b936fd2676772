"""``verify --scale-to-zero``: scale the verification workload to nothing, see the Cluster
Autoscaler remove every GPU node it ran on, scale it back and time its return from zero.

The autoscaler removes a node once only DaemonSet pods are left on it
(kubernetes/autoscaler, cluster-autoscaler/simulator/drainability/rules/daemonset/rule.go)
and it has been unneeded for ``--scale-down-unneeded-time`` (10 minutes by default,
ClusterAutoscalerArgs.scale_down_unneeded_minutes); EC2 then terminates the instance and the
node object goes. Hence the default wait of 20 minutes for each way. A pod no controller
owns would keep its node for good (rules/replicated/rule.go), which is why the pod without a
slice is a Deployment (components/verification.py). The workload is scaled back whatever
happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .. import conventions
from .scale_test import config_key
from .verify_checks import NO_SLICE_SELECTOR, Check, Kube, NodeReport, Status

#: Seconds to wait for each way: 10 minutes unneeded, the autoscaler's 10 s scan, instance
#: termination and the node object's removal (a few minutes) for the way down; a node
#: launch and join, the device plugin and the image pulls for the way up.
TIMEOUT_SECONDS = 1200.0
#: The autoscaler's own pod (manifests/cluster-autoscaler.yaml).
AUTOSCALER_SELECTOR = "app.kubernetes.io/name=cluster-autoscaler"
HINT = (
    "is the node group's min 0 (gpuNodeMin, or nodeGroups[i].min)? is the Cluster "
    f"Autoscaler running (namespace {conventions.AUTOSCALER_NAMESPACE})? do its "
    "--scale-down-unneeded-time (10m by default) and the instance's termination fit in the "
    "timeout?"
)


@dataclass
class ZeroReport:
    config_key: str
    probe_pods: int
    no_slice_pods: int
    #: GPU nodes of the config key before the scale-down, and when the wait for zero ended.
    nodes_before: int
    nodes_left: int
    #: Seconds from scaling both Deployments to 0 until no such node was left (or the timeout).
    to_zero_seconds: float
    #: Seconds from scaling them back until every probe pod and the pod without a slice was
    #: Ready (or the timeout): what a first job waits after the cluster idled at zero.
    from_zero_seconds: float
    check: Check


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
) -> ZeroReport | Check:
    """Scale the probe and no-slice Deployments to 0 and back; ``wait`` is verify's
    wait_for_pods. A Check (skip) when it cannot or must not run."""
    probe = api.deployment(namespace)
    no_slice = api.deployment(namespace, NO_SLICE_SELECTOR)
    key = config_key(pods, nodes)
    if probe is None or no_slice is None or key is None:
        return Check(
            "scale-to-zero",
            "skip",
            "needs the probe and no-slice Deployments (a stack older than this check runs a "
            "bare no-slice pod: pulumi up) and the probe pods on nodes of one config key",
        )
    before = _nodes_of(api, key)
    pinned = [
        f"{p.metadata.name} on {p.spec.node_name}"
        for p in api.pods(conventions.AUTOSCALER_NAMESPACE, AUTOSCALER_SELECTOR)
        if p.spec.node_name in before
    ]
    if pinned:
        return Check(
            "scale-to-zero",
            "skip",
            f"the Cluster Autoscaler runs on a GPU node of config {key!r} "
            f"({', '.join(pinned)}), which stays while that pod has nowhere else to go: give "
            "the cluster a system node (eks-gpu-sharing:systemNodes, 1 by default), where it "
            "then runs",
        )
    (probe_name, probe_pods), (no_slice_name, no_slice_pods) = probe, no_slice
    api.scale(namespace, probe_name, 0)
    try:
        api.scale(namespace, no_slice_name, 0)
        left, down_seconds = _wait_for_no_nodes(api, key, timeout, poll_seconds, progress)
    finally:
        started = time.monotonic()
        api.scale(namespace, probe_name, probe_pods)
        api.scale(namespace, no_slice_name, no_slice_pods)
    *_, probes_late = wait(api, namespace, probe_pods, timeout, poll_seconds, progress)
    remaining = max(0.0, timeout - (time.monotonic() - started))
    *_, no_slice_late = wait(
        api, namespace, no_slice_pods, remaining, poll_seconds, progress, NO_SLICE_SELECTOR
    )
    up_seconds = time.monotonic() - started
    status: Status
    if left:
        status, detail = (
            "fail",
            f"{len(left)} GPU node(s) of config {key!r} still up {down_seconds:.0f}s after "
            f"the pods went: {HINT}",
        )
    elif probes_late or no_slice_late:
        status, detail = (
            "fail",
            f"{len(before)} -> 0 GPU node(s) of config {key!r} in {down_seconds:.0f}s; back "
            f"from zero, {probe_pods} probe pod(s) and the pod without a slice not all Ready "
            f"after {up_seconds:.0f}s: did the autoscaler add a node (the group's max >= 1)?",
        )
    else:
        status, detail = (
            "pass",
            f"{len(before)} -> 0 GPU node(s) of config {key!r} in {down_seconds:.0f}s (to "
            f"zero); {probe_pods} probe pod(s) and the pod without a slice Ready again in "
            f"{up_seconds:.0f}s (from zero)",
        )
    return ZeroReport(
        key,
        probe_pods,
        no_slice_pods,
        len(before),
        len(left),
        round(down_seconds, 1),
        round(up_seconds, 1),
        Check("scale-to-zero", status, detail, [f"{name}: still up" for name in left]),
    )


def _nodes_of(api: Any, key: str) -> list[str]:
    return sorted({n.name for n in api.node_reports() if n.config_key == key})


def _wait_for_no_nodes(
    api: Any, key: str, timeout: float, poll_seconds: float, progress: Any
) -> tuple[list[str], float]:
    """Poll until no GPU node of config ``key`` is left: (those left, seconds)."""
    start = time.monotonic()
    try:
        while True:
            left = _nodes_of(api, key)
            elapsed = time.monotonic() - start
            progress.say(
                f"waiting for GPU nodes of config {key!r} to go: {len(left)} left", elapsed
            )
            if not left or elapsed >= timeout:
                return left, elapsed
            time.sleep(min(poll_seconds, timeout - elapsed))
    finally:
        progress.done()
