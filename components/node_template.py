"""The tags from which the Cluster Autoscaler builds a node of a group it must scale up.

With no node running, the autoscaler knows a group only from its Auto Scaling group's tags
and from EKS's DescribeNodegroup (kubernetes/autoscaler
cluster-autoscaler/cloudprovider/aws/aws_manager.go, buildNodeFromTemplate): the instance
type gives CPU, memory and ``nvidia.com/gpu`` (1 for a g4dn.xlarge), then
``.../resources/<name>`` tags override capacity, ``.../label/<key>`` tags add labels and
``.../taint/<key>`` tags (``<value>:<effect>``) add taints. A time-sliced T4 advertises 5,
not 1: without our tag the autoscaler starts one node per pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PREFIX = "k8s.io/cluster-autoscaler/node-template/"
LABEL = PREFIX + "label/"
TAINT = PREFIX + "taint/"
RESOURCES = PREFIX + "resources/"
#: EKS node group taint effects as Kubernetes names them (botocore eks model, TaintEffect).
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}
#: Tags an EKS node group takes (botocore eks model, TagMap max 50). Each tag fits AWS's
#: key and value lengths by construction (tests/test_node_template.py shows the longest).
MAX_NODE_GROUP_TAGS = 50


def tags(
    labels: Mapping[str, str],
    taints: Sequence[Mapping[str, object]],
    resources: Mapping[str, int],
) -> dict[str, str]:
    """The node-template tags of a group whose nodes carry these labels, taints (as EKS takes
    them) and advertise these extended resources."""
    out = {f"{LABEL}{key}": value for key, value in labels.items()}
    for taint in taints:
        effect = TAINT_EFFECTS[str(taint["effect"])]
        out[f"{TAINT}{taint['key']}"] = f"{taint['value']}:{effect}"
    return out | {f"{RESOURCES}{name}": str(units) for name, units in resources.items()}
