"""What each planned GPU node group adds: slices per node, and the most it can reach.

Read from the plan itself: the node-template resource tag the Cluster Autoscaler scales by
(components/node_template.py) and the group's scaling config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..conventions import GPU_NODE_LABEL
from ..node_template import RESOURCES

AUTOSCALER = "eks-gpu-sharing:index:ClusterAutoscaler"


@dataclass(frozen=True)
class GroupCapacity:
    group: str
    #: Units of each resource one node advertises (resources at 0 left out).
    per_node: dict[str, int]
    min_size: int
    desired_size: int
    max_size: int

    def line(self, autoscaled: bool) -> str:
        sizes = f"min/desired/max {self.min_size}/{self.desired_size}/{self.max_size}"
        most = self.max_size if autoscaled else self.desired_size
        reach = "the autoscaler can reach" if autoscaled else "it runs (no autoscaler)"
        per_node = ", ".join(f"{units} {name}" for name, units in self.per_node.items())
        total = ", ".join(f"{units * most} {name}" for name, units in self.per_node.items())
        return f"{self.group}: {per_node} per node; {sizes}; {total} at the most {reach}"


def node_groups(resources: list[dict[str, Any]]) -> list[GroupCapacity]:
    found = []
    for resource in resources:
        inputs = resource["inputs"]
        if resource["type"] != "aws:eks/nodeGroup:NodeGroup" or GPU_NODE_LABEL not in inputs.get(
            "labels", {}
        ):
            continue
        scaling = inputs["scalingConfig"]
        per_node = {
            key.removeprefix(RESOURCES): int(value)
            for key, value in inputs.get("tags", {}).items()
            if key.startswith(RESOURCES) and int(value)
        }
        group = (resource["parent"] or resource["name"]).rsplit("::", 1)[-1]
        found.append(
            GroupCapacity(
                group, per_node, scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]
            )
        )
    return found


def autoscaled(resources: list[dict[str, Any]]) -> bool:
    return any(r["type"] == AUTOSCALER for r in resources)
