"""The mocks answer like EC2 would: AZ offerings as AWS records them, launch-template versions
as EC2 numbers them (tests/test_node_group.py)."""

from __future__ import annotations

import re

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


@pytest.fixture(scope="module")
def ec2_zones() -> dict[str, dict]:
    """Per real region: the AZ names and zone IDs of the account moto recorded
    (DescribeAvailabilityZones), and the zone IDs that offer g4dn.xlarge
    (instance_type_offerings/availability-zone-id/<region>.json)."""
    with mock_aws():
        zones, g4dn_ids = {}, {}
        for region in REAL_REGIONS:
            ec2 = boto3.client("ec2", region_name=region)
            zones[region] = {
                z["ZoneName"]: z["ZoneId"]
                for z in ec2.describe_availability_zones()["AvailabilityZones"]
            }
            g4dn_ids[region] = sorted(
                o["Location"]
                for o in ec2.describe_instance_type_offerings(
                    LocationType="availability-zone-id",
                    Filters=[{"Name": "instance-type", "Values": ["g4dn.xlarge"]}],
                )["InstanceTypeOfferings"]
            )
    return {"zones": zones, "g4dn_ids": g4dn_ids}


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


def test_the_subnet_filters_the_mocks_answer_are_ec2s():
    """DescribeSubnets filter names, from botocore's ec2 model."""
    import re

    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    docs = model.operation_model("DescribeSubnets").input_shape.members["Filters"].documentation
    names = set(re.findall(r"<li> <p> <code>([^<]+)</code>", docs))
    assert names >= mocks.SUBNET_FILTERS


def test_only_default_subnets_of_the_regions_default_vpc_exist():
    def subnets(**filters: list[str]) -> list[str]:
        answer = mocks.AwsLikeMocks()._answer(
            "aws:ec2/getSubnets:getSubnets",
            {"filters": [{"name": k.replace("_", "-"), "values": v} for k, v in filters.items()]},
            "us-west-2",
        )
        return answer["ids"]

    vpc = mocks.default_vpc("us-west-2")
    assert len(subnets(vpc_id=[vpc], availability_zone=["us-west-2a", "us-west-2b"])) == 2
    assert subnets(vpc_id=[vpc], default_for_az=["false"], availability_zone=["us-west-2a"]) == []
    assert subnets(vpc_id=[mocks.default_vpc("eu-west-1")], availability_zone=["us-west-2a"]) == []
    assert subnets(availability_zone=["eu-west-1a"]) == []


def test_zone_ids_and_g4dn_azs_describe_the_same_regions_and_azs():
    """Every region the mocks offer g4dn in has its AZs' zone IDs, in EC2's format
    (<region code>-az<n>), and each AZ that offers g4dn is one of them."""
    assert set(mocks.ZONE_IDS) == set(mocks.G4DN_AZS)
    for region, zones in mocks.ZONE_IDS.items():
        assert set(mocks.G4DN_AZS[region]) <= set(zones), region
        assert all(az.startswith(region) for az in zones), region
        assert all(re.fullmatch(r"[a-z]+[0-9]-az[0-9]+", i) for i in zones.values()), region
        assert len(set(zones.values())) == len(zones), region


def test_the_mock_account_has_the_azs_ec2_recorded(ec2_zones):
    assert {r: mocks.ZONE_IDS[r] for r in REAL_REGIONS} == ec2_zones["zones"]


def test_g4dn_is_offered_in_the_same_physical_azs(ec2_zones):
    """Offerings belong to zone IDs (the same AZ in every account): the mocks' g4dn AZs,
    through the mock account's names, are the zone IDs EC2 lists."""
    assert {
        r: sorted(mocks.ZONE_IDS[r][az] for az in mocks.G4DN_AZS[r]) for r in REAL_REGIONS
    } == ec2_zones["g4dn_ids"]
