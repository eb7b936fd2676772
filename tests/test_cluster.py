"""GpuCluster under mocks: secure defaults, given or default network, explicit provider."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pulumi
import pulumi_aws as aws
import pytest

from components import ConfigError, GpuCluster, GpuClusterArgs
from components.cluster import DISABLE_LOGGING, keep_created_version
from components.config import args_from_config
from components.tools import mocks
from components.tools.plan import Plan, config_error
from tests.conftest import cluster_args, run_program
from tests.test_plan import plan_cli

TODAY = dt.date(2026, 11, 22)
PUBLIC_SUBNETS = (
    "the nodes run in the default VPC's default subnets, which are public: each node gets a "
    "public IP address. Give subnet_ids of private subnets with a NAT gateway to keep them off "
    "the internet (docs/security.md)."
)


def build(**kwargs):
    holder = {}

    def program():
        holder["cluster"] = GpuCluster("c", cluster_args(today=TODAY, **kwargs))

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
    assert plan.warnings == [PUBLIC_SUBNETS]  # the default VPC's subnets are public


def test_default_network_is_the_default_vpc_in_azs_that_offer_the_gpu_type():
    inputs = build().one("eks:index:Cluster")["inputs"]
    assert inputs["vpcId"].startswith("vpc-")
    assert len(inputs["subnetIds"]) == 3  # us-west-2a/b/c offer g4dn in the mocks


def test_given_network_and_key_are_used_and_no_key_is_created():
    plan = build(
        vpc_id="vpc-123",
        subnet_ids=["subnet-a", "subnet-b"],
        kms_key_arn="arn:aws:kms:us-west-2:123456789012:key/given",
    )
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
        run_program(lambda: GpuCluster("c", cluster_args(today=TODAY)), {"aws:region": region})
    assert str(config_error(error.value)) == (
        f"the default VPC has {subnets} default subnet(s) in AZs that offer g4dn.xlarge and "
        "that EKS accepts; EKS needs two AZs. Give subnet_ids, or pick another gpuInstanceType "
        "or region"
    )


def test_unknown_region_says_what_the_offline_plan_knows_without_a_traceback():
    """Not "the VPC lacks subnets": the mocks know nothing of ca-west-1 in your account."""
    result = plan_cli("--config", "aws:region=ca-west-1")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "python -m components plan: error: the offline plan knows only the regions "
        "ap-south-2, eu-west-1, synthetic-one-az-1, us-east-1, us-west-1, us-west-2, not "
        "aws:region 'ca-west-1'"
    )
    assert "Traceback" not in result.stderr


def default_subnets(region: str) -> set[str]:
    plan = run_program(lambda: GpuCluster("c", cluster_args(today=TODAY)), {"aws:region": region})
    return set(plan.one("eks:index:Cluster")["inputs"]["subnetIds"])


def subnets_in(region: str, *azs: str) -> set[str]:
    return {f"subnet-{mocks._suffix(mocks.default_vpc(region), az, length=17)}" for az in azs}


def test_default_subnets_skip_azs_eks_refuses(monkeypatch):
    """us-east-1's use1-az3 (awsdocs/amazon-eks-user-guide latest/ug/networking/
    network-reqs.adoc). It offers no g4dn (moto's offerings by zone ID), so in the mock
    account, as in any, every g4dn AZ is usable; this test's account names it us-east-1c
    and, counterfactually, offers g4dn there, to show that EKS's refusal is honoured."""
    assert default_subnets("us-east-1") == subnets_in("us-east-1", *mocks.G4DN_AZS["us-east-1"])
    swapped = {"us-east-1c": "use1-az3", "us-east-1e": "use1-az2"}
    monkeypatch.setitem(mocks.ZONE_IDS, "us-east-1", mocks.ZONE_IDS["us-east-1"] | swapped)
    assert "us-east-1c" in mocks.G4DN_AZS["us-east-1"]
    assert default_subnets("us-east-1") == subnets_in(
        "us-east-1", "us-east-1a", "us-east-1b", "us-east-1d", "us-east-1f"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cluster_name": "-bad"},
            "cluster_name '-bad' is not a valid EKS cluster name (letters, digits, - and _, at "
            "most 100)",
        ),
        ({"subnet_ids": ["only-one"]}, "subnet_ids needs two or more subnets, got ['only-one']"),
        ({"subnet_ids": "subnet-a"}, "subnet_ids needs two or more subnets, got 'subnet-a'"),
        (
            {"gpu_instance_type": "m5.large"},
            "gpuInstanceType 'm5.large' is not a g4dn type we support; use one of g4dn.xlarge, "
            "g4dn.2xlarge, g4dn.4xlarge, g4dn.8xlarge, g4dn.12xlarge, g4dn.16xlarge, g4dn.metal",
        ),
        (
            {"cluster_log_types": ["everything"]},
            "cluster_log_types[0] 'everything'; use one of api, audit, authenticator, "
            "controllerManager, scheduler",
        ),
        (
            {"endpoint_private_access": "yes"},
            "endpoint_private_access must be true or false, got 'yes'",
        ),
        (
            {"endpoint_public_access": "yes"},
            "endpoint_public_access must be true or false, got 'yes'",
        ),
        ({"tags": {"team": 7}}, "tags must be a map of strings to strings, got {'team': 7}"),
        ({"support_type": "standard"}, "supportType 'standard'; use one of STANDARD, EXTENDED"),
        (
            {"authentication_mode": "CONFIG_MAP"},
            "authentication_mode 'CONFIG_MAP'; use one of API, API_AND_CONFIG_MAP",
        ),
    ],
)
def test_bad_args_are_rejected_before_any_resource(kwargs, message):
    with pytest.raises(ConfigError) as error:
        cluster_args(today=TODAY, **kwargs).validate()
    assert str(error.value) == message


def test_subnets_known_only_when_the_program_runs_are_passed_on():
    """The count check applies to a list given now; an Output is the caller's to get right."""

    def program():
        subnets = [
            aws.ec2.Subnet(f"s{i}", vpc_id="vpc-1", cidr_block=f"10.0.{i}.0/24") for i in (1, 2)
        ]
        ids = pulumi.Output.all(*(subnet.id for subnet in subnets))
        GpuCluster("c", cluster_args(today=TODAY, vpc_id="vpc-1", subnet_ids=ids))

    ids = run_program(program).one("eks:index:Cluster")["inputs"]["subnetIds"]
    assert [subnet.partition("-")[0] for subnet in ids] == ["s1", "s2"]  # the mocks' IDs


def test_control_plane_log_group_is_ours_so_destroy_removes_it():
    plan = build(cluster_name="demo", log_retention_days=90)
    group = plan.one("aws:cloudwatch/logGroup:LogGroup")
    assert group["inputs"]["name"] == "/aws/eks/demo/cluster"
    assert group["inputs"]["retentionInDays"] == 90
    assert group["urn"] in plan.one("eks:index:Cluster")["dependencies"]


def test_private_only_endpoint_sends_no_public_cidrs():
    plan = build(endpoint_public_access=False)
    inputs = plan.one("eks:index:Cluster")["inputs"]
    assert inputs["endpointPublicAccess"] is False and inputs["endpointPrivateAccess"] is True
    # pulumi-eks throws on publicAccessCidrs without a public endpoint (nodejs/eks/cluster/
    # cluster.ts: "`publicAccessCidrs` can only be set when `endpointPublicAccess` is true").
    assert "publicAccessCidrs" not in inputs
    assert plan.warnings == [PUBLIC_SUBNETS]  # nothing about the endpoint


def test_public_cidrs_with_a_private_only_endpoint_are_refused():
    with pytest.raises(ConfigError) as error:
        cluster_args(
            today=TODAY, endpoint_public_access=False, public_access_cidrs=["198.51.100.7/32"]
        ).validate()
    assert str(error.value) == (
        "publicAccessCidrs ['198.51.100.7/32'] is set but the public endpoint is off "
        "(endpoint_public_access false): there is nothing for them to open. Remove "
        "publicAccessCidrs, or turn the public endpoint on"
    )


def test_upgrade_policy_is_standard_unless_asked():
    """EKS defaults a cluster to EXTENDED support (6x per hour after standard support)."""
    assert build().one("eks:index:Cluster")["inputs"]["upgradePolicy"] == {
        "supportType": "STANDARD"
    }
    assert build(support_type="EXTENDED").one("eks:index:Cluster")["inputs"]["upgradePolicy"] == {
        "supportType": "EXTENDED"
    }
    with pytest.raises(ConfigError, match="supportType 'standard'; use one of STANDARD"):
        cluster_args(today=TODAY, support_type="standard").validate()


def test_kubernetes_provider_does_not_drop_state_when_unreachable(monkeypatch):
    """pulumi-kubernetes reads PULUMI_K8S_DELETE_UNREACHABLE only when the provider input is
    unset (provider/pkg/provider/provider.go); the teardown recipe sets it, `up` does not."""
    monkeypatch.delenv("PULUMI_K8S_DELETE_UNREACHABLE", raising=False)
    provider = build().one("pulumi:providers:kubernetes")["inputs"]
    assert "deleteUnreachable" not in provider


def test_logging_is_turned_off_before_the_cluster_is_deleted():
    """Destroy deletes dependents first: the command (logging off, then wait), then the
    cluster, then the log group, so EKS has nothing left to write into a deleted group."""
    plan = build(cluster_name="demo")
    cluster = plan.one("eks:index:Cluster")
    off = plan.one("command:local:Command")
    assert cluster["urn"] in off["dependencies"]
    assert plan.one("aws:cloudwatch/logGroup:LogGroup")["urn"] in cluster["dependencies"]
    assert "create" not in off["inputs"] and off["inputs"]["delete"] == DISABLE_LOGGING
    assert off["inputs"]["interpreter"] == ["/bin/sh", "-c"]  # the script is POSIX sh
    env = off["inputs"]["environment"]
    assert (env["CLUSTER"], env["REGION"]) == ("demo", "us-west-2") and "PROFILE" not in env
    assert json.loads(env["LOGGING_OFF"]) == {
        "clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": False}]
    }
    assert build(cluster_log_types=[]).by_type("command:local:Command") == []


def test_logging_off_request_fits_update_cluster_config():
    """The --logging JSON is UpdateClusterConfigRequest.logging in botocore's eks model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("eks")
    logging = model.operation_model("UpdateClusterConfig").input_shape.members["logging"]
    setup = logging.members["clusterLogging"].member
    assert set(setup.members) == {"types", "enabled"}
    assert "--logging" in DISABLE_LOGGING and "describe-update" in DISABLE_LOGGING


def test_aws_profile_reaches_the_kubeconfig_and_the_teardown_command():
    """pulumi-eks appends ``--profile <name>`` to get-token's args only in its own provider's
    kubeconfig (generateKubeconfig, includeProfile; nodejs/eks/cluster/cluster.ts)."""
    args = args_from_config(
        {
            "aws:region": "us-west-2",
            "aws:profile": "work",
            "eks-gpu-sharing:endpointPublicAccess": "false",
        },
        "dev",
        today=TODAY,
    )
    assert args.cluster.aws_profile == "work"
    plan = run_program(lambda: GpuCluster("c", args.cluster))
    cluster = plan.one("eks:index:Cluster")["inputs"]
    assert cluster["providerCredentialOpts"] == {"profileName": "work"}
    provider = json.loads(plan.one("pulumi:providers:kubernetes")["inputs"]["kubeconfig"])
    exec_ = provider["users"][0]["user"]["exec"]
    assert exec_["args"] == [
        "--region",
        "us-west-2",
        "eks",
        "get-token",
        "--cluster-name",
        "eks-gpu-sharing-dev",
        "--output",
        "json",
        "--profile",
        "work",
    ]
    assert exec_["env"] == [
        {
            "name": "KUBERNETES_EXEC_INFO",
            "value": '{"apiVersion": "client.authentication.k8s.io/v1beta1"}',
        }
    ]
    off = plan.one("command:local:Command")["inputs"]["environment"]
    assert off["PROFILE"] == "work" and "AWS_PROFILE" not in off
    assert "--profile" not in build().one("pulumi:providers:kubernetes")["inputs"]["kubeconfig"]
    # Without a profile pulumi-eks gets no providerCredentialOpts at all: it falls back to
    # AWS_PROFILE or aws:profile only when they are unset (cluster.ts, before createCore).
    assert "providerCredentialOpts" not in build().one("eks:index:Cluster")["inputs"]
    with pytest.raises(ConfigError, match="aws:profile ' ' is not an AWS CLI profile name"):
        cluster_args(today=TODAY, aws_profile=" ").validate()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            # botocore's logs model, PutRetentionPolicyRequest.retentionInDays.
            {"log_retention_days": 10},
            "log_retention_days 10; use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, "
            "400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
        ),
        ({"log_retention_days": True}, "log_retention_days must be an integer, got True"),
        ({"log_retention_days": 0}, "log_retention_days must be >= 1, got 0"),
        (
            {"endpoint_public_access": False, "endpoint_private_access": False},
            "endpoint_public_access and endpoint_private_access are both off",
        ),
    ],
)
def test_bad_endpoint_and_log_args(kwargs, message):
    with pytest.raises(ConfigError) as error:
        cluster_args(today=TODAY, **kwargs).validate()
    assert str(error.value) == message


@pytest.mark.parametrize("days", [1, 3653])
def test_the_shortest_and_longest_retention_cloudwatch_takes_are_taken(days):
    cluster_args(today=TODAY, log_retention_days=days).validate()


def test_without_the_private_endpoint_the_public_one_must_let_the_nodes_in():
    """awsdocs/amazon-eks-user-guide latest/ug/clusters/cluster-endpoint.adoc: with the
    private endpoint off, "your public access endpoint CIDR sources must include the egress
    sources from your VPC"; nodes come from their own public addresses."""
    with pytest.raises(ConfigError) as error:
        cluster_args(
            today=TODAY, endpoint_private_access=False, public_access_cidrs=["203.0.113.7/32"]
        ).validate()
    assert str(error.value) == (
        "endpoint_private_access false with publicAccessCidrs ['203.0.113.7/32']: the nodes "
        "would reach the API through the public endpoint from their own public addresses, "
        "which these CIDRs leave out, so they would never join. Turn endpoint_private_access "
        "on (the default)"
    )
    cluster_args(
        today=TODAY,
        endpoint_private_access=False,
        public_access_cidrs=["0.0.0.0/0"],
        allow_public_access_from_anywhere=True,
    ).validate()
    cluster_args(today=TODAY, public_access_cidrs=["203.0.113.7/32"]).validate()


def test_authentication_mode_can_keep_the_aws_auth_configmap():
    plan = build(authentication_mode="API_AND_CONFIG_MAP")
    assert plan.one("eks:index:Cluster")["inputs"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    with pytest.raises(ConfigError, match="authentication_mode 'CONFIG_MAP'"):
        cluster_args(today=TODAY, authentication_mode="CONFIG_MAP").validate()


def test_the_mocks_claim_no_offering_in_a_region_they_do_not_know():
    token = "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings"
    filters = {"filters": [{"name": "instance-type", "values": ["g4dn.xlarge"]}]}
    with pytest.raises(ConfigError, match="the offline plan knows only the regions"):
        mocks.AwsLikeMocks()._answer(token, filters, "ap-southeast-7")


def run_disable_logging(tmp_path, statuses: list[str], refusal: str = "", profile: str = ""):
    """DISABLE_LOGGING under /bin/sh with a stand-in `aws` that logs its arguments and
    answers describe-update with ``statuses`` in turn (and a `sleep` that does not wait).
    With ``refusal``, update-cluster-config fails as the AWS CLI does: that message on
    stderr and exit status 254."""
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "statuses").write_text("\n".join(statuses) + "\n")
    fake_aws = f"""#!/bin/sh
echo "$@" >> {tmp_path}/calls
case "$2" in
  update-cluster-config) {f"echo '{refusal}' >&2; exit 254" if refusal else "echo upd-1"} ;;
  describe-update) head -n1 {tmp_path}/statuses; sed -i 1d {tmp_path}/statuses ;;
esac
"""
    (bin_dir / "aws").write_text(fake_aws)
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    for tool in ("aws", "sleep"):
        (bin_dir / tool).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CLUSTER": "demo",
        "REGION": "eu-west-1",
        "LOGGING_OFF": '{"clusterLogging": []}',
        "HOME": str(tmp_path),
    }
    if profile:
        env["PROFILE"] = profile
    result = subprocess.run(
        ["/bin/sh", "-c", DISABLE_LOGGING], env=env, capture_output=True, text=True, timeout=30
    )
    calls = (
        (tmp_path / "calls").read_text().splitlines() if os.path.exists(tmp_path / "calls") else []
    )
    return result, calls


def test_disable_logging_waits_until_eks_has_applied_it(tmp_path):
    result, calls = run_disable_logging(tmp_path, ["InProgress", "InProgress", "Successful"])
    assert result.returncode == 0, result.stderr
    assert calls[0] == (
        "eks update-cluster-config --name demo --logging "
        '{"clusterLogging": []} --query update.id --output text '
        "--region eu-west-1"
    )
    assert (
        calls[1:]
        == [
            "eks describe-update --name demo --update-id upd-1 --query "
            "update.status --output text --region eu-west-1"
        ]
        * 3
    )


def test_disable_logging_passes_the_profile_on_the_command_line(tmp_path):
    """Not AWS_PROFILE, which ambient credentials override (pulumi/pulumi-eks
    nodejs/eks/cluster/cluster.ts, generateKubeconfig: "Use --profile instead of AWS_PROFILE")."""
    result, calls = run_disable_logging(tmp_path, ["Successful"], profile="work")
    assert result.returncode == 0, result.stderr
    assert [call.endswith("--region eu-west-1 --profile work") for call in calls] == [True] * 2


def test_disable_logging_fails_the_destroy_when_the_update_fails(tmp_path):
    result, _ = run_disable_logging(tmp_path, ["Failed"])
    assert result.returncode == 1
    assert result.stderr == "disabling control-plane logging of demo: Failed\n"


#: How the AWS CLI reports a refused UpdateClusterConfig (error codes: botocore's eks model).
REFUSED = "An error occurred ({}) when calling the UpdateClusterConfig operation: {}"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ResourceNotFoundException", "No cluster found for name: demo."),
        # aws-quickstart/quickstart-amazon-eks-cluster-resource-provider#38, aws/aws-cdk#19898
        ("InvalidParameterException", "No changes needed for the logging config provided"),
    ],
)
def test_disable_logging_lets_the_destroy_go_on_when_there_is_nothing_to_turn_off(
    tmp_path, code, message
):
    """A cluster already gone, or with logging already off, refuses the update."""
    result, calls = run_disable_logging(tmp_path, [], refusal=REFUSED.format(code, message))
    assert result.returncode == 0 and len(calls) == 1, result.stderr


@pytest.mark.parametrize(
    "refusal",
    [
        REFUSED.format("ThrottlingException", "Rate exceeded"),
        REFUSED.format("ResourceInUseException", "Cluster has an update in progress"),
        REFUSED.format("InvalidParameterException", "Logging type foo is not supported"),
        "An error occurred (ExpiredTokenException) when calling the UpdateClusterConfig "
        "operation: The security token included in the request is expired",
    ],
)
def test_disable_logging_fails_the_destroy_on_any_other_refusal(tmp_path, refusal):
    """Else the cluster goes with logging on and EKS re-creates the log group we delete."""
    result, calls = run_disable_logging(tmp_path, [], refusal=refusal)
    assert result.returncode == 1 and len(calls) == 1
    assert result.stderr == f"disabling control-plane logging of demo: {refusal}\n"


def test_disable_logging_fails_the_destroy_without_an_aws_cli(tmp_path):
    env = {"PATH": str(tmp_path), "CLUSTER": "demo", "REGION": "eu-west-1", "LOGGING_OFF": "{}"}
    result = subprocess.run(
        ["/bin/sh", "-c", DISABLE_LOGGING], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.startswith("disabling control-plane logging of demo: ")
    assert "aws" in result.stderr


def test_disable_logging_gives_up_after_20_minutes(tmp_path):
    result, calls = run_disable_logging(tmp_path, ["InProgress"] * 80)
    assert result.returncode == 1 and len(calls) == 81
    assert result.stderr == "disabling control-plane logging of demo: not done after 20 minutes\n"


def test_the_aws_cli_accepts_the_logging_off_request(tmp_path):
    """The real AWS CLI parses --logging and checks it against the eks model before it sends
    anything; an endpoint that refuses connections shows the request got that far."""
    import shutil
    import subprocess

    aws = shutil.which("aws")
    if aws is None or subprocess.run([aws, "--version"], capture_output=True).returncode:
        pytest.skip("no AWS CLI here")
    plan = build(cluster_name="demo")
    env = plan.one("command:local:Command")["inputs"]["environment"]
    result = subprocess.run(
        [
            aws,
            "eks",
            "update-cluster-config",
            "--name",
            "demo",
            "--logging",
            env["LOGGING_OFF"],
            "--region",
            "us-west-2",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    assert "Could not connect to the endpoint URL" in result.stderr, result.stderr


def eks_transforms(monkeypatch, **kwargs):
    """The transforms our eks.Cluster is registered with (the mock monitor hands them to
    the mocks without running them)."""
    seen = []
    answer = mocks.AwsLikeMocks.new_resource

    def recording(self, args):
        if args.typ == "eks:index:Cluster":
            seen.extend(args.transforms)
        return answer(self, args)

    monkeypatch.setattr(mocks.AwsLikeMocks, "new_resource", recording)
    build(**kwargs)
    return seen


def test_a_defaulted_version_is_chosen_at_create_and_kept_afterwards(monkeypatch):
    """Else an `up` after EKS lists a newer version upgrades the control plane in place.
    ``transforms`` reach pulumi-eks's children (Pulumi docs, resource option transforms);
    ignoreChanges keeps the created value (Pulumi docs, resource option ignoreChanges)."""
    transform, _ = eks_transforms(monkeypatch)
    assert transform is keep_created_version
    opts = pulumi.ResourceOptions(protect=True)
    child = transform(
        pulumi.ResourceTransformArgs(
            True, "aws:eks/cluster:Cluster", "c-eks-eksCluster", {"version": "1.35"}, opts
        )
    )
    assert child.props == {"version": "1.35"} and child.opts.ignore_changes == ["version"]
    assert child.opts.protect is True  # the options pulumi-eks gave its child are kept
    assert (
        transform(
            pulumi.ResourceTransformArgs(True, "aws:iam/role:Role", "c-eks-eksRole", {}, opts)
        )
        is None
    )
    # A version the user set is theirs to change: that is how to upgrade.
    assert keep_created_version not in eks_transforms(monkeypatch, kubernetes_version="1.34")


def test_aws_is_asked_through_the_clusters_aws_provider_for_what_it_needs(monkeypatch):
    """Each lookup is parented to the component, so it goes through the AWS provider the
    component was given, not the default one (Pulumi docs, invoke options: parent). Only
    available AZs: by default getAvailabilityZones lists every AZ "regardless of their
    state" (pulumi-aws sdk/python pulumi_aws/get_availability_zones.py, ``state``). Only
    versions of the cluster type we create, in standard support (botocore's eks model,
    DescribeClusterVersionsRequest: clusterType "to filter versions by")."""
    from components.tools import plan as planner

    asked = []
    answer = mocks.AwsLikeMocks.call

    def recording(self, args):
        asked.append((args.token, dict(args.args)))
        return answer(self, args)

    monkeypatch.setattr(mocks.AwsLikeMocks, "call", recording)
    recorder = mocks.AwsLikeMocks()

    def program():
        provider = aws.Provider("elsewhere", region="eu-west-1")
        GpuCluster(
            "c",
            cluster_args(today=TODAY),
            opts=pulumi.ResourceOptions(providers={"aws": provider}),
        )

    planner.record(program, "test", {}, mocks=recorder)
    assert recorder.region != "eu-west-1"
    assert {region for _, region in recorder.calls} == {"eu-west-1"}
    zones_token = "aws:index/getAvailabilityZones:getAvailabilityZones"
    zones = [a for token, a in asked if token == zones_token]
    assert zones and all(a.get("state") == "available" for a in zones)
    versions_token = "aws:eks/getClusterVersions:getClusterVersions"
    (versions,) = [a for token, a in asked if token == versions_token]
    assert (versions["clusterType"], versions["versionStatus"]) == ("eks", "STANDARD_SUPPORT")


def test_node_groups_are_deleted_before_logging_goes_off():
    """Whether EKS refuses node-group deletes during a logging update is undocumented, so
    the node groups (which take cluster_name) go first, then the command, then the cluster."""
    holder = {}

    def program():
        holder["cluster"] = GpuCluster("c", cluster_args(today=TODAY))
        pulumi.export("name", holder["cluster"].cluster_name)
        aws.eks.NodeGroup(
            "ng",
            cluster_name=holder["cluster"].cluster_name,
            node_role_arn="r",
            subnet_ids=["s-a", "s-b"],
            scaling_config={"desired_size": 1, "max_size": 1, "min_size": 1},
        )

    plan = run_program(program)
    off = plan.one("command:local:Command")
    assert off["urn"] in plan.one("aws:eks/nodeGroup:NodeGroup")["dependencies"]
    assert plan.outputs["name"] == "c"


def test_public_cidrs_reach_eks_in_cidr_notation():
    """Python's ip_network also takes a netmask or a bare address; EKS gets CIDR notation."""
    plan = build(public_access_cidrs=["10.0.0.0/255.0.0.0", "100.20.30.40"])
    assert plan.one("eks:index:Cluster")["inputs"]["publicAccessCidrs"] == [
        "10.0.0.0/8",
        "100.20.30.40/32",
    ]


def through_provider(region: str) -> Plan:
    """A cluster whose AWS provider is in ``region``, while the stack's default is us-west-2."""
    import pulumi
    import pulumi_aws as aws

    def program():
        provider = aws.Provider("elsewhere", region=region)
        GpuCluster(
            "c", cluster_args(today=TODAY), opts=pulumi.ResourceOptions(providers={"aws": provider})
        )

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
    plan = run_program(
        lambda: GpuCluster("c", cluster_args(today=TODAY)), {"aws:region": "us-west-1"}
    )
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
        cluster = GpuCluster("c", cluster_args(today=TODAY))
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
        GpuCluster("c", cluster_args(today=TODAY), opts=pulumi.ResourceOptions(depends_on=[first]))

    plan = run_program(program)
    first = plan.one("aws:s3/bucket:Bucket")["urn"]
    for typ in ("eks:index:Cluster", "aws:kms/key:Key", "pulumi:providers:kubernetes"):
        assert first in plan.one(typ)["dependencies"], typ


def test_the_whole_internet_needs_the_opt_in_and_is_warned_about():
    with pytest.raises(ConfigError) as error:
        cluster_args(today=TODAY, public_access_cidrs=["198.51.100.7/32", "0.0.0.0/0"]).validate()
    assert str(error.value) == (
        "publicAccessCidrs ['198.51.100.7/32', '0.0.0.0/0'] opens the API endpoint to the whole "
        "internet; give your own addresses, or set allowPublicAccessFromAnywhere true to mean it"
    )
    plan = build(public_access_cidrs=["0.0.0.0/0"], allow_public_access_from_anywhere=True)
    assert plan.one("eks:index:Cluster")["inputs"]["publicAccessCidrs"] == ["0.0.0.0/0"]
    assert plan.warnings[0] == (
        "publicAccessCidrs includes 0.0.0.0/0 (allowPublicAccessFromAnywhere): the cluster's "
        "API endpoint is reachable from the whole internet."
    )


def test_a_public_endpoint_without_cidrs_is_refused_naming_the_key():
    """No default opens the endpoint: a library user says who may reach it."""
    with pytest.raises(ConfigError) as error:
        GpuClusterArgs(today=TODAY).validate()
    assert str(error.value) == (
        "publicAccessCidrs is unset and the API endpoint is public: set it to the addresses "
        'that may reach the API, e.g. ["203.0.113.7/32"] (`make up` fills in your own), or '
        "make the endpoint private (endpoint_public_access false)"
    )
    GpuClusterArgs(today=TODAY, endpoint_public_access=False).validate()


def test_nodes_in_the_default_vpcs_public_subnets_are_warned_about():
    assert PUBLIC_SUBNETS in build().warnings
    assert build(vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"]).warnings == []
