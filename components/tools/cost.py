"""What a planned stack costs per hour while it runs, from the plan and published prices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import catalog
from . import mocks


@dataclass(frozen=True)
class CostLine:
    item: str
    usd_per_hour: float
    #: A Spot group's line, priced at On-Demand: an upper bound.
    spot: bool = False


def has_spot(lines: list[CostLine]) -> bool:
    return any(line.spot for line in lines)


def _volume_gib(resources: list[dict[str, Any]], node_group: dict[str, Any]) -> int:
    """The root volume of the launch template our GpuNodeGroup creates beside the group."""
    return sum(
        mapping["ebs"]["volumeSize"]
        for r in resources
        if r["type"] == "aws:ec2/launchTemplate:LaunchTemplate"
        and r["parent"] == node_group["parent"]
        for mapping in r["inputs"].get("blockDeviceMappings", [])
    )


#: The node counts an estimate can price each group at: what `up` starts with, and the
#: least and most the Cluster Autoscaler keeps it at (idle and full).
SIZES = ("desiredSize", "minSize", "maxSize")


def estimate(resources: list[dict[str, Any]], size: str = "desiredSize") -> list[CostLine]:
    """One line per priced resource (On-Demand, us-west-2), each node group's named by its
    group and priced at its ``size`` (one of SIZES); SPOT is priced as On-Demand (an upper
    bound); a group at 0 nodes costs nothing."""
    if size not in SIZES:
        raise ValueError(f"size {size!r}; use one of {', '.join(SIZES)}")
    lines = []
    public = _in_default_vpc(resources)
    for resource in resources:
        inputs, typ = resource["inputs"], resource["type"]
        if typ in ("eks:index:Cluster", "aws:eks/cluster:Cluster"):
            lines.append(CostLine("EKS control plane", catalog.EKS_CONTROL_PLANE_USD_PER_HOUR))
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            nodes = inputs["scalingConfig"][size]
            if not nodes:
                continue
            group = (resource["parent"] or resource["name"]).rsplit("::", 1)[-1]
            spot = inputs.get("capacityType") == "SPOT"
            kind = " (SPOT, at On-Demand price)" if spot else ""
            for name in inputs["instanceTypes"]:
                price = catalog.on_demand_usd_per_hour(name)
                lines.append(CostLine(f"{group}: {nodes} x {name}{kind}", nodes * price, spot))
            if public:
                lines.append(
                    CostLine(
                        f"{group}: {nodes} public IPv4", nodes * catalog.PUBLIC_IPV4_USD_PER_HOUR
                    )
                )
            gib = nodes * _volume_gib(resources, resource)
            lines.append(
                CostLine(
                    f"{group}: {gib} GiB gp3",
                    gib * catalog.GP3_USD_PER_GIB_MONTH / catalog.HOURS_PER_MONTH,
                )
            )
        elif typ == "aws:kms/key:Key":
            lines.append(
                CostLine("KMS key", catalog.KMS_KEY_USD_PER_MONTH / catalog.HOURS_PER_MONTH)
            )
    return lines


def _in_default_vpc(resources: list[dict[str, Any]]) -> bool:
    """Whether the nodes run in a default VPC's subnets, which give every instance a public
    IPv4 address (Amazon VPC docs, default-vpc.html: default subnets map one on launch)."""
    defaults = {mocks.default_vpc(region) for region in mocks.ZONE_IDS}
    return any(
        r["type"] == "eks:index:Cluster" and r["inputs"].get("vpcId") in defaults for r in resources
    )


def autoscaler_host(resources: list[dict[str, Any]]) -> CostLine | None:
    """The GPU node the Cluster Autoscaler keeps when every group may scale to zero.

    Its pod needs an EC2 node (EKS Pod Identity does not run on Fargate: EKS docs,
    pod-identities.html, restrictions), the cluster has only GPU nodes, and the autoscaler
    removes a node only when every pod on it can move elsewhere, which its own cannot. The
    cheapest group's node (with its volume, and its public address in a default VPC) is the
    least that costs; None when some group keeps a node anyway, e.g. the system group.
    """
    groups = [r for r in resources if r["type"] == "aws:eks/nodeGroup:NodeGroup"]
    if not groups or any(g["inputs"]["scalingConfig"]["minSize"] for g in groups):
        return None
    address = catalog.PUBLIC_IPV4_USD_PER_HOUR if _in_default_vpc(resources) else 0.0

    def node(group: dict[str, Any], instance_type: str) -> float:
        volume = _volume_gib(resources, group) * catalog.GP3_USD_PER_GIB_MONTH
        return (
            catalog.on_demand_usd_per_hour(instance_type)
            + address
            + volume / catalog.HOURS_PER_MONTH
        )

    name, price = min(
        ((t, node(g, t)) for g in groups for t in g["inputs"]["instanceTypes"]),
        key=lambda pair: pair[1],
    )
    return CostLine(f"1 x {name} the autoscaler runs on, with its volume and address", price)
