"""Every EKS/EC2 value we send, checked against botocore's service models (the AWS APIs)."""

from __future__ import annotations

import botocore.session
import pytest

from components import catalog

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
    inputs = demo_plan.one("aws:eks/nodeGroup:NodeGroup")["inputs"]
    request = shape("eks", "CreateNodegroupRequest")
    # Every field the API requires is given, under the name pulumi-aws gives it;
    # nodegroupName is auto-named by Pulumi (the name plus a random suffix).
    pulumi_name = {"subnets": "subnetIds", "nodeRole": "nodeRoleArn"}
    assert set(request.required_members) == {"clusterName", "nodegroupName", "subnets",
                                             "nodeRole"}
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
    inputs = demo_plan.one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    metadata = inputs["metadataOptions"]
    assert metadata["httpTokens"] in enum("ec2", "LaunchTemplateHttpTokensState")
    assert metadata["httpEndpoint"] in enum("ec2", "LaunchTemplateInstanceMetadataEndpointState")
    hop_limit = shape("ec2", "LaunchTemplateInstanceMetadataOptionsRequest").members[
        "HttpPutResponseHopLimit"]
    assert hop_limit.type_name == "integer"
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


def test_mocked_cluster_versions_answer_like_describe_cluster_versions():
    """The offline plan's stand-in for DescribeClusterVersions uses its fields and enums."""
    from components.tools.mocks import AwsLikeMocks

    info = shape("eks", "ClusterVersionInformation").members
    answer = AwsLikeMocks()._answer("aws:eks/getClusterVersions:getClusterVersions", {})
    assert answer["clusterVersions"], "the catalog knows no version in standard support"
    for version in answer["clusterVersions"]:
        assert set(version) <= set(info)
        assert version["versionStatus"] in enum("eks", "VersionStatus")
    assert "versionStatus" in shape("eks", "DescribeClusterVersionsRequest").members


def test_g_instance_quota_codes_are_service_quotas_ids():
    """Each code fits QuotaCode in botocore's service-quotas model."""
    import re

    from components.tools.preflight import G_QUOTAS

    pattern = shape("service-quotas", "QuotaCode").metadata["pattern"]
    for code, _name in G_QUOTAS.values():
        assert re.fullmatch(pattern, code), code
