"""The mocks answer like EC2 would: AZ offerings as AWS records them, launch-template versions
as EC2 numbers them (tests/test_node_group.py)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from components.tools import mocks

REAL_REGIONS = sorted(set(mocks.G4DN_AZS) - {mocks.ONE_AZ_REGION})


@pytest.fixture(scope="module")
def ec2() -> dict:
    """EC2's regions and g4dn offerings as moto recorded them from AWS (getmoto/moto,
    moto/ec2/resources/instance_type_offerings/availability-zone/<region>.json)."""
    with mock_aws():
        regions = boto3.client("ec2", region_name="us-east-1").describe_regions()["Regions"]
        azs = {}
        for region in REAL_REGIONS:
            offerings = boto3.client("ec2", region_name=region).describe_instance_type_offerings(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": ["g4dn.xlarge"]}],
            )["InstanceTypeOfferings"]
            azs[region] = sorted(o["Location"] for o in offerings)
    return {"regions": {r["RegionName"] for r in regions}, "g4dn_azs": azs}


def test_the_mocks_offer_g4dn_where_ec2_does(ec2):
    assert {r: list(mocks.G4DN_AZS[r]) for r in REAL_REGIONS} == ec2["g4dn_azs"]


def test_the_one_az_region_is_synthetic_and_no_real_region_is_like_it(ec2):
    assert mocks.ONE_AZ_REGION not in ec2["regions"]
    assert set(REAL_REGIONS) <= ec2["regions"]
    assert len(mocks.G4DN_AZS[mocks.ONE_AZ_REGION]) == 1


def test_the_offerings_are_asked_per_availability_zone():
    """Without a location type EC2 answers for the Region as a whole (botocore's ec2 model,
    DescribeInstanceTypeOfferings), which has no subnets of its own."""
    answer = mocks.AwsLikeMocks()._answer(
        "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings",
        {"filters": [{"name": "instance-type", "values": ["g4dn.xlarge"]}]},
        "us-west-2",
    )
    assert answer["locations"] == ["us-west-2"]
    assert answer["locationTypes"] == ["region"]
