"""The critical path of ``pulumi up``: the longest chain of waits through the plan's edges.

The engine creates a resource once its dependencies, its provider and its parent exist, so
``up`` lasts at least as long as the slowest such chain. Each resource's wait is typed
(an AWS create, a node join, an image pull and pod start, a plain API call) and given a
typical time; README.md "Time to ready" gives the source of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import autoscaler, device_plugin, verification

AWS_CREATE = "AWS create"
NODE_JOIN = "node join"
POD_READY = "image pull, pod ready"
API_CALL = "API call"
#: Typical seconds of each wait (estimates; README.md "Time to ready" cites their sources).
EKS_CLUSTER_SECONDS = 600
NODE_GROUP_SECONDS = 240
API_CALL_SECONDS = 2
#: Pulling and unpacking one compressed GB from a public registry onto an EC2 node.
PULL_SECONDS_PER_GB = 35
#: From a pulled image to Ready: the process starts and, for the probe, its readinessProbe
#: passes (first check after 5 s, then every 5 s).
START_SECONDS = 10
#: Types that take no time of their own: components and providers register at once, and
#: a local Command without ``create`` runs nothing on ``up``.
INSTANT = ("pulumi:providers:", "eks-gpu-sharing:")


@dataclass(frozen=True)
class Step:
    """One resource on the path and what ``up`` waits for there."""

    urn: str
    type: str
    name: str
    wait: str
    seconds: int

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "wait": self.wait,
            "seconds": self.seconds,
        }


def image_gb(image: str) -> float:
    """Compressed size of an image we ship; another's is unknown: the largest we know."""
    if image.startswith(f"{device_plugin.IMAGE_REPOSITORY}:"):
        return device_plugin.IMAGE_COMPRESSED_GB
    if image.startswith(f"{autoscaler.IMAGE_REPOSITORY}:"):
        return autoscaler.IMAGE_COMPRESSED_GB
    return verification.probe_image_gb(image)


def _pod_seconds(inputs: dict[str, Any]) -> int:
    pod = inputs["spec"]["template"]["spec"]
    images = {c["image"] for c in pod.get("initContainers", []) + pod["containers"]}
    return START_SECONDS + round(PULL_SECONDS_PER_GB * sum(map(image_gb, images)))


def _skips_await(inputs: dict[str, Any]) -> bool:
    """``up`` does not wait for an object so annotated: creating it is one API call
    (pulumi/pulumi-kubernetes, provider/pkg/metadata/overrides.go, SkipAwaitLogic)."""
    annotations = inputs.get("metadata", {}).get("annotations") or {}
    return annotations.get("pulumi.com/skipAwait") == "true"


def wait_of(resource: dict[str, Any]) -> tuple[str, int]:
    """What ``up`` waits for at this resource, and for about how many seconds."""
    typ = resource["type"]
    if typ.startswith(INSTANT) or (
        typ == "command:local:Command" and "create" not in resource["inputs"]
    ):
        return "none", 0
    if typ == "eks:index:Cluster":
        return AWS_CREATE, EKS_CLUSTER_SECONDS
    if typ == "aws:eks/nodeGroup:NodeGroup":
        return NODE_JOIN, NODE_GROUP_SECONDS
    if typ in ("kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:Deployment") and not (
        _skips_await(resource["inputs"])
    ):
        return POD_READY, _pod_seconds(resource["inputs"])
    return API_CALL, API_CALL_SECONDS


def needs(resource: dict[str, Any]) -> set[str]:
    """URNs a recorded resource waits for on ``up`` (and outlives on ``destroy``): its
    dependencies, parent and provider."""
    edges = set(resource["dependencies"])
    if resource["parent"]:
        edges.add(resource["parent"])
    if resource["provider"]:
        edges.add(resource["provider"].rsplit("::", 1)[0])  # a reference is "<urn>::<id>"
    return edges


def critical_path(resources: list[dict[str, Any]]) -> list[Step]:
    """The chain of resources whose waits add up to the longest, in ``up`` order; steps that
    take no time (components, providers) are left out."""
    by_urn = {r["urn"]: r for r in resources}
    waits = {urn: wait_of(r) for urn, r in by_urn.items()}
    done_at: dict[str, int] = {}
    after: dict[str, str | None] = {}

    def finish(urn: str) -> int:
        if urn not in done_at:
            needed = [u for u in sorted(needs(by_urn[urn])) if u in by_urn]
            last = max(needed, key=finish, default=None)
            after[urn] = last
            done_at[urn] = (finish(last) if last else 0) + waits[urn][1]
        return done_at[urn]

    urn: str | None = max(by_urn, key=finish, default=None)
    path = []
    while urn is not None:
        resource = by_urn[urn]
        wait, seconds = waits[urn]
        if seconds:
            path.append(Step(urn, resource["type"], resource["name"], wait, seconds))
        urn = after[urn]
    return path[::-1]


def minutes(seconds: int) -> str:
    return f"~{seconds} s" if seconds < 90 else f"~{round(seconds / 60)} min"
