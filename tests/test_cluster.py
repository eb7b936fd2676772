"""GpuCluster under mocks: secure defaults, given or default network, explicit provider."""

from __future__ import annotations

import datetime as dt

import pytest

from components import ConfigError, GpuCluster, GpuClusterArgs
from components.tools import mocks
from components.tools.plan import Plan, config_error
from tests.conftest import run_program
from tests.test_plan import plan_cli

TODAY = dt.date(2026, 11, 22)


def build(**kwargs):
    holder = {}

    def program():
        holder["cluster"] = GpuCluster("c", GpuClusterArgs(today=TODAY, **kwargs))

    return run_program(program)


def test_defaults_are_locked_down():
    plan = build(public_access_cidrs=["203.0.113.7/32"])
    inputs = plan.one("eks:index:Cluster")["inputs"]
    assert inputs["authenticationMode"] == "API"
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["endpointPrivateAccess"] is True
    assert inputs["publicAccessCidrs"] == ["203.0.113.7/32"]
    assert inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    key = plan.one("aws:kms/key:Key")
    assert key["inputs"]["enableKeyRotation"] is True
    assert inputs["encryptionConfigKeyArn"].startswith("arn:aws:kms:us-west-2:")
    assert key["urn"] in plan.one("eks:index:Cluster")["dependencies"]
    assert not plan.warnings


def test_default_network_is_the_default_vpc_in_azs_that_offer_the_gpu_type():
    inputs = build().one("eks:index:Cluster")["inputs"]
    assert inputs["vpcId"].startswith("vpc-")
    assert len(inputs["subnetIds"]) == 3  # us-west-2a/b/c offer g4dn in the mocks


def test_given_network_and_key_are_used_and_no_key_is_created():
    plan = build(vpc_id="vpc-123", subnet_ids=["subnet-a", "subnet-b"],
                 kms_key_arn="arn:aws:kms:us-west-2:123456789012:key/given")
    inputs = plan.one("eks:index:Cluster")["inputs"]
    assert (inputs["vpcId"], inputs["subnetIds"]) == ("vpc-123", ["subnet-a", "subnet-b"])
    assert inputs["encryptionConfigKeyArn"].endswith("key/given")
    assert plan.by_type("aws:kms/key:Key") == []


@pytest.mark.parametrize(
    ("region", "subnets"),
    [("ap-south-2", 0), (mocks.ONE_AZ_REGION, 1)],  # no g4dn; g4dn in one AZ (synthetic)
)
def test_region_without_enough_gpu_azs_is_explained(region, subnets):
    with pytest.raises(Exception) as error:
        run_program(lambda: GpuCluster("c", GpuClusterArgs(today=TODAY)), {"aws:region": region})
    assert str(config_error(error.value)) == (
        f"the default VPC has {subnets} default subnet(s) in AZs that offer g4dn.xlarge; EKS "
        "needs two AZs. Give subnet_ids, or pick another gpuInstanceType or region"
    )


def test_plan_reports_it_without_a_traceback():
    result = plan_cli("--config", "aws:region=ap-south-2")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the default VPC has 0 default subnet(s)")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster_name": "-bad"}, "cluster_name"),
        ({"subnet_ids": ["only-one"]}, "two or more subnets"),
        ({"cluster_log_types": ["everything"]}, "cluster_log_types[0]"),
        ({"endpoint_private_access": "yes"}, "endpoint_private_access"),
        ({"tags": {"team": 7}}, "tags"),
    ],
)
def test_bad_args_are_rejected_before_any_resource(kwargs, message):
    with pytest.raises(ConfigError) as error:
        GpuClusterArgs(today=TODAY, **kwargs).validate()
    assert message in str(error.value)


def test_control_plane_log_group_is_ours_so_destroy_removes_it():
    plan = build(cluster_name="demo", log_retention_days=90)
    group = plan.one("aws:cloudwatch/logGroup:LogGroup")
    assert group["inputs"]["name"] == "/aws/eks/demo/cluster"
    assert group["inputs"]["retentionInDays"] == 90
    assert group["urn"] in plan.one("eks:index:Cluster")["dependencies"]


def test_private_only_endpoint():
    plan = build(endpoint_public_access=False)
    inputs = plan.one("eks:index:Cluster")["inputs"]
    assert inputs["endpointPublicAccess"] is False and inputs["endpointPrivateAccess"] is True
    assert not plan.warnings  # 0.0.0.0/0 does not matter with no public endpoint


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_retention_days": 10}, "log_retention_days 10; use one of 1, 3, 5"),
        ({"log_retention_days": True}, "log_retention_days must be an integer"),
        ({"endpoint_public_access": False, "endpoint_private_access": False}, "both off"),
    ],
)
def test_bad_endpoint_and_log_args(kwargs, message):
    with pytest.raises(ConfigError) as error:
        GpuClusterArgs(today=TODAY, **kwargs).validate()
    assert message in str(error.value)


def test_authentication_mode_can_keep_the_aws_auth_configmap():
    plan = build(authentication_mode="API_AND_CONFIG_MAP")
    assert plan.one("eks:index:Cluster")["inputs"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    with pytest.raises(ConfigError, match="authentication_mode 'CONFIG_MAP'"):
        GpuClusterArgs(today=TODAY, authentication_mode="CONFIG_MAP").validate()


def through_provider(region: str) -> Plan:
    """A cluster whose AWS provider is in ``region``, while the stack's default is us-west-2."""
    import pulumi
    import pulumi_aws as aws

    def program():
        provider = aws.Provider("elsewhere", region=region)
        GpuCluster("c", GpuClusterArgs(today=TODAY),
                   opts=pulumi.ResourceOptions(providers={"aws": provider}))

    return run_program(program)


def test_the_default_network_is_looked_up_through_the_clusters_aws_provider():
    """An explicit AWS provider (another region or account) must answer every lookup."""
    inputs = through_provider("eu-west-1").one("eks:index:Cluster")["inputs"]
    assert inputs["vpcId"] == mocks.default_vpc("eu-west-1")
    assert len(inputs["subnetIds"]) == len(mocks.G4DN_AZS["eu-west-1"])
    with pytest.raises(Exception) as error:
        through_provider("ap-south-2")
    assert "the default VPC has 0 default subnet(s)" in str(config_error(error.value))


def test_two_azs_are_enough():
    """us-west-1 offers g4dn in two AZs (moto's recorded offerings): EKS takes that."""
    plan = run_program(lambda: GpuCluster("c", GpuClusterArgs(today=TODAY)),
                       {"aws:region": "us-west-1"})
    assert len(plan.one("eks:index:Cluster")["inputs"]["subnetIds"]) == 2


def test_settings_that_are_ours_not_the_defaults():
    plan = build(tags={"team": "ml"})
    eks = plan.one("eks:index:Cluster")["inputs"]
    assert eks["createOidcProvider"] is False  # no IRSA: no IAM OIDC provider to leave behind
    key = plan.one("aws:kms/key:Key")["inputs"]
    assert key["deletionWindowInDays"] == 7
    assert key["description"] == "Envelope encryption of Kubernetes secrets in EKS c"
    provider = plan.one("pulumi:providers:kubernetes")["inputs"]
    assert provider["enableServerSideApply"] == "true"
    for typ in ("eks:index:Cluster", "aws:kms/key:Key", "aws:cloudwatch/logGroup:LogGroup"):
        assert plan.one(typ)["inputs"]["tags"] == {"team": "ml"}, typ


def test_the_kubeconfig_output_is_the_clusters_and_secret():
    import json

    import pulumi

    def program():
        cluster = GpuCluster("c", GpuClusterArgs(today=TODAY))
        pulumi.export("secret", cluster.kubeconfig)
        pulumi.export("plain", pulumi.Output.unsecret(cluster.kubeconfig))

    outputs = run_program(program).outputs
    assert outputs["secret"] == "[secret]"
    assert json.loads(outputs["plain"]) == mocks.kubeconfig("c", "us-west-2")


def test_what_the_cluster_waits_for_its_children_wait_for():
    import pulumi
    import pulumi_aws as aws

    def program():
        first = aws.s3.Bucket("first")
        GpuCluster("c", GpuClusterArgs(today=TODAY),
                   opts=pulumi.ResourceOptions(depends_on=[first]))

    plan = run_program(program)
    first = plan.one("aws:s3/bucket:Bucket")["urn"]
    for typ in ("eks:index:Cluster", "aws:kms/key:Key", "pulumi:providers:kubernetes"):
        assert first in plan.one(typ)["dependencies"], typ


def test_the_open_endpoint_warning_says_what_to_do():
    (warning,) = build().warnings
    assert warning == (
        "publicAccessCidrs includes 0.0.0.0/0: the cluster's API endpoint is reachable from the "
        "whole internet. Set eks-gpu-sharing:publicAccessCidrs to your own address (e.g. "
        '["203.0.113.7/32"]).'
    )
