"""The plan's cost estimate adds up the published prices of what the plan creates."""

from __future__ import annotations

import pytest

from components import catalog
from components.tools import cost
from tests.conftest import run_stack


def test_demo_costs_a_control_plane_a_g4dn_xlarge_a_t3_small_their_disks_and_a_key(demo_plan):
    lines = {line.item: line.usd_per_hour for line in cost.estimate(demo_plan.resources)}
    assert lines == {
        "EKS control plane": 0.10,
        "gpu-sharing-gpu: 1 x g4dn.xlarge": 0.526,
        "gpu-sharing-gpu: 1 public IPv4": 0.005,
        "gpu-sharing-gpu: 26 GiB gp3": pytest.approx(26 * 0.08 / 730),
        "gpu-sharing-system: 1 x t3.small": 0.0208,
        "gpu-sharing-system: 1 public IPv4": 0.005,
        "gpu-sharing-system: 24 GiB gp3": pytest.approx(24 * 0.08 / 730),
        "KMS key": pytest.approx(1 / 730),
    }
    assert sum(lines.values()) == pytest.approx(0.664, abs=0.001)


def test_public_addresses_are_priced_only_in_the_default_vpc():
    """Default subnets give every instance a public IPv4 address; subnets of the user's own
    VPC are priced without (a private subnet gives none)."""
    own = cost.estimate(
        [
            {**r, "inputs": {**r["inputs"], "vpcId": "vpc-0123456789abcdef0"}}
            if r["type"] == "eks:index:Cluster"
            else r
            for r in run_stack("dev").resources
        ]
    )
    assert not [line for line in own if "IPv4" in line.item]


def test_more_nodes_cost_more():
    plan = run_stack("dev", ["gpuNodeDesired=2", "gpuNodeMax=2", "gpuInstanceType=g4dn.2xlarge"])
    lines = {line.item: line.usd_per_hour for line in cost.estimate(plan.resources)}
    assert lines["gpu-sharing-gpu: 2 x g4dn.2xlarge"] == pytest.approx(
        2 * catalog.G4DN["g4dn.2xlarge"].on_demand_usd_per_hour)
    assert lines["gpu-sharing-gpu: 52 GiB gp3"] == pytest.approx(2 * 26 * 0.08 / 730)


def test_each_group_is_named_spot_is_an_upper_bound_and_empty_groups_are_left_out():
    """Pulumi.multi.yaml: timesliced and bottlerocket (1 node each), mps (1 SPOT node),
    exclusive (0 nodes)."""
    lines = cost.estimate(run_stack("multi").resources)
    assert sorted((line.item, line.spot) for line in lines if ":" in line.item) == [
        ("gpu-sharing-bottlerocket: 1 public IPv4", False),
        ("gpu-sharing-bottlerocket: 1 x g4dn.xlarge", False),
        ("gpu-sharing-bottlerocket: 50 GiB gp3", False),
        ("gpu-sharing-mps: 1 public IPv4", False),
        ("gpu-sharing-mps: 1 x g4dn.xlarge (SPOT, at On-Demand price)", True),
        ("gpu-sharing-mps: 25 GiB gp3", False),
        ("gpu-sharing-system: 1 public IPv4", False),
        ("gpu-sharing-system: 1 x t3.small", False),
        ("gpu-sharing-system: 24 GiB gp3", False),
        ("gpu-sharing-timesliced: 1 public IPv4", False),
        ("gpu-sharing-timesliced: 1 x g4dn.xlarge", False),
        ("gpu-sharing-timesliced: 26 GiB gp3", False),
    ]
    assert cost.has_spot(lines)
    assert not cost.has_spot(cost.estimate(run_stack("dev").resources))


def test_idle_and_full_price_each_group_at_its_min_and_max(demo_plan):
    """Pulumi.dev.yaml: min 0, max 2 g4dn.xlarge; the system node is always there."""
    idle = {line.item for line in cost.estimate(demo_plan.resources, "minSize")}
    assert idle == {"EKS control plane", "KMS key", "gpu-sharing-system: 1 x t3.small",
                    "gpu-sharing-system: 1 public IPv4", "gpu-sharing-system: 24 GiB gp3"}
    full = {line.item: line.usd_per_hour for line in cost.estimate(demo_plan.resources,
                                                                   "maxSize")}
    assert full["gpu-sharing-gpu: 2 x g4dn.xlarge"] == pytest.approx(2 * 0.526)
    with pytest.raises(ValueError, match="size 'max'"):
        cost.estimate(demo_plan.resources, "max")


def test_without_system_nodes_the_autoscaler_keeps_the_gpu_node_it_runs_on(demo_plan):
    plan = run_stack("dev", ["systemNodes=0"])
    host = cost.autoscaler_host(plan.resources)
    assert host == cost.CostLine(
        "1 x g4dn.xlarge the autoscaler runs on, with its volume and address",
        pytest.approx(0.526 + 0.005 + 26 * 0.08 / 730),
    )
    # With it, the system node is the node it keeps: priced already.
    assert cost.autoscaler_host(demo_plan.resources) is None
    # Some group keeps a node anyway (multi: timesliced and mps at min 1): nothing to add.
    assert cost.autoscaler_host(run_stack("multi").resources) is None
