"""Every EKS/EC2 value we send, checked against botocore's service models (the AWS APIs),
and the catalog's EC2 facts checked against EC2's answers as moto records them."""

from __future__ import annotations

import re

import boto3
import botocore.session
import pytest
from moto import mock_aws

from components import ConfigError, GpuNodeGroupArgs, catalog
from components.tools.mocks import G4DN_AZS, ONE_AZ_REGION

SESSION = botocore.session.get_session()


def shape(service: str, name: str):
    return SESSION.get_service_model(service).shape_for(name)


def enum(service: str, name: str) -> list[str]:
    return list(shape(service, name).enum)


def test_ami_types_we_allow_exist_in_eks():
    ami_types = enum("eks", "AMITypes")
    for ami in catalog.NVIDIA_AMI_TYPES + catalog.DEPRECATED_GPU_AMI_TYPES:
        assert ami in ami_types


def test_capacity_types_and_log_types_exist_in_eks():
    assert set(catalog.CAPACITY_TYPES) <= set(enum("eks", "CapacityTypes"))
    assert set(catalog.EKS_LOG_TYPES) == set(enum("eks", "LogType"))


def test_g4dn_types_exist_in_ec2():
    instance_types = enum("ec2", "InstanceType")
    for name in catalog.G4DN:
        assert name in instance_types


def test_node_group_inputs_fit_create_nodegroup(demo_plan):
    inputs = demo_plan.one("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")["inputs"]
    request = shape("eks", "CreateNodegroupRequest")
    # Every field the API requires is given, under the name pulumi-aws gives it;
    # nodegroupName is auto-named by Pulumi (the name plus a random suffix).
    pulumi_name = {"subnets": "subnetIds", "nodeRole": "nodeRoleArn"}
    assert set(request.required_members) == {"clusterName", "nodegroupName", "subnets", "nodeRole"}
    for required in set(request.required_members) - {"nodegroupName"}:
        assert pulumi_name.get(required, required) in inputs, required
    assert inputs["amiType"] in enum("eks", "AMITypes")
    assert inputs["capacityType"] in enum("eks", "CapacityTypes")
    taint_effects = enum("eks", "TaintEffect")
    for taint in inputs["taints"]:
        assert taint["effect"] in taint_effects
    for instance_type in inputs["instanceTypes"]:
        assert instance_type in enum("ec2", "InstanceType")


def test_cluster_inputs_fit_create_cluster(demo_plan):
    inputs = demo_plan.one("eks:index:Cluster")["inputs"]
    assert inputs["authenticationMode"] in enum("eks", "AuthenticationMode")
    assert inputs["authenticationMode"] == "API"
    for log_type in inputs["enabledClusterLogTypes"]:
        assert log_type in enum("eks", "LogType")


def test_launch_template_fits_ec2(demo_plan):
    inputs = demo_plan.one("aws:ec2/launchTemplate:LaunchTemplate", under="GpuNodeGroup")["inputs"]
    metadata = inputs["metadataOptions"]
    assert metadata["httpTokens"] in enum("ec2", "LaunchTemplateHttpTokensState")
    assert metadata["httpEndpoint"] in enum("ec2", "LaunchTemplateInstanceMetadataEndpointState")
    for mapping in inputs["blockDeviceMappings"]:
        assert mapping["ebs"]["volumeType"] in enum("ec2", "VolumeType")


@pytest.mark.parametrize("ami", catalog.NVIDIA_AMI_TYPES)
def test_every_nvidia_ami_type_has_a_container_volume(ami):
    assert catalog.CONTAINER_VOLUME_DEVICE[ami].startswith("/dev/xvd")


def test_support_types_are_eks_upgrade_policy_values(demo_plan):
    """UpgradePolicyRequest.supportType; EKS's default is EXTENDED (6x per hour later)."""
    from components.cluster import SUPPORT_TYPES

    assert set(SUPPORT_TYPES) == set(enum("eks", "SupportType"))
    assert set(shape("eks", "UpgradePolicyRequest").members) == {"supportType"}
    policy = demo_plan.one("eks:index:Cluster")["inputs"]["upgradePolicy"]
    assert policy == {"supportType": "STANDARD"}


def cluster_versions(**filters: object) -> list[dict]:
    from components.tools.mocks import AwsLikeMocks

    token = "aws:eks/getClusterVersions:getClusterVersions"
    return AwsLikeMocks()._answer(token, filters, "us-west-2")["clusterVersions"]


def test_mocked_cluster_versions_answer_like_describe_cluster_versions():
    """The offline plan's stand-in for DescribeClusterVersions uses its fields and enums, and
    those of pulumi-aws's result type (GetClusterVersionsClusterVersionResult)."""
    import inspect

    from pulumi_aws.eks.outputs import GetClusterVersionsClusterVersionResult as Result

    info = shape("eks", "ClusterVersionInformation").members
    pulumi_fields = {
        "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
        for name in inspect.signature(Result.__init__).parameters
    }
    answer = cluster_versions(versionStatus="STANDARD_SUPPORT")
    assert answer, "the catalog knows no version in standard support"
    for version in answer:
        assert set(version) <= set(info) & pulumi_fields
        assert version["versionStatus"] in enum("eks", "VersionStatus")
    assert "versionStatus" in shape("eks", "DescribeClusterVersionsRequest").members


def test_mocked_cluster_versions_give_the_dates_of_the_eks_calendar():
    """1.34 in awsdocs/amazon-eks-user-guide latest/ug/versioning/kubernetes-versions.adoc:
    released October 2, 2025, standard support to December 2, 2026, extended to December
    2, 2027."""
    (v134,) = cluster_versions(versionStatus="STANDARD_SUPPORT", clusterVersionsOnlies=["1.34"])
    assert (v134["releaseDate"], v134["endOfStandardSupportDate"]) == ("2025-10-02", "2026-12-02")
    assert v134["endOfExtendedSupportDate"] == "2027-12-02"


def test_mocked_cluster_versions_filter_or_refuse():
    assert cluster_versions(versionStatus="STANDARD_SUPPORT", clusterType="eks") == (
        cluster_versions(versionStatus="STANDARD_SUPPORT")
    )
    assert cluster_versions(versionStatus="STANDARD_SUPPORT", clusterType="other") == []
    for refused in (
        {},
        {"versionStatus": "EXTENDED_SUPPORT"},
        {"versionStatus": "UNSUPPORTED"},
        {"versionStatus": "STANDARD_SUPPORT", "includeAll": True},
        {"versionStatus": "STANDARD_SUPPORT", "defaultOnly": True},
    ):
        with pytest.raises(NotImplementedError, match="only the versions in standard support"):
            cluster_versions(**refused)


def test_instance_quota_codes_are_service_quotas_ids():
    """Each code fits QuotaCode in botocore's service-quotas model."""
    import re

    from components.tools.preflight import QUOTAS

    pattern = shape("service-quotas", "QuotaCode").metadata["pattern"]
    for code, _name in QUOTAS.values():
        assert re.fullmatch(pattern, code), code


def hop_limit_range() -> tuple[int, int]:
    """The range EC2 documents for the hop limit; the model has no min/max traits for it."""
    member = shape("ec2", "LaunchTemplateInstanceMetadataOptionsRequest").members[
        "HttpPutResponseHopLimit"
    ]
    assert member.type_name == "integer"
    low, high = re.search(r"Integers from (\d+) to (\d+)", member.documentation).groups()
    return int(low), int(high)


def test_hop_limit_we_send_and_allow_is_what_ec2_takes(demo_plan):
    low, high = hop_limit_range()
    metadata = demo_plan.one(
        "aws:ec2/launchTemplate:LaunchTemplate", under="GpuNodeGroup"
    )["inputs"]["metadataOptions"]
    assert low <= metadata["httpPutResponseHopLimit"] <= high

    def args(hop_limit: int) -> GpuNodeGroupArgs:
        return GpuNodeGroupArgs(cluster_name="c", subnet_ids=["a", "b"], imds_hop_limit=hop_limit)

    for accepted in (low, high):
        args(accepted).validate()
    for refused in (low - 1, high + 1):
        with pytest.raises(ConfigError, match="imds_hop_limit"):
            args(refused).validate()


# --- Catalog facts vs EC2's own answers (moto's recorded DescribeInstanceTypes data) -------
# An independent source: moto ships EC2's DescribeInstanceTypes and
# DescribeInstanceTypeOfferings answers, recorded from AWS (getmoto/moto,
# moto/ec2/resources/instance_types.json, instance_type_offerings/), queried here through
# boto3 as a program would ask EC2.


@pytest.fixture(scope="module")
def ec2_g4dn() -> dict[str, dict]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-west-2")
        pages = ec2.get_paginator("describe_instance_types").paginate(
            Filters=[{"Name": "instance-type", "Values": ["g4dn.*"]}]
        )
        return {t["InstanceType"]: t for page in pages for t in page["InstanceTypes"]}


def test_catalog_lists_every_g4dn_size_ec2_has(ec2_g4dn):
    assert sorted(catalog.G4DN) == sorted(ec2_g4dn)


@pytest.mark.parametrize("name", sorted(catalog.G4DN))
def test_catalog_gpus_vcpus_and_memory_are_ec2s(name, ec2_g4dn):
    ours, theirs = catalog.G4DN[name], ec2_g4dn[name]
    (gpu,) = theirs["GpuInfo"]["Gpus"]
    assert (gpu["Manufacturer"], gpu["Name"]) == ("NVIDIA", ours.gpu_model)
    assert gpu["Count"] == ours.gpus
    assert gpu["MemoryInfo"]["SizeInMiB"] == ours.gpu_memory_mib
    assert theirs["VCpuInfo"]["DefaultVCpus"] == ours.vcpus
    assert theirs["MemoryInfo"]["SizeInMiB"] == ours.memory_mib


# --- The system node group's types, against the same recorded answers --------------------


@pytest.fixture(scope="module")
def ec2_system() -> dict[str, dict]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-west-2")
        answer = ec2.describe_instance_types(InstanceTypes=sorted(catalog.SYSTEM_INSTANCE_TYPES))
        return {t["InstanceType"]: t for t in answer["InstanceTypes"]}


@pytest.mark.parametrize("name", sorted(catalog.SYSTEM_INSTANCE_TYPES))
def test_system_types_are_ec2s_x86_types_without_gpus(name, ec2_system):
    """vCPUs, memory and the network limits maxPods comes from (ENIs, IPv4 per ENI), as
    EC2 answers them; x86_64, for the AL2023_x86_64_STANDARD AMI, and no GPU."""
    ours, theirs = catalog.SYSTEM_INSTANCE_TYPES[name], ec2_system[name]
    assert theirs["VCpuInfo"]["DefaultVCpus"] == ours.vcpus
    assert theirs["MemoryInfo"]["SizeInMiB"] == ours.memory_mib
    assert theirs["NetworkInfo"]["MaximumNetworkInterfaces"] == ours.max_enis
    assert theirs["NetworkInfo"]["Ipv4AddressesPerInterface"] == ours.ipv4_per_eni
    assert "x86_64" in theirs["ProcessorInfo"]["SupportedArchitectures"]
    assert "GpuInfo" not in theirs


def test_max_pods_is_the_eks_amis_for_the_demo_type():
    """eni-max-pods as the EKS AMI ships it: t3.small 11, t3.micro 4, m5.large 29."""
    pods = {n: t.max_pods for n, t in catalog.SYSTEM_INSTANCE_TYPES.items()}
    assert (pods["t3.small"], pods["t3.micro"], pods["m5.large"]) == (11, 4, 29)


def test_the_system_ami_type_is_an_eks_ami_type():
    assert catalog.SYSTEM_AMI_TYPE in enum("eks", "AMITypes")


@pytest.mark.parametrize("region", sorted(r for r in G4DN_AZS if r != ONE_AZ_REGION))
@pytest.mark.parametrize("name", sorted(catalog.SYSTEM_INSTANCE_TYPES))
def test_system_types_are_offered_where_the_gpu_subnets_are(region, name):
    """The system nodes use the GPU nodes' subnets, one per AZ that offers g4dn: each
    system type must be offered in all of those AZs too."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=region)
        offered = {
            o["Location"]
            for o in ec2.describe_instance_type_offerings(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": [name]}],
            )["InstanceTypeOfferings"]
        }
    assert set(G4DN_AZS[region]) <= offered


def test_system_node_group_inputs_fit_create_nodegroup(demo_plan):
    (inputs,) = [
        g["inputs"]
        for g in demo_plan.by_type("aws:eks/nodeGroup:NodeGroup")
        if "SystemNodeGroup" in g["parent"]
    ]
    assert inputs["amiType"] in enum("eks", "AMITypes")
    assert inputs["capacityType"] in enum("eks", "CapacityTypes")
    assert inputs["instanceTypes"] == ["t3.small"]
    assert "taints" not in inputs
    scaling = inputs["scalingConfig"]
    assert scaling["minSize"] == scaling["desiredSize"] == scaling["maxSize"] == 1
